"""Metrics for comparing codecs: the Bjontegaard delta rate (BD-rate) and the empirical mutual
information between two tasks.

The paper compares rate-distortion curves by BD-rate (Bjontegaard 2001; paper Fig. 3-5, appendix
D): fit ln(rate) as a cubic polynomial of the quality axis for each curve, integrate both fits
over the range of quality where the curves overlap, and report exp(mean difference) - 1 in
percent. Positive means the test codec needs more rate than the anchor for the same quality.
The quality axis here is whatever the experiment plots (for the synthetic study, RMSE1 + RMSE2,
where lower is better; the sign of the axis does not change the result, but ``lower_is_better``
says which way a rate-distortion curve must run, to catch a swapped axis).

Appendix D.3 estimates the mutual information between the tasks' reconstructions from two
baselines: Joint's rate estimates H(Z1, Z2), Independent's R1 + R2 estimates H(Z1) + H(Z2), and
their difference at equal distortion estimates I(Z1; Z2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


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


def bd_rate(
    anchor_rates, anchor_quality, test_rates, test_quality, lower_is_better: bool = False
) -> float:
    """BD-rate of the test curve against the anchor curve, in percent (Bjontegaard 2001).

    Each curve needs at least 4 points with positive rates (a cubic fit); the two quality ranges
    must overlap. Points need not be sorted. ``lower_is_better`` says whether the quality axis is
    a distortion (RMSE: True) or a score (accuracy, mIoU: False). It does not change the value; it
    is checked against each curve's trend (the least-squares slope of ln rate on quality), since
    a rate-distortion curve spends more rate for better quality.
    """
    curves = []
    for name, rates, quality in (
        ("anchor", anchor_rates, anchor_quality),
        ("test", test_rates, test_quality),
    ):
        rates, quality = _curve(name, rates, quality, minimum=4)
        if len(np.unique(quality)) < 4:
            raise ValueError(
                f"{name} curve needs at least 4 distinct quality values for a cubic fit; got "
                f"{len(np.unique(quality))}"
            )
        if np.any(rates <= 0):
            raise ValueError(f"{name} rates must be > 0 (BD-rate fits log rate)")
        slope = np.polyfit(quality, np.log(rates), 1)[0]
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
        curves.append((np.polyfit(quality, np.log(rates), 3), quality.min(), quality.max()))
    (fit_a, lo_a, hi_a), (fit_t, lo_t, hi_t) = curves
    lo, hi = max(lo_a, lo_t), min(hi_a, hi_t)
    if not hi > lo:
        raise ValueError(
            f"the quality ranges do not overlap ([{lo_a}, {hi_a}] vs [{lo_t}, {hi_t}])"
        )

    def integral(fit):
        primitive = np.polyint(fit)
        return np.polyval(primitive, hi) - np.polyval(primitive, lo)

    mean_log_ratio = (integral(fit_t) - integral(fit_a)) / (hi - lo)
    return float((np.exp(mean_log_ratio) - 1) * 100)


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
