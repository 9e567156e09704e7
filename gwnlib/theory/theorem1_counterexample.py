"""Theorem 1's counterexample on a doubly symmetric binary source, and the lossy Wyner common
information of that source that the repaired chain is checked against (chapter "Gray-Wyner
networks and lossy common information"; :mod:`gwnlib.theory.theorem1`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gwnlib.theory.checks import check_crossover
from gwnlib.theory.common_information import (
    doubly_symmetric_binary_source,
    gacs_korner,
    wyner_dsbs,
)
from gwnlib.theory.entropy import (
    binary_entropy,
    mutual_information,
)
from gwnlib.theory.rate_distortion import (
    dsbs_critical_distortion,
    dsbs_joint_rate_distortion,
    hamming_distortion,
    joint_rate_distortion_at,
)
from gwnlib.theory.theorem1 import (
    PairEvaluation,
    evaluate_pair,
    pair_interaction,
)
from gwnlib.theory.theorem1_search import markov_receive_max


def theorem1_counterexample(crossover: float = 0.1) -> np.ndarray:
    """The issue's pair in Theorem 1's receive set that breaks Lemma 1: table ``[x1, x2, z1, z2]``.

    DSBS(a): X1 a fair bit, X2 = X1 xor N with N ~ Bernoulli(a); B a fair coin independent of
    both; Z1 = Z2 = X1 xor (N B) (Z is X1 or X2, by the coin). Z1 xor X1 = N B and
    Z2 xor X2 = N (1 - B) are Bernoulli(a/2) and independent of X1, resp. X2, so each Zi is Xi
    through a BSC(a/2), the unique R-D optimal channel at D = a/2: the pair is in R. But Z1 looks
    at X2 (Z1 - X1 - X2 fails), and I(X; Z1; Z2) = H(Z) - H(Z | X) = 1 - a.
    """
    a = check_crossover(crossover)
    table = np.zeros((2, 2, 2, 2))
    for x1 in (0, 1):
        for n, p_n in ((0, 1 - a), (1, a)):
            for b in (0, 1):
                z = x1 ^ (n & b)
                table[x1, x1 ^ n, z, z] += 0.5 * p_n * 0.5
    return table


@dataclass(frozen=True)
class Theorem1Counterexample:
    """The numbers the book quotes for :func:`theorem1_counterexample`, at D1 = D2 = a/2 (bits).

    ``pair``: the counterexample measured by :func:`evaluate_pair` (in R, not in R').
    ``interaction``: its I(X; Z1; Z2) (= 1 - a), a lower bound on max_R. ``joint_closed_form``
    (1 + h(a) - 2 h(a/2)) and ``joint_numerical`` (Blahut-Arimoto): R_{X1,X2}(a/2, a/2).
    ``transmit_interaction``: I(X; Z1; Z2) of the one member of T (the Shannon lower bound is met,
    which fixes the pair), so min_T. ``wyner``: C(X1, X2; a/2, a/2) = Wyner's lossless C of DSBS(a)
    (:func:`dsbs_lossy_wyner`). ``wyner_achieved``: I(X; U) of the U that attains it, computed.
    ``gacs_korner``: Gacs-Korner's lossless K = 0, an upper bound on the lossy K. ``markov_max``:
    max_R' I(X; Z1; Z2) (:func:`markov_receive_max`); ``crossing``: R1 + R2 - R12.
    """

    crossover: float
    distortion: float
    pair: PairEvaluation
    interaction: float
    joint_closed_form: float
    joint_numerical: float
    transmit_interaction: float
    wyner: float
    wyner_achieved: float
    gacs_korner: float
    markov_max: float
    crossing: float

    @property
    def breaks_lemma1(self) -> bool:
        """max_R II > min_T II: Lemma 1 (Eq. 27), the inequality joining Eq. 6 to Eq. 7, fails."""
        return self.interaction > self.transmit_interaction + self.pair.tolerance

    @property
    def breaks_chain(self) -> bool:
        """max_R II > C: the conclusion of Eqs. 6-7, max_R <= min_T <= C, fails too."""
        return self.interaction > self.wyner + self.pair.tolerance


def theorem1_counterexample_numbers(crossover: float = 0.1) -> Theorem1Counterexample:
    """Compute everything the book says about :func:`theorem1_counterexample` (default a = 0.1).

    For a = 0.1: I(X; Z1; Z2) = 0.900 > R_{X1,X2}(0.05, 0.05) = 0.896 >= C = 0.873 and
    > min_T II = 0.850, while K = 0. Lemma 1 (max_R <= min_T, Eq. 27) is what breaks; the outer
    inequalities of Eqs. 6-7 hold. The excess over R12 is 2 h(a/2) - h(a) - a = I(N B; N (1 - B)),
    the information between the two decoders' noises, positive for every 0 < a <= 1/2.
    """
    a = check_crossover(crossover)
    if a == 0:
        raise ValueError("crossover must be > 0 (at a = 0 the distortion a/2 is 0)")
    distortion = a / 2
    p = doubly_symmetric_binary_source(a)
    d = hamming_distortion(2)
    marginal = float(1 - binary_entropy(distortion))
    closed = float(dsbs_joint_rate_distortion(a, distortion))
    pair = evaluate_pair(
        theorem1_counterexample(a),
        d,
        d,
        (distortion, distortion),
        rates=(marginal, marginal, closed),
    )
    transmit = joint_rate_distortion_at(p, d, d, distortion)
    channel = binary_symmetric_channel(distortion)
    markov_max, _ = markov_receive_max(p, channel, channel)
    return Theorem1Counterexample(
        crossover=a,
        distortion=distortion,
        pair=pair,
        interaction=pair.interaction,
        joint_closed_form=closed,
        joint_numerical=transmit.rate,
        transmit_interaction=pair_interaction(p[:, :, None, None] * transmit.channel),
        wyner=dsbs_lossy_wyner(a, distortion),
        wyner_achieved=dsbs_lossy_wyner_achiever(a, distortion)[1],
        gacs_korner=gacs_korner(p).value,
        markov_max=markov_max,
        crossing=2 * marginal - closed,
    )


def binary_symmetric_channel(crossover: float) -> np.ndarray:
    """The binary symmetric channel BSC(D) as a matrix ``[x, z]``: the unique optimal test channel
    of a fair bit with Hamming distortion at 0 < D < 1/2 (Cover & Thomas Thm 10.3.1)."""
    D = check_crossover(crossover)
    return np.array([[1 - D, D], [D, 1 - D]])


def dsbs_lossy_wyner(crossover: float, distortion: float) -> float:
    """Wyner's lossy common information C(X1, X2; D, D) of DSBS(a) for D <= a1 (paper Eq. 2-3).

    Equals the lossless C = 1 + h(a) - 2 h(a1) (:func:`~gwnlib.theory.wyner_dsbs`; cf.
    Viswanatha et al. 2014). For D <= a1 the joint R-D is the Shannon lower bound, met only by the
    backward channel Xi = Zi xor Ni with N1, N2 independent Bernoulli(D) bits independent of
    (Z1, Z2); the law of (Z1, Z2) is then fixed too, so T has one member. For any U with Cond. 3,
    (N1, N2) is independent of (Z1, Z2, U) (Cond. 44), so Z1 - U - Z2 gives X1 - U - X2 and
    I(X; U) >= C; :func:`dsbs_lossy_wyner_achiever` attains it. ``a1``:
    :func:`~gwnlib.theory.dsbs_critical_distortion`.
    """
    a = check_crossover(crossover)
    a1 = dsbs_critical_distortion(a)
    if not 0 < distortion <= a1:
        raise ValueError(f"distortion must be in (0, a1 = {a1:.6g}]; got {distortion!r}")
    return wyner_dsbs(a)


def dsbs_lossy_wyner_achiever(crossover: float, distortion: float) -> tuple[np.ndarray, float]:
    """A U that attains :func:`dsbs_lossy_wyner`: ``(p[x1, x2, z1, z2, u], I(X; U))``.

    U is a fair bit, Zi = U xor BSC(b) independently, Xi = Zi xor BSC(D) independently, with
    2 b (1 - b) = P(Z1 != Z2) of the optimal pair; then Xi = U xor BSC(a1) and I(X; U) = C.
    """
    a = check_crossover(crossover)
    dsbs_lossy_wyner(a, distortion)  # checks 0 < D <= a1
    D = float(distortion)
    disagree = (a - 2 * D * (1 - D)) / (1 - 4 * D * (1 - D))  # P(Z1 != Z2) of the optimal pair
    b = (1 - np.sqrt(max(1 - 2 * disagree, 0.0))) / 2
    to_z, to_x = binary_symmetric_channel(b), binary_symmetric_channel(D)
    table = np.einsum("u,ua,ub,ax,by->xyabu", [0.5, 0.5], to_z, to_z, to_x, to_x)
    return table, mutual_information(table.sum(axis=(2, 3)).reshape(4, 2))
