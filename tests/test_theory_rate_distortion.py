"""Blahut-Arimoto against closed forms: binary, uniform M-ary, Gaussian, conditional, joint."""

import numpy as np
import pytest

from gwnlib.theory import binary_entropy as h
from gwnlib.theory.rate_distortion import (
    binary_rate_distortion,
    blahut_arimoto,
    conditional_rate_distortion,
    dsbs_critical_distortion,
    dsbs_joint_rate_distortion,
    hamming_distortion,
    joint_rate_distortion,
    joint_rate_distortion_at,
    rate_distortion,
    rate_distortion_curve,
    squared_error_distortion,
    uniform_rate_distortion,
)


def dsbs(a):
    return np.array([[(1 - a) / 2, a / 2], [a / 2, (1 - a) / 2]])


@pytest.mark.parametrize("p", [0.5, 0.3, 0.1])
def test_binary_source_matches_h_p_minus_h_d(p):
    points = rate_distortion_curve([1 - p, p], hamming_distortion(2), [0.5, 1, 2, 4, 8])
    for point in points:
        assert point.converged
        assert point.rate == pytest.approx(binary_rate_distortion(p, point.distortion), abs=1e-9)
    rates = [pt.rate for pt in points]
    assert rates == sorted(rates)  # steeper slope, lower distortion, higher rate


@pytest.mark.parametrize("m", [3, 4, 8])
@pytest.mark.parametrize("target", [0.05, 0.2, 0.4])
def test_uniform_m_ary_source_at_a_target_distortion(m, target):
    point = rate_distortion(np.ones(m) / m, hamming_distortion(m), target)
    assert point.distortion == pytest.approx(target, abs=1e-8)
    assert point.rate == pytest.approx(uniform_rate_distortion(m, target), abs=1e-7)


def test_zero_rate_end_and_d_max():
    p = np.array([0.7, 0.2, 0.1])
    point = blahut_arimoto(p, hamming_distortion(3), 0.0)
    assert point.rate == pytest.approx(0.0, abs=1e-12)
    assert point.distortion == pytest.approx(0.3)  # always answer the most likely symbol
    assert uniform_rate_distortion(4, 0.9) == 0.0
    assert binary_rate_distortion(0.3, 0.35) == 0.0


def test_finely_discretised_gaussian_matches_half_log():
    # N(0, 1) on a grid of step 0.1; reproductions on the same grid. At these distortions the grid
    # is fine enough that R(D) = 1/2 log2(1 / D) to about 1e-3 bits.
    x = np.arange(-6, 6.0001, 0.1)
    p = np.exp(-(x**2) / 2)
    p /= p.sum()
    for slope in (4.0, 10.0):
        point = blahut_arimoto(p, squared_error_distortion(x), slope, tol=1e-11)
        assert point.distortion == pytest.approx(1 / (2 * slope), rel=2e-3)  # dR/dD = -slope
        assert point.rate == pytest.approx(0.5 * np.log2(1 / point.distortion), abs=2e-3)


@pytest.mark.parametrize("a", [0.1, 0.25])
def test_conditional_rate_distortion_of_a_dsbs(a):
    # X1 = X2 xor N, N ~ Bernoulli(a): R_{X1|X2}(D) = h(a) - h(D) for D <= a (Gray 1973).
    checked = 0
    for slope in (2.0, 3.0, 5.0):
        point = conditional_rate_distortion(dsbs(a), hamming_distortion(2), slope)
        if point.distortion < a:
            assert point.rate == pytest.approx(h(a) - h(point.distortion), abs=1e-9)
            checked += 1
    assert checked >= 2, "the slopes must reach the part of the curve with a closed form"
    # Side information can only help: R_{X1|X2}(D) <= R_{X1}(D).
    assert point.rate <= binary_rate_distortion(0.5, point.distortion) + 1e-12


def test_joint_rate_distortion_of_a_dsbs_meets_the_shannon_lower_bound():
    # For small distortions R_{X1,X2}(D, D) = H(X1, X2) - 2 h(D).
    a = 0.2
    for slope in (4.0, 6.0):
        point = joint_rate_distortion(
            dsbs(a), hamming_distortion(2), hamming_distortion(2), (slope,) * 2
        )
        assert point.distortion1 == pytest.approx(point.distortion2)
        expected = 1 + h(a) - h(point.distortion1) - h(point.distortion2)
        assert point.rate == pytest.approx(expected, abs=1e-9)
        assert point.channel.shape == (2, 2, 2, 2)
        assert np.allclose(point.channel.sum(axis=(2, 3)), 1.0)


@pytest.mark.parametrize("a", [0.1, 0.3])
def test_joint_rate_distortion_of_a_dsbs_beyond_a1(a):
    # From D = a1 on, both reproductions are the same bit and
    # R_{X1,X2}(D, D) = (1 - a) [1 - h((D - a/2) / (1 - a))], well above the Shannon lower bound.
    a1 = dsbs_critical_distortion(a)
    for D in (a1 + 0.01, 0.2, 0.3, 0.45):
        point = joint_rate_distortion_at(dsbs(a), hamming_distortion(2), hamming_distortion(2), D)
        closed = dsbs_joint_rate_distortion(a, point.distortion1)
        assert point.rate == pytest.approx(closed, abs=1e-8)
        assert closed == pytest.approx((1 - a) * (1 - h((D - a / 2) / (1 - a))), abs=1e-8)
        assert closed > 1 + h(a) - 2 * h(D) + 1e-3  # above the small-D piece (tangent at a1)
        joint = dsbs(a)[:, :, None, None] * point.channel
        assert joint[:, :, 0, 1].sum() + joint[:, :, 1, 0].sum() < 1e-6  # Z1 = Z2
    for D in (0.01, 0.5 * a1, 0.9 * a1):  # and below a1, the small-D piece
        point = joint_rate_distortion_at(dsbs(a), hamming_distortion(2), hamming_distortion(2), D)
        assert point.rate == pytest.approx(
            dsbs_joint_rate_distortion(a, point.distortion1), abs=1e-8
        )


def test_dsbs_joint_closed_form_meets_wyner_at_a1():
    from gwnlib.theory import wyner_dsbs

    for a in (0.05, 0.1, 0.3):
        a1 = dsbs_critical_distortion(a)
        assert 2 * a1 * (1 - a1) == pytest.approx(a)
        assert dsbs_joint_rate_distortion(a, a1) == pytest.approx(wyner_dsbs(a), abs=1e-12)
        # The two pieces meet there with the same slope, -2 log2((1 - a1) / a1): no kink in R.
        eps = 1e-8
        below, at, above = dsbs_joint_rate_distortion(a, [a1 - eps, a1, a1 + eps])
        slope = -2 * np.log2((1 - a1) / a1)
        assert (at - below) / eps == pytest.approx(slope, rel=1e-4)
        assert (above - at) / eps == pytest.approx(slope, rel=1e-4)
        assert dsbs_joint_rate_distortion(a, 0.0) == pytest.approx(1 + h(a))
        assert dsbs_joint_rate_distortion(a, [0.5, 0.7]).tolist() == [0.0, 0.0]
    # Copies: R = 1 - h(D); independent fair bits: R = 2 (1 - h(D)).
    D = np.array([0.05, 0.2])
    assert np.allclose(dsbs_joint_rate_distortion(0.0, D), 1 - h(D))
    assert np.allclose(dsbs_joint_rate_distortion(0.5, D), 2 * (1 - h(D)))
    with pytest.raises(ValueError, match="crossover"):
        dsbs_joint_rate_distortion(0.6, 0.1)
    with pytest.raises(ValueError, match="D must be"):
        dsbs_joint_rate_distortion(0.1, -0.1)


def test_joint_rate_is_below_the_sum_of_marginals():
    # Gray (1973), the paper's Eq. 42: R_{X1,X2}(D1, D2) <= R_{X1}(D1) + R_{X2}(D2).
    a = 0.3
    point = joint_rate_distortion(dsbs(a), hamming_distortion(2), hamming_distortion(2), (1.5, 3.0))
    marginals = binary_rate_distortion(0.5, point.distortion1) + binary_rate_distortion(
        0.5, point.distortion2
    )
    assert point.rate <= marginals + 1e-12
    assert point.distortion1 > point.distortion2  # the cheaper component is reproduced worse


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="slope"):
        blahut_arimoto([0.5, 0.5], hamming_distortion(2), -1.0)
    with pytest.raises(ValueError, match="2 rows"):
        blahut_arimoto([0.5, 0.5], hamming_distortion(3), 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        blahut_arimoto([0.5, 0.5], -hamming_distortion(2), 1.0)
    with pytest.raises(ValueError, match="target"):
        rate_distortion([0.5, 0.5], hamming_distortion(2), 0.7)
    with pytest.raises(ValueError, match="p must be"):
        binary_rate_distortion(1.5, 0.1)
    with pytest.raises(ValueError, match="m must be"):
        uniform_rate_distortion(1, 0.1)


def test_joint_rate_distortion_at_a_target():
    a = 0.1
    point = joint_rate_distortion_at(dsbs(a), hamming_distortion(2), hamming_distortion(2), 0.02)
    assert point.distortion1 == pytest.approx(0.02, abs=1e-8)
    assert point.rate == pytest.approx(1 + h(a) - 2 * h(0.02), abs=1e-7)
    asymmetric = np.array([[0.6, 0.1], [0.05, 0.25]])
    with pytest.raises(ValueError, match="not symmetric"):
        joint_rate_distortion_at(asymmetric, hamming_distortion(2), hamming_distortion(2), 0.15)
