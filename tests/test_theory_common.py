"""Tests of gwnlib.theory.common_information: K, C and the lossless Gray-Wyner corner points."""

from __future__ import annotations

import numpy as np
import pytest

from gwnlib.theory.common_information import (
    common_bit_plus_dsbs,
    doubly_symmetric_binary_source,
    gacs_korner,
    gray_wyner_curve,
    lossless_gray_wyner,
    wyner_common_information,
    wyner_dsbs,
)
from gwnlib.theory.entropy import (
    binary_entropy,
    conditional_mutual_information,
    entropy,
    mutual_information,
)


def _random_tables(count: int = 10, seed: int = 7) -> list[np.ndarray]:
    """Seeded random tables of shapes 2x2, 2x3, 3x3, about a quarter of their cells zero."""
    rng = np.random.default_rng(seed)
    shapes = [(2, 2), (2, 3), (3, 3), (3, 2)]
    tables = []
    for k in range(count):
        p = rng.random(shapes[k % len(shapes)]) ** 2
        p[rng.random(p.shape) < 0.25] = 0.0
        p[0, 0] += 0.05  # never all zero
        tables.append(p / p.sum())
    return tables


def _marginal_entropies(p: np.ndarray) -> tuple[float, float, float]:
    return entropy(p), entropy(p.sum(axis=1)), entropy(p.sum(axis=0))


# --------------------------------------------------------------------------------------------
# The DSBS and its closed form
# --------------------------------------------------------------------------------------------


def test_dsbs_table():
    p = doubly_symmetric_binary_source(0.1)
    np.testing.assert_allclose(p, [[0.45, 0.05], [0.05, 0.45]], atol=1e-15)
    assert mutual_information(p) == pytest.approx(1 - binary_entropy(0.1), abs=1e-12)


def test_wyner_dsbs_closed_form_values():
    assert wyner_dsbs(0.0) == pytest.approx(1.0, abs=1e-12)  # X = Y: C = H(X)
    assert wyner_dsbs(0.5) == pytest.approx(0.0, abs=1e-12)  # independent: C = 0
    a = 0.2  # the formula by hand: a1 = (1 - sqrt(0.6)) / 2
    a1 = (1 - np.sqrt(0.6)) / 2
    assert 2 * a1 * (1 - a1) == pytest.approx(a, abs=1e-15)
    expected = 1 + binary_entropy(a) - 2 * binary_entropy(a1)
    assert wyner_dsbs(a) == pytest.approx(expected, abs=1e-12)
    values = [wyner_dsbs(c) for c in np.linspace(0, 0.5, 11)]
    assert np.all(np.diff(values) < 0)  # C falls as the pair decorrelates
    for c in np.linspace(0.01, 0.49, 7):  # and lies between I and min H = 1
        assert 1 - binary_entropy(c) < wyner_dsbs(c) < 1


@pytest.mark.parametrize("crossover", [0.05, 0.1, 0.2, 0.3])
def test_wyner_matches_dsbs_closed_form(crossover):
    p = doubly_symmetric_binary_source(crossover)
    result = wyner_common_information(p, seed=0)
    assert result.feasible
    assert abs(result.residual) < 1e-9
    assert result.value == pytest.approx(wyner_dsbs(crossover), abs=1e-5)
    # The returned law is consistent: p(x, y) kept, q a channel, value = I(X, Y; W).
    np.testing.assert_allclose(result.p_xyw.sum(axis=2), p, atol=1e-12)
    np.testing.assert_allclose(result.q_w_given_xy.sum(axis=2), 1.0, atol=1e-12)
    assert np.all(result.q_w_given_xy >= 0)
    joint = result.p_xyw.reshape(-1, result.p_xyw.shape[2])
    assert mutual_information(joint) == pytest.approx(result.value, abs=1e-12)
    assert conditional_mutual_information(result.p_xyw) == pytest.approx(result.residual, abs=1e-12)


def test_gacs_korner_of_dsbs():
    for a in (0.01, 0.2, 0.5):
        k = gacs_korner(doubly_symmetric_binary_source(a))
        assert k.value == pytest.approx(0.0, abs=1e-12)
        assert len(k.components) == 1
        xs, ys = k.components[0]
        np.testing.assert_array_equal(xs, [0, 1])
        np.testing.assert_array_equal(ys, [0, 1])
        np.testing.assert_allclose(k.probabilities, [1.0])
    k0 = gacs_korner(doubly_symmetric_binary_source(0.0))  # X = Y: the whole bit is common
    assert k0.value == pytest.approx(1.0, abs=1e-12)
    assert len(k0.components) == 2


# --------------------------------------------------------------------------------------------
# K <= I <= C <= min(H(X), H(Y))
# --------------------------------------------------------------------------------------------


def test_bounds_on_random_tables():
    tables = _random_tables()
    assert sum(np.any(p == 0) for p in tables) >= 5  # the zeros are really there
    for p in tables:
        k = gacs_korner(p).value
        info = mutual_information(p)
        result = wyner_common_information(p, restarts=4, seed=1)
        _, h_x, h_y = _marginal_entropies(p)
        assert result.feasible and abs(result.residual) < 1e-9
        assert np.all(np.isfinite(result.q_w_given_xy))
        assert k <= info + 1e-9
        assert info <= result.value + 1e-6
        assert result.value <= min(h_x, h_y) + 1e-9


def test_gacs_korner_ignores_zero_rows_and_columns_and_finds_blocks():
    p = np.zeros((4, 5))
    p[0, 1], p[0, 3], p[2, 3] = 0.2, 0.1, 0.2  # block {x0, x2} x {y1, y3}
    p[3, 0], p[3, 4] = 0.25, 0.25  # block {x3} x {y0, y4}; row 1 and column 2 are empty
    k = gacs_korner(p)
    assert len(k.components) == 2
    (xs0, ys0), (xs1, ys1) = k.components
    np.testing.assert_array_equal(xs0, [0, 2])
    np.testing.assert_array_equal(ys0, [1, 3])
    np.testing.assert_array_equal(xs1, [3])
    np.testing.assert_array_equal(ys1, [0, 4])
    np.testing.assert_allclose(k.probabilities, [0.5, 0.5])
    assert k.value == pytest.approx(1.0, abs=1e-12)
    assert gacs_korner(p, base=np.e).value == pytest.approx(np.log(2), abs=1e-12)


def test_separable_blocks():
    """A mixture of product blocks: K = I = C = H(block) (paper Eq. 8)."""
    weights = np.array([0.5, 0.3, 0.2])
    blocks = [
        ([0, 3], [1, 4], np.outer([0.3, 0.7], [0.6, 0.4])),
        ([1], [0, 2], np.outer([1.0], [0.5, 0.5])),
        ([2, 4], [3], np.outer([0.2, 0.8], [1.0])),
    ]
    p = np.zeros((5, 5))
    for w, (xs, ys, block) in zip(weights, blocks, strict=True):
        p[np.ix_(xs, ys)] = w * block
    h_block = entropy(weights)
    k = gacs_korner(p)
    assert k.value == pytest.approx(h_block, abs=1e-12)
    assert mutual_information(p) == pytest.approx(h_block, abs=1e-12)
    result = wyner_common_information(p, restarts=4, seed=0)
    assert result.feasible
    assert result.value == pytest.approx(h_block, abs=1e-6)
    assert len(k.components) == 3
    for (xs, ys), (bx, by, _) in zip(k.components, blocks, strict=True):
        np.testing.assert_array_equal(xs, bx)
        np.testing.assert_array_equal(ys, by)
    np.testing.assert_allclose(k.probabilities, weights, atol=1e-12)


def test_trivial_extremes():
    independent = np.outer([0.3, 0.7], [0.1, 0.5, 0.4])
    result = wyner_common_information(independent, restarts=2)
    assert result.value == pytest.approx(0.0, abs=1e-9)  # W = const
    identical = np.diag([0.2, 0.3, 0.5])  # X = Y: K = I = C = H(X)
    h = entropy([0.2, 0.3, 0.5])
    assert wyner_common_information(identical, restarts=2).value == pytest.approx(h, abs=1e-9)
    assert gacs_korner(identical).value == pytest.approx(h, abs=1e-12)


# --------------------------------------------------------------------------------------------
# Common bit + DSBS: K = 1, C = 1 + C_DSBS
# --------------------------------------------------------------------------------------------


def test_common_bit_plus_dsbs_table():
    a = 0.1
    p = common_bit_plus_dsbs(a)
    assert p.shape == (4, 4)
    assert p.sum() == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(p.sum(axis=0), 0.25)
    np.testing.assert_allclose(p.sum(axis=1), 0.25)
    assert p[0, 0] == pytest.approx((1 - a) / 4)  # b = 0, u = v = 0
    assert p[1, 0] == pytest.approx(a / 4)  # b = 0, u = 1, v = 0
    assert np.all(p[:2, 2:] == 0) and np.all(p[2:, :2] == 0)  # b is common
    assert mutual_information(p) == pytest.approx(2 - binary_entropy(a), abs=1e-12)


@pytest.mark.parametrize("crossover", [0.1, 0.3])
def test_common_bit_plus_dsbs_k_and_c(crossover):
    p = common_bit_plus_dsbs(crossover)
    k = gacs_korner(p)
    assert k.value == pytest.approx(1.0, abs=1e-12)
    assert [list(xs) for xs, _ in k.components] == [[0, 1], [2, 3]]
    result = wyner_common_information(p, restarts=4, seed=0)
    assert result.feasible
    assert result.value == pytest.approx(1 + wyner_dsbs(crossover), abs=1e-5)


# --------------------------------------------------------------------------------------------
# Lossless Gray-Wyner
# --------------------------------------------------------------------------------------------

_SOURCES = {
    "dsbs": (doubly_symmetric_binary_source(0.1), wyner_dsbs(0.1), 0.0),
    "common_bit_plus_dsbs": (common_bit_plus_dsbs(0.3), 1 + wyner_dsbs(0.3), 1.0),
}


def _assert_in_region(point, p):
    """Gray & Wyner's lower bounds: R0 + R1 >= H(X), R0 + R2 >= H(Y), sum >= H(X, Y)."""
    h_xy, h_x, h_y = _marginal_entropies(p)
    assert point.r0 >= -1e-12 and point.r1 >= -1e-12 and point.r2 >= -1e-12
    assert point.r0 + point.r1 >= h_x - 1e-9
    assert point.r0 + point.r2 >= h_y - 1e-9
    assert point.r0 + point.r1 + point.r2 >= h_xy - 1e-9
    assert point.objective == pytest.approx(point.beta * point.r0 + point.r1 + point.r2, abs=1e-12)


@pytest.mark.parametrize("name", list(_SOURCES))
def test_gray_wyner_near_beta_one_is_wyner(name):
    p, c, _ = _SOURCES[name]
    h_xy, _, _ = _marginal_entropies(p)
    point = lossless_gray_wyner(p, 1.001, restarts=4)
    _assert_in_region(point, p)
    assert point.r0 + point.r1 + point.r2 == pytest.approx(h_xy, abs=1e-5)  # Pangloss plane
    # The exact minimiser trades a little Markov residual for R0: C - O(beta - 1) <= R0 <= C.
    assert c - 2e-3 <= point.r0 <= c + 1e-6
    at_one = lossless_gray_wyner(p, 1.0, restarts=4)  # the limit itself: Wyner's W
    assert at_one.r0 == pytest.approx(c, abs=1e-5)
    assert at_one.r0 + at_one.r1 + at_one.r2 == pytest.approx(h_xy, abs=1e-9)


@pytest.mark.parametrize("name", list(_SOURCES))
def test_gray_wyner_near_beta_two_is_gacs_korner(name):
    p, _, k = _SOURCES[name]
    _, h_x, h_y = _marginal_entropies(p)
    for beta in (1.999, 2.0):
        point = lossless_gray_wyner(p, beta, restarts=4)
        _assert_in_region(point, p)
        assert point.r0 + point.r1 == pytest.approx(h_x, abs=1e-6)
        assert point.r0 + point.r2 == pytest.approx(h_y, abs=1e-6)
        assert point.r0 == pytest.approx(k, abs=1e-6)


@pytest.mark.parametrize("name", list(_SOURCES))
def test_gray_wyner_curve_is_monotone(name):
    p, c, k = _SOURCES[name]
    betas = [1.6, 1.001, 1.3, 1.999, 1.1, 1.45, 1.8]  # unsorted on purpose
    curve = gray_wyner_curve(p, betas, restarts=3, seed=0)
    assert [pt.beta for pt in curve] == betas  # the caller's order
    ordered = sorted(curve, key=lambda pt: pt.beta)
    r0 = np.array([pt.r0 for pt in ordered])
    assert np.all(np.diff(r0) <= 1e-9)
    assert r0[0] == pytest.approx(c, abs=2e-3) and r0[-1] == pytest.approx(k, abs=1e-6)
    assert r0[0] - r0[-1] > 0.4  # the curve really moves from C to K
    for pt in curve:
        _assert_in_region(pt, p)
        assert pt.q_w_given_xy.shape[:2] == p.shape
        np.testing.assert_allclose(pt.q_w_given_xy.sum(axis=2), 1.0, atol=1e-12)


def _dsbs_symmetric_objective(a: float, beta: float, c: np.ndarray) -> np.ndarray:
    """beta R0 + R1 + R2 of DSBS(a) for the symmetric binary W with parameter c: W = X with
    probability 1 - c when X = Y, W a fair coin when X != Y (c = 1/2: W independent of (X, Y))."""
    objective = []
    p = doubly_symmetric_binary_source(a)
    for ci in np.atleast_1d(c):
        q = np.empty((2, 2, 2))
        q[0, 0], q[1, 1], q[0, 1], q[1, 0] = [1 - ci, ci], [ci, 1 - ci], [0.5, 0.5], [0.5, 0.5]
        p_xyw = p[:, :, None] * q
        h_w = entropy(p_xyw.sum(axis=(0, 1)))
        r0 = mutual_information(p_xyw.reshape(4, 2))
        r1, r2 = entropy(p_xyw.sum(axis=1)) - h_w, entropy(p_xyw.sum(axis=0)) - h_w
        objective.append(beta * r0 + r1 + r2)
    return np.array(objective)


@pytest.mark.parametrize("beta", [1.2, 1.4, 1.6])
def test_gray_wyner_dsbs_matches_best_symmetric_binary_w(beta):
    """On DSBS(0.1), the solver (|W| = 4, no symmetry imposed) must do at least as well as the
    best W of the one-parameter symmetric family (found by a golden-section search), and, as
    that family contains the optimum here, no better than rounding allows."""
    a = 0.1
    lo, hi = 0.0, 0.5
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(80):  # golden-section search; the objective is unimodal in c here
        m1, m2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        f1, f2 = _dsbs_symmetric_objective(a, beta, np.array([m1, m2]))
        lo, hi = (lo, m2) if f1 < f2 else (m1, hi)
    family = min(_dsbs_symmetric_objective(a, beta, np.array([lo]))[0], 2.0)  # 2: W = const
    point = lossless_gray_wyner(doubly_symmetric_binary_source(a), beta, restarts=4)
    assert point.objective <= family + 1e-9
    assert point.objective == pytest.approx(family, abs=1e-8)


def test_wyner_alphabet_size_and_honest_residual():
    p = doubly_symmetric_binary_source(0.2)
    binary = wyner_common_information(p, n_w=2, restarts=4)  # Wyner's optimal W is a bit
    assert binary.q_w_given_xy.shape == (2, 2, 2)
    assert binary.value == pytest.approx(wyner_dsbs(0.2), abs=1e-6)
    only_structured = wyner_common_information(p, restarts=0)  # W = X, Y, ... : C <= H(X) = 1
    assert only_structured.feasible and only_structured.value <= 1 + 1e-12
    constant = wyner_common_information(p, n_w=1)  # W = const cannot make X, Y independent
    assert not constant.feasible
    assert constant.value == pytest.approx(0.0, abs=1e-12)
    assert constant.residual == pytest.approx(mutual_information(p), abs=1e-9)


def test_gray_wyner_warm_start_is_used():
    p = common_bit_plus_dsbs(0.3)
    start = lossless_gray_wyner(p, 1.3, restarts=2)
    again = lossless_gray_wyner(p, 1.3, restarts=0, warm_starts=[start.q_w_given_xy])
    assert again.objective <= start.objective + 1e-9
    with pytest.raises(ValueError, match="warm_starts"):
        lossless_gray_wyner(p, 1.3, warm_starts=[np.ones((4, 4, 3))])


# --------------------------------------------------------------------------------------------
# Determinism, zeros, bad input
# --------------------------------------------------------------------------------------------


def test_deterministic_given_seed_and_no_nans_with_zero_cells():
    p = np.array([[0.3, 0.0, 0.1], [0.0, 0.0, 0.0], [0.2, 0.15, 0.25]])  # an empty row
    first = wyner_common_information(p, restarts=3, seed=5)
    second = wyner_common_information(p, restarts=3, seed=5)
    np.testing.assert_array_equal(first.q_w_given_xy, second.q_w_given_xy)
    assert first.value == second.value
    assert np.all(np.isfinite(first.q_w_given_xy)) and np.isfinite(first.value)
    point = lossless_gray_wyner(p, 1.5, restarts=3, seed=5)
    assert np.all(np.isfinite(point.q_w_given_xy))
    _assert_in_region(point, p)
    bits = wyner_common_information(p, restarts=3, seed=5, base=2).value
    nats = wyner_common_information(p, restarts=3, seed=5, base=np.e).value
    assert nats == pytest.approx(bits * np.log(2), abs=1e-9)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: doubly_symmetric_binary_source(-0.1), "crossover"),
        (lambda: doubly_symmetric_binary_source(0.6), "crossover"),
        (lambda: wyner_dsbs(0.51), "crossover"),
        (lambda: common_bit_plus_dsbs(1.0), "crossover"),
        (lambda: gacs_korner(np.array([[0.6, -0.1], [0.3, 0.2]])), "negative"),
        (lambda: gacs_korner(np.array([[0.5, 0.5], [0.5, 0.5]])), "sum to 1"),
        (lambda: gacs_korner(np.array([0.5, 0.5])), "2 axes"),
        (lambda: wyner_common_information(np.full((2, 2), 0.3)), "sum to 1"),
        (lambda: wyner_common_information(np.eye(2) / 2, n_w=0), "n_w"),
        (lambda: wyner_common_information(np.eye(2) / 2, restarts=-1), "restarts"),
        (lambda: wyner_common_information(np.eye(2) / 2, base=1), "base"),
        (lambda: lossless_gray_wyner(np.eye(2) / 2, 0.9), r"beta must lie in \[1, 2\]"),
        (lambda: lossless_gray_wyner(np.eye(2) / 2, 2.1), r"beta must lie in \[1, 2\]"),
        (lambda: lossless_gray_wyner(np.full((2, 2), 0.3), 1.5), "sum to 1"),
        (lambda: gray_wyner_curve(np.eye(2) / 2, [1.2, 2.5]), r"beta must lie in \[1, 2\]"),
        (lambda: gray_wyner_curve(np.eye(2) / 2, []), "betas"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
