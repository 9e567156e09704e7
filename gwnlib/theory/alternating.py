"""The alternating minimisation behind Wyner's common information and the lossless Gray-Wyner
trade-off (:mod:`gwnlib.theory.common_information`; chapter "Gray-Wyner networks and lossy common
information").

Both minimise, over channels q(w | x, y), beta I(X, Y; W) + H(X | W) + H(Y | W) (in nats) by
Blahut-Arimoto-style updates that never increase it (:func:`update`), all restarts at once as a
batch along axis 0, accelerated by SQUAREM (:func:`squarem`), started from random channels and
from labelings of the support's connected components (:func:`starts`), and carried through a
continuation of stages (:func:`continuation`).
"""

from __future__ import annotations

import numpy as np

TINY = 1e-300  # floor under probabilities before a log
LOG_FLOOR = -800.0  # floor of log q(w | x, y); exp(-800) is 0 in float64
PERTURBATION = 0.02  # size of the log-space jitter that separates coinciding components


def component_labels(p: np.ndarray) -> np.ndarray:
    """Connected-component index of every cell with p > 0 (-1 elsewhere), by union-find, for a
    table of any number of axes.

    Nodes are the values of every axis (rows 0..nx-1, then columns nx..nx+ny-1, ...); each
    positive cell joins its values, one per axis. Components are numbered in order of their
    first cell in row-major order (for two axes: of their smallest row).
    """
    offsets = np.concatenate([[0], np.cumsum(p.shape)])
    parent = list(range(int(offsets[-1])))

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]  # path halving
            node = parent[node]
        return node

    cells = np.argwhere(p > 0)
    for cell in cells:
        roots = [find(int(offsets[axis] + x)) for axis, x in enumerate(cell)]
        for root in roots[1:]:
            a, b = find(roots[0]), find(root)
            if a != b:
                parent[max(a, b)] = min(a, b)
    labels = np.full(p.shape, -1, dtype=np.int64)
    numbering: dict[int, int] = {}
    for cell in cells:  # argwhere is in row-major order
        labels[tuple(cell)] = numbering.setdefault(find(int(cell[0])), len(numbering))
    return labels


def starts(p: np.ndarray, n_w: int, restarts: int, rng, n_stages: int):
    """Initial log q[b, x, y, w] and the continuation stage at which each start begins.

    Random starts are Dirichlet(1) channels, beginning at stages 0, 1, 2, ... in turn so that
    they do not all follow one path; smoothed structured starts (W = X, W = Y, W = the
    Gacs-Korner part) begin at the last stage.
    """
    nx, ny = p.shape
    random = np.log(np.maximum(rng.dirichlet(np.ones(n_w), size=(restarts, nx, ny)), TINY))
    structured = [np.log(0.9 * one_hot(lab, n_w) + 0.1 / n_w) for lab in labelings(p, n_w)]
    z = np.concatenate([random, np.array(structured).reshape(-1, nx, ny, n_w)])
    stage = np.concatenate(
        [np.arange(restarts) % n_stages, np.full(len(structured), n_stages - 1)]
    ).astype(np.int64)
    return normalise(z), stage


def exact_starts(p: np.ndarray, n_w: int) -> np.ndarray:
    """Deterministic W (const, X, Y, Gacs-Korner part, (X, Y)) as log q, where n_w allows."""
    nx, ny = p.shape
    labels = labelings(p, n_w) + [np.zeros((nx, ny), dtype=np.int64)]
    if n_w >= nx * ny:
        labels.append(np.arange(nx * ny).reshape(nx, ny))
    ones = np.array([one_hot(lab, n_w) for lab in labels])
    return np.maximum(np.log(np.maximum(ones, TINY)), LOG_FLOOR)


def labelings(p: np.ndarray, n_w: int) -> list[np.ndarray]:
    """Labels w(x, y) for W = X, W = Y and W = the Gacs-Korner part, those that fit in n_w."""
    nx, ny = p.shape
    common = np.maximum(component_labels(p), 0)  # zero cells: any label
    labels = [np.repeat(np.arange(nx)[:, None], ny, 1), np.repeat(np.arange(ny)[None], nx, 0)]
    if common.max() > 0:
        labels.append(common)
    return [lab for lab in labels if lab.max() < n_w]


def one_hot(labels: np.ndarray, n_w: int) -> np.ndarray:
    return (labels[..., None] == np.arange(n_w)).astype(np.float64)


def normalise(z: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis, floored at LOG_FLOOR."""
    z = z - z.max(axis=-1, keepdims=True)
    z = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return np.maximum(z, LOG_FLOOR)


def update(p: np.ndarray, z: np.ndarray, beta: np.ndarray):
    """One Blahut-Arimoto-style step: log q <- log p(w) + [log p(x|w) + log p(y|w)] / beta.

    Each factor minimises a variational upper bound of the objective with the others fixed
    (I(X, Y; W) <= E log q / r(w) and H(X | W) <= -E log s(x | w), equal at r = p(w) and
    s = p(x | w)), so the objective never increases. Returns the new log q and the objective
    beta I(X, Y; W) + H(X | W) + H(Y | W), in nats, of the *input* z (one value per restart).
    """
    p_xyw = p[None, :, :, None] * np.exp(z)
    p_xw, p_yw = p_xyw.sum(axis=2), p_xyw.sum(axis=1)
    p_w = p_xw.sum(axis=1)
    log_p_w = np.log(np.maximum(p_w, TINY))
    log_px_w = np.log(np.maximum(p_xw, TINY)) - log_p_w[:, None, :]
    log_py_w = np.log(np.maximum(p_yw, TINY)) - log_p_w[:, None, :]
    info = (p_xyw * z).sum(axis=(1, 2, 3)) - (p_w * log_p_w).sum(axis=1)
    private = (p_xw * log_px_w).sum(axis=(1, 2)) + (p_yw * log_py_w).sum(axis=(1, 2))
    likelihood = log_px_w[:, :, None, :] + log_py_w[:, None, :, :]
    z_new = normalise(log_p_w[:, None, None, :] + likelihood / beta[:, None, None, None])
    return z_new, beta * info - private


def objective(p: np.ndarray, z: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """beta I(X, Y; W) + H(X | W) + H(Y | W) in nats, one value per restart."""
    return update(p, z, beta)[1]


def squarem(p, z: np.ndarray, beta: np.ndarray, step=update):
    """One SQUAREM step (Varadhan & Roland 2008, scheme S3) of ``step`` (default
    :func:`update`; any map ``step(p, z, beta) -> (z', f(z))`` over a batch of log channels
    ``z[b, ...]``), in log space.

    From z0: z1 = U(z0), z2 = U(z1), extrapolate z' = z0 - 2 a r + a^2 v (r = z1 - z0,
    v = z2 - 2 z1 + z0, a = -|r| / |v|, at most -1), then z3 = U(z'). A restart keeps z3 when
    f(z') <= f(z1), else falls back to z2, so the objective never increases. Returns the new z
    and f(z0).
    """
    z1, f0 = step(p, z, beta)
    z2, f1 = step(p, z1, beta)
    r, v = z1 - z, z2 - 2 * z1 + z
    axes, per_start = tuple(range(1, z.ndim)), (-1,) + (1,) * (z.ndim - 1)
    r_norm = np.sqrt((r**2).sum(axis=axes))
    v_norm = np.sqrt((v**2).sum(axis=axes))
    alpha = -np.clip(r_norm / np.maximum(v_norm, TINY), 1.0, 1e3).reshape(per_start)
    with np.errstate(over="ignore", invalid="ignore"):
        z3, f_extrapolated = step(p, normalise(z - 2 * alpha * r + alpha**2 * v), beta)
    accept = np.isfinite(f_extrapolated) & (f_extrapolated <= f1)
    return np.where(accept.reshape(per_start), z3, z2), f0


def minimise(p, z, beta, tol: float, max_iter: int, accelerate: bool = True, step=update):
    """Updates (``step``, default :func:`update`) at fixed beta until no restart gains more than
    ``tol`` (nats) per round.

    A round is one SQUAREM step (three updates) when ``accelerate``, else ten plain updates,
    which move the least (used for the final projection onto Markov chains). Stops after at
    most ``max_iter`` updates; returns (z, updates made).
    """
    f = None
    updates = 0
    while updates < max_iter and len(z):
        if accelerate:
            z, f_new = squarem(p, z, beta, step)
            updates += 3
        else:
            z, f_new = step(p, z, beta)
            for _ in range(9):
                z, _ = step(p, z, beta)
            updates += 10
        if f is not None and np.max(f - f_new) < tol:
            break
        f = f_new
    return z, updates


def continuation(p, z, start_stage, stages, rng, tol, max_iter):
    """Run :func:`minimise` at penalty lambda = stages[k] (beta = 1 + 1 / lambda) for
    k = 0, 1, ...; a start joins at its ``start_stage`` and is left untouched before that. Each
    stage after the first begins with a small jitter of log q, so that components that have
    merged can separate again."""
    iterations = 0
    z = z.copy()
    for k, penalty in enumerate(stages):
        active = start_stage <= k
        if not np.any(active):
            continue
        z_active = z[active]
        if k > 0:
            z_active = normalise(z_active + PERTURBATION * rng.standard_normal(z_active.shape))
        beta = np.full(len(z_active), 1.0 + 1.0 / penalty)
        z[active], steps = minimise(p, z_active, beta, tol, max_iter)
        iterations += steps
    return z, iterations
