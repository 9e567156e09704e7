"""Tests of gwnlib.theory.theorem1: Theorem 1 (Eqs. 6-7), its counterexample, repair and search."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gwnlib.theory import (
    binary_symmetric_channel,
    conditional_interaction_information,
    dsbs_lossy_wyner,
    dsbs_lossy_wyner_achiever,
    evaluate_pair,
    joint_rate_distortion_point,
    markov_receive_max,
    search_theorem1,
    theorem1_counterexample,
    theorem1_counterexample_numbers,
)
from gwnlib.theory.common_information import doubly_symmetric_binary_source, wyner_dsbs
from gwnlib.theory.entropy import (
    binary_entropy,
    conditional_mutual_information,
    entropy,
    interaction_information,
    mutual_information,
)
from gwnlib.theory.rate_distortion import (
    hamming_distortion,
    joint_rate_distortion,
    joint_rate_distortion_at,
    rate_distortion,
)

H2 = hamming_distortion(2)


def _interaction(table):
    n1, n2, m1, m2 = table.shape
    return interaction_information(table.reshape(n1 * n2, m1, m2).transpose(1, 2, 0))


# --------------------------------------------------------------------------------------------
# The proof's step I(X; W; Y | Z) >= 0
# --------------------------------------------------------------------------------------------


def test_xor_breaks_nonnegative_conditional_interaction_information():
    p = np.zeros((2, 2, 2, 1))  # [x, w, y, z]: X, Y fair independent bits, W = X xor Y, Z = 0
    for x, y in itertools.product((0, 1), repeat=2):
        p[x, x ^ y, y, 0] = 0.25
    assert conditional_interaction_information(p) == pytest.approx(-1.0, abs=1e-12)
    # McGill's sign would give +1; the paper's Eq. 22 and interaction_information give -1.
    assert interaction_information(p[..., 0]) == pytest.approx(-1.0, abs=1e-12)


def test_conditional_interaction_information_averages_over_z():
    xor = np.zeros((2, 2, 2))
    for x, y in itertools.product((0, 1), repeat=2):
        xor[x, x ^ y, y] = 0.25
    copy = np.zeros((2, 2, 2))  # X = W = Y, one fair bit: +1
    copy[0, 0, 0] = copy[1, 1, 1] = 0.5
    p = np.stack([0.3 * xor, 0.7 * copy], axis=-1)
    assert conditional_interaction_information(p) == pytest.approx(0.3 * -1 + 0.7 * 1, abs=1e-12)


# --------------------------------------------------------------------------------------------
# evaluate_pair on hand-computed cases
# --------------------------------------------------------------------------------------------


def test_independent_reconstructions_have_zero_interaction():
    p = doubly_symmetric_binary_source(0.2)
    channel = np.full((2, 2, 2, 2), 0.25)  # Z1, Z2 fair coins, independent of all
    e = evaluate_pair(p, H2, H2, (0.5, 0.5), channel=channel, rates=(0.0, 0.0, 0.0))
    assert e.interaction == pytest.approx(0.0, abs=1e-12)
    assert e.rate_joint == pytest.approx(0.0, abs=1e-12)
    assert (e.distortion1, e.distortion2) == pytest.approx((0.5, 0.5))
    assert e.in_receive_set and e.in_transmit_set and e.markov1 and e.markov2


def test_independent_sources_computed_rates_and_both_sets():
    """X1, X2 independent fair bits, Zi = Xi through BSC(Di): R12 = R1 + R2 and II = 0."""
    p = np.full((2, 2), 0.25)
    D1, D2 = 0.1, 0.2
    channel = np.einsum("ac,bd->abcd", binary_symmetric_channel(D1), binary_symmetric_channel(D2))
    e = evaluate_pair(p, H2, H2, (D1, D2), channel=channel)  # rates computed numerically
    r1, r2 = 1 - binary_entropy(D1), 1 - binary_entropy(D2)
    assert (e.marginal1, e.marginal2) == pytest.approx((r1, r2), abs=1e-8)
    assert e.joint == pytest.approx(r1 + r2, abs=1e-8)
    assert e.interaction == pytest.approx(0.0, abs=1e-12)
    assert e.crossing == pytest.approx(0.0, abs=1e-7)
    assert e.in_receive_set and e.in_transmit_set and e.in_markov_receive_set


@pytest.mark.parametrize("m", [2, 3])
def test_lossless_copies_have_interaction_h_x(m):
    """X1 = X2 uniform on m symbols, Z1 = Z2 = X1: II = I(Z1; Z2) - 0 = H(X) = log2 m."""
    p = np.eye(m) / m
    table = np.zeros((m, m, m, m))
    for x in range(m):
        table[x, x, x, x] = 1 / m
    d = hamming_distortion(m)
    h = entropy(np.ones(m) / m)
    e = evaluate_pair(table, d, d, (0.0, 0.0), rates=(h, h, entropy(p)))
    assert e.interaction == pytest.approx(np.log2(m), abs=1e-12)
    assert e.in_receive_set and e.in_transmit_set and e.in_markov_receive_set
    assert e.crossing == pytest.approx(np.log2(m), abs=1e-12)


def test_lossless_dsbs_pair_meets_the_crossing():
    """Z = X on DSBS(a): II = I(X1; X2) = H(X1) + H(X2) - H(X1, X2), the lossless equality."""
    a = 0.1
    p = doubly_symmetric_binary_source(a)
    channel = np.einsum("ac,bd->abcd", np.eye(2), np.eye(2))
    rates = (1.0, 1.0, entropy(p))
    e = evaluate_pair(p, H2, H2, (0.0, 0.0), channel=channel, rates=rates)
    assert e.interaction == pytest.approx(1 - binary_entropy(a), abs=1e-12)
    assert e.interaction == pytest.approx(e.crossing, abs=1e-12)
    assert e.in_transmit_set and e.in_markov_receive_set


def test_markov_flags_detect_a_look_at_the_other_source():
    p = doubly_symmetric_binary_source(0.1)
    channel = np.zeros((2, 2, 2, 2))
    for x1, x2 in itertools.product((0, 1), repeat=2):
        channel[x1, x2, x2, x2] = 1.0  # Z1 = Z2 = X2
    e = evaluate_pair(p, H2, H2, (0.1, 0.0), channel=channel, rates=(0.0, 1.0, 1.0))
    assert not e.markov1 and e.markov2
    assert e.leak1 == pytest.approx(conditional_mutual_information(_x2_given(p)), abs=1e-12)
    assert not e.in_markov_receive_set


def _x2_given(p):
    """Table [z1, x2, x1] of Z1 = X2: I(Z1; X2 | X1) = H(X2 | X1) = h(a)."""
    t = np.zeros((2, 2, 2))
    for x1, x2 in itertools.product((0, 1), repeat=2):
        t[x2, x2, x1] = p[x1, x2]
    return t


# --------------------------------------------------------------------------------------------
# The counterexample
# --------------------------------------------------------------------------------------------


def test_counterexample_is_in_the_receive_set_through_bsc_channels():
    a = 0.1
    table = theorem1_counterexample(a)
    p = table.sum(axis=(2, 3))
    np.testing.assert_allclose(p, doubly_symmetric_binary_source(a), atol=1e-15)
    z1_given_x1 = table.sum(axis=(1, 3)) / p.sum(axis=1)[:, None]
    z2_given_x2 = table.sum(axis=(0, 2)) / p.sum(axis=0)[:, None]
    np.testing.assert_allclose(z1_given_x1, binary_symmetric_channel(a / 2), atol=1e-15)
    np.testing.assert_allclose(z2_given_x2, binary_symmetric_channel(a / 2), atol=1e-15)
    assert np.all(table[:, :, 0, 1] == 0) and np.all(table[:, :, 1, 0] == 0)  # Z1 = Z2


def test_counterexample_numbers_break_lemma1():
    a, D = 0.1, 0.05
    c = theorem1_counterexample_numbers(a)
    h = binary_entropy
    assert c.interaction == pytest.approx(0.9, abs=1e-12)  # 1 - a
    assert c.joint_closed_form == pytest.approx(1 + h(a) - 2 * h(D), abs=1e-15)
    assert c.joint_closed_form == pytest.approx(0.8962, abs=1e-4)
    assert c.joint_numerical == pytest.approx(c.joint_closed_form, abs=1e-8)
    assert c.transmit_interaction == pytest.approx(0.8499, abs=1e-4)
    assert c.wyner == pytest.approx(wyner_dsbs(a)) and c.wyner == pytest.approx(0.8728, abs=1e-4)
    assert c.wyner_achieved == pytest.approx(c.wyner, abs=1e-12)
    assert c.gacs_korner == 0.0
    assert c.breaks_lemma1 and c.breaks_chain
    # The outer inequalities of Eqs. 6-7 hold; the repaired chain holds.
    assert c.gacs_korner <= c.interaction and c.transmit_interaction <= c.wyner
    assert c.markov_max <= c.crossing <= c.transmit_interaction <= c.wyner <= c.joint_closed_form
    assert c.pair.in_receive_set and not c.pair.in_markov_receive_set
    assert not c.pair.markov1 and not c.pair.markov2 and not c.pair.in_transmit_set
    assert c.pair.leak1 > 0.1 and c.pair.leak2 > 0.1


@pytest.mark.parametrize("a", [0.02, 0.1, 0.3, 0.5])
def test_counterexample_excess_over_joint_rate_is_the_noises_information(a):
    c = theorem1_counterexample_numbers(a)
    h = binary_entropy
    assert c.interaction == pytest.approx(1 - a, abs=1e-12)
    excess = 2 * h(a / 2) - h(a) - a  # I(N B; N (1 - B)) > 0
    assert c.interaction - c.joint_closed_form == pytest.approx(excess, abs=1e-12)
    assert excess > 0 and c.breaks_lemma1


def test_counterexample_membership_with_computed_rates():
    e = evaluate_pair(theorem1_counterexample(0.1), H2, H2, (0.05, 0.05))
    assert e.joint == pytest.approx(1 + binary_entropy(0.1) - 2 * binary_entropy(0.05), abs=1e-8)
    assert e.in_receive_set and not e.in_markov_receive_set and not e.in_transmit_set
    assert e.interaction > e.joint


def test_dsbs_lossy_wyner_achiever_satisfies_cond_3_and_meets_the_transmit_pair():
    a, D = 0.1, 0.05
    table, value = dsbs_lossy_wyner_achiever(a, D)  # [x1, x2, z1, z2, u]
    assert value == pytest.approx(dsbs_lossy_wyner(a, D), abs=1e-12)
    zzu = table.sum(axis=(0, 1)).reshape(2, 2, 2)
    assert conditional_mutual_information(zzu) == pytest.approx(0.0, abs=1e-12)  # Z1 - U - Z2
    xuz = table.reshape(4, 4, 2).transpose(0, 2, 1)  # [x, u, z]
    assert conditional_mutual_information(xuz) == pytest.approx(0.0, abs=1e-12)  # X - Z - U
    p = doubly_symmetric_binary_source(a)
    transmit = joint_rate_distortion_at(p, H2, H2, D)
    np.testing.assert_allclose(table.sum(axis=4), p[:, :, None, None] * transmit.channel, atol=1e-6)


# --------------------------------------------------------------------------------------------
# The repaired receive set and the proved inequalities
# --------------------------------------------------------------------------------------------


def test_markov_receive_max_beats_a_grid_of_couplings():
    p = doubly_symmetric_binary_source(0.1)
    q = binary_symmetric_channel(0.05)
    best, table = markov_receive_max(p, q, q)
    e = evaluate_pair(table, H2, H2, (0.05, 0.05), rates=(1 - binary_entropy(0.05),) * 2 + (1,))
    assert e.in_markov_receive_set and e.interaction == pytest.approx(best, abs=1e-12)
    grid = np.linspace(0, 1, 6)
    found = -np.inf
    for ts in itertools.product(grid, repeat=4):
        trial = np.zeros((2, 2, 2, 2))
        for t, (x1, x2) in zip(ts, itertools.product((0, 1), repeat=2), strict=True):
            u, v = q[x1, 1], q[x2, 1]  # P(Z1 = 1 | x1), P(Z2 = 1 | x2)
            both = max(0.0, u + v - 1) + t * (min(u, v) - max(0.0, u + v - 1))
            trial[x1, x2] = p[x1, x2] * np.array([[1 - u - v + both, v - both], [u - both, both]])
        found = max(found, _interaction(trial))
    assert found <= best + 1e-9
    assert best == pytest.approx(0.36606, abs=1e-4)


def test_interaction_information_is_below_i_x_u_for_every_wyner_like_u():
    """Repaired Eq. 49-54: Z1 - U - Z2 and X - (Z1, Z2) - U give I(X; Z1; Z2) <= I(X; U)."""
    rng = np.random.default_rng(5)
    worst = -np.inf
    for _ in range(300):
        n_u, n_x = rng.integers(2, 4), rng.integers(2, 5)
        alpha = rng.choice([0.2, 1.0])
        p_u = rng.dirichlet(np.full(n_u, alpha))
        z1, z2 = rng.dirichlet(np.full(2, alpha), size=(2, n_u))
        x_given_z = rng.dirichlet(np.full(n_x, alpha), size=(2, 2))
        joint = np.einsum("u,ua,ub,abx->abxu", p_u, z1, z2, x_given_z)  # [z1, z2, x, u]
        ii = interaction_information(joint.sum(axis=3))
        i_xu = mutual_information(joint.sum(axis=(0, 1)))
        worst = max(worst, ii - i_xu)
        # The identity behind it: II = I(X; U) - I(X; U | Z1) - I(X; U | Z2) - I(Z1; Z2 | U, X).
        given_z1 = conditional_mutual_information(joint.sum(axis=1).transpose(1, 2, 0))
        given_z2 = conditional_mutual_information(joint.sum(axis=0).transpose(1, 2, 0))
        given_ux = conditional_mutual_information(joint.reshape(2, 2, -1))
        assert ii == pytest.approx(i_xu - given_z1 - given_z2 - given_ux, abs=1e-12)
    assert worst <= 1e-12


def test_random_markov_pairs_stay_below_the_crossing():
    """Repaired Lemma 1: in R', II = R1 + R2 - I(X; Z1, Z2) <= R1 + R2 - R12 <= II of T."""
    rng = np.random.default_rng(12)
    p = rng.dirichlet(np.ones(9)).reshape(3, 3)
    d = hamming_distortion(3)
    transmit = joint_rate_distortion(p, d, d, (2.0, 3.0))
    targets = (transmit.distortion1, transmit.distortion2)
    m1 = rate_distortion(p.sum(axis=1), d, targets[0])
    m2 = rate_distortion(p.sum(axis=0), d, targets[1])
    rates = (m1.rate, m2.rate, transmit.rate)
    t = evaluate_pair(p[:, :, None, None] * transmit.channel, d, d, targets, rates=rates)
    assert t.in_transmit_set and not t.markov1 and not t.markov2
    assert t.crossing <= t.interaction + 1e-9
    best, table = markov_receive_max(p, m1.channel, m2.channel)
    assert evaluate_pair(table, d, d, targets, rates=rates).in_markov_receive_set
    assert best <= t.crossing + 1e-9
    for seed in range(5):  # random couplings of the two channels: members of R' too
        coupling = _random_coupling_of(m1.channel, m2.channel, np.random.default_rng(seed))
        r = evaluate_pair(p, d, d, targets, channel=coupling, rates=rates)
        assert r.in_markov_receive_set and r.interaction <= best + 1e-9


def _random_coupling_of(q1, q2, rng):
    """Z1, Z2 given (x1, x2): a mixture of the product and the comonotone coupling of q1[x1] and
    q2[x2] (cumulative distributions matched)."""
    n1, m1 = q1.shape
    n2, m2 = q2.shape
    out = np.zeros((n1, n2, m1, m2))
    for x1, x2 in itertools.product(range(n1), range(n2)):
        a, b = q1[x1], q2[x2]
        cuts = np.union1d(np.cumsum(a), np.cumsum(b))
        lows = np.concatenate([[0.0], cuts[:-1]])
        comonotone = np.zeros((m1, m2))
        for low, high in zip(lows, cuts, strict=True):
            mid = (low + high) / 2
            i = min(int(np.searchsorted(np.cumsum(a), mid)), m1 - 1)
            j = min(int(np.searchsorted(np.cumsum(b), mid)), m2 - 1)
            comonotone[i, j] += high - low
        weight = rng.uniform()
        out[x1, x2] = weight * comonotone + (1 - weight) * np.outer(a, b)
    return out


def test_joint_rate_distortion_point_recovers_a_blahut_arimoto_point():
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(6)).reshape(2, 3)
    d1 = hamming_distortion(2)
    d2 = rng.uniform(0.2, 1.0, (3, 3))
    np.fill_diagonal(d2, 0.0)
    reference = joint_rate_distortion(p, d1, d2, (1.5, 2.5))
    point = joint_rate_distortion_point(p, d1, d2, (reference.distortion1, reference.distortion2))
    assert point.rate == pytest.approx(reference.rate, abs=1e-8)
    assert (point.distortion1, point.distortion2) == pytest.approx(
        (reference.distortion1, reference.distortion2), abs=1e-9
    )


# --------------------------------------------------------------------------------------------
# The search
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("alphabet", "n_sources"), [(2, 8), (3, 4)])
def test_search_finds_no_violation_of_the_repaired_chain(alphabet, n_sources):
    """Seed 1: no violation of the repaired chain; the unrestricted receive set breaks Lemma 1 on
    binary sources (about half of them; about 1 in 6 ternary ones in the 100-case run)."""
    result = search_theorem1(n_sources=n_sources, alphabet=alphabet, n_channels=8, seed=1)
    assert result.cases + result.skipped == n_sources and result.cases >= n_sources - 1
    assert result.repaired_violations == 0
    assert result.worst_margin_joint > 0 and result.worst_margin_transmit >= -result.tolerance
    assert result.worst_margin_crossing >= -result.tolerance
    assert result.membership_failures == 0 and result.solver_misses == 0
    if alphabet == 2:
        assert result.literal_above_transmit >= 1 and result.literal_largest_excess > 1e-3
    worst = result.worst_case
    assert worst.markov_max <= worst.crossing + 1e-6 <= worst.transmit_interaction + 2e-6


def test_search_is_seeded():
    first = search_theorem1(n_sources=2, alphabet=2, n_channels=3, seed=4)
    second = search_theorem1(n_sources=2, alphabet=2, n_channels=3, seed=4)
    assert first.worst_margin_transmit == second.worst_margin_transmit
    assert first.literal_largest_excess == second.literal_largest_excess


# --------------------------------------------------------------------------------------------
# Input errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"p": np.full((2, 2, 2), 1 / 8)}, "p"),
        ({"p": np.full((2, 2), 0.25), "channel": np.full((2, 2, 2, 2), 0.3)}, "channel"),
        ({"p": np.full((2, 2), 0.25), "channel": np.full((3, 2, 2, 2), 0.25)}, "channel"),
        ({"distortion1": np.zeros((3, 2))}, "distortion1"),
        ({"distortion2": -H2}, "distortion2"),
        ({"targets": (0.1, -0.1)}, "targets"),
        ({"targets": 0.1}, "targets"),
        ({"rates": (1.0, 1.0)}, "rates"),
        ({"rates": (1.0, np.nan, 1.0)}, "rates"),
        ({"tolerance": 0.0}, "tolerance"),
    ],
)
def test_evaluate_pair_names_the_bad_parameter(kwargs, name):
    args = {
        "p": theorem1_counterexample(0.1),
        "distortion1": H2,
        "distortion2": H2,
        "targets": (0.05, 0.05),
        "rates": (0.5, 0.5, 0.8),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        evaluate_pair(**args)


def test_other_functions_name_the_bad_parameter():
    p = doubly_symmetric_binary_source(0.1)
    q = binary_symmetric_channel(0.05)
    with pytest.raises(ValueError, match="crossover"):
        theorem1_counterexample(0.7)
    with pytest.raises(ValueError, match="channel2"):
        markov_receive_max(p, q, q[:, :1])
    with pytest.raises(ValueError, match="targets"):
        joint_rate_distortion_point(p, H2, H2, (-0.1, 0.1))
    with pytest.raises(ValueError, match="distortion"):
        dsbs_lossy_wyner(0.1, 0.2)  # above a1
    with pytest.raises(ValueError, match="alphabet"):
        search_theorem1(n_sources=1, alphabet=1)
    with pytest.raises(ValueError, match="n_sources"):
        search_theorem1(n_sources=0)
    with pytest.raises(ValueError, match="slopes"):
        search_theorem1(n_sources=1, slopes=(2.0, 1.0))
    with pytest.raises(ValueError, match="p_xwyz"):
        conditional_interaction_information(np.full((2, 2, 2), 1 / 8))
