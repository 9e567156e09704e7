"""Laws P(colour, background | digit) of three-task coloured MNIST, their exact information
measures, and seeded draws from them (chapter "Beyond two tasks"; the two-task laws of the
paper's Sec. 4.2 and appendix D.4 are :mod:`gwnlib.data.colour_laws`).

:class:`gwnlib.data.triple_mnist.TripleColoredMNIST` paints each digit D in a stroke colour C on a
background colour B. The law that couples (D, C, B) sets what the three tasks share: all three
together, only pairs of them, or nothing. Digits are uniform over 0..9, as the paper's entropies
assume for coloured MNIST (see :func:`gwnlib.data.colour_laws.pmf_table`); C indexes the ten
stroke colours of :data:`gwnlib.data.colored_mnist.COLOURS` and B the ten background colours of
:data:`gwnlib.data.triple_mnist.BACKGROUNDS`. With L = log2 10:

* ``"shared"``: C = B = D. Everything is common to all three tasks: every H, every I and the
  Gacs-Korner common part of all three are L; co-information L.
* ``"pairwise"``: three independent uniform components a in 0..4, b in 0..1 and c in 0..1, with
  D = 2a + b, C = 2a + c and B = 2b + c (only backgrounds 0..3 occur). D and C share a
  (log2 5 bits), D and B share b (1 bit), C and B share c (1 bit), but nothing is common to all
  three: the three-way Gacs-Korner part and the co-information are 0, although total
  correlation is log2 20 = log2 5 + 2 bits.
* ``"private"``: D, C and B independent and uniform: nothing shared, every I is 0.
* ``"synergy"``: D and C independent and uniform, B = (D + C) mod 10. Every pair is independent
  (pairwise I = 0) yet any two determine the third: co-information -L, total correlation L,
  dual total correlation 2L.

Co-information follows the paper's Eq. 22 (Yeung's sign, as
:func:`gwnlib.theory.entropy.interaction_information`): I(D; C; B) = I(D; C) - I(D; C | B),
positive for redundancy ("shared") and negative for synergy ("synergy"). McGill's interaction
information is its negative.
"""

from __future__ import annotations

import numpy as np

from gwnlib.data.colour_laws import draw_given_digit
from gwnlib.runtime import check_choice
from gwnlib.theory.common_information import gacs_korner
from gwnlib.theory.entropy import (
    conditional_mutual_information,
    entropy,
    interaction_information,
    mutual_information,
)
from gwnlib.theory.multivariate import common_part, dual_total_correlation, total_correlation

__all__ = [
    "LAWS",
    "LOSSLESS_STREAMS",
    "MEASURES",
    "attributes_given_digit",
    "law_pmf",
    "law_theory",
    "sample_attributes",
    "table",
]

#: The laws P(colour, background | digit), in the order of the chapter "Beyond two tasks".
LAWS = ("shared", "pairwise", "private", "synergy")

#: The keys of :func:`law_theory`, in bits. The three tasks are D (digit), C (stroke colour)
#: and B (background colour).
MEASURES = (
    "H(D)",
    "H(C)",
    "H(B)",
    "H(D,C)",
    "H(D,B)",
    "H(C,B)",
    "H(D,C,B)",
    "I(D;C)",
    "I(D;B)",
    "I(C;B)",
    "I(D;C|B)",
    "I(D;C;B)",
    "TC",
    "DTC",
    "K(D;C)",
    "K(D;B)",
    "K(C;B)",
    "K(D;C;B)",
)


_L, _L5 = float(np.log2(10)), float(np.log2(5))

#: For each law, one allocation of bits to the streams Y_S of a three-receiver Gray-Wyner network
#: that lets every receiver recover its attribute exactly at the least transmit rate,
#: H(D, C, B): {stream S (tasks 1 = digit, 2 = colour, 3 = background): bits}. ``shared``: Y_123
#: carries the one shared value. ``pairwise``: each pair's stream carries its shared component (a
#: on Y_12, b on Y_13, c on Y_23). ``private``: three private streams. ``synergy``: Y_13 = D and
#: Y_23 = C (the background receiver computes B = D + C mod 10), one of three symmetric choices,
#: read 4 log2 10 bits in all; (D, C) on Y_123 reaches H too, but is read 6 log2 10 bits in all.
#: Tests check each against the cut-set bounds
#: (:func:`gwnlib.theory.multiterminal.multiterminal_bounds`).
LOSSLESS_STREAMS = {
    "shared": {(1, 2, 3): _L},
    "pairwise": {(1, 2): _L5, (1, 3): 1.0, (2, 3): 1.0},
    "private": {(1,): _L, (2,): _L, (3,): _L},
    "synergy": {(1, 3): _L, (2, 3): _L},
}


def law_pmf(law: str) -> np.ndarray:
    """The 10x10x10 joint table ``[digit, colour, background]`` of ``law`` (one of
    :data:`LAWS`), with uniform digits; it sums to 1."""
    law = check_choice("law", law, LAWS)
    p = np.zeros((10, 10, 10))
    if law == "shared":
        for d in range(10):
            p[d, d, d] = 0.1
    elif law == "pairwise":
        for a in range(5):
            for b in range(2):
                for c in range(2):
                    p[2 * a + b, 2 * a + c, 2 * b + c] += 1 / 20
    elif law == "private":
        p[:] = 1e-3
    else:  # synergy
        for d in range(10):
            for c in range(10):
                p[d, c, (d + c) % 10] = 1e-2
    return p


def attributes_given_digit(law: str) -> np.ndarray:
    """The table ``[digit, colour, background]`` of P(colour, background | digit) for ``law``:
    each digit's 10x10 slice sums to 1."""
    return law_pmf(law) * 10.0


def law_theory(law: str) -> dict[str, float]:
    """The exact information measures of ``law``, in bits, keyed by :data:`MEASURES`.

    Entropies, pairwise mutual informations, I(D; C | B), co-information I(D; C; B) (paper
    Eq. 22, Yeung's sign: I(D; C) - I(D; C | B)), total correlation TC = H(D) + H(C) + H(B) -
    H(D, C, B), dual total correlation DTC = H(D, C, B) - H(D | C, B) - H(C | D, B) -
    H(B | D, C), the pairwise Gacs-Korner common parts K (paper Eq. 8, via
    :func:`gwnlib.theory.common_information.gacs_korner`) and the three-way one
    (:func:`gwnlib.theory.multivariate.common_part`). All from :mod:`gwnlib.theory` on
    :func:`law_pmf`.
    """
    p = law_pmf(law)
    p_dc, p_db, p_cb = p.sum(axis=2), p.sum(axis=1), p.sum(axis=0)
    h_d, h_c, h_b = entropy(p_dc.sum(axis=1)), entropy(p_dc.sum(axis=0)), entropy(p_db.sum(axis=0))
    h_dc, h_db, h_cb, h_all = entropy(p_dc), entropy(p_db), entropy(p_cb), entropy(p)
    return {
        "H(D)": h_d,
        "H(C)": h_c,
        "H(B)": h_b,
        "H(D,C)": h_dc,
        "H(D,B)": h_db,
        "H(C,B)": h_cb,
        "H(D,C,B)": h_all,
        "I(D;C)": mutual_information(p_dc),
        "I(D;B)": mutual_information(p_db),
        "I(C;B)": mutual_information(p_cb),
        "I(D;C|B)": conditional_mutual_information(p),
        "I(D;C;B)": interaction_information(p),
        "TC": total_correlation(p),
        "DTC": dual_total_correlation(p),
        "K(D;C)": gacs_korner(p_dc).value,
        "K(D;B)": gacs_korner(p_db).value,
        "K(C;B)": gacs_korner(p_cb).value,
        "K(D;C;B)": common_part(p).value,
    }


def table(laws=LAWS) -> dict[str, dict[str, float]]:
    """:func:`law_theory` of every law of ``laws`` (default all of :data:`LAWS`), keyed by law:
    one row per law, for the chapter's side-by-side table (``pandas.DataFrame(table()).T``)."""
    return {law: law_theory(law) for law in laws}


def sample_attributes(
    digits, law: str, seed: int, epoch: int, stream: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(colours [N], backgrounds [N]) int64 drawn from P(colour, background | digit) of ``law``
    for each digit of ``digits`` [N].

    As :func:`gwnlib.data.colour_laws.sample_colours`: one uniform number per item from
    ``numpy.random.default_rng([seed, epoch, stream])``, turned into a (colour, background) pair
    by the inverse CDF of its digit's 100 outcomes (colour-major), so item i's pair depends only
    on (seed, epoch, stream, i, digit i).
    :class:`~gwnlib.data.triple_mnist.TripleColoredMNIST` uses ``stream`` = the index of its
    split in :data:`~gwnlib.data.colored_mnist.SPLITS`.
    """
    outcomes = draw_given_digit(
        digits, lambda: attributes_given_digit(law).reshape(10, 100), seed, epoch, stream
    )  # outcome = 10 colour + background
    return outcomes // 10, outcomes % 10
