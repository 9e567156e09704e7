"""The Gray-Wyner region's lower bounds, and the transmit and receive rates (chapter "Gray-Wyner
networks and lossy common information").

A Gray-Wyner network sends a common stream at rate R0 and private streams at R1 and R2 (paper
Sec. 2.1, Fig. 1). Whatever the code, three planes bound the achievable rates at distortions
(D1, D2) from below:

- plane A (the *Pangloss* plane): R0 + R1 + R2 >= R_{X1,X2}(D1, D2), the joint rate-distortion;
- plane B: R0 + R1 >= R_{X1}(D1); plane C: R0 + R2 >= R_{X2}(D2), the marginal ones.

The transmit rate R_t = R0 + R1 + R2 is optimal on plane A, which is reachable exactly when
R0 >= C (Wyner's common information, Eq. 2); the receive rate R_r = 2 R0 + R1 + R2 is optimal on
B and C together, reachable when R0 <= K (Gács-Körner, Eq. 4). Projected on the plane
(R0, R1 + R2), both bounds are lines: slope -1 for A, slope -2 for B and C together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gwnlib.theory.entropy import check_pmf, entropy


def transmit_rate(r0, r1, r2):
    """R_t = R0 + R1 + R2: one receiver performs both tasks (paper Sec. 2.1)."""
    return r0 + r1 + r2


def receive_rate(r0, r1, r2):
    """R_r = 2 R0 + R1 + R2: two receivers, each reads the common stream (paper Sec. 2.1)."""
    return 2 * r0 + r1 + r2


@dataclass(frozen=True)
class GrayWynerBounds:
    """The lower bounds of Fig. 1 for one source at one pair of distortions.

    ``joint`` = R_{X1,X2}(D1, D2) (plane A); ``marginal1``, ``marginal2`` = R_{X1}(D1), R_{X2}(D2)
    (planes B, C); ``wyner`` = C(X1, X2; D1, D2) and ``gacs_korner`` = K(X1, X2; D1, D2) when known.
    In the lossless case (D1 = D2 = 0) these are H(X1, X2), H(X1), H(X2), C(X1; X2) and K(X1; X2).
    """

    joint: float
    marginal1: float
    marginal2: float
    wyner: float | None = None
    gacs_korner: float | None = None

    def __post_init__(self):
        if self.joint > self.marginal1 + self.marginal2 + 1e-9:
            raise ValueError("joint must not exceed marginal1 + marginal2 (Gray 1973, Eq. 42)")
        if self.joint < max(self.marginal1, self.marginal2) - 1e-9:
            raise ValueError("joint must be at least max(marginal1, marginal2)")

    @property
    def crossing(self) -> float:
        """R0 where plane A meets planes B and C: R_{X1} + R_{X2} - R_{X1,X2} (lossless: I)."""
        return self.marginal1 + self.marginal2 - self.joint

    def private_lower_bound(self, r0):
        """The least R1 + R2 the planes allow at common rate ``r0`` (elementwise)."""
        r0 = np.asarray(r0, dtype=np.float64)
        receive = np.maximum(self.marginal1 - r0, 0) + np.maximum(self.marginal2 - r0, 0)
        bound = np.maximum(self.pangloss(r0), receive)
        return float(bound) if bound.ndim == 0 else bound

    def pangloss(self, r0):
        """R1 + R2 on plane A: R_{X1,X2} - R0."""
        return self.joint - np.asarray(r0, dtype=np.float64)

    def receive_optimal(self, r0):
        """R1 + R2 on planes B and C together: R_{X1} + R_{X2} - 2 R0."""
        return self.marginal1 + self.marginal2 - 2 * np.asarray(r0, dtype=np.float64)

    @property
    def c_point(self) -> tuple[float, float]:
        """(R0, R1 + R2) = (C, R_{X1,X2} - C): transmit-optimal with the least common rate."""
        if self.wyner is None:
            raise ValueError("this GrayWynerBounds has no wyner value")
        return self.wyner, self.joint - self.wyner

    @property
    def k_point(self) -> tuple[float, float]:
        """(R0, R1 + R2) = (K, R_{X1} + R_{X2} - 2K): receive-optimal with the most common rate."""
        if self.gacs_korner is None:
            raise ValueError("this GrayWynerBounds has no gacs_korner value")
        return self.gacs_korner, self.marginal1 + self.marginal2 - 2 * self.gacs_korner


def lossless_bounds(p_xy, wyner: float | None = None, **wyner_kwargs) -> GrayWynerBounds:
    """The lossless bounds of a pair table ``[x1, x2]``: entropies, C and K.

    K comes from :func:`~gwnlib.theory.common_information.gacs_korner`; C from
    :func:`~gwnlib.theory.common_information.wyner_common_information` (keyword arguments go to it)
    unless ``wyner`` is given, for sources whose C is known in closed form.
    """
    from gwnlib.theory.common_information import gacs_korner, wyner_common_information

    p = check_pmf(p_xy, ndim=2, name="p_xy")
    if wyner is None:
        wyner = wyner_common_information(p, **wyner_kwargs).value
    return GrayWynerBounds(
        joint=entropy(p),
        marginal1=entropy(p.sum(axis=1)),
        marginal2=entropy(p.sum(axis=0)),
        wyner=float(wyner),
        gacs_korner=gacs_korner(p).value,
    )
