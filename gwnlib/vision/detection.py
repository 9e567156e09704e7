"""The COCO task models (paper Sec. 4.3): object detection and person keypoints.

* :class:`DetectionModel`: torchvision's Faster R-CNN ResNet50-FPN v2,
  ``FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1`` (box AP 46.7);
* :class:`KeypointModel`: torchvision's Keypoint R-CNN ResNet50-FPN,
  ``KeypointRCNN_ResNet50_FPN_Weights.COCO_V1`` (box AP 54.6, keypoint AP 65.0).

The distortion is the sum of torchvision's training loss dictionary (RPN and RoI-head losses),
computed with the heads in training mode and the norms frozen, as in the authors' code. Images
may come padded in a batch, with each one's valid region in ``sizes``. Chapter "Vision tasks:
Cityscapes and COCO 2017" builds them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import nn

from gwnlib import runtime
from gwnlib.vision.task_model import TaskModel, check_images

__all__ = ["DetectionModel", "KeypointModel"]

# Scalar settings of torchvision's FasterRCNN / KeypointRCNN that build_task_model passes on.
_RCNN_COUNTS = (
    "min_size",
    "max_size",
    "rpn_pre_nms_top_n_train",
    "rpn_pre_nms_top_n_test",
    "rpn_post_nms_top_n_train",
    "rpn_post_nms_top_n_test",
    "rpn_batch_size_per_image",
    "box_batch_size_per_image",
    "box_detections_per_img",
)
_RCNN_FRACTIONS = (
    "rpn_nms_thresh",
    "rpn_fg_iou_thresh",
    "rpn_bg_iou_thresh",
    "rpn_positive_fraction",
    "rpn_score_thresh",
    "box_score_thresh",
    "box_nms_thresh",
    "box_fg_iou_thresh",
    "box_bg_iou_thresh",
    "box_positive_fraction",
)
_FROZEN_LAYERS = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm*
    nn.GroupNorm,
    nn.LayerNorm,
    nn.modules.dropout._DropoutNd,
)


class DetectionModel(TaskModel):
    """COCO object detection: torchvision's Faster R-CNN ResNet50-FPN v2; the distortion is the
    sum of its training losses, computed with its heads in training mode and its norms frozen."""

    name = "detection"
    options = ("loss_scale", *_RCNN_COUNTS, *_RCNN_FRACTIONS)
    needed: ClassVar[tuple[str, ...]] = ("boxes", "labels")  # what each target must hold
    builder: ClassVar[str] = "fasterrcnn_resnet50_fpn_v2"  # in torchvision.models.detection
    weights_enum: ClassVar[str] = "FasterRCNN_ResNet50_FPN_V2_Weights"

    @classmethod
    def check_options(cls, options: dict) -> tuple[float | None, dict]:
        loss_scale, network_options = super().check_options(options)
        for key, value in network_options.items():
            if key in _RCNN_COUNTS:
                runtime.check_int(key, value)
            if key in _RCNN_FRACTIONS and (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0 <= value <= 1
            ):
                raise ValueError(f"{key} must be a number in [0, 1]; got {value!r}")
        return loss_scale, network_options

    @classmethod
    def network(cls, imagenet_backbone: bool = False, pretrained: bool = False, **options):
        from torchvision.models import ResNet50_Weights, detection

        weights = getattr(detection, cls.weights_enum).COCO_V1 if pretrained else None
        backbone = ResNet50_Weights.IMAGENET1K_V1 if imagenet_backbone and not pretrained else None
        return getattr(detection, cls.builder)(
            weights=weights, weights_backbone=backbone, **options
        )

    @classmethod
    def default_network(cls, **options) -> nn.Module:
        return cls.network(pretrained=True, **options)

    def forward(self, images: torch.Tensor, sizes=None):
        return self.predict(images, sizes=sizes)

    def loss(self, images: torch.Tensor, targets, sizes=None) -> torch.Tensor:
        check_images(images)
        targets = _detection_targets(targets, len(images), self.needed, self.name, images.device)
        with _loss_mode(self.model):
            losses = self.model(_image_list(images, sizes), targets)
        return sum(losses.values()) * self.loss_scale

    def predict(self, images: torch.Tensor, sizes=None):
        check_images(images)
        return self.model(_image_list(images, sizes))


class KeypointModel(DetectionModel):
    """COCO person keypoints: torchvision's Keypoint R-CNN ResNet50-FPN."""

    name = "keypoints"
    needed = ("boxes", "labels", "keypoints")
    builder = "keypointrcnn_resnet50_fpn"
    weights_enum = "KeypointRCNN_ResNet50_FPN_Weights"


def _detection_targets(targets, count: int, needed: tuple, name: str, device) -> list[dict]:
    if not isinstance(targets, (list, tuple)) or len(targets) != count:
        raise ValueError(f"targets must be a list of {count} dicts, one per image")
    prepared = []
    for target in targets:
        missing = [key for key in needed if not isinstance(target, Mapping) or key not in target]
        if missing:
            raise ValueError(f"each {name} target needs {', '.join(needed)}; missing {missing}")
        item = {key: torch.as_tensor(value).to(device) for key, value in target.items()}
        item["boxes"] = item["boxes"].float().reshape(-1, 4)
        item["labels"] = item["labels"].long().reshape(-1)
        if "keypoints" in item:
            item["keypoints"] = item["keypoints"].float()
            if item["keypoints"].ndim != 3 or len(item["keypoints"]) != len(item["boxes"]):
                raise ValueError(
                    "keypoints must be (N, K, 3) (x, y, visibility) with N the number of boxes; "
                    f"got {tuple(item['keypoints'].shape)} for {len(item['boxes'])} boxes"
                )
        prepared.append(item)
    return prepared


def _image_list(images: torch.Tensor, sizes) -> list[torch.Tensor]:
    if sizes is None:
        return list(images)
    if len(sizes) != len(images):
        raise ValueError(f"sizes must hold one (height, width) per image; got {len(sizes)}")
    return [image[:, : int(h), : int(w)] for image, (h, w) in zip(images, sizes, strict=True)]


@contextlib.contextmanager
def _loss_mode(model: nn.Module):
    """Put a detection model's heads in training mode (torchvision returns losses only then) while
    its norm and dropout layers stay in eval mode; everything goes back to eval afterwards."""
    for module in model.modules():
        module.training = not isinstance(module, _FROZEN_LAYERS)
    try:
        yield
    finally:
        model.eval()
