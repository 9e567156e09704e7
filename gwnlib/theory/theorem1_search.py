"""Theorem 1 searched: random sources and pairs of test channels, measured against the chain of
inequalities of the repaired theorem (:mod:`gwnlib.theory.theorem1`), and the most a Markov
pair of the receive set can reach (chapter "Gray-Wyner networks and lossy common information").
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from gwnlib.theory.checks import check_count, check_positive
from gwnlib.theory.common_information import (
    wyner_common_information,
)
from gwnlib.theory.entropy import (
    check_pmf,
    mutual_information,
)
from gwnlib.theory.rate_distortion import (
    hamming_distortion,
    joint_rate_distortion,
    rate_distortion,
)
from gwnlib.theory.theorem1 import (
    DEFAULT_TOLERANCE,
    check_channel,
    evaluate_pair,
    pair_interaction,
)

_SLOPE_DOUBLINGS = 4  # times search_theorem1 doubles the slope of a slack distortion


def markov_receive_max(
    p_x1x2, channel1, channel2, tol: float = 1e-13, max_iter: int = 20_000, base: float = 2
) -> tuple[float, np.ndarray]:
    """max I(X; Z1; Z2) over the repaired receive set R' for fixed channels, and its table.

    In R', p(z1 | x1, x2) = channel1[x1] and p(z2 | x1, x2) = channel2[x2]: only the coupling of
    Z1 and Z2 given (X1, X2) is free. There II = I(X1; Z1) + I(X2; Z2) - I(X; Z1, Z2) (Eq. 34),
    whose first two terms the channels fix (R1 and R2 for optimal channels), and I(X; Z1, Z2) is
    convex in the coupling, so the maximum is a convex program. It is solved
    by alternating minimisation (Csiszar & Tusnady 1984): the output law r(z1, z2) and, given r,
    each coupling as the I-projection of r onto the couplings (Sinkhorn scaling). Returns the II
    of the last coupling, computed from its table ``[x1, x2, z1, z2]`` (a member of R', so a lower
    bound on the maximum that the iteration raises to it).
    """
    p = check_pmf(p_x1x2, ndim=2, name="p_x1x2")
    q1 = check_channel("channel1", channel1, p.shape[0])
    q2 = check_channel("channel2", channel2, p.shape[1])
    a = np.broadcast_to(q1[:, None, :], (*p.shape, q1.shape[1]))
    b = np.broadcast_to(q2[None, :, :], (*p.shape, q2.shape[1]))
    r = np.outer(p.sum(axis=1) @ q1, p.sum(axis=0) @ q2)
    previous = np.inf
    for _ in range(max_iter):
        kernel = np.broadcast_to(np.maximum(r, 1e-300), (*p.shape, *r.shape))
        coupling = _sinkhorn(kernel, a, b)
        r = np.einsum("ij,ijkl->kl", p, coupling)
        objective = _mutual_information_nats(p, coupling, r)
        if previous - objective < tol:
            break
        previous = objective
    table = p[:, :, None, None] * coupling
    return pair_interaction(table, base), table


def _mutual_information_nats(p, coupling, r) -> float:
    mass = p[:, :, None, None] * coupling
    mask = mass > 0
    ratio = np.where(mask, coupling, 1.0) / np.where(mask, r[None, None], 1.0)
    return float(np.sum(np.where(mask, mass * np.log(ratio), 0.0)))


def _sinkhorn(kernel, a, b, tol: float = 1e-14, max_iter: int = 10_000) -> np.ndarray:
    """Scale ``kernel[..., i, j] > 0`` to the coupling with marginals ``a[..., i]``, ``b[..., j]``
    (the second marginal is exact, the first within ``tol``)."""
    v = np.ones(b.shape)
    u = np.ones(a.shape)
    for _ in range(max_iter):
        u = a / np.einsum("...ij,...j->...i", kernel, v)
        v = b / np.einsum("...ij,...i->...j", kernel, u)
        coupling = u[..., :, None] * kernel * v[..., None, :]
        if np.max(np.abs(coupling.sum(axis=-1) - a)) < tol:
            break
    return u[..., :, None] * kernel * v[..., None, :]


def _random_coupling(a, b, rng) -> np.ndarray:
    """A random coupling of ``a[..., i]`` and ``b[..., j]``: the product, a random vertex (the
    north-west corner rule in shuffled orders), or a random mixture of the product and 1-3
    vertices (an interior point). Every one has the marginals exactly."""
    kind = rng.integers(3)
    product = a[..., :, None] * b[..., None, :]
    if kind == 0:
        return product
    flat_a = a.reshape(-1, a.shape[-1])
    flat_b = b.reshape(-1, b.shape[-1])
    n_vertices = 1 if kind == 1 else int(rng.integers(1, 4))
    weights = [1.0] if kind == 1 else rng.dirichlet(np.ones(n_vertices + 1))
    mixture = 0.0 if kind == 1 else weights[-1] * product
    for weight in weights[:n_vertices]:
        vertex = np.stack([_northwest(x, y, rng) for x, y in zip(flat_a, flat_b, strict=True)])
        mixture = mixture + weight * vertex.reshape(product.shape)
    return mixture


def _northwest(a, b, rng) -> np.ndarray:
    """The north-west corner coupling of ``a`` and ``b`` in random orders of their symbols."""
    rows, cols = rng.permutation(a.size), rng.permutation(b.size)
    left_a, left_b = a[rows].astype(np.float64), b[cols].astype(np.float64)
    plan = np.zeros((a.size, b.size))
    i = j = 0
    while i < a.size and j < b.size:
        mass = min(left_a[i], left_b[j])
        plan[rows[i], cols[j]] = mass
        left_a[i] -= mass
        left_b[j] -= mass
        if left_a[i] <= left_b[j]:
            i += 1
        else:
            j += 1
    return plan


@dataclass(frozen=True, eq=False)
class Theorem1Case:
    """One random source of :func:`search_theorem1` and what was found on it (bits).

    ``p_x1x2``, ``distortion1``, ``distortion2``, ``targets`` = (D1, D2): the case.
    ``marginal1``, ``marginal2``, ``joint``: R_{X1}(D1), R_{X2}(D2), R_{X1,X2}(D1, D2).
    ``transmit_interaction``: II of T's member (T has one member here). ``markov_max``: the
    largest II found in R' (the convex optimum of :func:`markov_receive_max`, and random
    couplings). ``literal_max``: the largest II found in the unrestricted R (random members).
    ``wyner_bound``: I(X; U) for U = Wyner's W of T's pair (Z1, Z2) (NaN unless searched).
    ``p_transmit``, ``p_markov``, ``p_literal``: the tables ``[x1, x2, z1, z2]`` of those pairs.
    """

    p_x1x2: np.ndarray
    distortion1: np.ndarray
    distortion2: np.ndarray
    targets: tuple[float, float]
    marginal1: float
    marginal2: float
    joint: float
    transmit_interaction: float
    markov_max: float
    literal_max: float
    wyner_bound: float
    p_transmit: np.ndarray
    p_markov: np.ndarray
    p_literal: np.ndarray

    @property
    def crossing(self) -> float:
        """R1 + R2 - R12, which the repaired theorem puts between max_R' and min_T."""
        return self.marginal1 + self.marginal2 - self.joint


@dataclass(frozen=True, eq=False)
class Theorem1Search:
    """What :func:`search_theorem1` found. Counts are of cases, margins in bits.

    Violations of the repaired chain (each beyond ``tolerance``): ``markov_above_joint``
    (max_R' > R12, the issue's check), ``markov_above_transmit`` (max_R' > min_T: repaired
    Lemma 1), ``markov_above_crossing`` (max_R' > R1 + R2 - R12), ``transmit_below_crossing``
    (min_T < R1 + R2 - R12), ``transmit_above_wyner`` (min_T > I(X; U), Eq. 7's right end, for
    the U searched). The literal theorem: ``literal_above_transmit`` and ``literal_above_joint``
    count the cases where a member of the unrestricted R was found above min_T, resp. R12.
    ``worst_margin_*``: the smallest R12 - max_R', min_T - max_R', and gap of the sandwich
    max_R' <= R1 + R2 - R12 <= min_T; ``worst_margin_wyner``: the smallest I(X; U) - min_T (NaN
    unless searched). ``literal_largest_excess``: the largest
    max_R - min_T found. Sanity: ``membership_failures`` (a searched pair not in its set by
    :func:`evaluate_pair`) and ``solver_misses`` (a random coupling above the convex optimum).
    ``worst_case``: the case of least min_T - max_R'; ``literal_worst_case``: of largest excess.
    ``seconds``: CPU time.
    """

    alphabet: int
    cases: int
    skipped: int
    seed: int
    tolerance: float
    markov_above_joint: int
    markov_above_transmit: int
    markov_above_crossing: int
    transmit_below_crossing: int
    transmit_above_wyner: int
    literal_above_transmit: int
    literal_above_joint: int
    worst_margin_joint: float
    worst_margin_transmit: float
    worst_margin_crossing: float
    worst_margin_wyner: float
    literal_largest_excess: float
    membership_failures: int
    solver_misses: int
    worst_case: Theorem1Case | None
    literal_worst_case: Theorem1Case | None
    seconds: float

    @property
    def repaired_violations(self) -> int:
        """Cases breaking any inequality of the repaired chain that was checked."""
        return (
            self.markov_above_joint
            + self.markov_above_transmit
            + self.markov_above_crossing
            + self.transmit_below_crossing
            + self.transmit_above_wyner
        )


def search_theorem1(
    n_sources: int = 100,
    alphabet: int = 2,
    n_channels: int = 20,
    seed: int = 0,
    tolerance: float = DEFAULT_TOLERANCE,
    slopes: tuple[float, float] = (1.0, 8.0),
    wyner: bool = False,
) -> Theorem1Search:
    """Search random sources for violations of Theorem 1, as stated and as repaired (Eqs. 6-7).

    Each case: p(x1, x2) ~ Dirichlet(alpha) on ``alphabet`` x ``alphabet`` symbols (alpha in
    {0.5, 1, 2}, mixed with 2% of the uniform table so that every cell is positive); each
    distortion matrix Hamming or random (zero diagonal, off-diagonal uniform in [0.2, 1]); slopes
    (s1, s2) log-uniform in ``slopes`` (nats per unit distortion). Blahut-Arimoto on the pair
    alphabet with s1 d1 + s2 d2 (:func:`~gwnlib.theory.rate_distortion.joint_rate_distortion`)
    gives (D1, D2), R12 and T's member; :func:`~gwnlib.theory.rate_distortion.rate_distortion`
    gives R_i and the optimal channels of Xi. With every cell positive and exp(-s d) invertible
    (always for Hamming, almost surely for random d), each of these optima is unique, so T is one
    pair and R' is exactly the couplings of the two channels given (X1, X2). R' is searched by
    :func:`markov_receive_max` and ``n_channels`` random couplings (the product among them); the
    unrestricted R by ``n_channels`` random members, in which Zi also looks at X(3-i) (a random
    coupling of p(x(3-i) | xi) with the channel's row). A slack distortion (Di at or above the
    zero-rate distortion of Xi, where R_i = 0 and the channel is not unique) doubles its slope, up
    to four times; a case still slack is skipped. ``wyner``: also check II(T) <= I(X; U) for
    U = Wyner's W of T's pair (slower).
    """
    n_sources = check_count("n_sources", n_sources, 1)
    alphabet = check_count("alphabet", alphabet, 2)
    n_channels = check_count("n_channels", n_channels, 0)
    tolerance = check_positive("tolerance", tolerance)
    if not 0 < slopes[0] <= slopes[1] or not np.isfinite(slopes[1]):
        raise ValueError(f"slopes must be a range 0 < low <= high; got {slopes!r}")
    rng = np.random.default_rng(seed)
    start = time.process_time()
    cases: list[Theorem1Case] = []
    skipped = membership_failures = solver_misses = 0
    for _ in range(n_sources):
        case, failures, misses = _one_case(alphabet, n_channels, rng, tolerance, slopes, wyner)
        if case is None:
            skipped += 1
            continue
        cases.append(case)
        membership_failures += failures
        solver_misses += misses
    return _summary(
        cases, alphabet, skipped, seed, tolerance, membership_failures, solver_misses, start
    )


def _one_case(n, n_channels, rng, tolerance, slopes, wyner):
    """Draw and search one case; None when a distortion is slack (see :func:`search_theorem1`)."""
    p = rng.dirichlet(np.full(n * n, rng.choice([0.5, 1.0, 2.0]))).reshape(n, n)
    p = 0.98 * p + 0.02 / (n * n)
    d1, d2 = _random_distortion(n, rng), _random_distortion(n, rng)
    p1, p2 = p.sum(axis=1), p.sum(axis=0)
    zero_rate = np.array([np.min(p1 @ d1), np.min(p2 @ d2)])
    s = np.exp(rng.uniform(np.log(slopes[0]), np.log(slopes[1]), size=2))
    for _ in range(_SLOPE_DOUBLINGS + 1):
        transmit = joint_rate_distortion(p, d1, d2, (s[0], s[1]))
        targets = (transmit.distortion1, transmit.distortion2)
        slack = np.array(targets) >= zero_rate - 1e-6
        if not slack.any():
            break
        s = np.where(slack, 2 * s, s)  # a steeper slope lowers that distortion
    else:
        return None, 0, 0
    m1, m2 = rate_distortion(p1, d1, targets[0]), rate_distortion(p2, d2, targets[1])
    rates = (m1.rate, m2.rate, transmit.rate)
    q1, q2 = m1.channel, m2.channel

    def measure(table):
        return evaluate_pair(table, d1, d2, targets, rates=rates, tolerance=tolerance)

    p_transmit = p[:, :, None, None] * transmit.channel
    markov_max, p_markov = markov_receive_max(p, q1, q2)
    failures = int(not measure(p_transmit).in_transmit_set)
    failures += int(not measure(p_markov).in_markov_receive_set)

    a = np.broadcast_to(q1[:, None, :], (n, n, q1.shape[1]))
    b = np.broadcast_to(q2[None, :, :], (n, n, q2.shape[1]))
    best_random = -np.inf
    for _ in range(n_channels):
        table = p[:, :, None, None] * _random_coupling(a, b, rng)
        best_random = max(best_random, pair_interaction(table))
    misses = int(best_random > markov_max + tolerance)
    if best_random > markov_max:
        markov_max = best_random  # keep the largest found (it is a member of R' too)

    literal_max, p_literal = -np.inf, None
    for _ in range(n_channels):
        table = _random_receive_member(p, q1, q2, rng)
        value = pair_interaction(table)
        if value > literal_max:
            literal_max, p_literal = value, table
    if p_literal is not None:
        failures += int(not measure(p_literal).in_receive_set)
    else:
        literal_max, p_literal = markov_max, p_markov

    wyner_bound = np.nan
    if wyner:
        wyner_bound = _wyner_bound(p_transmit)
    case = Theorem1Case(
        p_x1x2=p,
        distortion1=d1,
        distortion2=d2,
        targets=targets,
        marginal1=rates[0],
        marginal2=rates[1],
        joint=rates[2],
        transmit_interaction=pair_interaction(p_transmit),
        markov_max=float(markov_max),
        literal_max=float(literal_max),
        wyner_bound=float(wyner_bound),
        p_transmit=p_transmit,
        p_markov=p_markov,
        p_literal=p_literal,
    )
    return case, failures, misses


def _random_receive_member(p, q1, q2, rng) -> np.ndarray:
    """A random member of the unrestricted receive set R: table ``[x1, x2, z1, z2]``.

    p(z1 | x1, x2) comes from a random coupling T1 of p(x2 | x1) and q1(. | x1) (then
    sum_x2 p(x2 | x1) p(z1 | x1, x2) = q1(z1 | x1), so Z1 is still X1 through q1); likewise Z2;
    then a random coupling of Z1 and Z2 given (X1, X2).
    """
    given1 = p / p.sum(axis=1, keepdims=True)  # p(x2 | x1) [x1, x2]
    given2 = (p / p.sum(axis=0, keepdims=True)).T  # p(x1 | x2) [x2, x1]
    t1 = _random_coupling(given1, q1, rng)  # [x1, x2, z1]
    t2 = _random_coupling(given2, q2, rng)  # [x2, x1, z2]
    z1 = t1 / given1[:, :, None]
    z2 = (t2 / given2[:, :, None]).transpose(1, 0, 2)  # [x1, x2, z2]
    return p[:, :, None, None] * _random_coupling(z1, z2, rng)


def _wyner_bound(p_transmit) -> float:
    """I(X; U) for U = Wyner's W of the pair (Z1, Z2): Cond. 43 holds (residual <= 1e-9, else
    NaN), and Cond. 44 by construction (U is drawn from (Z1, Z2) alone)."""
    n1, n2, m1, m2 = p_transmit.shape
    result = wyner_common_information(p_transmit.sum(axis=(0, 1)), restarts=2)
    if not result.feasible:
        return float("nan")  # Cond. 43 would not hold: no bound
    q_u = result.q_w_given_xy  # [z1, z2, u]
    p_xu = np.einsum("xyab,abu->xyu", p_transmit, q_u).reshape(n1 * n2, -1)
    return mutual_information(p_xu)


def _summary(cases, alphabet, skipped, seed, tolerance, failures, misses, start):
    if not cases:
        nan = float("nan")
        return Theorem1Search(
            alphabet, 0, skipped, seed, tolerance, 0, 0, 0, 0, 0, 0, 0, nan, nan, nan, nan, nan,
            failures, misses, None, None, time.process_time() - start,
        )  # fmt: skip
    joint = np.array([c.joint - c.markov_max for c in cases])
    transmit = np.array([c.transmit_interaction - c.markov_max for c in cases])
    upper = np.array([c.crossing - c.markov_max for c in cases])
    lower = np.array([c.transmit_interaction - c.crossing for c in cases])
    wyner = np.array([c.wyner_bound - c.transmit_interaction for c in cases])
    excess = np.array([c.literal_max - c.transmit_interaction for c in cases])
    above_joint = np.array([c.literal_max - c.joint for c in cases])
    return Theorem1Search(
        alphabet=alphabet,
        cases=len(cases),
        skipped=skipped,
        seed=seed,
        tolerance=tolerance,
        markov_above_joint=int(np.sum(joint < -tolerance)),
        markov_above_transmit=int(np.sum(transmit < -tolerance)),
        markov_above_crossing=int(np.sum(upper < -tolerance)),
        transmit_below_crossing=int(np.sum(lower < -tolerance)),
        transmit_above_wyner=int(np.sum(wyner < -tolerance)),  # NaN compares False
        literal_above_transmit=int(np.sum(excess > tolerance)),
        literal_above_joint=int(np.sum(above_joint > tolerance)),
        worst_margin_joint=float(joint.min()),
        worst_margin_transmit=float(transmit.min()),
        worst_margin_crossing=float(min(upper.min(), lower.min())),
        worst_margin_wyner=float(np.nanmin(wyner)) if np.isfinite(wyner).any() else float("nan"),
        literal_largest_excess=float(excess.max()),
        membership_failures=failures,
        solver_misses=misses,
        worst_case=cases[int(np.argmin(transmit))],
        literal_worst_case=cases[int(np.argmax(excess))],
        seconds=time.process_time() - start,
    )


def _random_distortion(n: int, rng) -> np.ndarray:
    """Hamming, or zero diagonal and off-diagonal entries uniform in [0.2, 1], with equal odds."""
    if rng.random() < 0.5:
        return hamming_distortion(n)
    d = rng.uniform(0.2, 1.0, size=(n, n))
    np.fill_diagonal(d, 0.0)
    return d
