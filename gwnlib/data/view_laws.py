"""Laws of the two-view source of chapter "Two sources": two coloured MNIST digits, one per
view, whose labels are coupled, and the exact information values that say what the two *tasks*
share and what the two *views* share (not in the paper).

View i shows a digit D_i in a stroke colour C_i (:class:`gwnlib.data.two_views.TwoViewMNIST`);
task i reads the colour of its own view, T_i = C_i. D_1 is the digit of the item's MNIST image
(uniform over 0..9, as the paper's entropies assume), and a law gives P(C_1, D_2, C_2 | D_1).
With L = log2 10:

* ``"same"``: one colour for both views, C_1 = C_2 uniform; D_2 independent. The tasks share
  everything: I(T_1; T_2) = K(T_1; T_2) = L.
* ``"partial"``: C_1 = 2a + b_1 and C_2 = 2a + b_2 with a uniform in 0..4 and two independent
  bits: the tasks share a, I = K = log2 5 bits, and keep one private bit each.
* ``"neighbour"``: C_2 = C_1 or the next colour, (C_1 + n) mod 10 with n a fair bit. The tasks
  share I = L - 1 bits, yet no function of one colour is a function of the other: K = 0.
* ``"digit"``: independent colours, D_2 = D_1. The views share the digit class (L bits) but
  the tasks share nothing.

A centralised encoder (one that sees both views, as the paper's) can code both tasks without
loss at transmit rate H(T_1, T_2). A distributed pair of encoders, encoder i seeing only view
i, can put on the common channel only what both can compute: a common function Z of the views,
that is a function of their Gacs-Korner common part W (paper Eq. 4 and 8). A code that maps
each item to its symbols on its own (as the learned codecs do) sends Z = g(W) on Y_0 and T_i
given Z on Y_i, at H(Z) + H(T_1 | Z) + H(T_2 | Z): its least transmit rate is
:func:`distributed_rate`. Codes over blocks of items can do better in general (both encoders
can describe W^n lossily in the same way: min over P(U | W) of I(W; U) + H(T_1 | U) +
H(T_2 | U)). Both lie between H(T_1, T_2) (a centralised encoder can do no better) and
H(T_1) + H(T_2) - K(T_1; T_2) (Z the tasks' own common part, a common function of the views
too). For the four laws these bounds meet or W is constant, so every value here is exact for
block codes too. The values assume uniform digits; MNIST's are nearly so (H = 3.320 bits
against log2 10 = 3.322).
"""

from __future__ import annotations

import itertools

import numpy as np

from gwnlib.data.colour_laws import draw_given_digit
from gwnlib.runtime import check_choice
from gwnlib.theory.common_information import gacs_korner, wyner_common_information
from gwnlib.theory.entropy import check_pmf, entropy, mutual_information

__all__ = [
    "LAWS",
    "MEASURES",
    "distributed_rate",
    "labels_given_digit",
    "law_pmf",
    "law_theory",
    "sample_labels",
    "table",
]

#: The laws, in the order of the chapter "Two sources": tasks share L, log2 5, I without K, 0.
LAWS = ("same", "partial", "neighbour", "digit")

#: The keys of :func:`law_theory`, in bits. T_i = C_i is task i's target, V_i = (D_i, C_i) the
#: labels of view i.
MEASURES = (
    "H(T1)",
    "H(T2)",
    "H(T1,T2)",
    "I(T1;T2)",
    "K(T1;T2)",
    "C(T1;T2)",
    "I(V1;V2)",
    "K(V1;V2)",
    "R_t centralised",
    "R_t distributed",
    "loss",
)


def law_pmf(law: str) -> np.ndarray:
    """The 10x10x10x10 joint table ``[d1, c1, d2, c2]`` of ``law`` (one of :data:`LAWS`), with
    uniform D_1; it sums to 1."""
    law = check_choice("law", law, LAWS)
    p = np.zeros((10, 10, 10, 10))
    for d1 in range(10):
        if law == "same":
            for c in range(10):
                p[d1, c, :, c] += 1 / 1000
        elif law == "partial":
            for a, b1, b2 in itertools.product(range(5), range(2), range(2)):
                p[d1, 2 * a + b1, :, 2 * a + b2] += 1 / 2000
        elif law == "neighbour":
            for c1, n in itertools.product(range(10), range(2)):
                p[d1, c1, :, (c1 + n) % 10] += 1 / 2000
        else:  # digit
            p[d1, :, d1, :] = 1 / 1000
    return p


def labels_given_digit(law: str) -> np.ndarray:
    """The table ``[d1, c1, d2, c2]`` of P(C_1, D_2, C_2 | D_1) for ``law``: each digit's
    10x10x10 slice sums to 1."""
    return law_pmf(law) * 10.0


def distributed_rate(p_w_t1_t2: np.ndarray) -> float:
    """The least transmit rate H(Z) + H(T_1 | Z) + H(T_2 | Z) over every function Z = g(W) of
    a common part W, in bits, from the table ``p[w, t1, t2]`` (a probability table with three
    axes): the lossless rate of distributed encoders that code item by item (module
    docstring). Every partition of W's values with positive mass is tried, so at most 10 of
    them are accepted."""
    p = check_pmf(p_w_t1_t2, ndim=3, name="p_w_t1_t2")
    p = p[p.sum(axis=(1, 2)) > 0]
    if len(p) > 10:
        raise ValueError(f"p_w_t1_t2 may have at most 10 values of W with mass; got {len(p)}")
    best = np.inf
    for labels in _partitions(len(p)):
        z = np.zeros((max(labels) + 1, *p.shape[1:]))
        np.add.at(z, labels, p)
        h_z = entropy(z.sum(axis=(1, 2)))
        h_zt1, h_zt2 = entropy(z.sum(axis=2)), entropy(z.sum(axis=1))
        best = min(best, h_zt1 + h_zt2 - h_z)  # H(Z) + H(T1|Z) + H(T2|Z)
    return float(best)


def _partitions(n: int):
    """Every set partition of range(n), as restricted-growth label lists."""

    def grow(labels, top):
        if len(labels) == n:
            yield list(labels)
            return
        for label in range(top + 2):
            yield from grow(labels + [label], max(top, label))

    yield from grow([], -1)


def law_theory(law: str) -> dict[str, float]:
    """The exact information values of ``law``, in bits, keyed by :data:`MEASURES`.

    Entropies and I of the tasks; K, the Gacs-Korner common part (paper Eq. 8,
    :func:`~gwnlib.theory.common_information.gacs_korner`); C, Wyner's common information
    (Eq. 2, :func:`~gwnlib.theory.common_information.wyner_common_information`, a numerical
    search, between I and min H); I and K of the views' labels V_i = (D_i, C_i); the least
    lossless transmit rates of a centralised encoder, H(T_1, T_2), and of two distributed ones,
    :func:`distributed_rate` on the views' common part; and ``loss``, their difference.
    """
    p = law_pmf(law)
    p_t = p.sum(axis=(0, 2))  # [c1, c2]
    p_v = p.reshape(100, 100)  # [(d1, c1), (d2, c2)]
    common = gacs_korner(p_v)
    p_w = np.zeros((len(common.components), 10, 10))  # [w, c1, c2]
    for w, (v1s, v2s) in enumerate(common.components):
        block = p_v[np.ix_(v1s, v2s)]
        np.add.at(p_w[w], (v1s[:, None] % 10, v2s[None, :] % 10), block)
    h1, h2, h12 = entropy(p_t.sum(axis=1)), entropy(p_t.sum(axis=0)), entropy(p_t)
    k, i = gacs_korner(p_t).value, mutual_information(p_t)
    # Where the bounds H(T1, T2) <= rate <= H(T1) + H(T2) - K meet, there is nothing to search.
    bounds_meet = h1 + h2 - k - h12 < 1e-9
    central, distributed = h12, h12 if bounds_meet else distributed_rate(p_w)
    return {
        "H(T1)": h1,
        "H(T2)": h2,
        "H(T1,T2)": h12,
        "I(T1;T2)": i,
        "K(T1;T2)": k,
        # Independent tasks: W = const is a Markov chain with I(T; W) = 0, so C = 0 exactly.
        "C(T1;T2)": 0.0 if i < 1e-12 else wyner_common_information(p_t, seed=0).value,
        "I(V1;V2)": mutual_information(p_v),
        "K(V1;V2)": common.value,
        "R_t centralised": central,
        "R_t distributed": distributed,
        "loss": distributed - central,
    }


def table(laws=LAWS) -> dict[str, dict[str, float]]:
    """:func:`law_theory` of every law of ``laws`` (default all of :data:`LAWS`), keyed by law."""
    return {law: law_theory(law) for law in laws}


def sample_labels(
    digits, law: str, seed: int, epoch: int, stream: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(c1 [N], d2 [N], c2 [N]) int64 drawn from P(C_1, D_2, C_2 | D_1) of ``law`` for each
    digit D_1 of ``digits`` [N], by the inverse CDF of one uniform number per item of
    ``numpy.random.default_rng([seed, epoch, stream])``
    (:func:`gwnlib.data.colour_laws.draw_given_digit`): item i's labels depend only on (seed,
    epoch, stream, i, digit i)."""
    outcomes = draw_given_digit(
        digits, lambda: labels_given_digit(law).reshape(10, 1000), seed, epoch, stream
    )  # outcome = 100 c1 + 10 d2 + c2
    return outcomes // 100, outcomes // 10 % 10, outcomes % 10
