"""Pretraining the Cityscapes task models without rate (paper appendix D.5).

The depth network has no public weights: the authors trained it, inside the learned 2x samplers,
with AdamW at lr 1e-4, batch 10, early stopping on the validation loss (patience 200, at most 1000
epochs). :func:`pretrain` does the same (:data:`PRETRAIN_PRESETS`, :data:`PRETRAIN_RECIPE`) and
saves a checkpoint that :func:`gwnlib.vision.tasks.build_task_model` and
:class:`gwnlib.vision.samplers.ResampledTask` load; it can train a fallback segmentation model
too. Its evaluation measures what the experiments measure (:mod:`gwnlib.vision.metrics`). Chapter
"Vision tasks: Cityscapes and COCO 2017" shows how to run it.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from gwnlib import runtime
from gwnlib.files import save_torch, write_json
from gwnlib.vision.metrics import DisparityRMSE, SegmentationIoU
from gwnlib.vision.samplers import SAMPLER_FACTOR, ResampledTask
from gwnlib.vision.tasks import DENSE, TASK_MODELS, check_task
from gwnlib.vision.weights import CHECKPOINT_FORMAT, pretrained_file

__all__ = ["PRETRAIN_PRESETS", "PRETRAIN_RECIPE", "pretrain"]

_LOG = logging.getLogger(__name__)

#: Run sizes of :func:`pretrain`. ``epochs``: passes over the data at most; ``max_steps``: an
#: optimiser-step cap (smoke only); ``patience``: epochs without a better monitored loss before
#: stopping (the authors' depth script: 200, at most 1000 epochs); ``batch_size``: the authors'
#: 10; ``imagenet_backbone``: start the backbone from torchvision's ImageNet weights (a download,
#: so never in smoke); ``flip``: random horizontal flips; ``workers``: DataLoader processes.
PRETRAIN_PRESETS = {
    "smoke": {
        "epochs": 1,
        "max_steps": 2,
        "patience": None,
        "batch_size": 2,
        "imagenet_backbone": False,
        "flip": False,
        "workers": 0,
    },
    "short": {
        "epochs": 20,
        "max_steps": None,
        "patience": None,
        "batch_size": 10,
        "imagenet_backbone": True,
        "flip": True,
        "workers": 4,
    },
    "paper": {
        "epochs": 1000,
        "max_steps": None,
        "patience": 200,
        "batch_size": 10,
        "imagenet_backbone": True,
        "flip": True,
        "workers": 4,
    },
}
#: Optimiser of :func:`pretrain`, the authors' (``AdamW(params, 1e-4)``, so torch's default weight
#: decay 0.01; gradient clipping at 1 in their segmentation script, none in their depth script).
PRETRAIN_RECIPE = {
    "learning_rate": 1e-4,
    "weight_decay": 0.01,
    "grad_clip": {"segmentation": 1.0, "depth": None},
}


def pretrain(
    task: str,
    data,
    *,
    preset: str = "smoke",
    device: str = "auto",
    seed: int = 0,
    validation=None,
    root: str | Path | None = None,
    progress: bool | None = None,
) -> Path:
    """Train a Cityscapes task model without any rate, then save it; return the file's path.

    The authors trained the depth model this way (LRASPP MobileNetV3-Large inside the learned
    2x samplers, AdamW at lr 1e-4, batch 10, early stopping on the validation loss with patience
    200, at most 1000 epochs: :data:`PRETRAIN_PRESETS`, :data:`PRETRAIN_RECIPE`). ``task`` may
    also be ``"segmentation"``: DeepLabV3+ trained the same way, a fallback for when VainF's
    checkpoint cannot be downloaded (VainF's own recipe, SGD at 768x768 crops, reaches 0.721
    mIoU; this one is not tuned to match).

    ``data`` (and ``validation``, optional): datasets of dicts with ``image`` (3, H, W) float in
    [0, 1], ``segmentation`` int64 (H, W), ``disparity`` float (H, W) in pixels and ``valid``
    bool (H, W) (:class:`gwnlib.data.cityscapes.CityscapesTasks`). Early stopping monitors the
    validation loss, or the training loss without ``validation``. The best weights go atomically
    to ``<root>/<task>-<preset>-seed<seed>.pt`` (``root``: ``cache_dir()/"weights"``) with the
    samplers, beside a ``.json`` of metrics; an existing file is returned without training.
    The ``short`` and ``paper`` presets start from torchvision's ImageNet backbone weights, which
    torch hub downloads once (into ``$TORCH_HOME``); a machine without internet needs that cache.
    """
    check_task(task, DENSE, "task")
    runtime.check_preset(preset)
    path = pretrained_file(task, preset, seed, root)
    if path.is_file():
        _LOG.info("pretrained %s model found at %s; not training again", task, path)
        return path
    recipe = PRETRAIN_PRESETS[preset]
    dev = runtime.device(device)
    runtime.seed_everything(seed)
    started = time.perf_counter()

    kind = TASK_MODELS[task]
    task_model = kind(kind.network(imagenet_backbone=recipe["imagenet_backbone"]))
    task_model.set_trainable(True)
    model = ResampledTask(task_model, SAMPLER_FACTOR).to(dev)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=PRETRAIN_RECIPE["learning_rate"],
        weight_decay=PRETRAIN_RECIPE["weight_decay"],
    )
    clip = PRETRAIN_RECIPE["grad_clip"][task]
    generator = runtime.torch_generator(seed)
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=recipe["batch_size"],
        shuffle=True,
        drop_last=True,  # BatchNorm (and the ASPP's pooled branch) needs 2+ images per batch
        generator=generator,
        num_workers=recipe["workers"],
        persistent_workers=recipe["workers"] > 0,
        pin_memory=dev.type == "cuda",
    )
    if len(loader) == 0:
        raise ValueError(
            f"data must hold at least batch_size={recipe['batch_size']} items; got {len(data)}"
        )

    best = {"loss": math.inf, "epoch": -1, "state": None}
    history, steps, stale = [], 0, 0
    bar = tqdm(
        range(recipe["epochs"]),
        desc=f"pretrain {task}",
        disable=not runtime.show_progress(progress),
    )
    for epoch in bar:
        model.train()
        total, count = 0.0, 0
        for batch in loader:
            batch = {key: value.to(dev, non_blocking=True) for key, value in batch.items()}
            if recipe["flip"]:
                batch = _random_flip(batch, generator)
            loss = model.loss(batch["image"], batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            total, count, steps = total + loss.item(), count + 1, steps + 1
            if recipe["max_steps"] is not None and steps >= recipe["max_steps"]:
                break
        row = {"epoch": epoch, "steps": steps, "train_loss": total / count}
        if validation is not None:
            row.update(
                {
                    f"val_{key}": value
                    for key, value in _evaluate(model, validation, dev, recipe).items()
                }
            )
        history.append(row)
        monitored = row.get("val_loss", row["train_loss"])
        bar.set_postfix(loss=f"{monitored:.4g}")
        if monitored < best["loss"]:
            best = {"loss": monitored, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
            stale = 0
        else:
            stale += 1
        if recipe["patience"] is not None and stale >= recipe["patience"]:
            break
        if recipe["max_steps"] is not None and steps >= recipe["max_steps"]:
            break

    bar.close()
    model.load_state_dict(best["state"])
    task_model.set_trainable(False)
    final = _evaluate(model, validation if validation is not None else data, dev, recipe)
    metrics = {
        "task": task,
        "preset": preset,
        "seed": int(seed),
        "best_epoch": best["epoch"],
        "epochs": len(history),
        "steps": steps,
        "monitored": "val_loss" if validation is not None else "train_loss",
        "final_split": "validation" if validation is not None else "train",
        "final": final,
        "history": history,
        "device": str(dev),
        "hardware": runtime.hardware(dev),
        "torch": torch.__version__,
        "seconds": round(time.perf_counter() - started, 3),
    }
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "task": task,
        "model": {key: value.cpu() for key, value in task_model.model.state_dict().items()},
        "samplers": model.samplers_state_dict(),
        "factor": SAMPLER_FACTOR,
        "preset": preset,
        "seed": int(seed),
        "metrics": {"best_epoch": best["epoch"], "monitored_loss": float(best["loss"])},
    }
    checkpoint["samplers"] = {
        part: {key: value.cpu() for key, value in state.items()}
        for part, state in checkpoint["samplers"].items()
    }
    write_json(path.with_suffix(".json"), metrics)
    save_torch(path, checkpoint)  # written last: the .pt existing means the run finished
    _LOG.info("pretrained %s model saved to %s: %s", task, path, final)
    return path


def _random_flip(batch: dict, generator: torch.Generator) -> dict:
    """Flip each image (and its targets) horizontally with probability 1/2."""
    flip = torch.rand(len(batch["image"]), generator=generator).to(batch["image"].device) < 0.5
    out = {}
    for key, value in batch.items():
        mask = flip.view(-1, *([1] * (value.ndim - 1)))
        out[key] = torch.where(mask, value.flip(-1), value)
    return out


@torch.no_grad()
def _evaluate(model: ResampledTask, data, dev: torch.device, recipe: dict) -> dict:
    """Mean batch loss over ``data`` plus the task's metric, as the experiments measure it
    (:mod:`gwnlib.vision.metrics`): pooled RMSE in disparity pixels, or mIoU over the 19
    classes (classes absent from both prediction and target left out)."""
    model.eval()
    loader = torch.utils.data.DataLoader(
        data, batch_size=recipe["batch_size"], shuffle=False, num_workers=recipe["workers"]
    )
    losses = []
    metric = DisparityRMSE() if model.name == "depth" else SegmentationIoU()
    for batch in loader:
        batch = {key: value.to(dev) for key, value in batch.items()}
        outputs = model(batch["image"])
        losses.append(model.task.loss_from_outputs(outputs, batch).item())
        prediction = model.task.predict_from_outputs(outputs)
        if model.name == "depth":
            metric.update(prediction, batch["disparity"], batch["valid"].bool())
        else:
            metric.update(prediction, batch["segmentation"])
    key = "rmse_px" if model.name == "depth" else "miou"
    # No pixel to score (every one invalid or ignored): NaN, as before the metrics were shared.
    return {"loss": float(np.mean(losses)), key: metric.compute() if metric.pixels() else math.nan}
