"""The per-pixel task models of Cityscapes (paper Sec. 4.3, D.5): segmentation and depth.

* :class:`SegmentationModel`: DeepLabV3+ on MobileNetV2 at output stride 16
  (:class:`~gwnlib.vision.deeplab.DeepLabV3PlusMobileNetV2`) with VainF's Cityscapes checkpoint
  (mIoU 0.721; the paper's "weights provided by Chen et al. (2018a)"). Distortion: cross-entropy
  over the 19 train ids (ignore index :data:`IGNORE_INDEX` = 255; the authors map void to 19, the
  same thing), **multiplied by 19**, at the targets' resolution.
* :class:`DepthModel`: torchvision's LRASPP MobileNetV3-Large with one output, predicting
  disparity / 128 (:data:`DISPARITY_SCALE`); no public weights, so
  :func:`gwnlib.vision.pretrain.pretrain` trains it without any rate, as the authors did.
  Distortion: ``sqrt(mean_b mse_b) * 128``, where ``mse_b`` is image ``b``'s masked mean squared
  error on the /128 scale: exactly the authors' ``mse_loss`` (adeandrade/research,
  ``model_base.py``) followed by ``sqrt(.) * 128``.

Both normalise their input with ImageNet statistics, and both compute the distortion and the
prediction from the prediction channels, so the learned samplers
(:class:`gwnlib.vision.samplers.ResampledTask`) can sit in between. Chapter "Vision tasks:
Cityscapes and COCO 2017" builds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gwnlib.data.cityscapes import DISPARITY_SCALE, IGNORE_INDEX, NUM_CLASSES
from gwnlib.vision.deeplab import DeepLabV3PlusMobileNetV2, imagenet_backbone_state
from gwnlib.vision.task_model import TaskModel, check_images
from gwnlib.vision.weights import (
    SEGMENTATION_WEIGHTS_URL,
    load_checkpoint,
    load_weights,
    pretrained_path,
    resolve_source,
    state_dict_of,
)

__all__ = ["DenseTaskModel", "DepthModel", "SegmentationModel", "load_deeplab_weights"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class DenseTaskModel(TaskModel):
    """A per-pixel task on ImageNet-normalised images; the distortion and the prediction are
    functions of the prediction channels, so the learned samplers
    (:class:`gwnlib.vision.samplers.ResampledTask`) can sit between the network and them."""

    dense = True

    def __init__(self, model: nn.Module, loss_scale: float | None = None):
        super().__init__(model, loss_scale)
        self.register_buffer(
            "mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor, sizes=None) -> torch.Tensor:
        check_images(images)
        if sizes is not None:
            raise ValueError(f"sizes is for detection and keypoints, not {self.name}; pass None")
        x = (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        return self.prediction_channels(self.model(x))

    def prediction_channels(self, output) -> torch.Tensor:
        """The ``(B, C, H, W)`` channels inside the network's output."""
        return output

    def loss_from_outputs(self, outputs: torch.Tensor, targets) -> torch.Tensor:
        """The distortion from prediction channels ``outputs`` (resized bilinearly to the
        targets' resolution when they differ)."""
        raise NotImplementedError

    def predict_from_outputs(self, outputs: torch.Tensor) -> torch.Tensor:
        """The prediction from prediction channels ``outputs``."""
        raise NotImplementedError

    def loss(self, images: torch.Tensor, targets, sizes=None) -> torch.Tensor:
        return self.loss_from_outputs(self(images, sizes=sizes), targets)

    def predict(self, images: torch.Tensor, sizes=None) -> torch.Tensor:
        return self.predict_from_outputs(self(images, sizes=sizes))


class SegmentationModel(DenseTaskModel):
    """Cityscapes semantic segmentation: DeepLabV3+ MobileNetV2 (VainF's checkpoint); the
    distortion is cross-entropy over the 19 train ids times 19; predictions are train ids."""

    name = "segmentation"
    default_loss_scale = float(NUM_CLASSES)
    channels = NUM_CLASSES

    @classmethod
    def network(cls, imagenet_backbone: bool = False) -> nn.Module:
        network = DeepLabV3PlusMobileNetV2(NUM_CLASSES, output_stride=16)
        if imagenet_backbone:
            network.load_state_dict(imagenet_backbone_state(), strict=False)
        return network

    @classmethod
    def default_network(cls) -> nn.Module:
        return load_deeplab_weights(cls.network(), SEGMENTATION_WEIGHTS_URL)

    def loss_from_outputs(self, outputs: torch.Tensor, targets) -> torch.Tensor:
        labels = _segmentation_targets(targets)
        logits = _resize_to(outputs, labels.shape[-2:])
        if not (labels != IGNORE_INDEX).any():
            return logits.sum() * 0.0
        return F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX) * self.loss_scale

    def predict_from_outputs(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.argmax(dim=1)


class DepthModel(DenseTaskModel):
    """Cityscapes disparity: LRASPP MobileNetV3-Large predicting disparity / 128; the
    distortion is the masked RMSE in pixels; predictions are disparity in pixels."""

    name = "depth"
    channels = 1

    @classmethod
    def network(cls, imagenet_backbone: bool = False) -> nn.Module:
        from torchvision.models import MobileNet_V3_Large_Weights
        from torchvision.models.segmentation import lraspp_mobilenet_v3_large

        backbone = MobileNet_V3_Large_Weights.IMAGENET1K_V1 if imagenet_backbone else None
        return lraspp_mobilenet_v3_large(weights=None, weights_backbone=backbone, num_classes=1)

    @classmethod
    def default_network(cls) -> nn.Module:
        network = cls.network()
        load_weights(network, pretrained_path(cls.name), cls.name)
        return network

    def prediction_channels(self, output) -> torch.Tensor:
        return output["out"]

    def loss_from_outputs(self, outputs: torch.Tensor, targets) -> torch.Tensor:
        disparity, valid = _depth_targets(targets)
        prediction = _resize_to(outputs, disparity.shape[-2:])[:, 0]
        loss = _masked_rmse(prediction, disparity / DISPARITY_SCALE, valid) * DISPARITY_SCALE
        return loss * self.loss_scale

    def predict_from_outputs(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs[:, 0] * DISPARITY_SCALE


def load_deeplab_weights(model: nn.Module, source: str | Path) -> nn.Module:
    """Load a DeepLabV3+ checkpoint into ``model`` (a
    :class:`~gwnlib.vision.deeplab.DeepLabV3PlusMobileNetV2` or the :class:`SegmentationModel`
    around one) and return ``model``.

    ``source``: a local file or an ``http(s)`` URL (downloaded once into
    ``cache_dir()/weights``; :data:`~gwnlib.vision.weights.SEGMENTATION_WEIGHTS_URL` is VainF's
    Cityscapes checkpoint). VainF's files are dicts with ``model_state`` plus ``best_score`` (a
    NumPy float64), which is why loading allows NumPy's scalar types; weights_only stays on. Keys
    must match exactly.
    """
    network = model.model if isinstance(model, TaskModel) else model
    if not isinstance(network, DeepLabV3PlusMobileNetV2):
        raise ValueError(
            "model must be a DeepLabV3PlusMobileNetV2 or a TaskModel around one; "
            f"got {type(network).__name__}"
        )
    path = resolve_source(source, "source")
    network.load_state_dict(state_dict_of(load_checkpoint(path), "segmentation"))
    return model


def _masked_rmse(
    prediction: torch.Tensor, target: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """``sqrt(mean over images of each image's mean squared error over its valid pixels)`` (the
    authors' ``mse_loss`` then ``sqrt``); images without valid pixels are left out."""
    valid = valid.to(torch.bool)
    squared = torch.where(valid, (prediction - target) ** 2, torch.zeros_like(prediction))
    counts = valid.flatten(1).sum(dim=1)
    per_image = squared.flatten(1).sum(dim=1) / counts.clamp_min(1)
    present = counts > 0
    if not present.any():
        return prediction.sum() * 0.0
    return torch.sqrt(per_image[present].mean().clamp_min(1e-12))


def _resize_to(outputs: torch.Tensor, size) -> torch.Tensor:
    if tuple(outputs.shape[-2:]) == tuple(size):
        return outputs
    return F.interpolate(outputs, size=tuple(size), mode="bilinear", align_corners=False)


def _segmentation_targets(targets) -> torch.Tensor:
    labels = targets["segmentation"] if isinstance(targets, Mapping) else targets
    if not torch.is_tensor(labels) or labels.ndim != 3 or labels.is_floating_point():
        raise ValueError(
            "targets must be an integer (B, H, W) tensor of train ids, or a batch dict with "
            "'segmentation'"
        )
    return labels.long()


def _depth_targets(targets) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(targets, Mapping):
        disparity, valid = targets["disparity"], targets["valid"]
    elif isinstance(targets, (tuple, list)) and len(targets) == 2:
        disparity, valid = targets
    else:
        raise ValueError(
            "targets must be a batch dict with 'disparity' and 'valid', or a "
            "(disparity, valid) pair"
        )
    if disparity.ndim != 3 or valid.shape != disparity.shape:
        raise ValueError(
            "disparity and valid must be (B, H, W) tensors of one shape; got "
            f"{tuple(disparity.shape)} and {tuple(valid.shape)}"
        )
    return disparity.float(), valid
