"""Metrics for comparing codecs: the Bjontegaard delta rate (BD-rate) and the empirical mutual
information between two tasks.

The paper compares rate-distortion curves by BD-rate (Bjontegaard 2001; paper Fig. 3-5, appendix
D): fit ln(rate) as a cubic polynomial of the quality axis for each curve, integrate both fits
over the range of quality where the curves overlap, and report exp(mean difference) - 1 in
percent. Positive means the test codec needs more rate than the anchor for the same quality.
The quality axis here is whatever the experiment plots (for the synthetic study, RMSE1 + RMSE2,
where lower is better; the sign of the axis does not change the result, but ``lower_is_better``
says which way a rate-distortion curve must run, to catch a swapped axis).

The cubic is a least-squares fit, not an interpolation: through five points that bend sharply
(a codec's high-rate points) it can swing up and down between them, and the BD-rate then
measures the swing. ``bd_rate(..., method=...)`` also offers interpolations through the points,
as later BD-rate tools do (PCHIP, Akima), and the polyline; ``cubic_monotone`` says whether a
cubic fit runs one way over an interval, and ``bd_rates`` puts the methods and that flag side by
side. On the paper's own Tables 2-3 the choice is not cosmetic: Fig. 3b's Separated and Combined
vs Joint, +68.0 % and +92.5 % under the cubic, are +12.9 % and +20.1 % under PCHIP and +3.1 % and
+10.8 % piecewise linear, while Shared stays at +10 to +12 % (Separated's and Combined's cubic
fits are not monotone over the overlap, Joint's and Shared's are; tests/test_metrics.py).

Appendix D.3 estimates the mutual information between the tasks' reconstructions from two
baselines: Joint's rate estimates H(Z1, Z2), Independent's R1 + R2 estimates H(Z1) + H(Z2), and
their difference at equal distortion estimates I(Z1; Z2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: The fits of ln rate against quality that ``bd_rate`` accepts; "cubic" is Bjontegaard's
#: (2001) and the paper's.
BD_METHODS = ("cubic", "pchip", "akima", "linear")


def _curve(name, rates, quality, minimum, axis="quality"):
    """Rates and quality (or distortion) of one curve as float arrays: 1-D, equal length, finite."""
    rates = np.asarray(rates, dtype=np.float64)
    quality = np.asarray(quality, dtype=np.float64)
    if rates.shape != quality.shape or rates.ndim != 1:
        raise ValueError(f"{name} rates and {axis} must be 1-D and of equal length")
    if len(rates) < minimum:
        raise ValueError(f"{name} curve needs at least {minimum} points; got {len(rates)}")
    if not np.all(np.isfinite(rates) & np.isfinite(quality)):
        raise ValueError(f"{name} rates and {axis} must be finite")
    return rates, quality


def _rd_curve(name, rates, quality, method):
    """One curve's quality and ln rate, checked for ``method``: 4 distinct quality values for the
    cubic (a least-squares fit: repeats are fine), 2 all distinct for an interpolation."""
    if method not in BD_METHODS:
        raise ValueError(f"method must be one of {BD_METHODS}; got {method!r}")
    cubic = method == "cubic"
    rates, quality = _curve(name, rates, quality, minimum=4 if cubic else 2)
    distinct = len(np.unique(quality))
    if cubic and distinct < 4:
        raise ValueError(
            f"{name} curve needs at least 4 distinct quality values for a cubic fit; got {distinct}"
        )
    if not cubic and distinct < len(quality):
        values, counts = np.unique(quality, return_counts=True)
        repeated = values[counts > 1]
        raise ValueError(
            f"{name} curve repeats the quality values {repeated.tolist()}: method={method!r} "
            "interpolates through the points and needs one rate per quality value (average "
            "the repeated points, or use method='cubic', a least-squares fit)"
        )
    if np.any(rates <= 0):
        raise ValueError(f"{name} rates must be > 0 (BD-rate fits log rate)")
    return quality, np.log(rates)


def _trend(quality, log_rates):
    """The least-squares slope of ln rate on quality: the direction a curve runs."""
    return np.polyfit(quality, log_rates, 1)[0]


def _integral(method, quality, log_rates, lo, hi):
    """The integral over [lo, hi] of the ``method`` fit of ln rate against quality (exact)."""
    if method == "cubic":
        primitive = np.polyint(np.polyfit(quality, log_rates, 3))
        return np.polyval(primitive, hi) - np.polyval(primitive, lo)
    # Imported here, not with the module: the cubic (and gwnlib.analysis.plots, which imports this
    # module) needs no scipy.
    from scipy.interpolate import Akima1DInterpolator, PchipInterpolator

    order = np.argsort(quality)
    quality, log_rates = quality[order], log_rates[order]
    if method == "pchip":
        return float(PchipInterpolator(quality, log_rates).integrate(lo, hi))
    if method == "akima" and len(quality) > 2:  # through 2 points, Akima's curve is the line
        return float(Akima1DInterpolator(quality, log_rates, method="akima").integrate(lo, hi))
    # Piecewise linear: the trapezoid rule on the points inside [lo, hi] and both ends is exact.
    grid = np.concatenate([[lo], quality[(quality > lo) & (quality < hi)], [hi]])
    values = np.interp(grid, quality, log_rates)
    return float(np.sum(np.diff(grid) * (values[1:] + values[:-1]) / 2))


def bd_rate(
    anchor_rates,
    anchor_quality,
    test_rates,
    test_quality,
    lower_is_better: bool = False,
    method: str = "cubic",
) -> float:
    """BD-rate of the test curve against the anchor curve, in percent (Bjontegaard 2001).

    ``method`` is the fit of ln rate against quality that is integrated over the overlap of the
    two quality ranges, each exactly:

    - ``"cubic"`` (default): Bjontegaard's least-squares cubic polynomial, the paper's (Figs.
      3b, 5) and its authors' choice. Needs at least 4 distinct quality values per curve.
    - ``"pchip"``: monotone piecewise cubic Hermite interpolation through the points (scipy's
      ``PchipInterpolator``), as in later BD-rate tools: it never overshoots the points, so a
      monotone curve stays monotone.
    - ``"akima"``: Akima's piecewise cubic interpolation (scipy's ``Akima1DInterpolator``), the
      other common replacement; smooth, but not shape-preserving.
    - ``"linear"``: the polyline through the points.

    The interpolations need at least 2 points per curve, at distinct quality values (a repeat
    is refused: average repeated points first). The choice matters: recomputed from the
    paper's Tables 2-3, Fig. 3b's BD-rates of Separated and Combined against Joint are +68.0 %
    and +92.5 % under the cubic but +12.9 % and +20.1 % under PCHIP (both cubic fits turn over
    inside the overlap; see ``cubic_monotone`` and ``bd_rates``).

    Rates must be positive; the two quality ranges must overlap. Points need not be sorted.
    ``lower_is_better`` says whether the quality axis is a distortion (RMSE: True) or a score
    (accuracy, mIoU: False). It does not change the value; it is checked against each curve's
    trend (the least-squares slope of ln rate on quality), since a rate-distortion curve spends
    more rate for better quality.
    """
    curves = []
    for name, rates, quality in (
        ("anchor", anchor_rates, anchor_quality),
        ("test", test_rates, test_quality),
    ):
        quality, log_rates = _rd_curve(name, rates, quality, method)
        slope = _trend(quality, log_rates)
        if lower_is_better and not slope < 0:
            raise ValueError(
                f"the {name} curve's rate grows with its quality axis, but lower_is_better=True "
                "says lower values are better: pass lower_is_better=False for a score (accuracy, "
                "mIoU), else the axis orientation is probably wrong"
            )
        if not lower_is_better and not slope > 0:
            raise ValueError(
                f"the {name} curve's rate falls as its quality axis grows, but "
                "lower_is_better=False says higher values are better: pass lower_is_better=True "
                "for a distortion (RMSE), else the axis orientation is probably wrong"
            )
        curves.append((quality, log_rates))
    (q_a, _), (q_t, _) = curves
    lo_a, hi_a, lo_t, hi_t = q_a.min(), q_a.max(), q_t.min(), q_t.max()
    lo, hi = max(lo_a, lo_t), min(hi_a, hi_t)
    if not hi > lo:
        raise ValueError(
            f"the quality ranges do not overlap ([{lo_a}, {hi_a}] vs [{lo_t}, {hi_t}])"
        )
    integral_a, integral_t = (_integral(method, q, y, lo, hi) for q, y in curves)
    mean_log_ratio = (integral_t - integral_a) / (hi - lo)
    return float((np.exp(mean_log_ratio) - 1) * 100)


def cubic_monotone(rates, quality, lo=None, hi=None) -> bool:
    """Whether the BD-rate's cubic fit of ln rate against quality runs one way over [lo, hi].

    The fit is ``bd_rate``'s default (Bjontegaard 2001): a least-squares cubic in quality of
    ln(rate), over at least 4 distinct quality values. It is monotone when its derivative keeps
    the sign of the curve's trend (the least-squares slope that ``bd_rate`` checks against
    ``lower_is_better``) everywhere on [lo, hi], default the curve's own quality range; for a
    BD-rate, pass the overlap of both curves (``bd_rates`` does). A fit that is not monotone
    there, such as those of Fig. 3b's Separated and Combined curves (paper Table 3) over their
    overlap with Joint, says more rate for better quality somewhere, and the cubic BD-rate
    integrates that swing: compare it with ``bd_rate(..., method="pchip")``.
    """
    quality, log_rates = _rd_curve("the", rates, quality, "cubic")
    lo = quality.min() if lo is None else float(lo)
    hi = quality.max() if hi is None else float(hi)
    if not hi >= lo:
        raise ValueError(f"lo must not exceed hi; got [{lo}, {hi}]")
    derivative = np.polyder(np.polyfit(quality, log_rates, 3))  # a quadratic
    vertex = np.roots(np.polyder(derivative))  # its extremum (none if the quadratic is a line)
    points = [lo, hi, *(v.real for v in vertex if lo < v.real < hi)]
    return bool(np.all(np.sign(_trend(quality, log_rates)) * np.polyval(derivative, points) >= 0))


def bd_rates(
    anchor_rates,
    anchor_quality,
    test_rates,
    test_quality,
    lower_is_better: bool = False,
    methods=("cubic", "pchip"),
) -> dict:
    """The BD-rate of the test curve against the anchor under each of ``methods``, with a flag.

    Returns ``{method: bd_rate(..., method=method) for method in methods}`` (percent; see
    ``bd_rate`` for the methods and checks) and, when ``"cubic"`` is among them,
    ``"cubic_monotone"``: whether both curves' cubic fits are monotone over the overlap of their
    quality ranges (``cubic_monotone``). A chapter can print it next to each BD-rate: where it
    is False, the paper's cubic BD-rate measures the fit more than the codecs (Fig. 3b's
    Separated vs Joint: +68.0 % cubic, +12.9 % PCHIP). One dict per pair of curves makes a
    DataFrame row.
    """
    if isinstance(methods, str) or not methods:
        raise ValueError(f"methods must be a non-empty sequence of {BD_METHODS}; got {methods!r}")
    result = {
        method: bd_rate(
            anchor_rates, anchor_quality, test_rates, test_quality, lower_is_better, method
        )
        for method in methods
    }
    if "cubic" in methods:
        anchor_quality, test_quality = np.asarray(anchor_quality), np.asarray(test_quality)
        lo = max(anchor_quality.min(), test_quality.min())
        hi = min(anchor_quality.max(), test_quality.max())
        result["cubic_monotone"] = cubic_monotone(
            anchor_rates, anchor_quality, lo, hi
        ) and cubic_monotone(test_rates, test_quality, lo, hi)
    return result


def _piecewise_linear(x, xs, ys):
    """The polyline through sorted (xs, ys) at x, continued past its ends along the end segments."""
    segment = np.clip(np.searchsorted(xs, x, side="right") - 1, 0, len(xs) - 2)
    slope = (ys[segment + 1] - ys[segment]) / (xs[segment + 1] - xs[segment])
    return ys[segment] + slope * (x - xs[segment])


def empirical_mutual_information(
    joint_rates,
    joint_distortions,
    independent_rates,
    independent_distortions,
    distortions=None,
) -> pd.DataFrame:
    """Appendix D.3's empirical I(Z1; Z2) = H~(Z1) + H~(Z2) - H~(Z1, Z2) at common distortions.

    ``joint_rates`` are the Joint codec's rates (its single channel: H~(Z1, Z2)),
    ``independent_rates`` the Independent codec's R1 + R2 (H~(Z1) + H~(Z2)), each against its
    distortion (e.g. D1 + D2). Each curve is read at ``distortions`` (default: the union of both
    curves' distortions) by linear interpolation between its points sorted by distortion and, as
    the paper does, extrapolated beyond them along its first or last segment; the ``extrapolated``
    column marks the rows where either curve was, and nothing is clipped (an extrapolated rate or
    mutual information can come out negative).

    Returns a DataFrame with columns ``distortion``, ``rate_joint``, ``rate_independent``,
    ``mutual_information`` (rate_independent - rate_joint) and ``extrapolated``.
    """
    columns = {}
    extrapolated = False
    curves = []
    for name, rates, distortion in (
        ("joint", joint_rates, joint_distortions),
        ("independent", independent_rates, independent_distortions),
    ):
        rates, distortion = _curve(name, rates, distortion, 2, axis="distortions")
        if len(np.unique(distortion)) != len(distortion):
            raise ValueError(f"{name} distortions must be distinct; got {distortion.tolist()}")
        order = np.argsort(distortion)
        curves.append((name, distortion[order], rates[order]))
    if distortions is None:
        grid = np.union1d(curves[0][1], curves[1][1])
    else:
        grid = np.asarray(distortions, dtype=np.float64)
        if grid.ndim != 1 or len(grid) == 0 or not np.all(np.isfinite(grid)):
            raise ValueError("distortions must be a non-empty 1-D sequence of finite values")
    for name, distortion, rates in curves:
        columns[f"rate_{name}"] = _piecewise_linear(grid, distortion, rates)
        extrapolated = extrapolated | (grid < distortion[0]) | (grid > distortion[-1])
    return pd.DataFrame(
        {
            "distortion": grid,
            **columns,
            "mutual_information": columns["rate_independent"] - columns["rate_joint"],
            "extrapolated": extrapolated,
        }
    )


def seed_spread(results, rate: str = "rate_transmit", quality=("d1", "d2"), by=("codec", "eta")):
    """How much a point's rate and quality move with the seed alone.

    ``results`` holds one row per run, several runs (seeds) of each point; ``by`` names the
    columns that make a point (default: codec and eta; the seed is what varies) and ``quality`` a
    column or a tuple of columns whose sum is the quality axis (D1 + D2 for the synthetic study).
    Returns one row per point: ``seeds`` (how many runs), and the ``mean``, ``std`` (sample
    standard deviation; NaN for one seed), ``min`` and ``max`` of ``rate`` and of ``quality``,
    as columns ``rate_mean``, ..., ``quality_max``.
    """
    keys = [by] if isinstance(by, str) else list(by)
    columns = [quality] if isinstance(quality, str) else list(quality)
    missing = [c for c in [*keys, rate, *columns] if c not in results]
    if missing:
        raise KeyError(f"results have no column {missing[0]!r}; they have {list(results.columns)}")
    frame = pd.DataFrame(
        {
            **{k: results[k].to_numpy() for k in keys},
            "rate": results[rate].to_numpy(dtype=float),
            "quality": results[columns].sum(axis=1).to_numpy(dtype=float),
        }
    )
    if frame.empty:
        raise ValueError("results hold no runs")
    stats = frame.groupby(keys, dropna=False).agg(["mean", "std", "min", "max"])
    stats.columns = [f"{name}_{stat}" for name, stat in stats.columns]
    stats.insert(0, "seeds", frame.groupby(keys, dropna=False).size())
    return stats.reset_index()
