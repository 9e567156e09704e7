"""The registry of the vision experiments' frozen task models (paper Sec. 4.3, appendix D.5).

On Cityscapes and COCO 2017 the paper does not learn task heads. Each synthesis transform
``g_i`` decodes an RGB-like image (3 channels, the input's size) and a *pretrained task model,
kept frozen*, turns it into a prediction; the distortion ``D_i`` of the Lagrangian is that
model's task loss, so gradients flow through the frozen model into the codec. One class per kind
of task (:class:`~gwnlib.vision.task_model.TaskModel`'s subclasses), registered in
:data:`TASK_MODELS` (names :data:`TASKS`, paired by dataset in :data:`PAIRS`):

* ``segmentation`` (Cityscapes, 19 classes), :class:`~gwnlib.vision.dense.SegmentationModel`:
  DeepLabV3+ MobileNetV2 with VainF's Cityscapes checkpoint (mIoU 0.721);
* ``depth`` (Cityscapes disparity), :class:`~gwnlib.vision.dense.DepthModel`: LRASPP
  MobileNetV3-Large, trained without rate by :func:`gwnlib.vision.pretrain.pretrain`;
* ``detection`` (COCO), :class:`~gwnlib.vision.detection.DetectionModel`: Faster R-CNN
  ResNet50-FPN v2 (box AP 46.7);
* ``keypoints`` (COCO), :class:`~gwnlib.vision.detection.KeypointModel`: Keypoint R-CNN
  ResNet50-FPN (keypoint AP 65.0).

:func:`build_task_model` returns one with its public weights (or random ones, or a checkpoint's):
every parameter frozen and its normalisation and dropout layers in eval mode for good, with
``loss(images, targets)`` (the distortion, differentiable with respect to ``images``) and
``predict(images)``, on ``(B, 3, H, W)`` images in [0, 1]. Adding a task is one subclass and one
entry in :data:`TASK_MODELS`. Chapter "Vision tasks: Cityscapes and COCO 2017" builds them.
"""

from __future__ import annotations

from pathlib import Path

from gwnlib import runtime
from gwnlib.vision.dense import DepthModel, SegmentationModel
from gwnlib.vision.detection import DetectionModel, KeypointModel
from gwnlib.vision.task_model import TaskModel
from gwnlib.vision.weights import load_weights, resolve_source

__all__ = [
    "DENSE",
    "LOSS_SCALES",
    "PAIRS",
    "TASKS",
    "TASK_MODELS",
    "build_task_model",
    "check_task",
]

#: The registry: task name -> its class (adding a task is one subclass and one entry here).
TASK_MODELS: dict[str, type[TaskModel]] = {
    cls.name: cls for cls in (SegmentationModel, DepthModel, DetectionModel, KeypointModel)
}

#: Their names, the per-pixel ones among them (the ones :func:`gwnlib.vision.pretrain.pretrain`
#: trains) and the factor on each one's loss (the authors': cross-entropy times the 19 classes).
TASKS = tuple(TASK_MODELS)
DENSE = tuple(name for name, cls in TASK_MODELS.items() if cls.dense)
LOSS_SCALES = {name: cls.default_loss_scale for name, cls in TASK_MODELS.items()}
#: Their names, the per-pixel ones among them (those :func:`gwnlib.vision.pretrain.pretrain`
#: trains) and the factor on each one's loss (the authors': cross-entropy times the 19 classes).
TASKS = tuple(TASK_MODELS)
DENSE = tuple(name for name, cls in TASK_MODELS.items() if cls.dense)
LOSS_SCALES = {name: cls.default_loss_scale for name, cls in TASK_MODELS.items()}
#: Which two tasks each vision dataset pairs (decoder 1, decoder 2).
PAIRS = {"cityscapes": ("segmentation", "depth"), "coco": ("detection", "keypoints")}


def check_task(name, accepted=TASKS, parameter="name") -> str:
    """``name`` if it is one of ``accepted`` (default :data:`TASKS`), else a ValueError naming
    ``parameter`` and the accepted names."""
    return runtime.check_choice(parameter, name, accepted)


def build_task_model(name: str, weights="default", **options) -> TaskModel:
    """The frozen task model ``name`` (one of :data:`TASKS`), an instance of its class.

    ``weights``: ``"default"``, the real public weights (VainF's Cityscapes checkpoint for
    segmentation, downloaded once; torchvision's COCO weights for detection and keypoints; for
    depth, the checkpoint :func:`gwnlib.vision.pretrain.pretrain` wrote, see
    :func:`~gwnlib.vision.weights.pretrained_path`); ``None``, random initialisation and no
    download at all (tests, smoke runs); or a local path (or URL) of a checkpoint: VainF's,
    ``pretrain``'s or a bare state dict. ``options``: ``loss_scale`` (every task); for
    detection and keypoints, torchvision's scalar R-CNN settings, e.g. ``min_size`` and
    ``max_size`` (the transform's resizing bounds, 800 and 1333 by default) or
    ``rpn_post_nms_top_n_test`` and ``box_batch_size_per_image``: small values keep CPU runs
    small, the defaults are the published models' settings.
    """
    cls = TASK_MODELS[check_task(name)]
    loss_scale, network_options = cls.check_options(options)
    if isinstance(weights, str) and weights == "default":
        network = cls.default_network(**network_options)
    elif weights is None:
        network = cls.network(**network_options)
    elif isinstance(weights, (str, Path)):
        try:
            path = resolve_source(weights, "weights")
        except ValueError:
            raise ValueError(
                "weights must be 'default', None, an http(s) URL or the path of an existing "
                f"file; got {weights!r}"
            ) from None
        network = cls.network(**network_options)
        load_weights(network, path, name)
    else:
        raise ValueError(
            f"weights must be 'default', None, an http(s) URL or a file path; got {weights!r}"
        )
    return cls(network, loss_scale=loss_scale)
