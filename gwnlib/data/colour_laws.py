"""The three laws P(colour | digit) of coloured MNIST, their information measures, and seeded
draws from them (paper Sec. 4.2, appendix D.4; chapters "Two controlled sources: the synthetic
Gray-Wyner source and coloured MNIST" and "Coloured MNIST: edge cases of common information").

The law that couples a digit to its colour sets how much information the two tasks of
:class:`gwnlib.data.colored_mnist.ColoredMNIST` share (appendix D.4 and the authors' code):

* ``"dependent"``: digit d always gets colour d, so H(digit, colour) = I(digit; colour) = log2 10.
* ``"independent"``: a colour uniform over all ten, so H = 2 log2 10 and I = 0.
* ``"mixture"``: digits 0, 1, 2 get colours 0, 1, 2; digits 3, 4, 5 a colour uniform over all
  ten; digits 6, 7, 8, 9 a colour uniform over colours 0-3, 2-5, 4-7, 6-9. H = 5.1185 bits and
  I = 1.4004 bits (the paper rounds them to 5.12 and 1.4).

Colours are indices 0..9 into :data:`gwnlib.data.colored_mnist.COLOURS`.
"""

from __future__ import annotations

import math

import numpy as np

from gwnlib.runtime import check_choice, check_epoch, check_seed
from gwnlib.theory.common_information import gacs_korner
from gwnlib.theory.entropy import entropy, mutual_information

__all__ = [
    "PAPER_VALUES",
    "PMFS",
    "colour_given_digit",
    "draw_given_digit",
    "pmf_table",
    "pmf_theory",
    "sample_colours",
]

#: The three laws P(colour | digit) of the paper's Sec. 4.2.
PMFS = ("dependent", "independent", "mixture")

#: The numbers the paper states for each law (Sec. 4.2), in bits, for side-by-side tables with
#: :func:`pmf_theory`. The paper gives no Gacs-Korner values.
PAPER_VALUES = {
    "dependent": {"joint_entropy": math.log2(10), "mutual_information": math.log2(10)},
    "independent": {"joint_entropy": 2 * math.log2(10), "mutual_information": 0.0},
    "mixture": {"joint_entropy": 5.12, "mutual_information": 1.4},
}

#: The colours open to each digit under the mixture law (uniform over each set).
_MIXTURE_COLOURS = (
    (0,),
    (1,),
    (2,),
    tuple(range(10)),
    tuple(range(10)),
    tuple(range(10)),
    tuple(range(0, 4)),
    tuple(range(2, 6)),
    tuple(range(4, 8)),
    tuple(range(6, 10)),
)


def colour_given_digit(pmf: str) -> np.ndarray:
    """The 10x10 table ``[digit, colour]`` of P(colour | digit) for ``pmf`` (paper Sec. 4.2).

    ``pmf`` is one of :data:`PMFS`; every row sums to 1.
    """
    pmf = check_choice("pmf", pmf, PMFS)
    if pmf == "dependent":
        return np.eye(10)
    if pmf == "independent":
        return np.full((10, 10), 0.1)
    table = np.zeros((10, 10))
    for digit, colours in enumerate(_MIXTURE_COLOURS):
        table[digit, list(colours)] = 1.0 / len(colours)
    return table


def pmf_table(pmf: str) -> np.ndarray:
    """The 10x10 joint table ``[digit, colour]`` of P(digit, colour) with uniform digits.

    MNIST's digits are close to uniform (9.0% to 11.2% each), and the paper's entropies
    (Sec. 4.2) assume they are exactly uniform: P(digit, colour) = P(colour | digit) / 10.
    """
    return colour_given_digit(pmf) / 10.0


def pmf_theory(pmf: str) -> dict[str, float]:
    """H(digit, colour), I(digit; colour) and Gacs-Korner's K(digit; colour) of ``pmf``, in bits.

    Computed with :mod:`gwnlib.theory` from :func:`pmf_table`, for comparison with
    :data:`PAPER_VALUES` (paper Sec. 4.2). K is log2 10 for the dependent law (the colour is the
    digit), 0 for the independent law, and 0 for the mixture too: digits 3, 4 and 5 may take any
    colour, so the support of the table is connected and no variable other than a constant is
    determined by both the digit and the colour, although I = 1.40 bits.
    """
    p = pmf_table(pmf)
    return {
        "joint_entropy": entropy(p),
        "mutual_information": mutual_information(p),
        "gacs_korner": gacs_korner(p).value,
    }


def sample_colours(digits, pmf: str, seed: int, epoch: int, stream: int = 0) -> np.ndarray:
    """Colours [N] int64 drawn from P(colour | digit) for each digit of ``digits`` [N].

    One uniform number per item from ``numpy.random.default_rng([seed, epoch, stream])``,
    turned into a colour by the inverse CDF of its digit's row of :func:`colour_given_digit`:
    item i's colour depends only on (seed, epoch, stream, i, digit i).
    :class:`~gwnlib.data.colored_mnist.ColoredMNIST` uses ``stream`` = the index of its split in
    :data:`~gwnlib.data.colored_mnist.SPLITS`.
    """
    return draw_given_digit(digits, lambda: colour_given_digit(pmf), seed, epoch, stream)


def draw_given_digit(digits, rows, seed: int, epoch: int, stream: int = 0) -> np.ndarray:
    """Outcomes [N] int64, one per digit of ``digits`` [N], drawn by the inverse CDF of the
    digit's row of ``rows()`` (a [10, n] table of P(outcome | digit)) from one uniform number per
    item of ``numpy.random.default_rng([seed, epoch, stream])``: the draw behind
    :func:`sample_colours` and :func:`gwnlib.data.triple_laws.sample_attributes`. ``rows`` is
    called after ``digits``, ``seed`` and ``epoch`` are checked."""
    digits = np.asarray(digits, dtype=np.int64)
    if digits.size and not (digits.min() >= 0 and digits.max() <= 9):
        raise ValueError("digits must be integers 0..9")
    check_seed(seed)
    epoch = check_epoch(epoch)
    cdf = np.cumsum(rows(), axis=1)
    cdf[cdf > 1 - 1e-9] = 1.0  # rounding must not leave mass after the last outcome of a row
    uniforms = np.random.default_rng([int(seed), epoch, int(stream)]).random(len(digits))
    # The number of CDF entries <= u, per digit's row: a binary search, not an [N, n] table.
    outcomes = np.empty(len(digits), dtype=np.int64)
    for digit in np.unique(digits):
        items = digits == digit
        outcomes[items] = np.searchsorted(cdf[digit], uniforms[items], side="right")
    return outcomes
