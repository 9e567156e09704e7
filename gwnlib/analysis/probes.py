"""What each channel carries: decoders trained on a frozen codec to rebuild the input from one
latent alone (paper appendix D.4, Fig. 10); and how often the two encoders of a merging codec
agree on their common candidates (:func:`merge_agreement`, chapter "Two sources").

The paper trains, for each of Y0, Y1 and Y2 of a trained Shared codec, a separate decoder with
the architecture of the synthesis transform that reconstructs the input image from that channel
only, minimising the RMSE to the input. Shown side by side, the reconstructions reveal which
channel carries the digit and which the colour. The codec stays frozen: its encoders only
provide the latents. Chapter "Colored MNIST" uses it.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from gwnlib.files import atomic_write
from gwnlib.model.layers import synthesis_transform
from gwnlib.model.loss import rmse
from gwnlib.runtime import check_int, show_progress


def channel_widths(codec) -> dict[str, int]:
    """Channels of each latent of ``codec`` (``{"y0": E/2, "y1": E/2, "y2": E/2}`` for the
    three-channel codecs; ``{"y0": E}`` for Joint; ``{"y1": E, "y2": E}`` for Independent)."""
    return codec.channel_widths()


@torch.no_grad()
def merge_agreement(codec, x: torch.Tensor) -> dict[str, float]:
    """How far the two encoders of a merging codec (``shared`` or ``distributed``) agree on
    their common candidates for the inputs ``x`` (Eq. 14 keeps a symbol only where they do).

    Returns ``symbols``: the fraction of common-candidate symbols on which they agree;
    ``items``: the fraction of inputs whose whole common candidates agree (on those, Y0 is what
    either encoder alone would write); ``nonzero``: the fraction of Y0's symbols that are not 0.
    Agreement on sampled inputs does not prove that Y0 is a common function of the views; a Y0
    that is 0 almost everywhere carries almost nothing, and so nothing joint either.
    """
    from gwnlib.model.codecs import Shared

    if not isinstance(codec.wiring, Shared):
        raise ValueError(
            f"codec must merge two common candidates (shared or distributed); got {codec.name!r}"
        )
    half = codec.latent_channels // 2
    a, b = codec.wiring.candidates(codec.encoders, x)
    agree = a[:, :half] == b[:, :half]
    y0 = codec.encode(x)[0]["y0"]
    return {
        "symbols": agree.float().mean().item(),
        "items": agree.flatten(1).all(1).float().mean().item(),
        "nonzero": (y0 != 0).float().mean().item(),
    }


def sweep_agreement(sweep, codecs=("shared", "distributed"), count: int = 1000):
    """:func:`merge_agreement` of every finished run of ``sweep`` whose codec is in ``codecs``,
    on the first ``count`` test items of its own experiment: a DataFrame with one row per run
    (its key, codec, law or pmf, beta, eta, seed, the three fractions, and the run's preset,
    hardware and date). Runs without weights in ``sweep.root`` are skipped; an empty frame when
    there are none."""
    import dataclasses

    import pandas as pd

    from gwnlib.experiments import Experiment
    from gwnlib.training.runs import is_finished, load_metrics, load_weights, run_dir

    rows = []
    for config in sweep.configs():
        folder = run_dir(config, sweep.root)
        if config.codec not in codecs or not is_finished(folder):
            continue
        size = count if config.test_size is None else min(count, config.test_size)
        experiment = Experiment(dataclasses.replace(config, test_size=size))
        codec = experiment.codec()
        load_weights(codec, folder / "best.pt", f"retrain the run in {folder}")
        codec.eval()
        x = torch.cat([batch[0] for batch in experiment.batches("test")])
        metrics = load_metrics(folder)
        rows.append({
            "key": config.key, "codec": config.codec, "law": config.law or config.pmf,
            "beta": config.beta, "eta": config.eta, "seed": config.seed,
            **merge_agreement(codec, x), "items_probed": len(x), "preset": config.preset,
            "hardware": metrics["hardware"], "date": metrics["date"],
        })  # fmt: skip
    return pd.DataFrame(rows)


def train_channel_decoders(
    codec,
    batches,
    steps: int,
    channels: tuple[str, ...] | None = None,
    transform: str = "conv",
    lr: float = 1e-4,
    seed: int = 0,
    progress: bool | None = None,
) -> tuple[nn.ModuleDict, list[dict]]:
    """Train one decoder per latent channel of the frozen ``codec`` to rebuild its input.

    ``batches``: an iterable of ``(x, ...)`` tuples (e.g. ``Experiment.batches("train", epoch)``
    chained over epochs), consumed for ``steps`` Adam steps at ``lr`` with gradient-norm
    clipping at 1 (the paper's MNIST settings, with a fixed number of steps instead of early
    stopping). Returns the decoders (a ``ModuleDict`` by channel, in eval mode) and the history
    of training RMSEs (one dict per step).
    """
    widths = channel_widths(codec)
    channels = tuple(widths) if channels is None else tuple(channels)
    unknown = [c for c in channels if c not in widths]
    if unknown:
        raise ValueError(
            f"channels must be among {', '.join(widths)} for a {codec.name} codec; got {unknown}"
        )
    check_int("steps", steps)
    device = next(codec.parameters()).device
    torch.manual_seed(seed)
    decoders = nn.ModuleDict(
        {c: synthesis_transform(widths[c], codec.in_channels, transform) for c in channels}
    ).to(device)
    optimizer = torch.optim.Adam(decoders.parameters(), lr=lr)
    codec.eval()
    history = []
    iterator = iter(batches)
    for _ in tqdm(range(steps), desc="channel decoders", disable=not show_progress(progress)):
        x = next(iterator)[0]
        with torch.no_grad():
            latents, _ = codec.encode(x)
        losses = {c: rmse(decoders[c](latents[c]), x) for c in channels}
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        torch.nn.utils.clip_grad_norm_(decoders.parameters(), 1.0)
        optimizer.step()
        history.append({c: loss.item() for c, loss in losses.items()})
    return decoders.eval(), history


@torch.no_grad()
def reconstruct(codec, decoders: nn.ModuleDict, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each decoder's reconstruction of ``x`` from its channel alone, clamped to [0, 1]."""
    codec.eval()
    latents, _ = codec.encode(x)
    return {c: decoder(latents[c]).clamp(0, 1) for c, decoder in decoders.items()}


def channel_reconstructions(
    config, steps: int, device: str = "auto", lr: float | None = None, count: int = 8
) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Fig. 10 for one finished run: ``count`` validation inputs and their reconstructions from
    each channel alone (``{"input": ..., "y0": ..., ...}``, arrays of shape (count, 3, H, W) in
    [0, 1]), with decoders trained for ``steps`` steps at ``lr`` (default: the run's own) on the
    run's training batches; and the decoders' training history."""
    from gwnlib.experiments import Experiment
    from gwnlib.runtime import device as resolve_device
    from gwnlib.training.runs import load_codec, run_dir

    dev = resolve_device(device)
    experiment = Experiment(config, dev)
    codec = load_codec(run_dir(config), device=str(dev))
    batches = itertools.chain.from_iterable(
        experiment.batches("train", epoch) for epoch in itertools.count()
    )
    lr = config.lr if lr is None else lr
    decoders, history = train_channel_decoders(codec, batches, steps, lr=lr, seed=config.seed)
    x = next(experiment.batches("val"))[0][:count]
    images = {"input": x, **reconstruct(codec, decoders, x)}
    return {name: batch.cpu().numpy() for name, batch in images.items()}, history


def save_reconstructions(path, figure: dict[str, dict[str, np.ndarray]], about: dict) -> Path:
    """Write Fig. 10's images (``{row: {"input": ..., "y0": ...}}``, values in [0, 1]) and what
    made them (``about``: preset, hardware, date, decoder steps, ...) to one ``.npz`` file,
    atomically. Images are stored as 8-bit, like any picture."""
    arrays = {
        f"{row}/{name}": np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)
        for row, images in figure.items()
        for name, array in images.items()
    }
    arrays["about"] = np.array(json.dumps(about))

    def write(handle):
        np.savez_compressed(handle, **arrays)

    return atomic_write(path, write)


def load_reconstructions(path) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """What :func:`save_reconstructions` wrote: the images by row and channel, and ``about``."""
    with np.load(path) as data:
        about = json.loads(str(data["about"]))
        figure: dict[str, dict[str, np.ndarray]] = {}
        for key in data.files:
            if key != "about":
                row, name = key.split("/")
                figure.setdefault(row, {})[name] = data[key].astype(np.float32) / 255
    return figure, about
