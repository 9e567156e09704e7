"""The training loop, written once: an epoch of optimiser steps and the bookkeeping after it.

One run (:mod:`gwnlib.training.train`) and a fused group of runs (:mod:`gwnlib.training.fused`)
train through the same :func:`train_epoch`. Each is a *trainer*, an object with

- ``start_epoch()``: put its model(s) in training mode, with no gradient left over (an epoch
  whose micro-batches ``accumulate`` does not divide leaves the last few unapplied);
- ``backward_step(x, targets, scale)``: forward, loss (Eq. 12 with Eq. 15) and backward of one
  micro-batch (``targets``: one tensor per task), with ``scale`` the eta warm-up factor
  (:func:`rate_scale`); it returns the experiment's ``terms`` (:data:`TERMS` for two tasks) of
  the micro-batch, a tensor per term with one value per point (a 0-d tensor for one run);
- ``update_step()``: Table 1's update (gradient-norm clipping per point, an Adam step);
- ``points``: how many points step together (None for one run: its bars say nothing of points).

After the epoch, :func:`record_epoch` does early stopping's counting (patience on the validation
objective) and writes the epoch's history row, for one point's state; :func:`should_stop` reads
it. Chapter "Training and sweeps" walks through this loop.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from gwnlib.experiments import RunConfig
from gwnlib.experiments.base import TERMS

__all__ = ["TERMS", "make_optimizer", "new_state", "rate_scale", "record_epoch", "should_stop",
           "term", "train_epoch"]  # fmt: skip


def term(output: dict, terms: dict, key: str) -> torch.Tensor:
    """One logged term (:data:`TERMS`, or a K-task experiment's) from a codec's ``output`` and
    its loss ``terms`` (a rate the codec does not have, e.g. ``r0`` of the Independent codec, is
    zero)."""
    if key in terms:
        return terms[key]
    if key in ("rate_transmit", "rate_receive"):
        return output[key]
    return output["rates"].get(key, output["rate_transmit"].new_zeros(()))


def make_optimizer(model, config: RunConfig, dev: torch.device) -> torch.optim.Adam:
    """Adam with the paper's settings (Table 1: lr, betas 0.9/0.999, no weight decay) over
    ``model``'s parameters (a module, or a list of tensors: a fused group's stacked weights),
    using PyTorch's fused kernel on CPUs and CUDA GPUs (one pass over the parameters instead of
    several; about 12% faster per step for the coloured-MNIST codec on a 2-core CPU)."""
    parameters = model.parameters() if isinstance(model, torch.nn.Module) else model
    fused = dev.type in ("cpu", "cuda")
    return torch.optim.Adam(parameters, lr=config.lr, betas=(0.9, 0.999), fused=fused)


def rate_scale(config: RunConfig, step: int) -> float:
    """The fraction of eta that weighs the rate at optimiser step ``step`` (counted from 0):
    ``min(1, (step + 1) / eta_warmup)``, or 1 without a warm-up."""
    if not config.eta_warmup:
        return 1.0
    return min(1.0, (step + 1) / config.eta_warmup)


def train_epoch(trainer, experiment, epoch: int, progress: bool, log_every: int, every=None,
                callback=None) -> dict[str, torch.Tensor]:  # fmt: skip
    """One epoch of optimiser steps of ``trainer`` (see the module's docstring) on
    ``experiment``'s training batches of ``epoch``; the epoch's mean terms (``experiment.terms``),
    on the host in float64, one value per point.

    Every ``config.accumulate`` micro-batches make one optimiser step; the rate's weight ramps up
    over the first ``eta_warmup`` steps of the run (:func:`rate_scale`). ``progress``: a tqdm bar
    whose loss, transmit rate and distortions (means over the points) are refreshed every
    ``log_every`` steps, the only host synchronisations of the epoch. ``callback(step)``: called
    after every ``every``-th step and after the last one (the learning curves of
    :func:`gwnlib.training.train.learning_curve`)."""
    config = experiment.config
    steps = experiment.steps("train")  # micro-batches
    updates = steps // config.accumulate
    points = getattr(trainer, "points", None)
    bar = tqdm(
        total=updates,
        desc=f"epoch {epoch + 1}" + (f" ({points} points)" if points else ""),
        unit="step",
        leave=False,
        disable=not progress,
        dynamic_ncols=True,
    )
    trainer.start_epoch()
    keys = experiment.terms
    shown = ("loss", "rate_transmit", *(key for key in keys if key[0] == "d"))
    sums = dict.fromkeys(keys, 0.0)
    first_step = epoch * updates  # optimiser steps before this epoch
    for i, (x, *targets) in enumerate(experiment.batches("train", epoch)):
        scale = rate_scale(config, first_step + i // config.accumulate)
        terms = trainer.backward_step(x, targets, scale)
        for key in keys:
            sums[key] = sums[key] + terms[key].detach().float()
        if (i + 1) % config.accumulate:
            continue
        trainer.update_step()
        bar.update(1)
        step = (i + 1) // config.accumulate
        if callback is not None and (step % every == 0 or i + 1 == steps):
            callback(step)
        if progress and step % log_every == 0:
            mean = {key: (sums[key] / (i + 1)).mean().item() for key in shown}
            labels = {"loss": "loss", "rate_transmit": "R_t"}
            bar.set_postfix({labels.get(key, key.upper()): f"{value:.{4 if key == 'loss' else 3}f}"
                             for key, value in mean.items()})  # fmt: skip
    bar.close()
    return {key: value.cpu().double() / steps for key, value in sums.items()}


def new_state() -> dict:
    """The counters of a run that has not trained yet (what ``last.pt`` saves as ``state``)."""
    return {"epoch": 0, "best_loss": math.inf, "best_epoch": 0, "bad_epochs": 0, "history": []}


def record_epoch(state: dict, train: dict, val: dict, train_seconds: float, samples: int) -> None:
    """Count one more epoch in a point's ``state``: early stopping's counters (a validation loss
    below the best so far is the new best; any other, a NaN too, one more bad epoch) and the
    epoch's history row (``train_*`` and ``val_*`` terms as numbers, training seconds, and
    ``samples`` training samples per second)."""
    epoch = state["epoch"] + 1
    state["epoch"] = epoch
    if val["loss"] < state["best_loss"]:
        state.update(best_loss=val["loss"], best_epoch=epoch, bad_epochs=0)
    else:
        state["bad_epochs"] += 1
    state["history"].append(
        {
            "epoch": epoch,
            **{f"train_{k}": v for k, v in train.items()},
            **{f"val_{k}": v for k, v in val.items()},
            "train_seconds": train_seconds,
            "samples_per_s": samples / train_seconds,
        }
    )


def should_stop(state: dict, config: RunConfig) -> bool:
    """Whether a point is done: ``max_epochs`` epochs trained, or ``patience`` epochs in a row
    without a better validation loss (Table 1, appendix D.2)."""
    return state["epoch"] >= config.max_epochs or state["bad_epochs"] >= config.patience
