"""Figure functions and the beta explorer: they draw what they claim, headless."""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from gwnlib import plots  # noqa: E402
from gwnlib.theory.gray_wyner import GrayWynerBounds  # noqa: E402
from gwnlib.widgets import beta_explorer  # noqa: E402

BOUNDS = GrayWynerBounds(joint=2.47, marginal1=2.0, marginal2=2.0, wyner=1.87, gacs_korner=1.0)
# A convex boundary from K = 1 (receive-optimal) to C = 1.87 (transmit-optimal), with segment
# slopes -1.78, -1.66, -1.34, -1.2: beta picks the vertex where the slope crosses -beta.
CURVE = [
    SimpleNamespace(r0=r0, r1=r12 / 2, r2=r12 / 2)
    for r0, r12 in [(1.0, 2.0), (1.23, 1.59), (1.67, 0.86), (1.81, 0.672), (1.87, 0.60)]
]


@pytest.mark.parametrize(
    ("beta", "r0"), [(1.001, 1.87), (1.3, 1.81), (1.6, 1.67), (1.7, 1.23), (1.8, 1.0), (1.999, 1.0)]
)
def test_beta_selects_the_touching_point(beta, r0):
    assert plots.beta_selection(CURVE, beta).r0 == r0


def test_region_figure_marks_c_k_and_the_planes():
    ax = plots.gray_wyner_region(BOUNDS, tradeoff=CURVE, title="t")
    labels = [line.get_label() for line in ax.get_lines()]
    assert any(label.startswith("A:") for label in labels)
    assert any(label.startswith("B, C:") for label in labels)
    assert "K = 1.000" in labels and "C = 1.870" in labels and "computed boundary" in labels
    assert ax.get_xlabel().startswith("common rate") and ax.get_title() == "t"
    plt.close("all")


def test_beta_choices_draws_one_marker_per_beta():
    ax = plots.beta_choices(BOUNDS, CURVE, [1.001, 1.5, 1.999])
    labels = [line.get_label() for line in ax.get_lines() if "beta" in line.get_label()]
    assert len(labels) == 3 and "R_0$ = 1.87" in labels[0] and "R_0$ = 1.00" in labels[2]
    plt.close("all")


def test_beta_explorer_redraws_on_the_slider(monkeypatch):
    monkeypatch.setattr(plt, "show", lambda: None)
    box = beta_explorer(BOUNDS, CURVE)
    slider, out = box.children
    assert (slider.min, slider.max, slider.value) == (1.0, 2.0, 1.5)
    slider.value = 1.95  # triggers a redraw through the observer
    assert slider.value == 1.95 and out is box.children[1]
    plt.close("all")
