"""The integer CDF tables with which gwnlib's entropy coder codes a Gaussian of any scale and
fractional mean (paper Sec. 3.3; the stream format of :mod:`gwnlib.model.streams`).

One integer CDF per (scale, mean offset) pair: :data:`SCALE_LEVELS` log-spaced scales from 0.11
to 256 (CompressAI's :func:`~compressai.models.google.get_scale_table` with twice its levels)
times :data:`OFFSETS` offsets in [-1/2, 1/2). The tables depend only on these constants, never
on a model's weights, so they are built once per process (:func:`cdf_tables`). Changing any
constant here changes every stream: bump :data:`gwnlib.model.streams.FORMAT_VERSION`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from compressai._CXX import pmf_to_quantized_cdf
from compressai.models.google import get_scale_table

#: Mean-offset bins per scale (``K``); the offset error is at most 1 / (2K).
OFFSETS = 32
#: Bits of the integer CDFs (CompressAI's rANS precision).
PRECISION = 16
#: Tail mass left out of each table's range; it becomes the escape bin.
TAIL_MASS = 1e-9
#: Lower bound of the scales (CompressAI's ``GaussianConditional`` default, as in the likelihood).
SCALE_BOUND = 0.11
#: Log-spaced scales of the table grid from 0.11 to 256 (CompressAI uses 64; 128 halves the step).
SCALE_LEVELS = 128
#: Means are clamped to this magnitude before picking a table (symbols stay int32).
MAX_MEAN = 2.0**20


@dataclass(frozen=True)
class CdfTables:
    """Integer CDFs of N(offset, scale) for every (scale, offset) pair; index = s * K + k."""

    scales: torch.Tensor  # (S,) float32, increasing
    offsets: int  # K
    cdfs: tuple[list[int], ...]
    cdf_lengths: tuple[int, ...]
    value_offsets: tuple[int, ...]  # the table's first symbol, -n

    def indexes(self, scales: torch.Tensor, means: torch.Tensor) -> tuple[list[int], list[int]]:
        """Table index and integer centre ``c`` for each element of (``scales``, ``means``)."""
        scales = scales.float().clamp_min(SCALE_BOUND).contiguous()
        # The nearest tabulated scale in log distance (a ratio of at most 1.03 with 128 levels).
        upper = torch.searchsorted(self.scales, scales).clamp(1, len(self.scales) - 1)
        lower = upper - 1
        closer_below = torch.log(scales / self.scales[lower]) < torch.log(
            self.scales[upper] / scales
        )
        s = torch.where(closer_below, lower, upper)
        means = means.float().clamp(-MAX_MEAN, MAX_MEAN)
        centres = torch.floor(means + 0.5)
        k = torch.floor((means - centres + 0.5) * self.offsets).clamp(0, self.offsets - 1)
        index = s * self.offsets + k.long()
        return index.tolist(), centres.long().tolist()

    def select(self, indexes: Sequence[int]) -> tuple[list[int], list, list[int], list[int]]:
        """Only the tables ``indexes`` use, and the indexes renumbered into them.

        Passing the whole grid to the C++ coder at every call would convert ~10^5 integers each
        time; the serial decoder calls it once per position.
        """
        used = sorted(set(indexes))
        local = {index: i for i, index in enumerate(used)}
        return (
            [local[i] for i in indexes],
            [self.cdfs[i] for i in used],
            [self.cdf_lengths[i] for i in used],
            [self.value_offsets[i] for i in used],
        )


@functools.lru_cache(maxsize=4)
def cdf_tables(offsets: int = OFFSETS) -> CdfTables:
    """The (scale, mean offset) grid of integer CDFs, built once per ``offsets`` (cached).

    Like ``GaussianConditional.update`` (CompressAI), each table covers the mean +- n symbols
    with n = ceil(scale * Phi^-1(1 - TAIL_MASS / 2)) + 1 (the +1 for the offset), and its last
    bin holds the mass outside; ``pmf_to_quantized_cdf`` gives every bin a nonzero frequency.
    """
    if not 1 <= offsets <= 255:
        raise ValueError(f"offsets must be in 1..255; got {offsets}")
    scales = get_scale_table(SCALE_BOUND, 256, SCALE_LEVELS).float()
    multiplier = -torch.special.ndtri(torch.tensor(TAIL_MASS / 2, dtype=torch.float64)).item()
    mus = -0.5 + (torch.arange(offsets, dtype=torch.float64) + 0.5) / offsets
    cdfs, lengths, starts = [], [], []
    for scale in scales.double().tolist():
        n = int(torch.ceil(torch.tensor(scale * multiplier)).item()) + 1
        symbols = torch.arange(-n, n + 1, dtype=torch.float64)
        upper = torch.special.ndtr((symbols[None] + 0.5 - mus[:, None]) / scale)
        lower = torch.special.ndtr((symbols[None] - 0.5 - mus[:, None]) / scale)
        pmf = upper - lower
        tail = lower[:, 0] + torch.special.ndtr((mus - n - 0.5) / scale)  # below -n; above n
        for k in range(offsets):
            cdf = pmf_to_quantized_cdf(pmf[k].tolist() + [tail[k].item()], PRECISION)
            cdfs.append(cdf)
            lengths.append(len(cdf))
            starts.append(-n)
    return CdfTables(scales, offsets, tuple(cdfs), tuple(lengths), tuple(starts))
