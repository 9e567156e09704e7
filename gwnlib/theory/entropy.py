"""Entropies and mutual informations of discrete probability tables (chapter "Gray-Wyner networks
and lossy common information").

Every function takes a probability table as a NumPy array (float64) whose axes are the random
variables, e.g. ``p_xy[x, y]``, and returns bits unless ``base`` says otherwise. Tables must be
non-negative and sum to 1 within ``1e-9``; anything else is a ``ValueError``, never silently
normalised. Equation numbers: Cover & Thomas (2006), and the paper's appendix A.1.
"""

from __future__ import annotations

import numpy as np

#: Tolerance on the total mass of a probability table.
SUM_TOLERANCE = 1e-9


def check_pmf(p, ndim: int | None = None, name: str = "p") -> np.ndarray:
    """Return ``p`` as a float64 array after checking it is a probability table.

    Raises ``ValueError`` when it has negative or non-finite entries, does not sum to 1 within
    :data:`SUM_TOLERANCE`, or (when ``ndim`` is given) has the wrong number of axes.
    """
    p = np.asarray(p, dtype=np.float64)
    if ndim is not None and p.ndim != ndim:
        raise ValueError(f"{name} must be a table with {ndim} axes; got shape {p.shape}")
    if p.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} has non-finite entries")
    if np.any(p < 0):
        raise ValueError(f"{name} has negative entries (smallest {p.min():.3g})")
    total = p.sum()
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ValueError(f"{name} must sum to 1 (within {SUM_TOLERANCE:g}); it sums to {total!r}")
    return p


def _entropy(p: np.ndarray, base: float) -> float:
    """H of an already-checked table: -sum p log p with 0 log 0 = 0."""
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum() / np.log(base)) + 0.0  # + 0.0 turns -0.0 into 0.0


def entropy(p, base: float = 2) -> float:
    """Shannon entropy H(X) = -sum_x p(x) log p(x) (Cover & Thomas Eq. 2.1).

    ``p`` may have several axes; it is then the joint entropy of all of them (Eq. 2.8).
    """
    return _entropy(check_pmf(p), base)


def conditional_entropy(p_xy, base: float = 2) -> float:
    """H(Y|X) = H(X, Y) - H(X) for a joint table ``[x, y]`` (Cover & Thomas Eq. 2.10-2.14)."""
    p = check_pmf(p_xy, ndim=2, name="p_xy")
    return _entropy(p, base) - _entropy(p.sum(axis=1), base)


def mutual_information(p_xy, base: float = 2) -> float:
    """I(X; Y) = H(X) + H(Y) - H(X, Y) for a table ``[x, y]`` (Cover & Thomas 2.45; paper Eq. 16).

    Tiny negative values from rounding are returned as they are (a few 1e-16), not clamped.
    """
    p = check_pmf(p_xy, ndim=2, name="p_xy")
    return _entropy(p.sum(axis=1), base) + _entropy(p.sum(axis=0), base) - _entropy(p, base)


def conditional_mutual_information(p_xyz, base: float = 2) -> float:
    """I(X; Y | Z) for a table ``[x, y, z]`` (Cover & Thomas Eq. 2.60; paper Eq. 18).

    Computed as H(X, Z) + H(Y, Z) - H(X, Y, Z) - H(Z).
    """
    p = check_pmf(p_xyz, ndim=3, name="p_xyz")
    return (
        _entropy(p.sum(axis=1), base)
        + _entropy(p.sum(axis=0), base)
        - _entropy(p, base)
        - _entropy(p.sum(axis=(0, 1)), base)
    )


def interaction_information(p_xyz, base: float = 2) -> float:
    """Interaction information I(X; Y; Z) = I(X; Y) - I(X; Y | Z) (paper Eq. 22; Yeung 1991).

    Symmetric in its three variables; negative when conditioning on Z creates dependence
    (e.g. Z = X xor Y for independent fair bits gives -1 bit).
    """
    p = check_pmf(p_xyz, ndim=3, name="p_xyz")
    return mutual_information(p.sum(axis=2), base) - conditional_mutual_information(p, base)


def binary_entropy(q, base: float = 2):
    """h(q) = -q log q - (1 - q) log(1 - q), elementwise for q in [0, 1] (Cover & Thomas 2.5)."""
    q = np.asarray(q, dtype=np.float64)
    if np.any((q < 0) | (q > 1)) or not np.all(np.isfinite(q)):
        raise ValueError("binary_entropy needs probabilities q in [0, 1]")
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(np.where(q > 0, q * np.log(q), 0.0) + np.where(q < 1, (1 - q) * np.log1p(-q), 0.0))
    h = h / np.log(base)
    return float(h) if h.ndim == 0 else h
