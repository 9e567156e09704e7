"""Benchmarks (not timed tests): ``python -m gwnlib bench synthetic`` and ``... bench train``.

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


def training(
    codec: str = "shared",
    dataset: str = "synthetic",
    preset: str = "paper",
    device: str = "auto",
    amp: str = "auto",
    windows: int = 3,
    steps: int = 3,
    warmup: int = 2,
    **overrides,
) -> dict:
    """Training throughput of one codec at a preset's size: samples/s and steps/s of the full
    training step (forward, Eq. 12 loss, backward, clipping, Adam), median of ``windows`` timed
    windows of ``steps`` steps after ``warmup`` steps. Batches are drawn before timing."""
    from gwnlib.experiments import Experiment, resolve
    from gwnlib.train import AMP_MODES, _autocast, make_optimizer

    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}; got {amp!r}")
    config = resolve(dataset, preset, codec=codec, **overrides)
    dev = resolve_device(device)
    experiment = Experiment(config, dev)
    model = experiment.codec().to(dev).train()
    loss_fn = experiment.loss()
    optimizer = make_optimizer(model, config, dev)
    batch = next(experiment.batches("train"))
    bf16 = amp == "bf16" or (amp == "auto" and dev.type == "cuda")
    autocast = _autocast(dev, bf16)

    def step():
        with autocast():
            terms = loss_fn(model(batch[0]), batch[1], batch[2])
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    _synchronize(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    rates = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        _synchronize(dev)
        rates.append(steps / (time.perf_counter() - start))
    median = statistics.median(rates)
    return {
        "benchmark": f"training step, {codec} codec, {dataset} {preset} size",
        "batch_size": config.batch_size,
        "latent_channels": config.latent_channels,
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": str(dev),
        "hardware": hardware(dev),
        "amp": "bf16" if bf16 else "fp32",
        "torch_threads": torch.get_num_threads(),
        "steps_per_s": median,
        "samples_per_s": median * config.batch_size,
        "peak_memory_gib": torch.cuda.max_memory_allocated(dev) / 2**30
        if dev.type == "cuda"
        else None,
        "windows": rates,
    }
