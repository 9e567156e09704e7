"""Interactive explorers for the chapters (ipywidgets). Each one has a static twin in
:mod:`gwnlib.analysis.plots` that the built book shows, since a static page runs no kernel."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt

from gwnlib.analysis import plots
from gwnlib.theory.gray_wyner import receive_rate, transmit_rate


def beta_explorer(bounds, curve, title: str | None = None) -> widgets.VBox:
    """A slider over beta in [1, 2] that shows which trade-off point Eq. 12 selects (chapter
    "Gray-Wyner networks and lossy common information").

    ``curve`` is a computed Gray-Wyner boundary (points with ``r0``, ``r1``, ``r2``); the static
    twin is :func:`gwnlib.analysis.plots.beta_choices`.
    """
    slider = widgets.FloatSlider(
        value=1.5, min=1.0, max=2.0, step=0.01, description="beta", continuous_update=False
    )
    out = widgets.Output()

    def draw(beta: float) -> None:
        point = plots.beta_selection(curve, beta)
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(5.2, 4.2))
            plots.beta_choices(bounds, curve, [beta], ax=ax, title=title)
            plt.show()
            rt = transmit_rate(point.r0, point.r1, point.r2)
            rr = receive_rate(point.r0, point.r1, point.r2)
            best_receive = bounds.marginal1 + bounds.marginal2
            print(f"R0 = {point.r0:.3f}, R_t = {rt:.3f} (bound {bounds.joint:.3f}), "
                  f"R_r = {rr:.3f} (bound {best_receive:.3f}) bits")  # fmt: skip

    slider.observe(lambda change: draw(change["new"]), names="value")
    draw(slider.value)
    return widgets.VBox([slider, out])
