"""The learned samplers around the Cityscapes task models (paper appendix D.5).

Cityscapes frames are large, so the authors put a learned 2x **downsampler** (bilinear x1/2, then
a 5x5 conv on the 3 channels) before each Cityscapes task model and a learned **upsampler**
(nearest x2, then a 5x5 conv on the 19 logits or the disparity) after it; the distortion is still
computed against the full-resolution targets. :class:`Resampler` and :class:`ResampledTask`
implement them; the samplers are trainable, the task model stays frozen. (In the authors' code
the samplers are trained before the codec, with the task model: jointly with the depth network,
and alone around VainF's frozen DeepLab for segmentation; the codec's optimiser then leaves them
fixed. Here they start as the identity, or from a :func:`gwnlib.vision.pretrain.pretrain`
checkpoint, and whoever trains the codec decides whether to optimise them.) Chapter "Vision
tasks: Cityscapes and COCO 2017" uses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gwnlib import runtime
from gwnlib.vision.dense import DenseTaskModel
from gwnlib.vision.task_model import check_images
from gwnlib.vision.weights import CHECKPOINT_FORMAT, load_checkpoint, resolve_source

__all__ = ["SAMPLER_FACTOR", "ResampledTask", "Resampler"]

#: Factor of the samplers around the Cityscapes task models (D.5).
SAMPLER_FACTOR = 2


class Resampler(nn.Module):
    """A learned resampler (the authors' ``DownSample`` / ``UpSample``): ``direction="down"``
    resizes bilinearly by 1/``factor`` then applies a 5x5 conv; ``"up"`` resizes by ``factor``
    with nearest-exact then applies a 5x5 conv. The conv maps ``channels`` to ``channels`` and
    starts as the identity (the authors start from PyTorch's random init), so an untrained
    resampler is a plain resize."""

    def __init__(self, channels: int, factor: int = SAMPLER_FACTOR, direction: str = "down"):
        super().__init__()
        runtime.check_int("channels", channels)
        runtime.check_int("factor", factor)
        if direction not in ("down", "up"):
            raise ValueError(f"direction must be one of down, up; got {direction!r}")
        self.factor = factor
        self.direction = direction
        self.conv = nn.Conv2d(channels, channels, 5, padding=2)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:, :, 2, 2] = torch.eye(channels)
            self.conv.bias.zero_()

    def extra_repr(self) -> str:
        return f"factor={self.factor}, direction={self.direction!r}"

    def forward(self, x: torch.Tensor, size=None) -> torch.Tensor:
        """Resample ``x``; ``size`` (up only) fixes the output size instead of ``factor``."""
        if self.direction == "down":
            x = F.interpolate(x, scale_factor=1 / self.factor, mode="bilinear", align_corners=False)
        elif size is not None:
            x = F.interpolate(x, size=tuple(size), mode="nearest-exact")
        else:
            x = F.interpolate(x, scale_factor=self.factor, mode="nearest-exact")
        return self.conv(x)


class ResampledTask(nn.Module):
    """A frozen dense task model between a learned downsampler and upsampler (paper D.5).

    ``forward(images)`` downsamples the full-resolution images by ``factor``, runs the frozen
    ``task_model`` and upsamples its prediction channels back to the images' size; ``loss`` and
    ``predict`` work as :class:`~gwnlib.vision.dense.DenseTaskModel`'s, against full-resolution
    targets. The samplers are trainable (the codec's parameters); the task model is not.
    ``weights``: the path of a :func:`gwnlib.vision.pretrain.pretrain` checkpoint whose samplers
    to start from (default: identity samplers).
    """

    def __init__(self, task_model: DenseTaskModel, factor: int = SAMPLER_FACTOR, weights=None):
        super().__init__()
        if not isinstance(task_model, DenseTaskModel):
            raise ValueError(
                "task_model must be a dense task model (SegmentationModel, DepthModel); got "
                f"{getattr(task_model, 'name', type(task_model).__name__)!r}"
            )
        self.task = task_model
        self.down = Resampler(3, factor, "down")
        self.up = Resampler(task_model.channels, factor, "up")
        if weights is not None:
            self._load_samplers(resolve_source(weights, "weights"))

    @property
    def name(self) -> str:
        return self.task.name

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images)
        return self.up(self.task(self.down(images)), size=images.shape[-2:])

    def loss(self, images: torch.Tensor, targets) -> torch.Tensor:
        """The task distortion of the resampled prediction, at the targets' resolution."""
        return self.task.loss_from_outputs(self(images), targets)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return self.task.predict_from_outputs(self(images))

    def samplers_state_dict(self) -> dict:
        """The two samplers' weights (what :func:`gwnlib.vision.pretrain.pretrain` saves beside
        the task model)."""
        return {"down": self.down.state_dict(), "up": self.up.state_dict()}

    def _load_samplers(self, path: Path) -> None:
        checkpoint = load_checkpoint(path)
        if not isinstance(checkpoint, Mapping) or checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"weights must be a checkpoint written by pretrain(); {path} is not")
        if checkpoint["task"] != self.name or checkpoint["factor"] != self.down.factor:
            raise ValueError(
                f"{path} holds {checkpoint['task']!r} samplers of factor {checkpoint['factor']}, "
                f"not {self.name!r} samplers of factor {self.down.factor}"
            )
        self.down.load_state_dict(checkpoint["samplers"]["down"])
        self.up.load_state_dict(checkpoint["samplers"]["up"])
