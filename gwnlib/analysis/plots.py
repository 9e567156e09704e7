"""The book's figure types. Each function draws on a given matplotlib ``Axes`` (or a new one) and
returns it, so chapters can compose figures and caption them with the preset and hardware."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from gwnlib.analysis.metrics import seed_spread


def gray_wyner_region(bounds, ax=None, tradeoff=None, title: str | None = None):
    """Fig. 1 of the paper, projected on (R0, R1 + R2), from computed values (chapter "Gray-Wyner
    networks and lossy common information").

    Draws plane A (slope -1) and planes B and C together (slope -2), and marks the C and K points
    when ``bounds`` knows them. ``tradeoff`` is an optional sequence of points with ``r0``, ``r1``,
    ``r2`` (e.g. from :func:`~gwnlib.theory.common_information.gray_wyner_curve`), drawn as the
    computed boundary.

    The shade says what is known about the region. Without ``tradeoff`` it covers everything above
    the three planes, labelled as what it is: an outer bound (the region lies inside it, but
    between K and C its boundary can sit above the planes). With ``tradeoff`` it covers only what
    is achievable: the rates above the lower convex envelope of the computed boundary, the K and C
    points, (0, R_{X1} + R_{X2}) and (R_{X1,X2}, 0) (the region is convex, so time sharing
    achieves the segments between achievable points).
    """
    ax = ax or plt.subplots(figsize=(5.2, 4.2))[1]
    top = bounds.joint
    r0 = np.linspace(0, top, 400)
    ymax = bounds.marginal1 + bounds.marginal2
    pts = None
    if tradeoff is None:
        lower = bounds.private_lower_bound(r0)
        shade = "outer bound: above planes A, B, C"
    else:
        pts = np.array(sorted((p.r0, p.r1 + p.r2) for p in tradeoff))
        corners = [(0.0, ymax), (top, 0.0)]
        corners += [bounds.k_point] if bounds.gacs_korner is not None else []
        corners += [bounds.c_point] if bounds.wyner is not None else []
        hull = _lower_hull(np.vstack([pts, corners]))
        lower = np.interp(r0, hull[:, 0], hull[:, 1])
        shade = "achievable: above the computed boundary"
    ax.fill_between(r0, lower, ymax * 1.05, color="tab:blue", alpha=0.12, lw=0, label=shade)
    ax.plot(r0, np.clip(bounds.pangloss(r0), 0, None), "--", color="tab:blue",
            label=r"A: $R_0+R_1+R_2 = R_{X_1,X_2}$")  # fmt: skip
    ax.plot(r0, np.clip(bounds.receive_optimal(r0), 0, None), ":", color="tab:orange",
            label=r"B, C: $R_0+R_i = R_{X_i}$")  # fmt: skip
    if pts is not None:
        ax.plot(pts[:, 0], pts[:, 1], "-", color="black", lw=1.2, label="computed boundary")
    if bounds.gacs_korner is not None:
        label = f"K = {bounds.gacs_korner:.3f}"
        ax.plot(*bounds.k_point, "^", ms=9, color="tab:orange", label=label)
    ax.plot(bounds.crossing, bounds.joint - bounds.crossing, "o", ms=6, mfc="white",
            color="grey", label=f"I = {bounds.crossing:.3f}")  # fmt: skip
    if bounds.wyner is not None:
        ax.plot(*bounds.c_point, "s", ms=8, color="tab:blue", label=f"C = {bounds.wyner:.3f}")
    ax.set(xlim=(0, top), ylim=(0, ymax * 1.05), xlabel=r"common rate $R_0$ (bits)",
           ylabel=r"private rates $R_1 + R_2$ (bits)")  # fmt: skip
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    return ax


def _lower_hull(points: np.ndarray) -> np.ndarray:
    """The vertices of the lower convex envelope of 2-D ``points``, in increasing x."""
    hull: list[np.ndarray] = []
    for point in points[np.lexsort((points[:, 1], points[:, 0]))]:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (point[1] - y1) - (y2 - y1) * (point[0] - x1) > 0:
                break  # a left turn: hull[-1] stays on the lower envelope
            hull.pop()
        if hull and point[0] == hull[-1][0]:
            continue  # same x, higher y (sorted): not on the lower envelope
        hull.append(point)
    return np.array(hull)


def beta_selection(curve, beta: float):
    """The point of ``curve`` that minimises beta * R0 + R1 + R2 (the paper's Eq. 12 rates)."""
    objective = [beta * p.r0 + p.r1 + p.r2 for p in curve]
    return curve[int(np.argmin(objective))]


def beta_choices(bounds, curve, betas, ax=None, title: str | None = None):
    """Which point of the transmit-receive trade-off each beta selects (chapter "Gray-Wyner networks
    and lossy common information", Eq. 12).

    Draws the region and its computed boundary, and for each beta the selected point with the line
    beta * R0 + (R1 + R2) = constant that touches the boundary there.
    """
    ax = gray_wyner_region(bounds, ax=ax, tradeoff=curve, title=title)
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(betas)))
    r0 = np.linspace(0, bounds.joint, 50)
    for beta, color in zip(betas, colors, strict=True):
        point = beta_selection(curve, beta)
        level = beta * point.r0 + point.r1 + point.r2
        ax.plot(r0, level - beta * r0, "-", color=color, lw=0.6, alpha=0.6)
        ax.plot(point.r0, point.r1 + point.r2, "o", color=color, ms=7,
                label=rf"$\beta$ = {beta:g}: $R_0$ = {point.r0:.2f}")  # fmt: skip
    ax.legend(fontsize=7, loc="upper right")
    return ax


_AXIS_NAMES = {
    "rate_transmit": r"transmit rate $R_t$",
    "rate_receive": r"receive rate $R_r$",
    "r0": r"common rate $R_0$",
    "r1": r"private rate $R_1$",
    "r2": r"private rate $R_2$",
    "d1": r"$D_1$",
    "d2": r"$D_2$",
}


def _require(frame, columns, what):
    """KeyError naming the first of ``columns`` missing from ``frame``."""
    for column in columns:
        if column not in frame:
            raise KeyError(f"{what} has no column {column!r}; it has {list(frame.columns)}")


def _quality(frame, quality):
    """The quality axis: one column, or the sum of a tuple of columns."""
    columns = [quality] if isinstance(quality, str) else list(quality)
    return frame[columns].sum(axis=1).to_numpy(dtype=float)


def _same(a, b):
    """Group keys equal, NaN matching NaN (the paper's beta for Joint and Independent)."""
    return all(
        x == y or (isinstance(x, float) and isinstance(y, float) and np.isnan(x) and np.isnan(y))
        for x, y in zip(a, b, strict=True)
    )


def _label(keys, values, label_format):
    if label_format is not None:
        return label_format.format(**dict(zip(keys, values, strict=True)))
    pairs = zip(keys, values, strict=True)
    return ", ".join(v if isinstance(v, str) else f"{k} = {v:g}" for k, v in pairs)


def _label_axes(ax, rate, quality, rate_unit, quality_unit):
    """Name a rate-quality plot's axes: the quality columns' sum and the rate, with units."""
    names = [quality] if isinstance(quality, str) else quality
    xlabel = " + ".join(_AXIS_NAMES.get(name, name) for name in names)
    ax.set_xlabel(f"{xlabel} ({quality_unit})" if quality_unit else xlabel)
    ax.set_ylabel(f"{_AXIS_NAMES.get(rate, rate)} ({rate_unit})")


def rate_distortion(
    results,
    rate: str = "rate_transmit",
    quality=("d1", "d2"),
    by="codec",
    ax=None,
    paper=None,
    label_format: str | None = None,
    rate_unit: str = "bits per pixel",
    quality_unit: str | None = "RMSE",
):
    """Rate against quality, one line per group of runs (the paper's Figs. 3-5 and 9).

    ``results`` has one row per run (columns as in :func:`gwnlib.analysis.paper.results`);
    ``quality`` is a column or a tuple of columns whose sum is the x axis (Fig. 3 plots D1 + D2);
    ``by`` is a column or a list of columns (e.g. ``["codec", "beta"]``) and ``label_format`` an
    optional format string over them (``"{codec}, beta = {beta:g}"``). Each group's points are
    joined in order of quality. ``paper`` (a :func:`gwnlib.analysis.paper.results` table) adds the
    paper's points of the same groups as hollow markers in the group's colour, labelled "(paper)".
    """
    ax = ax or plt.subplots(figsize=(5.2, 4.2))[1]
    keys = [by] if isinstance(by, str) else list(by)
    columns = [rate, *([quality] if isinstance(quality, str) else quality)]
    _require(results, keys + columns, "results")
    paper_groups = []
    if paper is not None:
        _require(paper, keys + columns, "paper")
        paper_groups = list(paper.groupby(keys, dropna=False))

    def sorted_points(frame):
        x, y = _quality(frame, quality), frame[rate].to_numpy(dtype=float)
        order = np.argsort(x, kind="stable")
        return x[order], y[order]

    for values, group in results.groupby(keys, dropna=False):
        label = _label(keys, values, label_format)
        (line,) = ax.plot(*sorted_points(group), "o-", ms=4, label=label)
        for paper_values, paper_group in paper_groups:
            if _same(values, paper_values):
                ax.plot(*sorted_points(paper_group), "o", ms=6, mfc="none",
                        color=line.get_color(), label=f"{label} (paper)")  # fmt: skip
    _label_axes(ax, rate, quality, rate_unit, quality_unit)
    ax.legend(fontsize=7)
    return ax


def common_rate(
    results,
    codec: str = "shared",
    quality=("d1", "d2"),
    ax=None,
    theory=None,
    empirical=None,
    paper=None,
    rate_unit: str = "bits per pixel",
    quality_unit: str | None = "RMSE",
):
    """The common channel's rate R0 against quality, one line per beta (Fig. 3a, Fig. 9).

    Draws ``codec``'s runs with :func:`rate_distortion` (and ``paper``'s points of the same beta,
    hollow), then the mutual information between the tasks that R0 is compared with: ``theory``, a
    pair of arrays (distortion, I(Z1; Z2)), and ``empirical``, the table returned by
    :func:`gwnlib.analysis.metrics.empirical_mutual_information` (appendix D.3). beta = 1 should put
    R0 above the empirical mutual information and beta = 2 below it (section 4.1).
    """
    _require(results, ["codec"], "results")
    if codec not in set(results.codec):
        raise ValueError(
            f"codec {codec!r} has no runs in results; it has {sorted(set(results.codec))}"
        )
    if paper is not None:
        _require(paper, ["codec"], "paper")
        paper = paper[paper.codec == codec]
    ax = rate_distortion(results[results.codec == codec], rate="r0", quality=quality, by="beta",
                         ax=ax, paper=paper, label_format=f"{codec}, " + r"$\beta$ = {beta:g}",
                         rate_unit=rate_unit, quality_unit=quality_unit)  # fmt: skip
    if theory is not None:
        distortion, information = (np.asarray(a, dtype=float) for a in theory)
        if distortion.shape != information.shape:
            raise ValueError("theory must be a pair of equal-length arrays (distortion, MI)")
        order = np.argsort(distortion)
        ax.plot(distortion[order], information[order], "k-", lw=1,
                label=r"$I(\hat Z_1; \hat Z_2)$, theory")  # fmt: skip
    if empirical is not None:
        _require(empirical, ["distortion", "mutual_information"], "empirical")
        ax.plot(empirical.distortion, empirical.mutual_information, "k--", lw=1,
                label=r"$\hat I(\hat Z_1; \hat Z_2)$, empirical")  # fmt: skip
    ax.legend(fontsize=7)
    return ax


def throughput(rows, ax=None, baseline: str = "authors", goal: float | None = 3.0,
               title: str | None = None):  # fmt: skip
    """Training throughput of each codec under each execution variant: one group of bars per
    variant, one bar per codec (the rows of :func:`gwnlib.training.bench.training_suite`).

    Where ``rows`` hold the ``baseline`` variant of a codec, its bars are speed-ups over it, with
    a target of ``goal`` times the baseline drawn dashed (a fused row's samples/s count all its
    points, so its bar compares per-point throughput); codecs without that row are left out and
    named in the legend. Without any baseline row the bars are samples/s. Failed and skipped
    cases have no bar; rows with no measured case at all are a ValueError.
    """
    from gwnlib.training.bench import VARIANTS
    from gwnlib.training.bench_report import speedups

    measured = [r for r in rows if "samples_per_s" in r]
    if not measured:
        raise ValueError("rows hold no measured case (every case failed or was skipped)")
    ratio = speedups(measured, baseline)
    relative = bool(ratio)
    codecs = list(dict.fromkeys(r["codec"] for r in measured))
    shown = [c for c in codecs if not relative or (c, baseline) in ratio]
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in measured)]
    variants += sorted({r["variant"] for r in measured} - set(variants))
    ax = ax or plt.subplots(figsize=(1.1 * len(variants) + 2, 3.6))[1]
    width = 0.8 / len(shown)
    for k, codec in enumerate(shown):
        x, heights = [], []
        for row in measured:
            if row["codec"] == codec:
                x.append(variants.index(row["variant"]) + (k - (len(shown) - 1) / 2) * width)
                heights.append(ratio[(codec, row["variant"])] if relative else row["samples_per_s"])
        ax.bar(x, heights, width=width, label=codec, color=f"C{k}")
    points = {r["variant"]: r.get("points", 1) for r in measured}
    names = [v + (f"\nx{points[v]}" if points[v] > 1 else "") for v in variants]
    ax.set_xticks(range(len(variants)), names, fontsize=8)
    if relative:
        ax.axhline(1, color="grey", lw=0.8)
        if goal is not None:
            ax.axhline(goal, color="black", ls="--", lw=0.8, label=f"goal: {goal:g}x {baseline}")
        ax.set_ylabel(f"training samples/s over '{baseline}'")
        left_out = [c for c in codecs if c not in shown]
        if left_out:
            ax.plot([], [], " ", label=f"no '{baseline}' row: {', '.join(left_out)}")
    else:
        ax.set_ylabel("training samples/s")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return ax


def seed_band(
    results,
    rate: str = "rate_transmit",
    quality=("d1", "d2"),
    by="codec",
    point="eta",
    ax=None,
    rate_unit: str = "bits per pixel",
    quality_unit: str | None = "RMSE",
):
    """Each group's curve over seeds: the mean of every point (line and markers), a shaded band from
    the lowest to the highest rate any seed reached at that point, and horizontal bars from the
    lowest to the highest quality. ``results`` holds several runs (seeds) per point; a point is a
    value of ``point`` within a group of ``by`` (see :func:`gwnlib.analysis.metrics.seed_spread`,
    whose table this returns along with the axes)."""
    ax = ax or plt.subplots(figsize=(5.2, 4.2))[1]
    keys = [by] if isinstance(by, str) else list(by)
    spread = seed_spread(results, rate=rate, quality=quality, by=[*keys, point])
    for values, group in spread.groupby(keys, dropna=False):
        group = group.sort_values("quality_mean")
        x = group.quality_mean.to_numpy()
        label = _label(keys, values if isinstance(values, tuple) else (values,), None)
        seeds = sorted(set(group.seeds))
        label += f" ({'/'.join(map(str, seeds))} seeds per point)"
        (line,) = ax.plot(x, group.rate_mean, "o-", ms=4, label=label)
        ax.fill_between(x, group.rate_min, group.rate_max, color=line.get_color(), alpha=0.2, lw=0)
        ax.errorbar(x, group.rate_mean,
                    xerr=[x - group.quality_min.to_numpy(), group.quality_max.to_numpy() - x],
                    fmt="none", ecolor=line.get_color(), elinewidth=0.8, capsize=2)  # fmt: skip
    _label_axes(ax, rate, quality, rate_unit, quality_unit)
    ax.legend(fontsize=7)
    return ax, spread


def stream_bars(rows, streams, ax=None, unit: str = "bits per image"):
    """Stacked bars of the bits each stream Y_S carries (chapter "Beyond two tasks"): ``rows``
    maps a bar's label to {S: bits} (S a tuple of tasks; absent streams carry 0), ``streams``
    fixes the stacking order and the colours (one per stream, the same in every bar)."""
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    labels = list(rows)
    bottom = np.zeros(len(labels))
    colours = plt.get_cmap("tab10")
    for k, s in enumerate(streams):
        heights = np.array([float(rows[label].get(tuple(s), 0.0)) for label in labels])
        name = "Y_{" + "".join(map(str, s)) + "}"
        ax.bar(labels, heights, bottom=bottom, color=colours(k % 10), label=f"${name}$")
        bottom += heights
    ax.set_ylabel(unit)
    ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    ax.legend(fontsize=7, ncol=2)
    return ax
