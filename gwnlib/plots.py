"""The book's figure types. Each function draws on a given matplotlib ``Axes`` (or a new one) and
returns it, so chapters can compose figures and caption them with the preset and hardware."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def gray_wyner_region(bounds, ax=None, tradeoff=None, title: str | None = None):
    """Fig. 1 of the paper, projected on (R0, R1 + R2), from computed values (chapter 1).

    Shades the rates that the planes allow, draws plane A (slope -1) and planes B and C together
    (slope -2), and marks the C and K points when ``bounds`` knows them. ``tradeoff`` is an optional
    sequence of points with ``r0``, ``r1``, ``r2`` (e.g. from
    :func:`~gwnlib.theory.common_information.gray_wyner_curve`), drawn as the computed boundary.
    """
    ax = ax or plt.subplots(figsize=(5.2, 4.2))[1]
    top = bounds.joint
    r0 = np.linspace(0, top, 400)
    lower = bounds.private_lower_bound(r0)
    ymax = bounds.marginal1 + bounds.marginal2
    ax.fill_between(r0, lower, ymax * 1.05, color="tab:blue", alpha=0.08, lw=0)
    ax.plot(r0, np.clip(bounds.pangloss(r0), 0, None), "--", color="tab:blue",
            label=r"A: $R_0+R_1+R_2 = R_{X_1,X_2}$")  # fmt: skip
    ax.plot(r0, np.clip(bounds.receive_optimal(r0), 0, None), ":", color="tab:orange",
            label=r"B, C: $R_0+R_i = R_{X_i}$")  # fmt: skip
    if tradeoff is not None:
        pts = np.array([(p.r0, p.r1 + p.r2) for p in tradeoff])
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


def beta_selection(curve, beta: float):
    """The point of ``curve`` that minimises beta * R0 + R1 + R2 (the paper's Eq. 12 rates)."""
    objective = [beta * p.r0 + p.r1 + p.r2 for p in curve]
    return curve[int(np.argmin(objective))]


def beta_choices(bounds, curve, betas, ax=None, title: str | None = None):
    """Which point of the transmit-receive trade-off each beta selects (chapter 1, Eq. 12).

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
