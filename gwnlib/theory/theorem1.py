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
The counterexample (:func:`~gwnlib.theory.theorem1_counterexample.theorem1_counterexample`, the
issue's example) is a pair in R with I(X; Z1; Z2) = 1 - a above the only member of T
(:func:`~gwnlib.theory.theorem1_counterexample.theorem1_counterexample_numbers`): Lemma 1 fails, and
with it the chain max_R <= C. The appendix also appeals twice to "I(X; W; Y | Z) >= 0" (Eqs. 52 and
61), which is false in general (:func:`conditional_interaction_information`; the XOR triple gives -1
bit).

The repair. Restrict R to R' = the pairs in R with the Markov chains Z1 - X1 - X2 and
Z2 - X2 - X1 (the paper's Eq. 1, imposed on the reconstructions: each decoder's output depends on
the other source only through its own). With R_i = R_{Xi}(Di) and R12 = R_{X1,X2}(D1, D2)::

    K <= max_R' I(X; Z1; Z2) <= R1 + R2 - R12 <= min_T I(X; Z1; Z2) <= C.

Proof. (a) II = I(X; Z1) + I(X; Z2) - I(X; Z1, Z2) for every pair (Eq. 34). In R', I(X; Zi) = I(Xi;
Zi) = R_i, and (Z1, Z2) meets (D1, D2), so I(X; Z1, Z2) >= R12 and II <= R1 + R2 - R12. (b) In T,
I(X; Z1, Z2) = R12 and I(X; Zi) >= I(Xi; Zi) >= R_i (Zi meets Di), so II >= R1 + R2 - R12. (c) For U
with Cond. 43-44, the identity I(X; Z1; Z2) = I(X; U) - I(X; U | Z1) - I(X; U | Z2) - I(Z1; Z2 | U,
X) (Eq. 49-51, where Cond. 44 turns the conditional three-way terms of Eq. 51 into I(X; U | Zi) >=
0, and Eq. 50 is "<=", not "=") gives II <= I(X; U); the pair of T and the U that attain C give
min_T <= C. (d) For V with Cond. 45-48, draw Z1' ~ p(z1 | x1, v) and Z2' ~ p(z2 | x2, v)
independently given (X, V). Cond. 45-46 keep p(z1' | x1, x2) = p(z1 | x1) and p(z2' | x1, x2) = p(z2
| x2), so (Z1', Z2') is in R'; and I(X; Z1', Z2') <= I(X; V) + I(X1; Z1' | V) + I(X2; Z2' | V) = R1
+ R2 - I(X; V) by Cond. 45-48, so II(Z1', Z2') >= I(X; V): K <= max_R'. The middle two inequalities
are checked numerically by :func:`~gwnlib.theory.theorem1_search.search_theorem1`; (c) is checked
there against Wyner's W of the pair (Z1, Z2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gwnlib.theory.checks import check_positive
from gwnlib.theory.entropy import (
    check_pmf,
    conditional_mutual_information,
    interaction_information,
    mutual_information,
)
from gwnlib.theory.rate_distortion import (
    JointRateDistortionPoint,
    joint_rate_distortion,
    rate_distortion,
)

#: Tolerance, in bits, of the set memberships and Markov chains of :func:`evaluate_pair`, and of
#: the violations counted by :func:`~gwnlib.theory.theorem1_search.search_theorem1`.
DEFAULT_TOLERANCE = 1e-6

_CHANNEL_TOLERANCE = 1e-9  # rows of a test channel must sum to 1 within this


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
    tolerance = check_positive("tolerance", tolerance)
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
        interaction=pair_interaction(table, base),
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
# Helpers (public for the search and the counterexample modules)
# --------------------------------------------------------------------------------------------


def pair_interaction(table: np.ndarray, base: float = 2) -> float:
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


def check_channel(name: str, channel, n: int) -> np.ndarray:
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
