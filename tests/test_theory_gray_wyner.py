"""The Gray-Wyner lower bounds of Fig. 1, the transmit/receive rates, and the region's shade."""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gwnlib.theory import binary_entropy as h  # noqa: E402
from gwnlib.theory.common_information import doubly_symmetric_binary_source, wyner_dsbs  # noqa: E402
from gwnlib.theory.gray_wyner import (  # noqa: E402
    GrayWynerBounds,
    lossless_bounds,
    receive_rate,
    transmit_rate,
)


def test_rates_of_sec_2_1():
    assert transmit_rate(1.0, 2.0, 3.0) == 6.0
    assert receive_rate(1.0, 2.0, 3.0) == 7.0
    r0 = np.array([0.0, 1.0])
    assert receive_rate(r0, 1.0, 1.0).tolist() == [2.0, 4.0]


def test_planes_cross_at_the_mutual_information():
    b = GrayWynerBounds(joint=1.5, marginal1=1.0, marginal2=1.0, wyner=0.8, gacs_korner=0.0)
    assert b.crossing == pytest.approx(0.5)
    assert b.pangloss(b.crossing) == pytest.approx(b.receive_optimal(b.crossing))
    # Left of the crossing the receive planes bind, right of it plane A does.
    assert b.private_lower_bound(0.2) == pytest.approx(2.0 - 0.4)
    assert b.private_lower_bound(0.9) == pytest.approx(1.5 - 0.9)
    # Beyond a marginal rate, that private rate is simply zero.
    lopsided = GrayWynerBounds(joint=2.0, marginal1=0.5, marginal2=1.8)
    assert lopsided.private_lower_bound(1.0) == pytest.approx(max(1.0, 0 + 0.8))
    assert b.c_point == pytest.approx((0.8, 0.7))
    assert b.k_point == pytest.approx((0.0, 2.0))
    grid = np.linspace(0, 1.5, 7)
    assert b.private_lower_bound(grid).shape == (7,)


def test_bounds_refuse_inconsistent_rates():
    with pytest.raises(ValueError, match="Eq. 42"):
        GrayWynerBounds(joint=2.5, marginal1=1.0, marginal2=1.0)
    with pytest.raises(ValueError, match="at least"):
        GrayWynerBounds(joint=0.5, marginal1=1.0, marginal2=0.2)
    with pytest.raises(ValueError, match="no wyner"):
        _ = GrayWynerBounds(joint=1.5, marginal1=1.0, marginal2=1.0).c_point


def test_lossless_bounds_of_sources_with_known_values():
    a = 0.1
    dsbs = lossless_bounds(doubly_symmetric_binary_source(a), wyner=wyner_dsbs(a))
    assert (dsbs.joint, dsbs.marginal1, dsbs.marginal2) == pytest.approx((1 + h(a), 1.0, 1.0))
    assert dsbs.crossing == pytest.approx(1 - h(a))  # I(X1; X2)
    assert (dsbs.gacs_korner, dsbs.wyner) == (0.0, wyner_dsbs(a))
    # Two copies of a fair bit: everything is common; C is optimised when not given.
    copies = lossless_bounds(np.diag([0.5, 0.5]), restarts=2, seed=0)
    assert (copies.joint, copies.crossing) == pytest.approx((1.0, 1.0))
    assert (copies.gacs_korner, copies.wyner) == pytest.approx((1.0, 1.0), abs=1e-9)
    # Independent: nothing is common.
    independent = lossless_bounds(np.outer([0.3, 0.7], [0.6, 0.4]), restarts=2, seed=0)
    assert independent.joint == pytest.approx(h(0.3) + h(0.4))
    assert (independent.gacs_korner, independent.crossing) == pytest.approx((0.0, 0.0), abs=1e-12)
    assert independent.wyner == pytest.approx(0.0, abs=1e-9)
    # Rows and columns are not swapped: H(X1) from the rows, H(X2) from the columns.
    lopsided = lossless_bounds(np.array([[0.5, 0.0], [0.25, 0.25]]), wyner=0.5)
    assert (lopsided.marginal1, lopsided.marginal2, lopsided.joint) == pytest.approx(
        (1.0, h(0.25), 1.5)
    )
    assert lopsided.gacs_korner == 0.0  # x1 = 1 links both columns: one component


def fill_lower_edge(ax, r0):
    """The lower edge of the region's shade (the first fill) at common rates ``r0``."""
    vertices = ax.collections[0].get_paths()[0].vertices
    x, y = vertices[:, 0], vertices[:, 1]
    bottom = y < y.max() - 1e-9  # fill_between's path runs along the bottom, then the top
    order = np.argsort(x[bottom])
    return np.interp(r0, x[bottom][order], y[bottom][order])


def test_region_shade_is_an_outer_bound_without_a_tradeoff_and_achievable_with_one():
    from gwnlib.analysis import plots

    bounds = GrayWynerBounds(joint=2.47, marginal1=2.0, marginal2=2.0, wyner=1.87, gacs_korner=1.0)
    # A boundary from K to C that lies above the planes in between (at R0 = 1.5: 1.1 > 1.0).
    curve = [
        SimpleNamespace(r0=r0, r1=r12 / 2, r2=r12 / 2)
        for r0, r12 in [(1.0, 2.0), (1.5, 1.1), (1.87, 0.6)]
    ]
    grid = np.array([0.5, 1.25, 1.5, 1.7, 2.2])
    outer = plots.gray_wyner_region(bounds)
    assert outer.collections[0].get_label().startswith("outer bound")
    assert fill_lower_edge(outer, grid) == pytest.approx(bounds.private_lower_bound(grid), abs=0.01)
    inner = plots.gray_wyner_region(bounds, tradeoff=curve)
    assert inner.collections[0].get_label().startswith("achievable")
    expected = [3.0, 1.55, 1.1, np.interp(1.7, [1.5, 1.87], [1.1, 0.6]), 2.47 - 2.2]
    assert fill_lower_edge(inner, grid) == pytest.approx(expected, abs=0.01)
    plt.close("all")
