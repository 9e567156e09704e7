"""What K discrete sources have in common: multivariate information measures, the Gács-Körner
common part of a set of variables, and worked example sources (chapter "Beyond two tasks"; the
two-variable versions are in chapter "Gray-Wyner networks and lossy common information").

In a K-receiver Gray-Wyner network (:mod:`~gwnlib.theory.multiterminal`) the stream Y_S is read
by the receivers in S. What it can carry for free, i.e. without raising the receive rate, is the
Gács-Körner common part of X_S (:func:`common_part`); what the streams must carry in all, the
joint entropy. The measures in between:

* co-information I(X_1; ...; X_K) = sum over non-empty T of (-1)^(|T| + 1) H(X_T) (Bell 2003;
  McGill 1954; Yeung's I-measure of the common atom). For K = 3 it is I(X1; X2) - I(X1; X2 | X3),
  the sign convention of :func:`~gwnlib.theory.entropy.interaction_information` (paper Eq. 22):
  positive for redundancy, negative for synergy (-1 bit for Z = X xor Y).
* total correlation TC = sum_i H(X_i) - H(X_1..X_K) (Watanabe 1960): what separate coding of the
  sources wastes, the gap between the receive and transmit bounds.
* dual total correlation DTC = H(X_1..X_K) - sum_i H(X_i | X_rest) (Han 1978): the part of the
  joint entropy that is shared by at least two sources. It bounds Wyner's common information of
  K variables from below (:mod:`~gwnlib.theory.multivariate_wyner`).

Tables are NumPy arrays ``p[x1, ..., xK]`` (one axis per source); variables are numbered 1..K
like receivers; results in bits unless ``base`` says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations, product

import numpy as np

from gwnlib.theory.alternating import component_labels
from gwnlib.theory.checks import check_crossover
from gwnlib.theory.entropy import check_pmf, entropy


def marginal(p, variables) -> np.ndarray:
    """The joint table of the ``variables`` (numbers in 1..K, kept in the order given)."""
    p = check_pmf(p, name="p")
    variables = check_variables(variables, p.ndim)
    others = tuple(axis for axis in range(p.ndim) if axis + 1 not in variables)
    kept = p.sum(axis=others) if others else p
    order = np.argsort(np.argsort(variables))  # axes of ``kept`` are in increasing variable order
    return np.transpose(kept, order)


def co_information(p, base: float = 2) -> float:
    """I(X_1; ...; X_K) = sum over non-empty T of (-1)^(|T| + 1) H(X_T) (Bell 2003).

    K = 2: I(X1; X2). K = 3: I(X1; X2) - I(X1; X2 | X3), as in
    :func:`~gwnlib.theory.entropy.interaction_information` (paper Eq. 22).
    """
    p = check_pmf(p, name="p")
    total = 0.0
    for size in range(1, p.ndim + 1):
        for t in combinations(range(1, p.ndim + 1), size):
            total += (-1) ** (size + 1) * entropy(marginal(p, t), base)
    return total


def total_correlation(p, base: float = 2) -> float:
    """TC = sum_i H(X_i) - H(X_1, ..., X_K) (Watanabe 1960); 0 iff the X_i are independent."""
    p = check_pmf(p, name="p")
    singles = sum(entropy(marginal(p, (i,)), base) for i in range(1, p.ndim + 1))
    return singles - entropy(p, base)


def dual_total_correlation(p, base: float = 2) -> float:
    """DTC = H(X_1..X_K) - sum_i H(X_i | X_rest) (Han 1978), with H(X_i | X_rest) =
    H(X_1..X_K) - H(X_rest). For K = 2 it is I(X1; X2)."""
    p = check_pmf(p, name="p")
    K = p.ndim
    joint = entropy(p, base)
    rest = [tuple(j for j in range(1, K + 1) if j != i) for i in range(1, K + 1)]
    return joint - sum(joint - entropy(marginal(p, r), base) for r in rest)


@dataclass(frozen=True, eq=False)
class CommonPart:
    """The Gács-Körner common part J of the ``variables``, the finest variable each determines.

    ``value``: K(X_S) = H(J). ``labels``: J for every cell of the marginal table of the variables
    (axes in the order of ``variables``), -1 on cells of probability 0. ``probabilities``: the
    law of J. ``functions``: for each variable, J as a function of its symbols (-1 for symbols of
    probability 0).
    """

    variables: tuple[int, ...]
    value: float
    labels: np.ndarray
    probabilities: np.ndarray
    functions: tuple[np.ndarray, ...]


def common_part(p, variables=None, base: float = 2) -> CommonPart:
    """Gács-Körner common information K(X_{i1}; ...; X_{im}) of the ``variables`` (default all).

    Generalises :func:`~gwnlib.theory.common_information.gacs_korner` (paper Eq. 4, 8): the
    nodes of a hypergraph are the symbols (i, x_i) of every variable, and every cell of the
    support joins its m symbols. A function that every X_i determines is constant on each
    connected component (a cell forces f_1(x_1) = ... = f_m(x_m)), and the component index J is
    one, so J is the finest such function and K = H(J). The table is then block diagonal in J
    along every axis at once.
    """
    p = check_pmf(p, name="p")
    variables = tuple(range(1, p.ndim + 1)) if variables is None else variables
    variables = check_variables(variables, p.ndim)
    table = marginal(p, variables)
    labels = component_labels(table)
    count = int(labels.max()) + 1
    masses = np.array([table[labels == j].sum() for j in range(count)])
    masses = masses / masses.sum()  # remove rounding; the masses sum to 1
    # The part as a function of each variable: the label its value's cells share (-1: unused).
    functions = tuple(
        np.moveaxis(labels, axis, 0).reshape(size, -1).max(axis=1)
        for axis, size in enumerate(table.shape)
    )
    return CommonPart(variables, entropy(masses, base), labels, masses, functions)


def common_part_profile(p, base: float = 2) -> dict[tuple[int, ...], float]:
    """{S: K(X_S)} for every set S of at least two variables, largest first: what each shared
    stream Y_S of a K-receiver network could carry without raising the receive rate."""
    p = check_pmf(p, name="p")
    K = p.ndim
    return {
        s: common_part(p, s, base).value
        for size in range(K, 1, -1)
        for s in combinations(range(1, K + 1), size)
    }


def check_variables(variables, K: int) -> tuple[int, ...]:
    """Distinct variable numbers in 1..K, at least one."""
    variables = tuple(int(v) for v in np.atleast_1d(variables))
    if not variables or len(set(variables)) != len(variables) or min(variables) < 1:
        raise ValueError(f"variables must be distinct numbers in 1..{K}; got {variables!r}")
    if max(variables) > K:
        raise ValueError(f"variables must be distinct numbers in 1..{K}; got {variables!r}")
    return variables


# --------------------------------------------------------------------------------------------
# Worked examples (three sources)
# --------------------------------------------------------------------------------------------


def xor_source() -> np.ndarray:
    """X1, X2 independent fair bits, X3 = X1 xor X2: a 2x2x2 table.

    Pairwise independent (every pair is uniform on 4 values), so every pairwise measure is 0, yet
    any two determine the third: H(X) = 2, TC = 3 - 2 = 1, DTC = 2 - 0 = 2, co-information
    = 0 - I(X1; X2 | X3) = -1 bit, triple Gács-Körner part 0 (the support joins every symbol).
    """
    p = np.zeros((2, 2, 2))
    for x1, x2 in product(range(2), repeat=2):
        p[x1, x2, x1 ^ x2] = 0.25
    return p


def shared_bit_source() -> np.ndarray:
    """One fair bit copied to all three sources: 1/2 on (0, 0, 0) and (1, 1, 1).

    H(X_i) = H(X) = 1, DTC = 1 - 0 = 1, co-information 1 + 1 + 1 - 3 + 1 = 1, every
    Gács-Körner part 1 and every Wyner C 1 (W = the bit); only TC = 3 - 1 = 2 differs (the bit
    is counted three times and paid once).
    """
    p = np.zeros((2, 2, 2))
    p[0, 0, 0] = p[1, 1, 1] = 0.5
    return p


def pairwise_bits_source() -> np.ndarray:
    """Three fair independent bits a, b, c shared in pairs: X1 = (a, b), X2 = (a, c),
    X3 = (b, c), each coded 2 * first + second, a 4x4x4 table.

    H(X_i) = 2, H(X_i, X_j) = 3, H(X) = 3: TC = 6 - 3 = 3, DTC = 3 - 0 = 3 (any two give the
    third), co-information 6 - 9 + 3 = 0; each pair has a Gács-Körner part of 1 bit (the bit it
    shares), the triple none (0).
    """
    p = np.zeros((4, 4, 4))
    for a, b, c in product(range(2), repeat=3):
        p[2 * a + b, 2 * a + c, 2 * b + c] = 0.125
    return p


def common_plus_noise_source(n_common: int = 2) -> np.ndarray:
    """X_i = (C, N_i): a uniform C on ``n_common`` values, copied to all three, and independent
    fair bits N_1, N_2, N_3; each X_i coded 2 * c + n_i, a (2m)^3 table for m = ``n_common``.

    The common part is C, so K = log2(m) for every set of two or three sources, and Wyner's C is
    log2(m) too: W = C makes the N_i independent, so C <= I(X; C) = H(C), and K <= C always.
    """
    if isinstance(n_common, bool) or int(n_common) != n_common or n_common < 1:
        raise ValueError(f"n_common must be an integer >= 1; got {n_common!r}")
    m = int(n_common)
    p = np.zeros((2 * m,) * 3)
    for c in range(m):
        for n1, n2, n3 in product(range(2), repeat=3):
            p[2 * c + n1, 2 * c + n2, 2 * c + n3] = 1 / (8 * m)
    return p


def noisy_copies_source(crossover: float) -> np.ndarray:
    """A fair bit B seen through three independent binary symmetric channels: X_i = B xor N_i,
    N_i ~ Bernoulli(a), a 2x2x2 table; ``crossover`` a in [0, 1/2].

    p(x) = [(1 - a)^(3 - w) a^w + a^(3 - w) (1 - a)^w] / 2, w the number of ones in x. The values
    move continuously from :func:`shared_bit_source` (a = 0) to three independent bits (a = 1/2),
    except the Gács-Körner parts, which drop from 1 to 0 as soon as a > 0 (full support). Each
    pair is a DSBS with crossover 2a(1 - a).
    """
    a = check_crossover(crossover)
    p = np.zeros((2, 2, 2))
    for x in product(range(2), repeat=3):
        w = sum(x)
        p[x] = ((1 - a) ** (3 - w) * a**w + a ** (3 - w) * (1 - a) ** w) / 2
    return p
