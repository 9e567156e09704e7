"""Theorem 1 of the paper (Eqs. 6-7), checked: a counterexample, a repair and a search (chapter
"Gray-Wyner networks and lossy common information").

Theorem 1 (Sec. 3.1; proof in appendix A.3, Eqs. 43-74, through Lemma 1, Eq. 27) states, with
X = (X1, X2), T the *transmit set* of pairs (Z1, Z2) that achieve R_{X1,X2}(D1, D2) and R the
*receive set* of pairs in which Z1 achieves R_{X1}(D1) and Z2 achieves R_{X2}(D2)::

    K(X1, X2; D1, D2) <= max_R I(X; Z1; Z2)                               (Eq. 6)
                      <= min_T I(X; Z1; Z2) <= C(X1, X2; D1, D2).         (Eq. 7)

The middle "<=" is Lemma 1 (Eq. 27). The main text prints I(X1, X2; Z1, Z2), with a comma; the
appendix, Lemma 1 and the prose use the interaction information, which is what is meant (with a
comma the minimum in Eq. 7 would be R_{X1,X2}(D1, D2) itself, and Eq. 7 would force
C = R_{X1,X2}).

Sign convention. The paper's Eq. 22 (after Yeung 1991's co-information) is
I(X; Y; Z) = I(X; Y) - I(X; Y | Z): positive for shared redundancy, -1 bit for Z = X xor Y.
:func:`~gwnlib.theory.entropy.interaction_information` uses the same sign, and so does this module.
McGill's (1954) interaction information, used by some texts, is its negative for three variables.

What fails. R constrains only the laws of (X1, Z1) and (X2, Z2), so Z1 may look at X2.
:func:`theorem1_counterexample` (the issue's example) is a pair in R with I(X; Z1; Z2) = 1 - a above
the only member of T (:func:`theorem1_counterexample_numbers`): Lemma 1 fails, and with it the chain
max_R <= C. The appendix also appeals twice to "I(X; W; Y | Z) >= 0" (Eqs. 52 and 61), which is
false in general (:func:`conditional_interaction_information`; the XOR triple gives -1 bit).

The repair. Restrict R to R' = the pairs in R with the Markov chains Z1 - X1 - X2 and
Z2 - X2 - X1 (the paper's Eq. 1, imposed on the reconstructions: each decoder's output depends on
the other source only through its own). With R_i = R_{Xi}(Di) and R12 = R_{X1,X2}(D1, D2)::

    K <= max_R' I(X; Z1; Z2) <= R1 + R2 - R12 <= min_T I(X; Z1; Z2) <= C.

Proof. (a) II = I(X; Z1) + I(X; Z2) - I(X; Z1, Z2) for every pair (Eq. 34). In R',
I(X; Zi) = I(Xi; Zi) = R_i, and (Z1, Z2) meets (D1, D2), so I(X; Z1, Z2) >= R12 and
II <= R1 + R2 - R12. (b) In T, I(X; Z1, Z2) = R12 and I(X; Zi) >= I(Xi; Zi) >= R_i (Zi meets Di),
so II >= R1 + R2 - R12. (c) For U with Cond. 43-44, the identity
I(X; Z1; Z2) = I(X; U) - I(X; U | Z1) - I(X; U | Z2) - I(Z1; Z2 | U, X) (Eq. 49-51, where Cond. 44
turns the conditional three-way terms of Eq. 51 into I(X; U | Zi) >= 0, and Eq. 50 is "<=", not
"=") gives II <= I(X; U); the pair of T and the U that attain C give min_T <= C. (d) For V with
Cond. 45-48, draw Z1' ~ p(z1 | x1, v) and Z2' ~ p(z2 | x2, v) independently given (X, V).
Cond. 45-46 keep p(z1' | x1, x2) = p(z1 | x1) and p(z2' | x1, x2) = p(z2 | x2), so (Z1', Z2') is
in R'; and
I(X; Z1', Z2') <= I(X; V) + I(X1; Z1' | V) + I(X2; Z2' | V) = R1 + R2 - I(X; V) by Cond. 45-48,
so II(Z1', Z2') >= I(X; V): K <= max_R'. The middle two inequalities are checked numerically by
:func:`search_theorem1`; (c) is checked there against Wyner's W of the pair (Z1, Z2).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from gwnlib.theory.common_information import (
    doubly_symmetric_binary_source,
    gacs_korner,
    wyner_common_information,
    wyner_dsbs,
)
from gwnlib.theory.entropy import (
    binary_entropy,
    check_pmf,
    conditional_mutual_information,
    interaction_information,
    mutual_information,
)
from gwnlib.theory.rate_distortion import (
    JointRateDistortionPoint,
    dsbs_critical_distortion,
    dsbs_joint_rate_distortion,
    hamming_distortion,
    joint_rate_distortion,
    joint_rate_distortion_at,
    rate_distortion,
)

#: Tolerance, in bits, of the set memberships and Markov chains of :func:`evaluate_pair`, and of
#: the violations counted by :func:`search_theorem1`.
DEFAULT_TOLERANCE = 1e-6

_CHANNEL_TOLERANCE = 1e-9  # rows of a test channel must sum to 1 within this
_SLOPE_DOUBLINGS = 4  # times search_theorem1 doubles the slope of a slack distortion


# --------------------------------------------------------------------------------------------
# Interaction information and the evaluation of one pair of test channels
# --------------------------------------------------------------------------------------------


def conditional_interaction_information(p_xwyz, base: float = 2) -> float:
    """I(X; W; Y | Z) = I(X; W | Z) - I(X; W | Y, Z) for a table ``[x, w, y, z]`` (Eq. 22 given Z).

    The appendix's proof of Theorem 1 uses "I(X; W; Y | Z) >= 0" (Eqs. 52 and 61); it is false in
    general: X, Y independent fair bits, W = X xor Y and Z constant give -1 bit.
    """
    p = check_pmf(p_xwyz, ndim=4, name="p_xwyz")
    n_x, n_w, n_y, n_z = p.shape
    given_z = conditional_mutual_information(p.sum(axis=2), base)
    given_yz = conditional_mutual_information(p.reshape(n_x, n_w, n_y * n_z), base)
    return given_z - given_yz


@dataclass(frozen=True)
class PairEvaluation:
    """One pair of test channels (Z1, Z2) of a source (X1, X2), measured against Theorem 1.

    Rates in bits (or ``base``). ``distortion1``, ``distortion2``: E d1(X1, Z1), E d2(X2, Z2).
    ``rate1``, ``rate2``: I(X1; Z1), I(X2; Z2); ``rate_joint``: I(X1, X2; Z1, Z2).
    ``interaction``: I(X1, X2; Z1; Z2) = I(Z1; Z2) - I(Z1; Z2 | X1, X2) (paper's sign, Eq. 22).
    ``marginal1``, ``marginal2``, ``joint``: R_{X1}(D1), R_{X2}(D2), R_{X1,X2}(D1, D2) at
    ``targets`` = (D1, D2). ``leak1`` = I(Z1; X2 | X1) and ``leak2`` = I(Z2; X1 | X2): zero
    exactly when the Markov chains Z1 - X1 - X2 (``markov1``) and Z2 - X2 - X1 (``markov2``) hold.
    ``in_receive_set``: each Zi meets Di and I(Xi; Zi) = R_{Xi}(Di); ``in_transmit_set``: both
    distortions met and I(X1, X2; Z1, Z2) = R_{X1,X2}(D1, D2); ``in_markov_receive_set``: the
    receive set of the repaired theorem (both chains too). Every comparison is within
    ``tolerance``.
    """

    distortion1: float
    distortion2: float
    rate1: float
    rate2: float
    rate_joint: float
    interaction: float
    marginal1: float
    marginal2: float
    joint: float
    leak1: float
    leak2: float
    targets: tuple[float, float]
    tolerance: float
    meets_distortions: bool
    in_receive_set: bool
    in_transmit_set: bool
    markov1: bool
    markov2: bool
    in_markov_receive_set: bool

    @property
    def crossing(self) -> float:
        """R_{X1}(D1) + R_{X2}(D2) - R_{X1,X2}(D1, D2): between max_R' II and min_T II."""
        return self.marginal1 + self.marginal2 - self.joint


def evaluate_pair(
    p,
    distortion1,
    distortion2,
    targets: tuple[float, float],
    channel=None,
    rates: tuple[float, float, float] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    base: float = 2,
) -> PairEvaluation:
    """Measure a pair (Z1, Z2) against Theorem 1's two sets (Eqs. 6-7) and the repair's chains.

    ``p`` is the joint table ``p[x1, x2, z1, z2]``; or, when ``channel`` is given, ``p`` is
    ``p[x1, x2]`` and ``channel[x1, x2, z1, z2]`` the test channel q(z1, z2 | x1, x2).
    ``distortion1[x1, z1]`` and ``distortion2[x2, z2]`` are the distortion matrices and
    ``targets`` = (D1, D2). ``rates`` = (R_{X1}(D1), R_{X2}(D2), R_{X1,X2}(D1, D2)) when already
    known (closed forms, or Blahut-Arimoto points); otherwise they are computed
    (:func:`~gwnlib.theory.rate_distortion.rate_distortion`, :func:`joint_rate_distortion_point`).
    """
    table = _joint_table(p, channel)
    n1, n2, m1, m2 = table.shape
    d1 = _check_matrix("distortion1", distortion1, (n1, m1))
    d2 = _check_matrix("distortion2", distortion2, (n2, m2))
    targets = _check_targets(targets)
    tolerance = _check_positive("tolerance", tolerance)
    p_x1x2 = table.sum(axis=(2, 3))
    if rates is None:
        rates = (
            _marginal_rate(p_x1x2.sum(axis=1), d1, targets[0], "D1", base),
            _marginal_rate(p_x1x2.sum(axis=0), d2, targets[1], "D2", base),
            joint_rate_distortion_point(p_x1x2, d1, d2, targets, base=base).rate,
        )
    rates = _check_rates(rates)

    e1 = float(np.sum(table * d1[:, None, :, None]))
    e2 = float(np.sum(table * d2[None, :, None, :]))
    rate1 = mutual_information(table.sum(axis=(1, 3)), base)
    rate2 = mutual_information(table.sum(axis=(0, 2)), base)
    rate_joint = mutual_information(table.reshape(n1 * n2, m1 * m2), base)
    leak1 = conditional_mutual_information(table.sum(axis=3).transpose(2, 1, 0), base)
    leak2 = conditional_mutual_information(table.sum(axis=2).transpose(2, 0, 1), base)
    meets = e1 <= targets[0] + tolerance and e2 <= targets[1] + tolerance
    receive = meets and abs(rate1 - rates[0]) <= tolerance and abs(rate2 - rates[1]) <= tolerance
    markov1, markov2 = leak1 <= tolerance, leak2 <= tolerance
    return PairEvaluation(
        distortion1=e1,
        distortion2=e2,
        rate1=rate1,
        rate2=rate2,
        rate_joint=rate_joint,
        interaction=_interaction(table, base),
        marginal1=rates[0],
        marginal2=rates[1],
        joint=rates[2],
        leak1=leak1,
        leak2=leak2,
        targets=targets,
        tolerance=tolerance,
        meets_distortions=bool(meets),
        in_receive_set=bool(receive),
        in_transmit_set=bool(meets and abs(rate_joint - rates[2]) <= tolerance),
        markov1=bool(markov1),
        markov2=bool(markov2),
        in_markov_receive_set=bool(receive and markov1 and markov2),
    )


def joint_rate_distortion_point(
    p_x1x2,
    distortion1,
    distortion2,
    targets: tuple[float, float],
    tol: float = 1e-10,
    max_rounds: int = 200,
    **kwargs,
) -> JointRateDistortionPoint:
    """R_{X1,X2}(D1, D2) at any pair of targets (paper Eq. 19), with its optimal test channel.

    The dual max over slopes (s1, s2) >= 0 of min_q [I + s1 E d1 + s2 E d2] - s1 D1 - s2 D2 is
    concave; it is climbed one slope at a time (Illinois root-finding of E di = Di, a slope of 0
    where Di is slack), each inner minimum by
    :func:`~gwnlib.theory.rate_distortion.joint_rate_distortion`, until both distortions are within
    ``tol`` of their targets. ``kwargs`` go to Blahut-Arimoto (``base``, ``tol``, ``max_iter``).
    """
    p = check_pmf(p_x1x2, ndim=2, name="p_x1x2")
    d1 = _check_matrix("distortion1", distortion1, (p.shape[0], None))
    d2 = _check_matrix("distortion2", distortion2, (p.shape[1], None))
    targets = _check_targets(targets)
    for name, d, marginal, target in (
        ("D1", d1, p.sum(axis=1), targets[0]),
        ("D2", d2, p.sum(axis=0), targets[1]),
    ):
        least = float(marginal @ d.min(axis=1))
        if target < least - 1e-12:
            raise ValueError(
                f"targets: {name} = {target} is below the least distortion {least:.6g}"
            )
    slopes = [1.0, 1.0]

    def solve(s):
        return joint_rate_distortion(p, d1, d2, (s[0], s[1]), **kwargs)

    def settled(point, s) -> bool:
        gaps = (point.distortion1 - targets[0], point.distortion2 - targets[1])
        return all(abs(g) <= tol or (s[i] == 0.0 and g <= tol) for i, g in enumerate(gaps))

    for _ in range(max_rounds):
        for i in (0, 1):

            def gap(slope, i=i):
                s = list(slopes)
                s[i] = slope
                point = solve(s)
                return (point.distortion1, point.distortion2)[i] - targets[i]

            slopes[i] = _root_decreasing(gap, slopes[i], tol)
        point = solve(slopes)
        if settled(point, slopes):
            return point
    raise RuntimeError(f"no slopes found for targets {targets} in {max_rounds} rounds")


def _root_decreasing(f, start: float, tol: float, max_slope: float = 1e4) -> float:
    """The s >= 0 with f(s) = 0 for a non-increasing f (0 if f(0) <= 0): bracket, then Illinois."""
    f_start = f(start)
    if abs(f_start) <= tol:
        return start
    if f_start > 0:
        lo, f_lo, hi = start, f_start, max(2 * start, 1.0)
        f_hi = f(hi)
        while f_hi > 0:
            if hi >= max_slope:
                raise ValueError("targets: a distortion is too small to reach (slope > 1e4)")
            lo, f_lo, hi = hi, f_hi, 2 * hi
            f_hi = f(hi)
    else:
        hi, f_hi, lo = start, f_start, start / 2
        f_lo = f(lo)
        while f_lo < 0 and lo > 1e-6:
            hi, f_hi, lo = lo, f_lo, lo / 2
            f_lo = f(lo)
        if f_lo < 0:
            lo, f_lo = 0.0, f(0.0)
            if f_lo <= tol:
                return 0.0  # the constraint is slack
    side = 0
    s = lo
    for _ in range(200):
        s = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
        f_s = f(s)
        if abs(f_s) <= tol or hi - lo <= 1e-15 * max(hi, 1.0):
            break
        if f_s > 0:
            lo, f_lo = s, f_s
            if side == 1:
                f_hi /= 2
            side = 1
        else:
            hi, f_hi = s, f_s
            if side == -1:
                f_lo /= 2
            side = -1
    return float(s)


# --------------------------------------------------------------------------------------------
# The counterexample on the doubly symmetric binary source
# --------------------------------------------------------------------------------------------


def theorem1_counterexample(crossover: float = 0.1) -> np.ndarray:
    """The issue's pair in Theorem 1's receive set that breaks Lemma 1: table ``[x1, x2, z1, z2]``.

    DSBS(a): X1 a fair bit, X2 = X1 xor N with N ~ Bernoulli(a); B a fair coin independent of
    both; Z1 = Z2 = X1 xor (N B) (Z is X1 or X2, by the coin). Z1 xor X1 = N B and
    Z2 xor X2 = N (1 - B) are Bernoulli(a/2) and independent of X1, resp. X2, so each Zi is Xi
    through a BSC(a/2), the unique R-D optimal channel at D = a/2: the pair is in R. But Z1 looks
    at X2 (Z1 - X1 - X2 fails), and I(X; Z1; Z2) = H(Z) - H(Z | X) = 1 - a.
    """
    a = _check_crossover(crossover)
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
    a = _check_crossover(crossover)
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
        transmit_interaction=_interaction(p[:, :, None, None] * transmit.channel),
        wyner=dsbs_lossy_wyner(a, distortion),
        wyner_achieved=dsbs_lossy_wyner_achiever(a, distortion)[1],
        gacs_korner=gacs_korner(p).value,
        markov_max=markov_max,
        crossing=2 * marginal - closed,
    )


def binary_symmetric_channel(crossover: float) -> np.ndarray:
    """The binary symmetric channel BSC(D) as a matrix ``[x, z]``: the unique optimal test channel
    of a fair bit with Hamming distortion at 0 < D < 1/2 (Cover & Thomas Thm 10.3.1)."""
    D = _check_crossover(crossover)
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
    a = _check_crossover(crossover)
    a1 = dsbs_critical_distortion(a)
    if not 0 < distortion <= a1:
        raise ValueError(f"distortion must be in (0, a1 = {a1:.6g}]; got {distortion!r}")
    return wyner_dsbs(a)


def dsbs_lossy_wyner_achiever(crossover: float, distortion: float) -> tuple[np.ndarray, float]:
    """A U that attains :func:`dsbs_lossy_wyner`: ``(p[x1, x2, z1, z2, u], I(X; U))``.

    U is a fair bit, Zi = U xor BSC(b) independently, Xi = Zi xor BSC(D) independently, with
    2 b (1 - b) = P(Z1 != Z2) of the optimal pair; then Xi = U xor BSC(a1) and I(X; U) = C.
    """
    a = _check_crossover(crossover)
    dsbs_lossy_wyner(a, distortion)  # checks 0 < D <= a1
    D = float(distortion)
    disagree = (a - 2 * D * (1 - D)) / (1 - 4 * D * (1 - D))  # P(Z1 != Z2) of the optimal pair
    b = (1 - np.sqrt(max(1 - 2 * disagree, 0.0))) / 2
    to_z, to_x = binary_symmetric_channel(b), binary_symmetric_channel(D)
    table = np.einsum("u,ua,ub,ax,by->xyabu", [0.5, 0.5], to_z, to_z, to_x, to_x)
    return table, mutual_information(table.sum(axis=(2, 3)).reshape(4, 2))


# --------------------------------------------------------------------------------------------
# The repaired receive set: couplings of two fixed channels
# --------------------------------------------------------------------------------------------


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
    q1 = _check_channel("channel1", channel1, p.shape[0])
    q2 = _check_channel("channel2", channel2, p.shape[1])
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
    return _interaction(table, base), table


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


# --------------------------------------------------------------------------------------------
# The search
# --------------------------------------------------------------------------------------------


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
    n_sources = _check_int("n_sources", n_sources, 1)
    alphabet = _check_int("alphabet", alphabet, 2)
    n_channels = _check_int("n_channels", n_channels, 0)
    tolerance = _check_positive("tolerance", tolerance)
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
        best_random = max(best_random, _interaction(table))
    misses = int(best_random > markov_max + tolerance)
    if best_random > markov_max:
        markov_max = best_random  # keep the largest found (it is a member of R' too)

    literal_max, p_literal = -np.inf, None
    for _ in range(n_channels):
        table = _random_receive_member(p, q1, q2, rng)
        value = _interaction(table)
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
        transmit_interaction=_interaction(p_transmit),
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


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _interaction(table: np.ndarray, base: float = 2) -> float:
    """I(X1, X2; Z1; Z2) = I(Z1; Z2) - I(Z1; Z2 | X1, X2) of a table ``[x1, x2, z1, z2]``."""
    n1, n2, m1, m2 = table.shape
    return interaction_information(table.reshape(n1 * n2, m1, m2).transpose(1, 2, 0), base)


def _joint_table(p, channel) -> np.ndarray:
    if channel is None:
        return check_pmf(p, ndim=4, name="p")
    p = check_pmf(p, ndim=2, name="p")
    q = np.asarray(channel, dtype=np.float64)
    if q.ndim != 4 or q.shape[:2] != p.shape:
        raise ValueError(
            f"channel must be a table [x1, x2, z1, z2] with x-shape {p.shape}; got {q.shape}"
        )
    if not np.all(np.isfinite(q)) or np.any(q < 0):
        raise ValueError("channel must have finite, non-negative entries")
    if np.max(np.abs(q.sum(axis=(2, 3)) - 1)) > _CHANNEL_TOLERANCE:
        raise ValueError("channel must sum to 1 over (z1, z2) for every (x1, x2)")
    return p[:, :, None, None] * q


def _check_channel(name: str, channel, n: int) -> np.ndarray:
    q = np.asarray(channel, dtype=np.float64)
    if q.ndim != 2 or q.shape[0] != n:
        raise ValueError(f"{name} must be a matrix [x, z] with {n} rows; got shape {q.shape}")
    if not np.all(np.isfinite(q)) or np.any(q < 0):
        raise ValueError(f"{name} must have finite, non-negative entries")
    if np.max(np.abs(q.sum(axis=1) - 1)) > _CHANNEL_TOLERANCE:
        raise ValueError(f"{name} must have rows that sum to 1")
    return q


def _check_matrix(name: str, matrix, shape: tuple[int, int | None]) -> np.ndarray:
    d = np.asarray(matrix, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != shape[0] or (shape[1] is not None and d.shape[1] != shape[1]):
        want = f"{shape[0]} x {shape[1]}" if shape[1] is not None else f"{shape[0]} rows"
        raise ValueError(f"{name} must be a matrix with {want}; got shape {d.shape}")
    if not np.all(np.isfinite(d)) or np.any(d < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    return d


def _check_targets(targets) -> tuple[float, float]:
    try:
        D1, D2 = (float(t) for t in targets)
    except (TypeError, ValueError):
        raise ValueError(f"targets must be a pair (D1, D2) of numbers; got {targets!r}") from None
    if not (np.isfinite(D1) and np.isfinite(D2)) or min(D1, D2) < 0:
        raise ValueError(f"targets must be finite and >= 0; got {targets!r}")
    return D1, D2


def _check_rates(rates) -> tuple[float, float, float]:
    try:
        values = tuple(float(r) for r in rates)
    except (TypeError, ValueError):
        raise ValueError(f"rates must be three numbers (R1, R2, R12); got {rates!r}") from None
    if len(values) != 3 or not all(np.isfinite(values)) or min(values) < 0:
        raise ValueError(f"rates must be three finite numbers >= 0 (R1, R2, R12); got {rates!r}")
    return values


def _marginal_rate(p_x, d, target: float, name: str, base: float) -> float:
    least, zero_rate = float(p_x @ d.min(axis=1)), float(np.min(p_x @ d))
    if target < least - 1e-12:
        raise ValueError(f"targets: {name} = {target} is below the least distortion {least:.6g}")
    if target >= zero_rate:
        return 0.0
    return rate_distortion(p_x, d, max(target, least), base=base).rate


def _check_crossover(crossover) -> float:
    a = float(crossover)
    if not 0.0 <= a <= 0.5:
        raise ValueError(f"crossover must be a probability in [0, 1/2]; got {crossover!r}")
    return a


def _check_positive(name: str, value) -> float:
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return value


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)
