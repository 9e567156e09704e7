"""Tests of the K-receiver Gray-Wyner network (gwnlib.theory.multiterminal), the multivariate
measures and Gács-Körner parts (gwnlib.theory.multivariate) and Wyner's common information of K
sources (gwnlib.theory.multivariate_wyner)."""

from __future__ import annotations

from itertools import combinations, product

import numpy as np
import pytest

from gwnlib.theory import gray_wyner
from gwnlib.theory.common_information import (
    doubly_symmetric_binary_source,
    gacs_korner,
    wyner_common_information,
    wyner_dsbs,
)
from gwnlib.theory.entropy import binary_entropy, entropy, interaction_information
from gwnlib.theory.multiterminal import (
    multiterminal_bounds,
    receive_rate,
    receiver_rates,
    stream_prices,
    stream_rates,
    subsets,
    transmit_rate,
    weighted_rate,
)
from gwnlib.theory.multivariate import (
    co_information,
    common_part,
    common_part_profile,
    common_plus_noise_source,
    dual_total_correlation,
    marginal,
    noisy_copies_source,
    pairwise_bits_source,
    shared_bit_source,
    total_correlation,
    xor_source,
)
from gwnlib.theory.multivariate_wyner import multivariate_wyner

PAIRS = [(1, 2), (1, 3), (2, 3)]


def _random_tables(shapes, seed=3, zeros=0.25):
    rng = np.random.default_rng(seed)
    tables = []
    for shape in shapes:
        p = rng.random(shape) * (rng.random(shape) > zeros)
        p.flat[0] += 0.1  # never all zero
        tables.append(p / p.sum())
    return tables


# --------------------------------------------------------------------------------------------
# The network as rates
# --------------------------------------------------------------------------------------------


def test_subsets_order():
    assert subsets(3) == [(1, 2, 3), (1, 2), (1, 3), (2, 3), (1,), (2,), (3,)]
    assert subsets(2) == [(1, 2), (1,), (2,)]
    assert len(subsets(5)) == 31 and len(set(subsets(5))) == 31


def test_two_receivers_match_gray_wyner_module():
    rng = np.random.default_rng(0)
    for r0, r1, r2 in rng.random((5, 3)) * 3:
        rates = [r0, r1, r2]
        assert transmit_rate(rates) == pytest.approx(gray_wyner.transmit_rate(r0, r1, r2))
        assert receive_rate(rates) == pytest.approx(gray_wyner.receive_rate(r0, r1, r2))
        assert receive_rate({(1, 2): r0, (1,): r1, (2,): r2}) == pytest.approx(2 * r0 + r1 + r2)
        np.testing.assert_allclose(receiver_rates(rates), [r0 + r1, r0 + r2])
        for beta in (1.0, 1.3, 1.5, 2.0):
            # Eq. 12's rate term, and the interpolation (2 - beta) R_t + (beta - 1) R_r
            assert weighted_rate(rates, beta) == pytest.approx(beta * r0 + r1 + r2)
            interpolation = (2 - beta) * transmit_rate(rates) + (beta - 1) * receive_rate(rates)
            assert weighted_rate(rates, beta) == pytest.approx(interpolation)
        np.testing.assert_allclose(stream_prices(2, 1.7), [1.7, 1.0, 1.0])


def test_receive_rate_counts_readers_by_hand():
    rates = {(1, 2, 3): 1.0, (1, 3): 2.0, (2,): 4.0}  # K inferred as 3, missing streams 0
    assert transmit_rate(rates) == 7.0
    assert receive_rate(rates) == 3 * 1 + 2 * 2 + 4  # readers: 3, 2, 1
    np.testing.assert_array_equal(receiver_rates(rates), [3.0, 5.0, 3.0])
    assert receiver_rates(rates).sum() == receive_rate(rates)
    assert stream_rates(rates)[(1, 2)] == 0.0
    assert receive_rate(rates, K=4) == receive_rate(rates)  # a fourth receiver reading nothing
    np.testing.assert_array_equal(receiver_rates(rates, K=4), [3.0, 5.0, 3.0, 0.0])


@pytest.mark.parametrize("K", [2, 3, 4])
def test_prices_interpolate_transmit_and_receive(K):
    rng = np.random.default_rng(K)
    rates = rng.random(2**K - 1)
    sizes = np.array([len(s) for s in subsets(K)])
    np.testing.assert_allclose(stream_prices(K, 1), np.ones(2**K - 1))  # pure transmit rate
    np.testing.assert_allclose(stream_prices(K, K), sizes)  # pure receive rate
    assert weighted_rate(rates, 1) == pytest.approx(transmit_rate(rates))
    assert weighted_rate(rates, K) == pytest.approx(receive_rate(rates))
    for beta in np.linspace(1, K, 7):
        expected = ((K - beta) * transmit_rate(rates) + (beta - 1) * receive_rate(rates)) / (K - 1)
        assert weighted_rate(rates, beta) == pytest.approx(expected)
        prices = stream_prices(K, beta)
        assert prices[0] == pytest.approx(beta) and np.allclose(prices[sizes == 1], 1)
    # equal weight on R_t and R_r at beta = (K + 1) / 2, as beta = 3/2 is for K = 2 (Sec. 3.2)
    middle = (transmit_rate(rates) + receive_rate(rates)) / 2
    assert weighted_rate(rates, (K + 1) / 2) == pytest.approx(middle)


def test_bad_network_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="beta"):
        stream_prices(3, 3.5)
    with pytest.raises(ValueError, match="beta"):
        weighted_rate([1, 1, 1], 0.9)
    with pytest.raises(ValueError, match="K"):
        stream_prices(1, 1)
    with pytest.raises(ValueError, match="K"):
        subsets(0)
    with pytest.raises(ValueError, match="rates"):
        transmit_rate([1, 2])  # not 2^K - 1 entries
    with pytest.raises(ValueError, match="rates"):
        transmit_rate([1, -1, 2])
    with pytest.raises(ValueError, match="rates"):
        receive_rate({(0, 1): 1.0})
    with pytest.raises(ValueError, match="rates"):
        receive_rate({(1, 4): 1.0}, K=3)
    with pytest.raises(ValueError, match="rates"):
        transmit_rate([1, 2, 3], K=3)


def test_lossless_bounds_match_two_receivers_and_cut_sets():
    for p in _random_tables([(2, 3), (3, 3)]):
        mine, theirs = multiterminal_bounds(p), gray_wyner.lossless_bounds(p, wyner=0.0)
        assert mine.transmit == pytest.approx(theirs.joint)
        np.testing.assert_allclose(mine.receivers, [theirs.marginal1, theirs.marginal2])
    p = pairwise_bits_source()  # H(X_i) = 2, H(X_i, X_j) = 3, H(X) = 3
    bounds = multiterminal_bounds(p)
    assert bounds.transmit == pytest.approx(3) and bounds.receive == pytest.approx(6)
    assert bounds.entropies[(1, 3)] == pytest.approx(3)
    # achievable: each pair's shared bit on its pair stream (a on Y_12, b on Y_13, c on Y_23)
    assert bounds.violations({(1, 2): 1, (1, 3): 1, (2, 3): 1}) == {}
    assert bounds.violations([3, 0, 0, 0, 0, 0, 0]) == {}  # everything on the common stream
    # receivers 1 and 2 read only Y_12 and Y_1 here: 2 bits < H(X1, X2) = 3 (and receiver 2 < 2)
    short = bounds.violations({(1, 2): 1, (1,): 1, (3,): 2})
    assert short[(1, 2)] == pytest.approx(1) and short[(2,)] == pytest.approx(1)


# --------------------------------------------------------------------------------------------
# Multivariate measures, against independent oracles
# --------------------------------------------------------------------------------------------


def _entropies_by_loops(p):
    """{T: H(X_T)} for every non-empty T, by summing over the support cell by cell."""
    K = p.ndim
    result = {}
    for size in range(1, K + 1):
        for t in combinations(range(K), size):
            law: dict = {}
            for cell in product(*(range(n) for n in p.shape)):
                if p[cell] > 0:
                    key = tuple(cell[a] for a in t)
                    law[key] = law.get(key, 0.0) + p[cell]
            result[tuple(a + 1 for a in t)] = -sum(q * np.log2(q) for q in law.values())
    return result


@pytest.mark.parametrize("shape", [(2, 3), (2, 2, 3), (3, 2, 2), (2, 2, 2, 2)])
def test_measures_against_loops(shape):
    (p,) = _random_tables([shape], seed=len(shape) + shape[0])
    h = _entropies_by_loops(p)
    K = p.ndim
    full = tuple(range(1, K + 1))
    assert total_correlation(p) == pytest.approx(sum(h[(i,)] for i in full) - h[full])
    rests = [tuple(j for j in full if j != i) for i in full]
    expected_dtc = h[full] - sum(h[full] - h[r] for r in rests)
    assert dual_total_correlation(p) == pytest.approx(expected_dtc)
    # co-information by inclusion-exclusion (Yeung's I-measure of the common atom)
    expected_co = sum((-1) ** (len(t) + 1) * value for t, value in h.items())
    assert co_information(p) == pytest.approx(expected_co)
    if K == 2:  # all three are I(X1; X2)
        info = h[(1,)] + h[(2,)] - h[(1, 2)]
        assert total_correlation(p) == pytest.approx(info)
        assert dual_total_correlation(p) == pytest.approx(info)
    if K == 3:  # the sign convention of entropy.interaction_information (paper Eq. 22)
        assert co_information(p) == pytest.approx(interaction_information(p))
    assert 0 <= dual_total_correlation(p) <= h[full] + 1e-12
    np.testing.assert_allclose(marginal(p, (3, 1) if K > 2 else (2, 1)).sum(), 1.0)


def _common_part_by_closure(table):
    """K of all axes of ``table`` by a transitive closure of the symbol graph (boolean matrix
    powers), not union-find: symbols are linked when they share a cell of the support."""
    offsets = np.concatenate([[0], np.cumsum(table.shape)])
    n = int(offsets[-1])
    link = np.eye(n, dtype=bool)
    for cell in np.argwhere(table > 0):
        nodes = [offsets[a] + x for a, x in enumerate(cell)]
        for u, v in product(nodes, repeat=2):
            link[u, v] = True
    for _ in range(n):
        link = (link.astype(int) @ link.astype(int)) > 0
    masses = {}
    for cell in np.argwhere(table > 0):
        key = tuple(np.flatnonzero(link[offsets[0] + cell[0]]))
        masses[key] = masses.get(key, 0.0) + table[tuple(cell)]
    return entropy(np.array(list(masses.values())))


def test_common_part_against_closure_and_two_variable_gacs_korner():
    rng = np.random.default_rng(11)
    values, gaps = [], []
    for trial in range(6):
        # tables block diagonal in up to three blocks, sparse inside, some with an extra cell
        shape = (5, 5, 4)
        p = np.zeros(shape)
        blocks = [rng.integers(0, 3, size=n) for n in shape]
        for cell in product(*(range(n) for n in shape)):
            if blocks[0][cell[0]] == blocks[1][cell[1]] == blocks[2][cell[2]]:
                p[cell] = rng.random() * (rng.random() > 0.6)
        if trial % 2:
            p[tuple(rng.integers(0, 4, size=3))] += 0.3
        p /= p.sum()
        assert common_part(p).value == pytest.approx(_common_part_by_closure(p))
        for pair in PAIRS:
            two = marginal(p, pair)
            assert common_part(p, pair).value == pytest.approx(gacs_korner(two).value)
            assert common_part(p, pair).value == pytest.approx(_common_part_by_closure(two))
        # the common part of all three is a function of each pair's common part: K3 <= K_pair
        profile = common_part_profile(p)
        assert all(profile[(1, 2, 3)] <= profile[pair] + 1e-12 for pair in PAIRS)
        values.append(profile[(1, 2, 3)])
        gaps.append(max(profile[pair] for pair in PAIRS) - profile[(1, 2, 3)])
    assert max(values) > 0.5 and max(gaps) > 0.5  # the tables are not all trivial
    part = common_part(common_plus_noise_source(3))  # J = C: x_i // 2
    np.testing.assert_array_equal(part.functions[0], [0, 0, 1, 1, 2, 2])
    assert part.value == pytest.approx(np.log2(3))


# --------------------------------------------------------------------------------------------
# Worked examples: hand-worked values (derived in each source's docstring)
# --------------------------------------------------------------------------------------------

EXAMPLES = {
    # name: (source, H(X), TC, DTC, co-information, K pairs, K triple, C pairs, C triple)
    "xor": (xor_source, 2, 1, 2, -1, 0, 0, 0, 2),
    "shared bit": (shared_bit_source, 1, 2, 1, 1, 1, 1, 1, 1),
    "pairwise bits": (pairwise_bits_source, 3, 3, 3, 0, 1, 0, 1, 3),
    "common + noise": (lambda: common_plus_noise_source(2), 4, 2, 1, 1, 1, 1, 1, 1),
}
# C triple, proved: xor. Given W = w, X1 and X2 are independent and X3 = X1 xor X2 is
# independent of (X1, X2), so X3 is constant and X2 = X1 xor const is independent of X1: both
# constant. So H(X | W) = 0 and C = H(X) = 2 (also C >= DTC = 2 and C <= H(X)).
# Pairwise bits: a is a function of X1 and of X2, so I(X1; X2 | W) >= H(a | W) = 0 forces a (and
# likewise b, c) to be a function of W: C = H(a, b, c) = 3 = DTC. Shared bit and common + noise:
# K <= C (the common part J, a function of every X_i, must be a function of W, as for a) and W =
# the common variable achieves I(X; W) = K.


@pytest.mark.parametrize("name", EXAMPLES)
def test_worked_examples(name):
    source, joint, tc, dtc, co, k_pair, k_triple, c_pair, c_triple = EXAMPLES[name]
    p = source()
    assert entropy(p) == pytest.approx(joint)
    assert total_correlation(p) == pytest.approx(tc)
    assert dual_total_correlation(p) == pytest.approx(dtc)
    assert co_information(p) == pytest.approx(co, abs=1e-12)
    profile = common_part_profile(p)
    assert profile[(1, 2, 3)] == pytest.approx(k_triple, abs=1e-12)
    for pair in PAIRS:
        assert profile[pair] == pytest.approx(k_pair, abs=1e-12)
        pairwise = wyner_common_information(marginal(p, pair), restarts=2).value
        assert pairwise == pytest.approx(c_pair, abs=1e-7)
    wyner = multivariate_wyner(p, restarts=4)
    assert wyner.feasible and wyner.value == pytest.approx(c_triple, abs=1e-7)


def _noisy_copies_closed_forms(a):
    """H(X), TC, DTC, co-information of noisy_copies_source(a), from the cell probabilities:
    2 cells of mass s = ((1 - a)^3 + a^3) / 2 (w = 0, 3) and 6 of mass t = a (1 - a) / 2."""
    s, t = ((1 - a) ** 3 + a**3) / 2, a * (1 - a) / 2
    joint = -2 * s * np.log2(s) - (6 * t * np.log2(t) if t > 0 else 0.0)
    pair = 1 + binary_entropy(2 * a * (1 - a))  # every pair is DSBS(2a(1 - a))
    return joint, 3 - joint, 3 * pair - 2 * joint, joint - 3 * (pair - 1)


@pytest.mark.parametrize("a", [0.0, 0.1, 0.3, 0.5])
def test_noisy_copies_move_continuously(a):
    p = noisy_copies_source(a)
    joint, tc, dtc, co = _noisy_copies_closed_forms(a)
    assert entropy(p) == pytest.approx(joint)
    assert total_correlation(p) == pytest.approx(tc)
    assert dual_total_correlation(p) == pytest.approx(dtc)
    assert co_information(p) == pytest.approx(co, abs=1e-12)
    assert common_part(p).value == pytest.approx(1.0 if a == 0 else 0.0)


def test_wyner_three_noisy_copies_within_proved_bounds():
    a = 0.1
    p = noisy_copies_source(a)
    wyner = multivariate_wyner(p, restarts=4)
    assert wyner.feasible and wyner.residual < 1e-9
    # Upper: W = B is feasible (the N_i are independent), so C <= I(X; B) = H(X) - 3 h(a).
    via_b = entropy(p) - 3 * binary_entropy(a)
    assert wyner.value <= via_b + 1e-9
    # Lower: W making all three independent makes each pair independent: C >= C(X_i; X_j), the
    # DSBS(2a(1 - a)) closed form. And C >= DTC: given independence, H(X | W) = sum_i H(X_i | W)
    # = sum_i H(X_i | W, X_rest) <= sum_i H(X_i | X_rest), so I(X; W) >= H(X) - sum_i H(X_i |
    # X_rest) = DTC.
    assert wyner.value >= wyner_dsbs(2 * a * (1 - a)) - 1e-9
    assert wyner.value >= dual_total_correlation(p) - 1e-9
    # Observed, not proved: the search finds nothing below W = B.
    assert wyner.value == pytest.approx(via_b, abs=1e-6)


def test_wyner_reduces_to_two_sources_and_independence():
    for a in (0.05, 0.2):
        wyner = multivariate_wyner(doubly_symmetric_binary_source(a), restarts=4)
        assert wyner.value == pytest.approx(wyner_dsbs(a), abs=1e-7)
    independent = np.einsum("i,j,k->ijk", [0.3, 0.7], [0.5, 0.5], [0.1, 0.6, 0.3])
    wyner = multivariate_wyner(independent, restarts=2)
    assert wyner.feasible and wyner.value == pytest.approx(0.0, abs=1e-9)
    q = wyner.q_w_given_x
    assert q.shape == (*independent.shape, 12)
    np.testing.assert_allclose(q.sum(axis=-1), 1.0)


def test_bad_measure_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="variables"):
        common_part(xor_source(), (1, 4))
    with pytest.raises(ValueError, match="variables"):
        marginal(xor_source(), (2, 2))
    with pytest.raises(ValueError, match="crossover"):
        noisy_copies_source(0.7)
    with pytest.raises(ValueError, match="n_common"):
        common_plus_noise_source(0)
    with pytest.raises(ValueError, match="p must sum to 1"):
        total_correlation(np.full((2, 2, 2), 0.1))
    with pytest.raises(ValueError, match="restarts"):
        multivariate_wyner(xor_source(), restarts=-1)
    with pytest.raises(ValueError, match="p must be a table"):
        multivariate_wyner([0.5, 0.5])
