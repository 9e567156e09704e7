"""Wyner's common information of K discrete sources, computed (chapter "Beyond two tasks"; the
two-source method is :func:`~gwnlib.theory.common_information.wyner_common_information`, chapter
"Gray-Wyner networks and lossy common information").

C(X_1; ...; X_K) = min I(X_1..X_K; W) over W given which X_1, ..., X_K are mutually independent
(Wyner 1975 for K = 2; Liu, Xu & Chen 2010 for K sources). It is the least rate of a stream read
by all K receivers that leaves the transmit rate at H(X_1..X_K) when every other stream is
private. Bounds, each proved where it is tested (tests/test_theory_multiterminal.py):

    max(K(X_1..X_K), DTC, max over pairs C(X_i; X_j))  <=  C  <=  min_i H(X_rest of i) <= H(X).

Method: the same as for two sources. With TC(X | W) = sum_i H(X_i | W) - H(X | W) >= 0, zero
exactly when the X_i are independent given W, the penalised objective
I(X; W) + lambda TC(X | W) equals lambda [beta I(X; W) + sum_i H(X_i | W) - H(X)] with
beta = 1 + 1 / lambda: the Gray-Wyner objective of a K-receiver network with one stream read by
all (priced beta) and K private streams (priced 1). The update

    q(w | x)  proportional to  p(w) [prod_i p(x_i | w)] ** (1 / beta)

never increases it (each factor minimises a variational upper bound, as in Blahut 1972), and is
accelerated by SQUAREM (Varadhan & Roland 2008). A continuation over :data:`PENALTY_SCHEDULE`
ends with plain updates at beta = 1, EM for the latent-class model p(w) prod_i p(x_i | w), which
land on an exact conditional independence. The answer is the best W found among random and
structured starts: an upper bound on C, exact on the tested sources with closed forms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gwnlib.theory.alternating import LOG_FLOOR, TINY, minimise, normalise, one_hot
from gwnlib.theory.checks import check_count, check_positive
from gwnlib.theory.common_information import PENALTY_SCHEDULE
from gwnlib.theory.entropy import check_pmf, entropy, mutual_information
from gwnlib.theory.multivariate import common_part, marginal, total_correlation


@dataclass(frozen=True, eq=False)
class MultivariateWyner:
    """The best W found by :func:`multivariate_wyner`.

    ``value``: I(X; W), the estimate of C(X_1; ...; X_K). ``residual``: TC(X | W), how far the
    X_i are from independent given W (0 up to rounding when ``feasible``). Both in bits.
    ``q_w_given_x``: the test channel, indexed like ``p`` with W as the last axis.
    ``restarts``: how many candidate W were compared.
    """

    value: float
    residual: float
    feasible: bool
    q_w_given_x: np.ndarray
    restarts: int


def multivariate_wyner(
    p,
    n_w: int | None = None,
    restarts: int = 8,
    seed: int = 0,
    tol: float = 1e-12,
    max_iter: int = 5_000,
    feasibility_tol: float = 1e-9,
) -> MultivariateWyner:
    """Wyner's common information C(X_1; ...; X_K) of a joint table ``p[x1, ..., xK]``, in bits.

    ``n_w``: the alphabet of W, by default the number of cells of positive probability (enough:
    keeping p(x) on the support and I(X; W) fixed is that many linear constraints, so
    Caratheodory's theorem leaves that many values of W). ``restarts`` random Dirichlet(1) starts
    (from ``numpy.random.default_rng(seed)``) join the continuation at different stages;
    smoothed structured starts (W = the Gács-Körner part, W = all sources but one, W = X) run
    beside them, and the exact W = const, the Gács-Körner part, X_rest, X are candidates too. The
    result is the least I(X; W) among candidates whose residual is at most ``feasibility_tol``
    (bits), else the one with the least residual, ``feasible=False``. ``tol`` (bits): a stage
    stops when no start gains more per round; ``max_iter``: updates per stage at most.
    """
    p = check_pmf(p, name="p")
    if p.ndim < 2:
        raise ValueError(f"p must be a table with at least 2 axes (one per source); got {p.shape}")
    restarts = check_count("restarts", restarts, minimum=0)
    max_iter = check_count("max_iter", max_iter, minimum=1)
    tol = check_positive("tol", tol) * np.log(2)
    feasibility_tol = check_positive("feasibility_tol", feasibility_tol)
    cells = np.argwhere(p > 0)
    mass = p[tuple(cells.T)]
    n_w = len(cells) if n_w is None else check_count("n_w", n_w, minimum=1)
    onehots = [(cells[:, [i]] == np.arange(n)).astype(np.float64) for i, n in enumerate(p.shape)]
    model = (mass, onehots)

    labels = _labelings(p, cells, n_w)
    rng = np.random.default_rng(seed)
    stages = np.array(PENALTY_SCHEDULE) * _penalty_scale(p)
    random = np.log(np.maximum(rng.dirichlet(np.ones(n_w), size=(restarts, len(cells))), TINY))
    smooth = [np.log(0.9 * one_hot(lab, n_w) + 0.1 / n_w) for lab in labels]
    z = normalise(np.concatenate([random, np.array(smooth).reshape(-1, len(cells), n_w)]))
    start = np.concatenate(
        [np.arange(restarts) % len(stages), np.full(len(smooth), len(stages) - 1)]
    )
    for k, penalty in enumerate(stages):
        active = start <= k
        if np.any(active):
            beta = 1.0 + 1.0 / penalty
            z[active] = minimise(model, z[active], beta, tol, max_iter, step=_step)[0]
    z = minimise(model, z, 1.0, tol, max_iter, accelerate=False, step=_step)[
        0
    ]  # onto exact independence
    constant = np.zeros(len(cells), dtype=np.int64)
    exact = np.array([one_hot(lab, n_w) for lab in [*labels, constant]])
    exact = np.maximum(np.log(np.maximum(exact, TINY)), LOG_FLOOR)
    candidates = np.concatenate([z, exact])

    best, best_key = None, None
    for z_candidate in candidates:
        q = np.exp(z_candidate)
        value, residual = _measures(mass, onehots, q)
        feasible = residual <= feasibility_tol
        key = (not feasible, value if feasible else residual)
        if best_key is None or key < best_key:
            best, best_key = (value, residual, feasible, q), key
    value, residual, feasible, q = best
    table = np.zeros((*p.shape, n_w))
    table[tuple(cells.T)] = q
    return MultivariateWyner(float(value), float(residual), bool(feasible), table, len(candidates))


def _measures(mass, onehots, q) -> tuple[float, float]:
    """(I(X; W), TC(X | W)) in bits for the channel q[cell, w], via entropy.py."""
    p_cw = mass[:, None] * q
    h_w = entropy(p_cw.sum(axis=0))
    private = sum(entropy(onehot.T @ p_cw) - h_w for onehot in onehots)
    return mutual_information(p_cw), private - (entropy(p_cw) - h_w)


def _step(model, z, beta):
    """One update of every start (z[b, cell, w] = log q) and the objective (nats) before it."""
    mass, onehots = model
    p_cw = mass[None, :, None] * np.exp(z)
    p_w = p_cw.sum(axis=1)
    log_p_w = np.log(np.maximum(p_w, TINY))
    info = (p_cw * z).sum(axis=(1, 2)) - (p_w * log_p_w).sum(axis=1)
    likelihood = np.zeros_like(z)
    private = np.zeros(len(z))
    for onehot in onehots:
        p_xw = np.einsum("bcw,cx->bxw", p_cw, onehot)
        log_px_w = np.log(np.maximum(p_xw, TINY)) - log_p_w[:, None, :]
        private -= (p_xw * log_px_w).sum(axis=(1, 2))
        likelihood += np.einsum("bxw,cx->bcw", log_px_w, onehot)
    return normalise(log_p_w[:, None, :] + likelihood / beta), beta * info + private


def _labelings(p, cells, n_w) -> list[np.ndarray]:
    """Labels w(cell) for W = Gács-Körner part, W = X_rest (each i), W = X, where n_w allows."""
    K = p.ndim
    labels = []
    common = common_part(p).labels[tuple(cells.T)]
    if common.max() > 0:
        labels.append(common)
    for i in range(K):
        rest = np.delete(cells, i, axis=1)
        labels.append(np.unique(rest, axis=0, return_inverse=True)[1].reshape(-1))
    labels.append(np.arange(len(cells)))
    return [lab for lab in labels if lab.max() < n_w]


def _penalty_scale(p) -> float:
    """Stretch of the schedule for nearly independent sources: W = const has value 0 and
    residual TC, so it wins while lambda TC < C; stretching by max(1, U / (10 TC)), with
    U = min_i H(X_rest) >= C, makes the last weight at least 10 C / TC."""
    tc = total_correlation(p)
    everyone = range(1, p.ndim + 1)
    upper = min(entropy(marginal(p, [j for j in everyone if j != i])) for i in everyone)
    return max(1.0, upper / (10 * tc)) if tc > 1e-15 else 1.0
