"""The Gray-Wyner lower bounds of Fig. 1 and the transmit/receive rates."""

import numpy as np
import pytest

from gwnlib.theory.gray_wyner import GrayWynerBounds, receive_rate, transmit_rate


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
