"""Rate-distortion functions of discrete sources: Blahut-Arimoto and closed forms (chapter
"Gray-Wyner networks and lossy common information").

The rate-distortion function R(D) = min I(X; X_hat) over test channels q(x_hat | x) with
E d(X, X_hat) <= D (Cover & Thomas Eq. 10.11; the paper's Eq. 19-20) is computed by the
Blahut-Arimoto algorithm (Blahut 1972; Cover & Thomas Sec. 10.8). It is parametrised by a slope
``s >= 0``: each ``s`` gives the point of the curve where dR/dD = -s (rate in nats; -s / ln 2 in
bits). Conditional rate-distortion with side information at both ends (the paper's Eq. 21) and the
joint rate-distortion of a pair with one distortion per component (Eq. 19) reduce to the same
algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gwnlib.theory.entropy import binary_entropy, check_pmf


@dataclass(frozen=True)
class RateDistortionPoint:
    """One point of a rate-distortion curve found by :func:`blahut_arimoto`.

    ``channel[x, x_hat]`` is the optimal test channel q(x_hat | x) and ``output`` its output
    distribution r(x_hat); ``rate`` is in bits (or ``base``), ``distortion`` in the units of the
    distortion matrix.
    """

    rate: float
    distortion: float
    channel: np.ndarray
    output: np.ndarray
    slope: float
    iterations: int
    converged: bool


def hamming_distortion(n: int, m: int | None = None) -> np.ndarray:
    """Hamming distortion matrix d[x, x_hat] = 1[x != x_hat] for alphabets of sizes n and m."""
    m = n if m is None else m
    if n < 1 or m < 1:
        raise ValueError(f"alphabet sizes must be >= 1; got n={n}, m={m}")
    return 1.0 - np.eye(n, m)


def squared_error_distortion(values, reproductions=None) -> np.ndarray:
    """Squared-error distortion matrix d[x, x_hat] = (values[x] - reproductions[x_hat])^2."""
    values = np.asarray(values, dtype=np.float64)
    reproductions = values if reproductions is None else np.asarray(reproductions, np.float64)
    return (values[:, None] - reproductions[None, :]) ** 2


def _check_distortion(distortion, n: int) -> np.ndarray:
    d = np.asarray(distortion, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != n:
        raise ValueError(
            f"distortion must be a matrix [x, x_hat] with {n} rows; got shape {d.shape}"
        )
    if not np.all(np.isfinite(d)) or np.any(d < 0):
        raise ValueError("distortion must be finite and non-negative")
    return d


def blahut_arimoto(
    p_x,
    distortion,
    slope: float,
    tol: float = 1e-12,
    max_iter: int = 100_000,
    base: float = 2,
) -> RateDistortionPoint:
    """The point of R(D) with slope ``-slope`` (nats per unit distortion), by Blahut-Arimoto.

    Alternates q(x_hat | x) proportional to r(x_hat) exp(-slope d(x, x_hat)) and
    r(x_hat) = sum_x p(x) q(x_hat | x) (Cover & Thomas Sec. 10.8, Eq. 10.129-10.130), in the log
    domain so that large slopes do not underflow. Stops when r changes by less than ``tol``
    (max-norm) or after ``max_iter`` iterations (``converged`` says which). ``slope = 0`` gives the
    zero-rate end of the curve as the limit slope -> 0+: every x is reproduced by the single
    reproduction of least expected distortion, D_max = min_x_hat E d(X, x_hat).
    """
    p = check_pmf(p_x, ndim=1, name="p_x")
    d = _check_distortion(distortion, p.size)
    if not np.isfinite(slope) or slope < 0:
        raise ValueError(f"slope must be a finite number >= 0; got {slope!r}")
    if tol <= 0 or max_iter < 1:
        raise ValueError("tol must be > 0 and max_iter >= 1")
    if slope == 0:
        best = int(np.argmin(p @ d))
        q = np.zeros_like(d)
        q[:, best] = 1.0
        return RateDistortionPoint(0.0, float(p @ d[:, best]), q, p @ q, 0.0, 0, True)
    log_r = np.full(d.shape[1], -np.log(d.shape[1]))
    log_q = _channel(log_r, d, slope)
    converged, iterations = False, 0
    while iterations < max_iter:
        iterations += 1
        with np.errstate(divide="ignore"):
            new_log_r = np.log(p @ np.exp(log_q))
        log_q = _channel(new_log_r, d, slope)
        change = np.max(np.abs(np.exp(new_log_r) - np.exp(log_r)))
        log_r = new_log_r
        if change < tol:
            converged = True
            break
    q = np.exp(log_q)
    r = p @ q
    mask = (p[:, None] > 0) & (q > 0)  # 0 log 0 = 0: only cells with mass contribute
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = p[:, None] * q * (log_q - np.log(r)[None, :])
    rate = float(np.sum(terms[mask]))
    return RateDistortionPoint(
        rate=max(rate, 0.0) / np.log(base),  # round-off can give -1e-17 at the zero-rate end
        distortion=float(np.sum(p[:, None] * q * d)),
        channel=q,
        output=r,
        slope=float(slope),
        iterations=iterations,
        converged=converged,
    )


def _channel(log_r: np.ndarray, d: np.ndarray, slope: float) -> np.ndarray:
    """log q(x_hat | x), normalised over x_hat (log-sum-exp)."""
    logits = log_r[None, :] - slope * d
    top = np.max(logits, axis=1, keepdims=True)
    return logits - top - np.log(np.sum(np.exp(logits - top), axis=1, keepdims=True))


def rate_distortion_curve(p_x, distortion, slopes, **kwargs) -> list[RateDistortionPoint]:
    """:func:`blahut_arimoto` at each slope: a whole curve, from the zero-rate end upwards."""
    return [blahut_arimoto(p_x, distortion, s, **kwargs) for s in slopes]


def rate_distortion(p_x, distortion, target: float, **kwargs) -> RateDistortionPoint:
    """R(D) at a target distortion ``target``: bisection on the slope of :func:`blahut_arimoto`.

    ``target`` must lie between the smallest achievable distortion and D_max (the distortion of the
    zero-rate point); outside that range there is nothing to solve, and a ``ValueError`` says so.
    """
    p = check_pmf(p_x, ndim=1, name="p_x")
    d = _check_distortion(distortion, p.size)
    d_max = float(np.min(p @ d))  # best single reproduction: the zero-rate end
    d_min = float(p @ d.min(axis=1))
    if not d_min <= target <= d_max:
        raise ValueError(
            f"target must be in [{d_min:.6g}, {d_max:.6g}] for this source; got {target}"
        )
    if target >= d_max:
        return blahut_arimoto(p, d, 0.0, **kwargs)
    return _bisect_slope(
        lambda s: blahut_arimoto(p, d, s, **kwargs), lambda pt: pt.distortion, target
    )


def _bisect_slope(solve, distortion_of, target: float, max_slope: float = 1e4):
    """Find the slope whose solution ``solve(slope)`` has distortion ``target`` (it decreases with
    the slope): double an upper bracket, then bisect to 1e-10 or 60 halvings."""
    lo, hi = 0.0, 1.0
    while distortion_of(solve(hi)) > target and hi < max_slope:
        lo, hi = hi, 2 * hi
    point = solve(hi)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        point = solve(mid)
        if abs(distortion_of(point) - target) < 1e-10:
            break
        lo, hi = (mid, hi) if distortion_of(point) > target else (lo, mid)
    return point


@dataclass(frozen=True)
class ConditionalRateDistortionPoint:
    """R_{X1|X2}(D) at one slope: totals and the per-x2 points of :func:`blahut_arimoto`."""

    rate: float
    distortion: float
    slope: float
    per_side_information: list[RateDistortionPoint]


def conditional_rate_distortion(
    p_x1x2, distortion, slope: float, **kwargs
) -> ConditionalRateDistortionPoint:
    """Conditional rate-distortion R_{X1|X2}(D), side information X2 at encoder and decoder.

    R_{X1|X2}(D) = min I(X1; X1_hat | X2) subject to E d(X1, X1_hat) <= D (paper Eq. 21;
    Gray 1973). With X2 known at both ends, each value x2 is a separate source p(x1 | x2); the
    optimal split of the distortion budget gives every x2 the same slope, so the point at ``slope``
    is the p(x2)-average of :func:`blahut_arimoto` on each conditional source. The table is indexed
    ``[x1, x2]`` and ``distortion`` is the matrix ``[x1, x1_hat]``.
    """
    p = check_pmf(p_x1x2, ndim=2, name="p_x1x2")
    p_x2 = p.sum(axis=0)
    points, rate, dist = [], 0.0, 0.0
    for x2 in np.flatnonzero(p_x2 > 0):
        point = blahut_arimoto(p[:, x2] / p_x2[x2], distortion, slope, **kwargs)
        points.append(point)
        rate += p_x2[x2] * point.rate
        dist += p_x2[x2] * point.distortion
    return ConditionalRateDistortionPoint(rate, dist, float(slope), points)


@dataclass(frozen=True)
class JointRateDistortionPoint:
    """A point of R_{X1,X2}(D1, D2) with its test channel ``channel[x1, x2, z1, z2]``."""

    rate: float
    distortion1: float
    distortion2: float
    channel: np.ndarray
    slopes: tuple[float, float]


def joint_rate_distortion(
    p_x1x2, distortion1, distortion2, slopes: tuple[float, float], **kwargs
) -> JointRateDistortionPoint:
    """Joint rate-distortion R_{X1,X2}(D1, D2) with one distortion per component (paper Eq. 19).

    The pair is one source on the product alphabet, reproduced on the product alphabet with the
    distortion ``s1 d1(x1, z1) + s2 d2(x2, z2)``; Blahut-Arimoto at slope 1 on that matrix gives the
    point whose partial slopes are ``(-s1, -s2)`` (Cover & Thomas Sec. 10.8 with a vector
    constraint). Returns the rate and both expected distortions.
    """
    p = check_pmf(p_x1x2, ndim=2, name="p_x1x2")
    d1 = _check_distortion(distortion1, p.shape[0])
    d2 = _check_distortion(distortion2, p.shape[1])
    s1, s2 = (float(s) for s in slopes)
    if min(s1, s2) < 0:
        raise ValueError(f"slopes must be >= 0; got {slopes}")
    n1, n2, m1, m2 = *p.shape, d1.shape[1], d2.shape[1]
    # d[(x1, x2), (z1, z2)] = s1 d1[x1, z1] + s2 d2[x2, z2]
    combined = s1 * d1[:, None, :, None] + s2 * d2[None, :, None, :]
    point = blahut_arimoto(p.reshape(-1), combined.reshape(n1 * n2, m1 * m2), 1.0, **kwargs)
    channel = point.channel.reshape(n1, n2, m1, m2)
    joint = p[:, :, None, None] * channel
    return JointRateDistortionPoint(
        rate=point.rate,
        distortion1=float(np.sum(joint * d1[:, None, :, None])),
        distortion2=float(np.sum(joint * d2[None, :, None, :])),
        channel=channel,
        slopes=(s1, s2),
    )


def joint_rate_distortion_at(
    p_x1x2, distortion1, distortion2, target: float, **kwargs
) -> JointRateDistortionPoint:
    """R_{X1,X2}(D, D) for a pair whose two components are symmetric (same marginal law, same
    distortion): equal slopes give equal distortions, bisected to ``target``.

    For an asymmetric pair use :func:`joint_rate_distortion` with two slopes instead; this function
    refuses one whose equal-slope solution has D1 != D2.
    """
    p = check_pmf(p_x1x2, ndim=2, name="p_x1x2")
    if target <= 0:
        raise ValueError(f"target must be > 0; got {target}")
    point = _bisect_slope(
        lambda s: joint_rate_distortion(p, distortion1, distortion2, (s, s), **kwargs),
        lambda pt: pt.distortion1,
        target,
    )
    if abs(point.distortion1 - point.distortion2) > 1e-6:
        raise ValueError(
            "the components are not symmetric (equal slopes give D1 = "
            f"{point.distortion1:.4g} and D2 = {point.distortion2:.4g}); use joint_rate_distortion"
        )
    return point


def binary_rate_distortion(p: float, D):
    """R(D) = h(p) - h(D) for 0 <= D <= min(p, 1 - p), else 0: a Bernoulli(p) source with Hamming
    distortion (Cover & Thomas Thm 10.3.1). Elementwise in ``D``."""
    if not 0 <= p <= 1:
        raise ValueError(f"p must be in [0, 1]; got {p}")
    D = np.asarray(D, dtype=np.float64)
    if np.any(D < 0):
        raise ValueError("D must be >= 0")
    d_max = min(p, 1 - p)
    rate = np.where(D < d_max, binary_entropy(p) - binary_entropy(np.minimum(D, d_max)), 0.0)
    return float(rate) if rate.ndim == 0 else rate


def dsbs_critical_distortion(crossover: float) -> float:
    """a1 = (1 - sqrt(1 - 2a)) / 2 of a DSBS(a): where its joint rate-distortion changes form.

    The same a1 as in Wyner's C = 1 + h(a) - 2 h(a1) (:func:`~gwnlib.theory.wyner_dsbs`): the
    crossover of two binary symmetric channels in series that make a crossover a, 2 a1 (1 - a1) = a.
    See :func:`dsbs_joint_rate_distortion`. ``crossover`` a must lie in [0, 1/2].
    """
    a = float(crossover)
    if not 0.0 <= a <= 0.5:
        raise ValueError(f"crossover must be a probability in [0, 1/2]; got {crossover!r}")
    return float((1 - np.sqrt(1 - 2 * a)) / 2)


def dsbs_joint_rate_distortion(crossover: float, D):
    """R_{X1,X2}(D, D) of a DSBS(a) (paper Eq. 19), Hamming distortion D on each component.

    The closed form that the theory chapter (Section 2) checks :func:`joint_rate_distortion_at`
    against. Two pieces that meet at D = a1 (:func:`dsbs_critical_distortion`) with the same value,
    Wyner's C = 1 + h(a) - 2 h(a1), and the same slope, -2 log2((1 - a1) / a1):

    - D <= a1: R = 1 + h(a) - 2 h(D) = H(X1, X2) - h(D) - h(D), the Shannon lower bound (Gray
      1973), met by the backward channel X_i = Z_i xor N_i with N1, N2 independent Bernoulli(D)
      bits, independent of (Z1, Z2); it needs P(Z1 != Z2) = (a - 2D(1 - D)) / (1 - 4D(1 - D))
      >= 0, which holds exactly up to a1;
    - a1 <= D <= 1/2: R = (1 - a) [1 - h((D - a/2) / (1 - a))]: the two reproductions are one and
      the same bit Z. A discordant pair (X1 != X2, probability a) costs distortion 1/2 per
      component whatever Z is, so Z ignores it (a fair coin); a concordant pair (X1 = X2 = S) is
      described as Z = S xor BSC((D - a/2) / (1 - a)). R = 0 at D = 1/2 and beyond.

    The first piece is a lower bound that is achieved, so it is exact; the second is achieved by
    the construction above, and its optimality is checked numerically, not proved here: both
    pieces match Blahut-Arimoto on the pair (:func:`joint_rate_distortion_at`) to ~1e-9 bits for
    a = 0.1 and 0.3 (tests/test_theory_rate_distortion.py). Elementwise in ``D``; rates in bits.
    """
    a1 = dsbs_critical_distortion(crossover)
    a = float(crossover)
    D = np.asarray(D, dtype=np.float64)
    if np.any(D < 0) or not np.all(np.isfinite(D)):
        raise ValueError("D must be finite and >= 0")
    Dc = np.minimum(D, 0.5)
    low = 1 + binary_entropy(a) - 2 * binary_entropy(np.minimum(Dc, a1))
    shared = np.clip((Dc - a / 2) / (1 - a), 0.0, 0.5)  # a <= 1/2, so 1 - a > 0
    high = (1 - a) * (1 - binary_entropy(shared))
    rate = np.where(Dc <= a1, low, high)
    return float(rate) if rate.ndim == 0 else rate


def uniform_rate_distortion(m: int, D):
    """R(D) = log2 m - h(D) - D log2(m - 1) for 0 <= D <= 1 - 1/m, else 0: a uniform source on m
    symbols with Hamming distortion (Cover & Thomas Problem 10.5). Elementwise in ``D``."""
    if m < 2:
        raise ValueError(f"m must be >= 2; got {m}")
    D = np.asarray(D, dtype=np.float64)
    if np.any(D < 0):
        raise ValueError("D must be >= 0")
    d_max = 1 - 1 / m
    Dc = np.minimum(D, d_max)
    rate = np.where(D < d_max, np.log2(m) - binary_entropy(Dc) - Dc * np.log2(m - 1), 0.0)
    return float(rate) if rate.ndim == 0 else rate
