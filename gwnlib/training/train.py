"""Training one run: the fit loop, early stopping and resumable checkpoints.

:func:`fit` trains the codec of a :class:`~gwnlib.experiments.RunConfig` with the paper's recipe
(Table 1, appendix D.2): Adam at lr 1e-4, gradient-norm clipping at 1, optional gradient
accumulation, early stopping on the validation objective (Eq. 12 with Eq. 15, the training loss
evaluated on fixed validation batches) with patience, and at most ``max_epochs`` epochs of
``train_steps`` optimiser steps each. On a GPU the transforms run under bfloat16 autocast by
default while the entropy models' likelihoods, hence every rate, stay in float32.

The epoch itself is :func:`gwnlib.training.loop.train_epoch`, the loop a fused group
(:mod:`gwnlib.training.fused`) trains through too; :class:`OneRun` is one codec as its trainer.

A run lives in its directory (:mod:`gwnlib.training.runs`: config, history, checkpoints,
metrics, each file written atomically). ``last.pt`` is the commit point of an epoch:
``history.csv`` and ``best.pt`` are exported after it and re-exported on resume. Batches are a
pure function of (seed, split, epoch) and the codecs have no randomness, so on the CPU a killed
run resumed from ``last.pt`` ends bit for bit where an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from tqdm.auto import tqdm

from gwnlib.experiments import Experiment, RunConfig, from_dict, resolve
from gwnlib.files import (
    remove_stale_temporaries,
    save_torch,
    write_json,
)
from gwnlib.model.ops import receive_rate, transmit_rate
from gwnlib.runtime import check_int, hardware, show_progress
from gwnlib.runtime import device as resolve_device
from gwnlib.training.accel import (
    AMP_MODES,
    ChannelsLastInputs,
    CompiledCodec,
    autocast_context,
    uses_bf16,
)
from gwnlib.training.loop import (
    TERMS,
    make_optimizer,
    new_state,
    record_epoch,
    should_stop,
    term,
    train_epoch,
)
from gwnlib.training.runs import (
    claim,
    exclusive,
    export,
    is_finished,
    load_metrics,
    load_weights,
    remove_if_untrained,
    resumable,
    retrain,
    run_dir,
    set_aside_damaged,
    warm_start,
)

# --------------------------------------------------------------------------------------------
# The fit loop
# --------------------------------------------------------------------------------------------


def fit(
    config: RunConfig | dict | None = None,
    root: str | Path | None = None,
    device: str = "auto",
    amp: str = "auto",
    compile: bool = False,
    progress: bool | None = None,
    log_every: int = 25,
    channels_last: bool = False,
    **overrides,
) -> dict:
    """Train one run to the end (or resume it) and return its final metrics.

    ``config``: a :class:`RunConfig`, its dict, or None to build one with
    ``resolve(**overrides)`` (e.g. ``fit(dataset="synthetic", preset="smoke", codec="joint")``).
    ``root``: where run directories live (default :func:`gwnlib.runtime.runs_dir`).
    ``device``: as :func:`gwnlib.device`; ``amp``: one of :data:`AMP_MODES`; ``compile``: train
    through ``torch.compile`` (:class:`CompiledCodec`); ``channels_last``: train with NHWC
    weights and inputs (about 1.3x faster on a 2-core CPU for the coloured-MNIST codec);
    ``progress``: tqdm bars with rates and distortions, refreshed every ``log_every`` steps (the
    only host synchronisations in a step);
    None: on, unless ``GWN_PROGRESS=0`` (:func:`gwnlib.runtime.show_progress`).

    A finished run is not retrained: its ``metrics.json`` is returned. An interrupted one
    resumes from ``last.pt``.
    """
    config = as_config(config, overrides)
    check_options(amp, log_every)
    dev = resolve_device(device)
    progress = show_progress(progress)
    folder = run_dir(config, root)
    created = not folder.is_dir()
    claim(folder, config)
    with exclusive(folder):
        try:
            return _fit(config, folder, dev, amp, compile, progress, log_every, channels_last)
        except BaseException:
            if created:  # a run that failed before its first checkpoint leaves no folder
                remove_if_untrained(folder)
            raise


def check_options(amp: str, log_every: int = 1) -> None:
    """Refuse an ``amp`` outside :data:`AMP_MODES` or a ``log_every`` below 1, naming them."""
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}; got {amp!r}")
    check_int("log_every", log_every)


def _fit(config, folder, dev, amp, compile, progress, log_every, channels_last=False) -> dict:
    set_aside_damaged(folder / "metrics.json", "training the point again")
    if is_finished(folder):
        with contextlib.suppress(OSError):
            (folder / "last.pt").unlink()  # a kill between metrics.json and this leaves it
        return load_metrics(folder)
    remove_stale_temporaries(folder)
    use_bf16 = uses_bf16(amp, dev)
    runtime = {
        "device": str(dev),
        "hardware": hardware(dev),
        "amp": "bf16" if use_bf16 else "fp32",
        "compile": bool(compile),
        "channels_last": bool(channels_last),
        "torch": torch.__version__,
    }
    write_json(folder / "config.json", {"config": config.to_dict(), "runtime": runtime})

    experiment = Experiment(config, dev)
    codec = experiment.codec().to(dev)
    loss_fn = experiment.loss()
    optimizer = make_optimizer(codec, config, dev)
    state = new_state()
    last = folder / "last.pt"
    saved = resumable(last)
    if saved is not None:
        codec.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state = saved["state"]
        export(folder, codec, config, state)  # history.csv and best.pt may lag last.pt
    else:
        warm_start(codec, config, folder.parent.parent)
    train_step = codec
    if channels_last:
        codec.to(memory_format=torch.channels_last)
        train_step = ChannelsLastInputs(codec)
    if compile:
        train_step = CompiledCodec(train_step)
    autocast = autocast_context(dev, use_bf16)

    epochs = tqdm(
        total=config.max_epochs,
        initial=state["epoch"],
        desc=config.label(),
        unit="epoch",
        disable=not progress,
        dynamic_ncols=True,
    )
    run = OneRun(train_step, loss_fn, optimizer, config, autocast, experiment.terms)
    samples = experiment.steps("train") * config.batch_size  # per epoch
    while not should_stop(state, config):
        started = time.perf_counter()
        train = _train_epoch(run, experiment, state["epoch"], progress, log_every)
        train_seconds = time.perf_counter() - started
        val = evaluate(experiment, codec, loss_fn, "val", autocast)
        record_epoch(state, train, val, train_seconds, samples)
        save_torch(
            last, {"model": codec.state_dict(), "optimizer": optimizer.state_dict(), "state": state}
        )
        export(folder, codec, config, state)
        epochs.set_postfix(val_loss=f"{val['loss']:.4f}", best=state["best_epoch"])
        epochs.update(1)
    epochs.close()
    return finish(folder, experiment, codec, loss_fn, autocast, state, runtime)


def _train_epoch(run: OneRun, experiment, epoch, progress, log_every) -> dict[str, float]:
    """:func:`~gwnlib.training.loop.train_epoch` of one run, its mean terms as numbers."""
    means = train_epoch(run, experiment, epoch, progress, log_every)
    return {key: value.item() for key, value in means.items()}


class OneRun:
    """One codec as a trainer of :func:`~gwnlib.training.loop.train_epoch`: ``model`` (the codec,
    or what calls it: :class:`ChannelsLastInputs`, :class:`CompiledCodec`) trained on ``loss_fn``
    (Eq. 12 with Eq. 15) by ``optimizer`` under ``autocast``, with ``config``'s gradient
    accumulation and clipping. Its steps are :func:`backward_step` and :func:`update_step`."""

    points = None  # one run, not a group of points

    def __init__(self, model, loss_fn, optimizer, config: RunConfig,
                 autocast=contextlib.nullcontext, terms=TERMS):  # fmt: skip
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.autocast, self.terms = autocast, terms
        self.accumulate, self.clip = config.accumulate, config.clip

    def start_epoch(self) -> None:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)

    def backward_step(self, x, targets, scale: float = 1.0) -> dict[str, torch.Tensor]:
        output, terms = backward_step(self.model, self.loss_fn, x, targets, self.autocast, scale,
                                      self.accumulate)  # fmt: skip
        return {key: term(output, terms, key) for key in self.terms}

    def update_step(self) -> None:
        update_step(self.model, self.optimizer, self.clip)


def as_config(config, overrides) -> RunConfig:
    if config is None:
        return resolve(**overrides)
    if overrides:
        raise TypeError(f"pass either a config or settings, not both; got {sorted(overrides)}")
    if isinstance(config, dict):
        return from_dict(config)
    if not isinstance(config, RunConfig):
        raise TypeError(f"config must be a RunConfig or a dict; got {type(config).__name__}")
    return config


def learning_curve(
    config: RunConfig | dict | None = None,
    every: int = 125,
    device: str = "cpu",
    amp: str = "auto",
    progress: bool | None = None,
    max_steps: int | None = None,
    **overrides,
) -> list[dict]:
    """How a run learns within its first epoch: its validation metrics (:func:`evaluate`) after
    every ``every`` optimiser steps and after the epoch's last step, one dict per evaluation
    with ``step``, ``samples`` (training samples seen) and ``train_seconds`` (training time so
    far, evaluations excluded). The run starts from its seeded initialisation (no warm start) and
    is not saved; the steps are :func:`fit`'s, so the curve is the first epoch of that run. Every
    batch of the first epoch is new, so its curve reads as accuracy against training samples: what
    a longer or shorter epoch would reach, without training one run per length. ``max_steps``
    stops the epoch after that many steps (its first evaluation points, for a check).
    ``config`` and ``overrides`` as for :func:`fit`."""
    config = as_config(config, overrides)
    every = check_int("every", every, low=1)
    if max_steps is not None:
        max_steps = check_int("max_steps", max_steps, low=1)
    dev = resolve_device(device)
    experiment = Experiment(config, dev)
    codec = experiment.codec().to(dev)
    loss_fn = experiment.loss()
    optimizer = make_optimizer(codec, config, dev)
    autocast = autocast_context(dev, uses_bf16(amp, dev))
    rows: list[dict] = []
    clock = {"train": 0.0, "since": time.perf_counter()}

    def record(step: int) -> None:
        clock["train"] += time.perf_counter() - clock["since"]
        val = evaluate(experiment, codec, loss_fn, "val", autocast)
        samples = step * config.accumulate * config.batch_size
        rows.append({"step": step, "samples": samples, "train_seconds": clock["train"], **val})
        clock["since"] = time.perf_counter()
        if max_steps is not None and step >= max_steps:
            raise _EnoughSteps

    run = OneRun(codec, loss_fn, optimizer, config, autocast, experiment.terms)
    with contextlib.suppress(_EnoughSteps):
        train_epoch(run, experiment, 0, show_progress(progress), 25, every=every, callback=record)
    return rows


class _EnoughSteps(Exception):
    """Raised by :func:`learning_curve`'s evaluation to end the epoch at ``max_steps``."""


def backward_step(model, loss_fn, x, targets, autocast=contextlib.nullcontext, scale=1.0,
                  accumulate=1):  # fmt: skip
    """Forward, loss (Eq. 12 + 15) and backward of one micro-batch; returns (output, terms).
    ``targets``: one tensor per task, as the experiment's batches give them.

    ``scale``: the eta warm-up factor (:func:`~gwnlib.training.loop.rate_scale`): the gradient
    sees ``scale * eta`` as the rate weight while ``terms["loss"]`` keeps the full eta. No host
    synchronisation.
    """
    with autocast():
        output = _forward(model, x)
        terms = loss_fn(output, *targets)
    objective = terms["loss"]
    if scale < 1:
        objective = objective - (1 - scale) * loss_fn.eta * terms["rate"]
    (objective / accumulate).backward()
    return output, terms


def update_step(model, optimizer, clip: float) -> None:
    """Table 1's update: gradient-norm clipping at ``clip``, an Adam step, zeroed gradients."""
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _forward(codec, x):
    """``codec(x)``; a tuple ``x`` is the codec's arguments (``(images, mask)`` for padded
    COCO batches, whose rates count valid pixels only)."""
    return codec(*x) if isinstance(x, tuple) else codec(x)


@torch.no_grad()
def evaluate(experiment, codec, loss_fn, split: str = "val", autocast=contextlib.nullcontext):
    """Mean loss, rates, distortions and task metrics of ``codec`` over ``split``'s batches
    (batch means averaged over batches, as the training loss)."""
    was_training = codec.training
    codec.eval()
    sums: dict[str, torch.Tensor] = {}
    count = 0
    for x, *targets in experiment.batches(split):
        with autocast():
            output = _forward(codec, x)
            terms = loss_fn(output, *targets)
        values = {key: term(output, terms, key) for key in experiment.terms}
        values.update(experiment.task_metrics(output, *targets))
        for key, value in values.items():
            sums[key] = sums.get(key, 0) + value.detach().float()
        count += 1
    codec.train(was_training)
    return {key: value.item() / count for key, value in sums.items()}


def real_rates(codec, x) -> dict:
    """Real bits per input pixel from entropy coding: ``real_r0``, ..., the payload of each
    stream without its header (``HEADER_SIZE`` bytes, reported as ``header_bits_per_stream``),
    next to ``coded_r0``, ..., the entropy models' estimates for the same samples.

    ``x``: a batch of inputs, an ``(images, mask)`` pair (pixels outside the mask are padding and
    not counted), or a list of either (batches of different sizes, e.g. COCO).
    """
    from gwnlib.model.streams import HEADER_SIZE

    batches = x if isinstance(x, list) else [x]
    codec.eval()
    keys = getattr(codec, "rate_keys", ("r0", "r1", "r2"))
    bits = dict.fromkeys(keys, 0.0)  # absent channels cost nothing
    estimated = dict.fromkeys(keys, 0.0)
    pixels = 0
    with torch.no_grad():
        for batch in batches:
            images, mask = batch if isinstance(batch, tuple) else (batch, None)
            count = int(mask.sum()) if mask is not None else images.shape[0] * images[0, 0].numel()
            streams = codec.compress(images)
            for key, strings in streams["strings"].items():
                bits["r" + key[1:]] += sum(8 * (len(s) - HEADER_SIZE) for s in strings)
            rates = _forward(codec, batch)["rates"]
            for key, value in rates.items():
                estimated[key] += float(value) * count  # rates are per (valid) pixel
            pixels += count
    rates = {f"real_{key}": value / pixels for key, value in bits.items()}
    rates.update({f"coded_{key}": value / pixels for key, value in estimated.items()})
    for prefix in ("real_", "coded_"):
        values = {key: rates[f"{prefix}{key}"] for key in keys}
        if hasattr(codec, "totals"):  # a K-task codec: sum r_S and sum |S| r_S
            totals = codec.totals(values)
        else:
            r0, r1, r2 = values.values()
            totals = {"rate_transmit": transmit_rate(r0, r1, r2),
                      "rate_receive": receive_rate(r0, r1, r2)}  # fmt: skip
        rates.update({f"{prefix}{key}": value for key, value in totals.items()})
    rates["header_bits_per_stream"] = 8 * HEADER_SIZE
    return rates


def finish(folder, experiment, codec, loss_fn, autocast, state, runtime) -> dict:
    config = experiment.config
    if not (folder / "best.pt").is_file():
        raise RuntimeError(
            f"run {config.label()} never reached a finite validation loss in {state['epoch']} "
            f"epoch(s) (training diverged); its history is in {folder / 'history.csv'}"
        )
    load_weights(codec, folder / "best.pt", retrain(folder))
    test = evaluate(experiment, codec, loss_fn, "test", autocast)
    test.update(experiment.quality(codec, "test"))
    x = first_inputs(experiment, config.real_bits_samples)
    real = real_rates(codec, x) if x else {}
    history = state["history"]
    metrics = {
        "key": config.key,
        **config.to_dict(),
        **test,
        **real,
        "real_bits_samples": sum(_count(batch) for batch in x),
        "epochs": state["epoch"],
        "best_epoch": state["best_epoch"],
        "best_val_loss": state["best_loss"],
        "train_seconds": sum(row["train_seconds"] for row in history),
        "samples_per_s": history[-1]["samples_per_s"] if history else float("nan"),
        **runtime,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(folder / "metrics.json", metrics)
    with contextlib.suppress(OSError):
        (folder / "last.pt").unlink()
    return metrics


def first_inputs(experiment, count: int) -> list:
    """The first ``count`` test inputs, as a list of batches, for the real-bits measurement."""
    inputs, have = [], 0
    for x, *_ in experiment.batches("test"):
        if have >= count:
            break
        take = count - have
        inputs.append(tuple(part[:take] for part in x) if isinstance(x, tuple) else x[:take])
        have += len(inputs[-1][0] if isinstance(x, tuple) else inputs[-1])
    return inputs


def _count(batch) -> int:
    return len(batch[0]) if isinstance(batch, tuple) else len(batch)
