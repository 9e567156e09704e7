"""Benchmarks (not timed tests): ``python -m gwnlib bench synthetic``.

Reports throughput as the median of repeated timed windows after a warm-up, with the hardware,
so that numbers quoted in the book and in notes can be re-measured.
"""

from __future__ import annotations

import statistics
import time

import torch

from gwnlib.runtime import device as resolve_device
from gwnlib.runtime import hardware


def _synchronize(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def synthetic_batches(
    batch_size: int = 100, device: str = "auto", side: int = 64, windows: int = 5, steps: int = 10
) -> dict:
    """Batches per second of :class:`~gwnlib.data.synthetic.SyntheticGrayWyner` (x, z1, z2)."""
    from gwnlib.data.synthetic import SyntheticGrayWyner

    dev = resolve_device(device)
    source = SyntheticGrayWyner(side=side, device=dev)
    source.transforms  # noqa: B018  (built or loaded before timing)
    stream = source.batches(batch_size, seed=0)
    for _ in range(2):  # warm-up
        next(stream)
    _synchronize(dev)
    rates = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(steps):
            next(stream)
        _synchronize(dev)
        rates.append(steps / (time.perf_counter() - start))
    median = statistics.median(rates)
    return {
        "benchmark": "synthetic batches",
        "batch_size": batch_size,
        "side": side,
        "device": str(dev),
        "hardware": hardware(dev),
        "torch_threads": torch.get_num_threads(),
        "batches_per_s": median,
        "samples_per_s": median * batch_size,
        "windows": rates,
    }
