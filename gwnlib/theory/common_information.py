"""Common information of a pair of discrete sources, and the lossless Gray-Wyner trade-off.

Three ways to measure what ``X`` and ``Y`` have in common (chapter "Gray-Wyner networks and lossy
common information"; paper Sec. 2.1 and 3):

* Gacs-Korner's common information K (Gacs & Korner 1973; the lossless case of the paper's
  Eq. 4): the entropy of the largest variable that both ``X`` and ``Y`` determine, read off the
  connected components of the table's support (the block-diagonal, "ergodic" decomposition of
  the paper's Eq. 8).
* Wyner's common information C (Wyner 1975; the lossless case of the paper's Eq. 2): the least
  I(X, Y; W) over variables ``W`` that make ``X`` and ``Y`` conditionally independent.
* The lossless Gray-Wyner network (Gray & Wyner 1974; paper Eq. 9-10 and 12): the corner points
  (R0, R1, R2) = (I(X, Y; W), H(X|W), H(Y|W)) that minimise beta * R0 + R1 + R2. They run from C
  (beta -> 1) to K (beta -> 2), and K <= I(X; Y) <= C <= min(H(X), H(Y)).

C and the Gray-Wyner points are non-convex minimisations over q(w | x, y). They are solved by an
alternating minimisation in the style of Blahut-Arimoto (Blahut 1972; Arimoto 1972), accelerated
by SQUAREM (Varadhan & Roland 2008), from several random and structured starts. The answer is
the best W found: an achievable point, so C and the curve are bounded from above, never below
(up to the reported Markov residual). On the sources with closed forms in the tests (DSBS, common
bit + DSBS, separable tables) it is exact to about 1e-12 bits. All numbers are float64, in bits
unless ``base`` says otherwise; tables are indexed ``p_xy[x, y]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gwnlib.theory.alternating import (
    TINY,
    component_labels,
    continuation,
    exact_starts,
    minimise,
    normalise,
    objective,
    starts,
)
from gwnlib.theory.checks import check_count, check_crossover, check_positive
from gwnlib.theory.entropy import (
    binary_entropy,
    check_pmf,
    conditional_mutual_information,
    entropy,
    mutual_information,
)

#: Penalty weights lambda on I(X; Y | W) visited, in turn, by the continuation of
#: :func:`wyner_common_information` (each is beta = 1 + 1 / lambda of the Gray-Wyner objective).
PENALTY_SCHEDULE = (2.0, 5.0, 10.0, 30.0, 100.0)

#: The largest lambda the Gray-Wyner search iterates at (beta closer to 1 than 1 / MAX_PENALTY
#: is searched at this lambda; every candidate is still compared on the exact objective).
MAX_PENALTY = 1e3


# --------------------------------------------------------------------------------------------
# Sources with closed forms
# --------------------------------------------------------------------------------------------


def doubly_symmetric_binary_source(crossover: float) -> np.ndarray:
    """The doubly symmetric binary source DSBS(a): X a fair bit, Y = X xor N, N ~ Bernoulli(a).

    Returns the 2x2 table ``[[(1 - a)/2, a/2], [a/2, (1 - a)/2]]``, Wyner's (1975) worked
    example, with I(X; Y) = 1 - h(a) (Cover & Thomas Eq. 2.45). ``crossover`` a must lie in
    [0, 1/2].
    """
    a = check_crossover(crossover)
    return np.array([[(1 - a) / 2, a / 2], [a / 2, (1 - a) / 2]], dtype=np.float64)


def common_bit_plus_dsbs(crossover: float) -> np.ndarray:
    """X = (B, U), Y = (B, V): a fair common bit B next to an independent DSBS(a) pair (U, V).

    Returns the 4x4 table indexed ``[x, y]`` with x = 2 b + u and y = 2 b' + v, zero unless
    b = b'. The table is block diagonal in B (the paper's Eq. 8 with two blocks that are not
    products), so K = 1 bit (Gacs & Korner 1973), while C = 1 + C_DSBS(a) (Wyner 1975; W = (B,
    the DSBS's W)): the lossless Gray-Wyner trade-off of this source spans a real gap between K
    and C (paper Sec. 3.1-3.2).
    """
    dsbs = doubly_symmetric_binary_source(crossover)
    table = np.zeros((2, 2, 2, 2))
    for b in range(2):
        table[b, :, b, :] = dsbs / 2
    return table.reshape(4, 4)


def wyner_dsbs(crossover: float) -> float:
    """Wyner's closed form for DSBS(a), in bits: C = 1 + h(a) - 2 h(a1) (Wyner 1975).

    a1 = (1 - sqrt(1 - 2a)) / 2 is the crossover of the two binary symmetric channels from the
    optimal W (a fair bit) to X and to Y, so that a1 * (1 - a1) * 2 = a. ``crossover`` a must lie
    in [0, 1/2]; C falls from 1 bit (a = 0) to 0 (a = 1/2).
    """
    a = check_crossover(crossover)
    a1 = (1 - np.sqrt(1 - 2 * a)) / 2
    return float(1 + binary_entropy(a) - 2 * binary_entropy(a1))


# --------------------------------------------------------------------------------------------
# Gacs-Korner
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GacsKorner:
    """Gacs-Korner common information and the decomposition it comes from.

    ``value``: K(X; Y) in the units of ``base``. ``components``: one ``(x_indices, y_indices)``
    pair of int arrays per connected component of the support, ordered by smallest x.
    ``probabilities``: the mass of each component (the law of the common part).
    """

    value: float
    components: list[tuple[np.ndarray, np.ndarray]]
    probabilities: np.ndarray


def gacs_korner(p_xy, base: float = 2) -> GacsKorner:
    """Gacs-Korner common information K(X; Y) = H(J) (Gacs & Korner 1973; paper Eq. 4, 8).

    J is the index of the connected component, in the bipartite graph whose edges are the pairs
    (x, y) with p(x, y) > 0, that (X, Y) falls in. Both X and Y determine J, and every variable
    that both determine is a function of J, so the table is block diagonal in J (the paper's
    Eq. 8 decomposition) and K = H(J). Symbols with zero marginal probability are ignored.
    """
    p = check_pmf(p_xy, ndim=2, name="p_xy")
    _check_base(base)
    labels = component_labels(p)
    components, masses = [], []
    for label in range(int(labels.max()) + 1):
        xs, ys = np.nonzero(labels == label)
        components.append((np.unique(xs), np.unique(ys)))
        masses.append(p[labels == label].sum())
    probabilities = np.array(masses, dtype=np.float64)
    probabilities = probabilities / probabilities.sum()  # remove rounding; masses sum to 1
    return GacsKorner(entropy(probabilities, base), components, probabilities)


# --------------------------------------------------------------------------------------------
# Wyner's common information
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class WynerResult:
    """The best W found by :func:`wyner_common_information`.

    ``value``: I(X, Y; W), the estimate of C(X; Y). ``residual``: I(X; Y | W), how far W is from
    making X - W - Y a Markov chain (0 up to rounding when ``feasible``). Both in the units of
    ``base``. ``q_w_given_xy[x, y, w]`` and ``p_xyw[x, y, w]``: the test channel and the joint
    law. ``iterations``: updates made (each covers all starts at once, as a batch).
    ``restarts``: how many candidate W were compared (random and structured starts after the
    search, and the exact deterministic W = const, X, Y, Gacs-Korner part, (X, Y)).
    """

    value: float
    residual: float
    feasible: bool
    q_w_given_xy: np.ndarray
    p_xyw: np.ndarray
    iterations: int
    restarts: int


def wyner_common_information(
    p_xy,
    n_w: int | None = None,
    restarts: int = 8,
    seed: int = 0,
    tol: float = 1e-12,
    max_iter: int = 10_000,
    base: float = 2,
    feasibility_tol: float = 1e-9,
) -> WynerResult:
    """Wyner's common information C(X; Y) = min I(X, Y; W) over W with X - W - Y (Wyner 1975).

    The lossless case of the paper's Eq. 2. ``n_w`` is the alphabet size of W; the default
    |X||Y| is enough (a Caratheodory argument; Wyner 1975). Method: C is the beta -> 1 end of the
    Gray-Wyner objective beta I(X, Y; W) + H(X|W) + H(Y|W), which equals
    H(X, Y) + (beta - 1) [I(X, Y; W) + lambda I(X; Y | W)] with lambda = 1 / (beta - 1). For each
    lambda of :data:`PENALTY_SCHEDULE` (a continuation), the Blahut-Arimoto-style update

        q(w | x, y)  proportional to  p(w) [p(x | w) p(y | w)] ** (1 / beta)

    never increases the objective (each factor minimises a variational bound, as in Blahut 1972;
    see :func:`update`), accelerated by SQUAREM (Varadhan & Roland 2008). For nearly independent
    X and Y the schedule is stretched (:func:`_penalty_scale`). Last, plain updates at beta = 1,
    which are EM for the latent-class model p(w) p(x | w) p(y | w), drive I(X; Y | W) to 0 and
    land on an exact Markov chain next to the penalised optimum.

    ``restarts`` random starts (Dirichlet(1), from ``numpy.random.default_rng(seed)``), which join
    the continuation at different lambdas so that they do not all follow one path, run beside
    smoothed structured starts (W = X, W = Y, W = the Gacs-Korner part). The result is the least
    I(X, Y; W) among the W whose residual is at most ``feasibility_tol``; if there is none, the W
    with the least residual, marked ``feasible=False``. A stage stops once no start lowers its
    objective by more than ``tol`` in a round, or after ``max_iter`` updates (a SQUAREM round is
    three). ``tol`` and ``feasibility_tol`` are in the units of ``base``. Zero cells are fine.
    """
    p = check_pmf(p_xy, ndim=2, name="p_xy")
    _check_base(base)
    n_w = _check_n_w(n_w, p)
    restarts = check_count("restarts", restarts, minimum=0)
    max_iter = check_count("max_iter", max_iter, minimum=1)
    tol = check_positive("tol", tol)
    feasibility_tol = check_positive("feasibility_tol", feasibility_tol)
    stages = np.array(PENALTY_SCHEDULE) * _penalty_scale(p)
    candidates, iterations = _search(
        p, stages, n_w, restarts, seed, tol * np.log(base), max_iter, project="only"
    )

    best, best_key = None, None
    for z_candidate in candidates:
        q = np.exp(z_candidate)
        p_xyw = p[:, :, None] * q
        value = mutual_information(p_xyw.reshape(-1, n_w), base)
        residual = conditional_mutual_information(p_xyw, base)
        feasible = residual <= feasibility_tol
        key = (not feasible, value if feasible else residual)
        if best_key is None or key < best_key:
            best, best_key = (value, residual, feasible, q, p_xyw), key
    value, residual, feasible, q, p_xyw = best
    return WynerResult(
        value=float(value),
        residual=float(residual),
        feasible=bool(feasible),
        q_w_given_xy=q,
        p_xyw=p_xyw,
        iterations=int(iterations),
        restarts=len(candidates),
    )


def _penalty_scale(p: np.ndarray) -> float:
    """Stretch of :data:`PENALTY_SCHEDULE` for nearly independent X and Y.

    W = const has residual I(X; Y) and value 0, so it is the penalised optimum whenever
    lambda I(X; Y) < C. Stretching by max(1, min(H(X), H(Y)) / (10 I(X; Y))) makes the last weight
    at least 10 min(H(X), H(Y)) / I(X; Y) >= 10 C / I(X; Y) (as C <= min(H(X), H(Y))).
    """
    info = mutual_information(p)
    smaller = min(entropy(p.sum(axis=0)), entropy(p.sum(axis=1)))
    return max(1.0, smaller / (10 * info)) if info > 1e-15 else 1.0


# --------------------------------------------------------------------------------------------
# Lossless Gray-Wyner
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GrayWynerPoint:
    """A corner point of the lossless Gray-Wyner region, chosen by the slope ``beta``.

    ``r0`` = I(X, Y; W) (common rate), ``r1`` = H(X | W), ``r2`` = H(Y | W) (private rates),
    ``objective`` = beta * r0 + r1 + r2, all in the units of ``base``; ``q_w_given_xy[x, y, w]``
    the test channel that achieves them.
    """

    beta: float
    r0: float
    r1: float
    r2: float
    objective: float
    q_w_given_xy: np.ndarray


def lossless_gray_wyner(
    p_xy,
    beta: float,
    n_w: int | None = None,
    restarts: int = 8,
    seed: int = 0,
    tol: float = 1e-12,
    max_iter: int = 10_000,
    base: float = 2,
    warm_starts=(),
) -> GrayWynerPoint:
    """Minimise beta * I(X, Y; W) + H(X | W) + H(Y | W) over q(w | x, y) (Gray & Wyner 1974).

    The lossless case of the paper's Eq. 9-10, weighted as its Eq. 12 with
    alpha_1 = alpha_2 = 1 / beta and scaled by beta. Every W gives an achievable rate triple
    (R0, R1, R2) = (I(X, Y; W), H(X | W), H(Y | W)) of the Gray-Wyner network, and the minimiser
    is the corner of the region where the supporting plane of slope beta touches it. ``beta``
    must lie in [1, 2]: as beta -> 1 the objective becomes H(X, Y) + I(X; Y | W) and R0 tends to
    Wyner's C; as beta -> 2 it becomes H(X) + H(Y) + I(W; Y | X) + I(W; X | Y) and R0 tends to
    Gacs-Korner's K. At the ends themselves the minimiser is not unique, and ties are broken
    towards those limits: at beta = 1 the W with the least R0 (Wyner's), at beta = 2 the one with
    the most (the Gacs-Korner part); elsewhere ties (within 1e-10) go to the least R0.

    Solved like :func:`wyner_common_information`: the same update with exponent 1 / beta, the
    same continuation up to lambda = 1 / (beta - 1) (at most :data:`MAX_PENALTY`), the same starts
    plus ``warm_starts`` (channels q[x, y, w], e.g. the ``q_w_given_xy`` of a nearby beta). Where
    lambda > 100 (beta < 1.01), the solutions projected onto Markov chains (Wyner's W) are
    candidates too. The candidate with the least objective (recomputed with
    :mod:`gwnlib.theory.entropy`) wins.
    """
    beta = _check_beta(beta)
    p = check_pmf(p_xy, ndim=2, name="p_xy")
    warm = [np.log(np.maximum(_check_channel(q, p, n_w), TINY)) for q in warm_starts]
    candidates, _ = _gray_wyner_candidates(p, beta, n_w, restarts, seed, tol, max_iter, base, warm)
    return _best_point(candidates, _all_rates(p, candidates, base), beta)


def gray_wyner_curve(
    p_xy,
    betas,
    n_w: int | None = None,
    restarts: int = 8,
    seed: int = 0,
    tol: float = 1e-12,
    max_iter: int = 10_000,
    base: float = 2,
) -> list[GrayWynerPoint]:
    """:func:`lossless_gray_wyner` at every beta of ``betas``: the lower boundary of the lossless
    Gray-Wyner region traced by the paper's Eq. 12 (Gray & Wyner 1974).

    Betas are solved in increasing order, each warm-started from the two best solutions of the
    previous one; then every solution kept (the four best of each beta) is offered at every beta
    and each beta takes its best. Because all betas choose from one pool, R0 is non-increasing
    in beta, as it is for the exact minimisers. Points come back in the order of ``betas``; the
    other arguments are those of :func:`lossless_gray_wyner`.
    """
    betas = [_check_beta(b) for b in np.atleast_1d(np.asarray(betas, dtype=np.float64))]
    if not betas:
        raise ValueError("betas must hold at least one value in [1, 2]")
    p = check_pmf(p_xy, ndim=2, name="p_xy")
    pool: list[np.ndarray] = []
    warm: list[np.ndarray] = []
    for beta in sorted(set(betas)):
        candidates, objectives = _gray_wyner_candidates(
            p, beta, n_w, restarts, seed, tol, max_iter, base, warm
        )
        order = np.argsort(objectives)
        warm = [candidates[i] for i in order[:2]]
        pool.extend(candidates[i] for i in order[:4])
    pool_array = np.stack(pool)
    rates = _all_rates(p, pool_array, base)
    return [_best_point(pool_array, rates, beta) for beta in betas]


def _gray_wyner_candidates(p_xy, beta, n_w, restarts, seed, tol, max_iter, base, warm_starts):
    """Solutions (log q) of the Gray-Wyner problem at ``beta`` and their objectives (nats)."""
    p = check_pmf(p_xy, ndim=2, name="p_xy")
    _check_base(base)
    tol = check_positive("tol", tol) * np.log(base)
    if beta == 1:  # the limit beta -> 1+: Wyner's W
        stages, project = np.array(PENALTY_SCHEDULE) * _penalty_scale(p), "only"
    else:
        penalty = min(1 / (beta - 1), MAX_PENALTY)
        stages = np.array([lam for lam in PENALTY_SCHEDULE if lam < penalty] + [penalty])
        project = "add" if penalty > PENALTY_SCHEDULE[-1] else "no"  # near 1: offer Wyner's W
    z, _ = _search(p, stages, n_w, restarts, seed, tol, max_iter, project, warm_starts)
    return z, objective(p, z, np.full(len(z), beta))


def _search(p, stages, n_w, restarts, seed, tol, max_iter, project, warm_starts=()):
    """Candidate solutions (log q[b, x, y, w]) of the penalised problems, and updates made.

    Random and structured starts (plus ``warm_starts``) run the continuation over ``stages``
    (penalty weights lambda). ``project``: "no" returns the solutions as they are, "only"
    returns them after plain EM steps at beta = 1 (onto exact Markov chains X - W - Y), "add"
    returns both. The exact deterministic W (const, X, Y, Gacs-Korner part, (X, Y)) are always
    appended.
    """
    n_w = _check_n_w(n_w, p)
    restarts = check_count("restarts", restarts, minimum=0)
    max_iter = check_count("max_iter", max_iter, minimum=1)
    rng = np.random.default_rng(seed)
    z, start_stage = starts(p, n_w, restarts, rng, n_stages=len(stages))
    warm = list(warm_starts)
    if warm:
        z = np.concatenate([z, normalise(np.stack(warm))])
        start_stage = np.concatenate([start_stage, np.full(len(warm), len(stages) - 1)])
    z, iterations = continuation(p, z, start_stage, stages, rng, tol, max_iter)
    if project != "no":
        projected, more = minimise(p, z, np.ones(len(z)), tol, max_iter, accelerate=False)
        iterations += more
        z = projected if project == "only" else np.concatenate([z, projected])
    return np.concatenate([z, exact_starts(p, n_w)]), iterations


def _best_point(candidates: np.ndarray, rates: np.ndarray, beta: float) -> GrayWynerPoint:
    """The candidate with the least beta r0 + r1 + r2 (``rates``: one (r0, r1, r2) row each)."""
    objective = beta * rates[:, 0] + rates[:, 1] + rates[:, 2]
    ties = np.flatnonzero(objective <= objective.min() + 1e-10)
    r0s = rates[ties, 0]
    chosen = ties[np.argmax(r0s) if beta == 2 else np.argmin(r0s)]
    r0, r1, r2 = (float(r) for r in rates[chosen])
    return GrayWynerPoint(
        beta=float(beta),
        r0=r0,
        r1=r1,
        r2=r2,
        objective=float(objective[chosen]),
        q_w_given_xy=np.exp(candidates[chosen]),
    )


def _all_rates(p: np.ndarray, candidates: np.ndarray, base: float) -> np.ndarray:
    """Rows (r0, r1, r2) of :func:`_rates` for every candidate log q."""
    return np.array([_rates(p, np.exp(z), base) for z in candidates])


def _rates(p: np.ndarray, q: np.ndarray, base: float) -> tuple[float, float, float]:
    """(I(X, Y; W), H(X | W), H(Y | W)) of the joint p(x, y) q(w | x, y), via entropy.py."""
    p_xyw = p[:, :, None] * q
    p_xw, p_yw, p_w = p_xyw.sum(axis=1), p_xyw.sum(axis=0), p_xyw.sum(axis=(0, 1))
    h_w = entropy(p_w, base)
    r0 = mutual_information(p_xyw.reshape(-1, p_xyw.shape[2]), base)
    return float(r0), entropy(p_xw, base) - h_w, entropy(p_yw, base) - h_w


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------


def _check_beta(beta) -> float:
    b = float(beta)
    if not 1.0 <= b <= 2.0:
        raise ValueError(f"beta must lie in [1, 2] (the Gray-Wyner slope); got {beta!r}")
    return b


def _check_base(base) -> None:
    if not (np.isfinite(base) and base > 0 and base != 1):
        raise ValueError(f"base must be a positive number other than 1 (2 for bits); got {base!r}")


def _check_channel(q, p: np.ndarray, n_w) -> np.ndarray:
    """A warm start: a channel q[x, y, w] with the shape of ``p`` and ``n_w`` outputs."""
    q = np.asarray(q, dtype=np.float64)
    shape = (*p.shape, _check_n_w(n_w, p))
    if q.shape != shape or not np.all(np.isfinite(q)) or np.any(q < 0):
        raise ValueError(
            f"warm_starts must be channels q[x, y, w] of shape {shape} with entries >= 0; "
            f"got shape {q.shape}"
        )
    return q / np.maximum(q.sum(axis=2, keepdims=True), TINY)


def _check_n_w(n_w, p: np.ndarray) -> int:
    if n_w is None:
        return p.shape[0] * p.shape[1]
    return check_count("n_w", n_w, minimum=1)
