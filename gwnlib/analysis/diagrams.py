"""Block diagrams drawn with matplotlib: the Gray-Wyner network (paper Sec. 2, Fig. 1's setting)
and the wiring of the learnable codecs (paper Fig. 2 and Fig. 8).

Each function draws onto a fresh figure (or the given axes) and returns the figure, so that a
chapter shows it with one call and a test can read its labels back. Boxes are blocks (encoders,
transforms, entropy models, decoders); arrows carry signals, labelled with the paper's symbols.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from gwnlib.model.codecs import CODECS

#: Box colours by role.
COLOURS = {
    "source": "#f2f2f2",
    "encoder": "#cfe2f3",
    "common": "#f9cb9c",
    "private": "#d9ead3",
    "entropy": "#fff2cc",
    "decoder": "#d9d2e9",
    "output": "#f2f2f2",
}


def _axes(ax, size):
    if ax is None:
        fig, ax = plt.subplots(figsize=size)
    else:
        fig = ax.figure
    ax.set_axis_off()
    return fig, ax


def _box(ax, x, y, text, role, width=1.6, height=0.7, fontsize=10):
    """A rounded box centred at (x, y); returns its (left, right, bottom, top) edges."""
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2),
            width,
            height,
            boxstyle="round,pad=0.05,rounding_size=0.12",
            facecolor=COLOURS[role],
            edgecolor="#444444",
            linewidth=1.0,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)
    return x - width / 2, x + width / 2, y - height / 2, y + height / 2


def _arrow(ax, start, end, label=None, offset=(0.0, 0.18), colour="#333333", fontsize=9):
    ax.add_patch(
        FancyArrowPatch(
            start, end, arrowstyle="-|>", mutation_scale=12, color=colour, linewidth=1.2
        )
    )
    if label:
        middle = ((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1])
        ax.text(*middle, label, ha="center", va="center", fontsize=fontsize)


def gray_wyner_network(ax=None):
    """The Gray-Wyner network: one encoder sees (X1, X2) and sends a common stream Y0 (rate R0)
    to both receivers and a private stream Yi (rate Ri) to receiver i, which rebuilds Xi within
    distortion Di. Transmit rate R_t = R0 + R1 + R2; receive rate R_r = 2 R0 + R1 + R2."""
    fig, ax = _axes(ax, (9, 4.2))
    _box(ax, 0.9, 2, "$(X_1, X_2)$", "source", width=1.3)
    _box(ax, 3.2, 2, "Encoder", "encoder", width=1.5, height=2.8)
    _box(ax, 7.2, 3.1, "Decoder 1", "decoder")
    _box(ax, 7.2, 0.9, "Decoder 2", "decoder")
    _box(ax, 9.6, 3.1, r"$\hat X_1$, within $D_1$", "output", width=1.9)
    _box(ax, 9.6, 0.9, r"$\hat X_2$, within $D_2$", "output", width=1.9)
    _arrow(ax, (1.55, 2), (2.45, 2))
    _arrow(ax, (3.95, 3.1), (6.4, 3.1), "$Y_1$: rate $R_1$ (private)")
    _arrow(ax, (3.95, 0.9), (6.4, 0.9), "$Y_2$: rate $R_2$ (private)", offset=(0.0, -0.2))
    _arrow(ax, (3.95, 2), (6.4, 2.85), None, colour="#b45f06")
    _arrow(ax, (3.95, 2), (6.4, 1.15), None, colour="#b45f06")
    ax.text(5.0, 2.0, "$Y_0$: rate $R_0$\n(common, to both)", ha="center", va="center", fontsize=9,
            color="#b45f06")  # fmt: skip
    _arrow(ax, (8.0, 3.1), (8.65, 3.1))
    _arrow(ax, (8.0, 0.9), (8.65, 0.9))
    ax.text(5.4, -0.25, r"transmit $R_t = R_0 + R_1 + R_2$,   receive $R_r = 2R_0 + R_1 + R_2$",
            ha="center", va="center", fontsize=10)  # fmt: skip
    ax.set_xlim(0, 10.7)
    ax.set_ylim(-0.55, 3.7)
    return fig


def codec_wiring(codec: str = "shared", ax=None):
    """The wiring of one of :data:`~gwnlib.model.CODECS`, as in the paper's Fig. 2 (Shared) and
    Fig. 8 (the baselines): analysis transforms, the Eq. 14 merge of the two common candidates
    (Shared), the entropy models (Y0 autoregressive; Y1 and Y2 conditioned on Y0 in the
    three-channel codecs) and the two decoders with the channels each reads."""
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {', '.join(CODECS)}; got {codec!r}")
    fig, ax = _axes(ax, (10, 4.6))
    _box(ax, 0.7, 2, "$x$", "source", width=0.8)
    decoder_inputs = {1: [], 2: []}
    if codec == "shared":
        for i, y in ((1, 3.2), (2, 0.8)):
            _box(ax, 2.4, y, f"analysis $f_{i}$", "encoder")
            _arrow(ax, (1.1, 2), (1.6, y))
        _box(
            ax,
            4.7,
            2,
            "merge (Eq. 14)\n+ alignment (Eq. 15)",
            "common",
            width=2.5,
            height=0.9,
            fontsize=9,
        )
        _arrow(ax, (3.2, 3.0), (3.55, 2.45), "$\\bar y_0^{(1)}$", offset=(0.45, 0.12))
        _arrow(ax, (3.2, 1.0), (3.55, 1.55), "$\\bar y_0^{(2)}$", offset=(0.45, -0.12))
        private = {1: (3.2, 3.4), 2: (3.2, 0.6)}
        common_from = (5.95, 2)
    elif codec == "separated":
        for y, text in ((3.4, "analysis $f_1$"), (2, "analysis $f_0$"), (0.6, "analysis $f_2$")):
            _box(ax, 2.4, y, text, "encoder")
            _arrow(ax, (1.1, 2), (1.6, y))
        private = {1: (3.2, 3.4), 2: (3.2, 0.6)}
        common_from = (3.2, 2)
    elif codec in ("combined", "joint"):
        text = "analysis $f$\n(split 3 ways)" if codec == "combined" else "analysis $f$"
        _box(ax, 2.4, 2, text, "encoder", height=1.2)
        _arrow(ax, (1.1, 2), (1.6, 2))
        private = {1: (3.2, 2.4), 2: (3.2, 1.6)} if codec == "combined" else {}
        common_from = (3.2, 2)
    else:  # independent
        for i, y in ((1, 3.2), (2, 0.8)):
            _box(ax, 2.4, y, f"analysis $f_{i}$", "encoder")
            _arrow(ax, (1.1, 2), (1.6, y))
        private = {1: (3.2, 3.2), 2: (3.2, 0.8)}
        common_from = None
    three = codec in ("shared", "separated", "combined")
    if common_from is not None:
        model = "entropy model $Y_0$\n(autoregressive)"
        _box(ax, 7.5, 2, model, "entropy", width=2.0, height=0.8)
        _arrow(ax, common_from, (6.5, 2), "$Y_0$")
        decoder_inputs[1].append("Y_0")
        decoder_inputs[2].append("Y_0")
    for i, start in private.items():
        y = 3.4 if i == 1 else 0.6
        given = "\ngiven $Y_0$" if three else ""
        _box(ax, 7.5, y, f"entropy model $Y_{i}${given}", "entropy", width=2.0, height=0.8)
        _arrow(ax, start, (6.5, y), f"$Y_{i}$", offset=(0.0, 0.18 if i == 1 else -0.2))
        if three:
            _arrow(
                ax, (7.5, 2.4 if i == 1 else 1.6), (7.5, 3.0 if i == 1 else 1.0), colour="#b45f06"
            )
        decoder_inputs[i].append(f"Y_{i}")
    for i, y in ((1, 3.4), (2, 0.6)):
        reads = ", ".join(f"${s}$" for s in decoder_inputs[i])
        _box(ax, 10.3, y, f"decoder {i}\nreads {reads}", "decoder", width=1.9, height=0.8)
        if i in private:  # the Joint codec's decoders are fed from Y0's model (below)
            _arrow(ax, (8.5, y), (9.35, y))
        _box(ax, 12.3, y, rf"$\hat z_{i}$ (task {i})", "output", width=1.3, height=0.6)
        _arrow(ax, (11.25, y), (11.65, y))
    if codec == "joint":
        for y in (3.4, 0.6):
            _arrow(ax, (8.5, 2), (9.35, y), colour="#b45f06")
    ax.text(6.6, 4.15, f"{codec.capitalize()} codec", ha="center", va="center", fontsize=12,
            fontweight="bold")  # fmt: skip
    ax.set_xlim(0.1, 13.1)
    ax.set_ylim(0.0, 4.4)
    return fig


def labels(fig) -> list[str]:
    """Every text drawn on ``fig``'s axes, in drawing order (what a test or a reader checks)."""
    return [text.get_text() for ax in fig.axes for text in ax.texts]
