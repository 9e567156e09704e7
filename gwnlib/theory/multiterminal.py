"""A Gray-Wyner network for K receivers, as rates: its streams, their prices and its lossless
bounds (chapter "Beyond two tasks"; the two-receiver case is chapter "Gray-Wyner networks and
lossy common information").

With two receivers the paper's network (Sec. 2.1, Fig. 1) has a common stream Y0 and two private
streams Y1, Y2. With K receivers (Gray & Wyner 1974's network, extended) there is one stream Y_S
for every non-empty set S of receivers, 2^K - 1 streams: receiver i reads every Y_S with i in S.
A set S is a sorted tuple of receiver numbers 1..K, e.g. ``(1, 3)``; :func:`subsets` fixes their
order. For K = 2 that order is (1, 2), (1,), (2,): Y0, Y1, Y2.

Rates ``rates`` are given either as a sequence of 2^K - 1 numbers in the order of
:func:`subsets` (K is read from the length) or as a mapping {S: R_S} (missing streams carry 0;
K is the largest receiver named unless ``K`` is given). All rates are float64, in bits.

The generalised beta (:func:`stream_prices`). The paper's rate term (Eq. 12, from Eq. 9-10 with
alpha_1 = alpha_2 = alpha and beta = 1 / alpha, multiplied by beta) is beta R0 + R1 + R2, with
beta in [1, 2]. It is exactly the interpolation

    (2 - beta) R_t + (beta - 1) R_r = (2 - beta)(R0 + R1 + R2) + (beta - 1)(2 R0 + R1 + R2)
                                    = beta R0 + R1 + R2,

with no extra normalisation: beta = 1 is the transmit rate, beta = 2 the receive rate, and
beta = 3/2 weighs them equally (paper Sec. 3.2). With K receivers R_t = sum_S R_S and
R_r = sum_S |S| R_S, so any objective lambda_t R_t + lambda_r R_r prices stream S at
lambda_t + lambda_r |S|, an affine function of |S|. Asking, as Eq. 12 does, that a private stream
(|S| = 1) cost 1 and that beta be the price of the stream all receivers read (|S| = K) gives
lambda_t + lambda_r = 1 and lambda_t + K lambda_r = beta, so

    lambda_t = (K - beta) / (K - 1),  lambda_r = (beta - 1) / (K - 1),
    w(S) = ((K - beta) + (beta - 1) |S|) / (K - 1) = 1 + (beta - 1)(|S| - 1) / (K - 1).

Both weights are >= 0 exactly when beta lies in [1, K]: beta = 1 prices every stream at 1 (the
transmit rate), beta = K prices stream S at |S| (the receive rate), beta = (K + 1) / 2 weighs both
equally. A price such as beta ** ((|S| - 1) / (K - 1)) agrees at the ends but is not a combination
of R_t and R_r in between. At K = 2 the prices are (beta, 1, 1): the paper's weighting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from gwnlib.theory.checks import check_count
from gwnlib.theory.entropy import check_pmf, entropy


def subsets(K: int) -> list[tuple[int, ...]]:
    """The 2^K - 1 non-empty sets of receivers 1..K, as sorted tuples: largest sets first, then
    lexicographic. K = 3: (1, 2, 3), (1, 2), (1, 3), (2, 3), (1,), (2,), (3,)."""
    K = check_count("K", K, minimum=1)
    receivers = range(1, K + 1)
    return [s for size in range(K, 0, -1) for s in combinations(receivers, size)]


def stream_rates(rates, K: int | None = None) -> dict[tuple[int, ...], float]:
    """The rates as a dict {S: R_S} over all of :func:`subsets` (K), zeros included.

    Checks them: finite and >= 0, each S a non-empty set of distinct receivers in 1..K.
    """
    K, vector = _rate_vector(rates, K)
    return dict(zip(subsets(K), (float(r) for r in vector), strict=True))


def transmit_rate(rates, K: int | None = None) -> float:
    """R_t = sum_S R_S: one receiver performs every task (paper Sec. 2.1, for K receivers)."""
    return float(_rate_vector(rates, K)[1].sum())


def receive_rate(rates, K: int | None = None) -> float:
    """R_r = sum_i (what receiver i reads) = sum_S |S| R_S (paper Sec. 2.1, for K receivers)."""
    K, vector = _rate_vector(rates, K)
    sizes = np.array([len(s) for s in subsets(K)], dtype=np.float64)
    return float(sizes @ vector)


def receiver_rates(rates, K: int | None = None) -> np.ndarray:
    """Rate read by each receiver, [R^(1), ..., R^(K)] with R^(i) = sum over S containing i of R_S.

    They sum to :func:`receive_rate`. For K = 2: [R0 + R1, R0 + R2].
    """
    K, vector = _rate_vector(rates, K)
    reads = np.array([[i in s for s in subsets(K)] for i in range(1, K + 1)], dtype=np.float64)
    return reads @ vector


def stream_prices(K: int, beta: float) -> np.ndarray:
    """Price w(S) = ((K - beta) + (beta - 1) |S|) / (K - 1) of each stream, in :func:`subsets`
    order: the generalised beta of Eq. 12 (derived in the module docstring).

    ``beta`` must lie in [1, K]; K >= 2. For K = 2 the prices are (beta, 1, 1).
    """
    K = check_count("K", K, minimum=2)
    beta = check_beta(beta, K)
    sizes = np.array([len(s) for s in subsets(K)], dtype=np.float64)
    return ((K - beta) + (beta - 1) * sizes) / (K - 1)


def weighted_rate(rates, beta: float, K: int | None = None) -> float:
    """sum_S w(S) R_S = ((K - beta) R_t + (beta - 1) R_r) / (K - 1), Eq. 12's rate term for K
    receivers. For K = 2 it is beta R0 + R1 + R2."""
    K, vector = _rate_vector(rates, K)
    return float(stream_prices(K, beta) @ vector)


def check_beta(beta, K: int) -> float:
    """beta as a float, if it lies in [1, K] (1: transmit rate, K: receive rate)."""
    b = float(beta)
    if not 1.0 <= b <= K:
        raise ValueError(
            f"beta must lie in [1, K] = [1, {K}] (1 prices the transmit rate, K the receive "
            f"rate); got {beta!r}"
        )
    return b


@dataclass(frozen=True)
class MultiterminalBounds:
    """Lossless lower bounds of a K-receiver Gray-Wyner network for one discrete source.

    ``entropies``: {A: H(X_A)} for every non-empty set A of receivers (order of :func:`subsets`).
    The cut-set bound for A: the receivers in A together read the streams S that meet A and
    rebuild X_A, so sum over S meeting A of R_S >= H(X_A). For K = 2 the three cuts are the planes
    A, B, C of :mod:`~gwnlib.theory.gray_wyner` at D = 0.
    """

    K: int
    entropies: dict

    @property
    def transmit(self) -> float:
        """R_t >= H(X_1, ..., X_K) (the cut A = all receivers)."""
        return self.entropies[tuple(range(1, self.K + 1))]

    @property
    def receivers(self) -> np.ndarray:
        """Receiver i reads at least H(X_i): [H(X_1), ..., H(X_K)]."""
        return np.array([self.entropies[(i,)] for i in range(1, self.K + 1)])

    @property
    def receive(self) -> float:
        """R_r >= sum_i H(X_i)."""
        return float(self.receivers.sum())

    def violations(self, rates, tol: float = 1e-9) -> dict:
        """{A: deficit} for every cut A whose bound ``rates`` miss by more than ``tol`` bits."""
        rates = stream_rates(rates, self.K)
        found = {}
        for cut, h in self.entropies.items():
            carried = sum(r for s, r in rates.items() if set(s) & set(cut))
            if carried < h - tol:
                found[cut] = h - carried
        return found


def multiterminal_bounds(p) -> MultiterminalBounds:
    """The lossless bounds of a joint table ``p[x1, ..., xK]`` (one axis per receiver's source).

    Transmit rate >= H(X_1..X_K), receiver i >= H(X_i), receive rate >= sum_i H(X_i), and every
    cut-set bound in between (:class:`MultiterminalBounds`).
    """
    p = check_pmf(p, name="p")
    K = p.ndim
    entropies = {}
    for cut in subsets(K):
        others = tuple(axis for axis in range(K) if axis + 1 not in cut)
        entropies[cut] = entropy(p.sum(axis=others) if others else p)
    return MultiterminalBounds(K=K, entropies=entropies)


def _rate_vector(rates, K: int | None) -> tuple[int, np.ndarray]:
    """(K, the rates in :func:`subsets` order), checked."""
    if K is not None:
        K = check_count("K", K, minimum=1)
    if isinstance(rates, Mapping):
        keyed = {}
        for key, value in rates.items():
            s = tuple(sorted(int(i) for i in np.atleast_1d(key)))
            if not s or len(set(s)) != len(s) or s[0] < 1 or (K is not None and s[-1] > K):
                raise ValueError(
                    "rates keys must be non-empty sets of distinct receivers in 1..K "
                    f"(e.g. (1, 3)); got {key!r}"
                )
            if s in keyed:
                raise ValueError(f"rates names the stream {s} twice")
            keyed[s] = value
        if K is None:
            K = max((s[-1] for s in keyed), default=0)
            if K < 1:
                raise ValueError("rates is empty: give at least one stream or K")
        vector = np.array([keyed.get(s, 0.0) for s in subsets(K)], dtype=np.float64)
    else:
        vector = np.asarray(rates, dtype=np.float64)
        n = vector.size
        inferred = int(np.log2(n + 1)) if n > 0 else 0
        if vector.ndim != 1 or n == 0 or 2**inferred - 1 != n or (K is not None and inferred != K):
            expected = f"{2**K - 1}" if K is not None else "2^K - 1"
            raise ValueError(
                f"rates must be a mapping {{S: R_S}} or a sequence of {expected} rates in "
                f"subsets(K) order; got shape {vector.shape}"
            )
        K = inferred
    if not np.all(np.isfinite(vector)) or np.any(vector < 0):
        raise ValueError(f"rates must be finite and >= 0; got {vector.tolist()}")
    return K, vector
