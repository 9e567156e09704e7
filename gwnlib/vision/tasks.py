"""Frozen task models for the vision experiments (paper Sec. 4.3, appendix D.5).

On Cityscapes and COCO 2017 the paper does not learn task heads. Each synthesis transform
``g_i`` decodes an RGB-like image (3 channels, the input's size) and a *pretrained task model,
kept frozen*, turns it into a prediction; the distortion ``D_i`` of the Lagrangian is that
model's task loss, so gradients flow through the frozen model into the codec. This module is the
registry of those models (:data:`TASKS`, paired by dataset in :data:`PAIRS`):

* ``segmentation`` (Cityscapes, 19 classes): DeepLabV3+ on MobileNetV2 at output stride 16
  (:class:`DeepLabV3PlusMobileNetV2`, laid out like VainF/DeepLabV3Plus-Pytorch), with that
  project's Cityscapes checkpoint (mIoU 0.721; the paper's "weights provided by Chen et al.
  (2018a)"), downloaded from :data:`SEGMENTATION_WEIGHTS_URL`;
* ``depth`` (Cityscapes disparity): torchvision's LRASPP MobileNetV3-Large with one output,
  predicting disparity / 128; no public weights, so :func:`pretrain` trains it without any rate,
  as the authors did;
* ``detection`` (COCO): torchvision's Faster R-CNN ResNet50-FPN v2,
  ``FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1`` (box AP 46.7);
* ``keypoints`` (COCO): torchvision's Keypoint R-CNN ResNet50-FPN,
  ``KeypointRCNN_ResNet50_FPN_Weights.COCO_V1`` (box AP 54.6, keypoint AP 65.0).

:func:`build_task_model` returns a :class:`TaskModel`: the network with every parameter frozen and
its normalisation and dropout layers in eval mode for good (``.train()`` does not wake them), with
``loss(images, targets)`` (the distortion, differentiable with respect to ``images``) and
``predict(images)``. Images are always ``(B, 3, H, W)`` floats in [0, 1]; the task model applies
its own input normalisation (ImageNet statistics for the Cityscapes models, torchvision's
transform for the COCO models).

The distortions follow the authors' code (adeandrade/research, ``model_base.py``):

* segmentation: cross-entropy over the 19 Cityscapes train ids (ignore index :data:`IGNORE_INDEX`
  = 255; the authors map void to 19, the same thing), **multiplied by 19** (the number of classes,
  :data:`LOSS_SCALES`), at the targets' resolution;
* depth: the RMSE in disparity pixels over valid pixels. The network predicts disparity / 128
  (:data:`DISPARITY_SCALE`); the loss is ``sqrt(mean_b mse_b) * 128`` where ``mse_b`` is image
  ``b``'s masked mean squared error on the /128 scale, exactly the authors' ``mse_loss``
  followed by ``sqrt(.) * 128``;
* detection and keypoints: the sum of torchvision's training loss dictionary (RPN and RoI-head
  losses), computed with the model's heads in training mode and its norms frozen.

Cityscapes frames are large, so the authors put a learned 2x **downsampler** (bilinear x1/2, then
a 5x5 conv on the 3 channels) before each Cityscapes task model and a learned **upsampler**
(nearest x2, then a 5x5 conv on the 19 logits or the disparity) after it; the distortion is still
computed against the full-resolution targets (D.5). :class:`Resampler` and :class:`ResampledTask`
implement them; the samplers are trainable, the task model stays frozen. (In the authors' code
the samplers are trained before the codec, with the task model: jointly with the depth network,
and alone around VainF's frozen DeepLab for segmentation; the codec's optimiser then leaves them
fixed. Here they start as the identity, or from a :func:`pretrain` checkpoint, and whoever trains
the codec decides whether to optimise them.)

Weights: the VainF checkpoint stores a NumPy scalar (``best_score``) beside the weights, which
``torch.load(weights_only=True)`` refuses since torch 2.6; :func:`load_deeplab_weights` allows
exactly the NumPy scalar and dtype types it needs (never ``weights_only=False``). The file is
cached in ``gwnlib.runtime.cache_dir() / "weights"``; its SHA-256 is logged on first download
(:data:`SEGMENTATION_WEIGHTS_SHA256` is unknown until then). Should the Dropbox link die,
:func:`pretrain` trains the segmentation model on Cityscapes as well.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from gwnlib import runtime
from gwnlib.data.cityscapes import (  # noqa: F401 (re-exported: the task models' units)
    DISPARITY_SCALE,  # the depth network predicts disparity / 128 (the authors' scale)
    IGNORE_INDEX,
    NUM_CLASSES,
)
from gwnlib.files import save_torch, write_json

__all__ = [
    "DISPARITY_SCALE",
    "IGNORE_INDEX",
    "LOSS_SCALES",
    "NUM_CLASSES",
    "PAIRS",
    "PRETRAIN_PRESETS",
    "PRETRAIN_RECIPE",
    "SEGMENTATION_WEIGHTS_SHA256",
    "SEGMENTATION_WEIGHTS_URL",
    "TASKS",
    "DeepLabV3PlusMobileNetV2",
    "ResampledTask",
    "Resampler",
    "TaskModel",
    "build_task_model",
    "load_deeplab_weights",
    "pretrain",
    "pretrained_path",
]

_LOG = logging.getLogger(__name__)

#: The task models, one per decoder of the vision experiments.
TASKS = ("segmentation", "depth", "detection", "keypoints")
#: Which two tasks each vision dataset pairs (decoder 1, decoder 2).
PAIRS = {"cityscapes": ("segmentation", "depth"), "coco": ("detection", "keypoints")}
#: Factors applied to each task's loss (the authors' code: cross-entropy times the 19 classes).
LOSS_SCALES = {"segmentation": float(NUM_CLASSES), "depth": 1.0, "detection": 1.0, "keypoints": 1.0}

#: VainF/DeepLabV3Plus-Pytorch's DeepLabV3+ MobileNet Cityscapes checkpoint (README, "Performance
#: on Cityscapes": mIoU 0.721, output stride 16), with ``dl=1`` for a direct download.
SEGMENTATION_WEIGHTS_URL = (
    "https://www.dropbox.com/s/753ojyvsh3vdjol/"
    "best_deeplabv3plus_mobilenet_cityscapes_os16.pth?dl=1"
)
#: SHA-256 of that file: unknown, logged on first download (pin it here once seen).
SEGMENTATION_WEIGHTS_SHA256: str | None = None

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
#: Factor of the samplers around the Cityscapes task models (D.5).
SAMPLER_FACTOR = 2

_DENSE = ("segmentation", "depth")
_DETECTION = ("detection", "keypoints")
_CHANNELS = {"segmentation": NUM_CLASSES, "depth": 1}
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
_OPTIONS = {
    "segmentation": ("loss_scale",),
    "depth": ("loss_scale",),
    "detection": ("loss_scale", *_RCNN_COUNTS, *_RCNN_FRACTIONS),
    "keypoints": ("loss_scale", *_RCNN_COUNTS, *_RCNN_FRACTIONS),
}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CHECKPOINT_FORMAT = "gwnlib.vision.tasks/1"


def _check_task(name, accepted=TASKS, parameter="name") -> str:
    if name not in accepted:
        raise ValueError(f"{parameter} must be one of {', '.join(accepted)}; got {name!r}")
    return name


# --------------------------------------------------------------------------------------------
# DeepLabV3+ with a MobileNetV2 backbone, laid out like VainF/DeepLabV3Plus-Pytorch
# --------------------------------------------------------------------------------------------

# MobileNetV2's inverted-residual stages: expansion t, channels c, repeats n, stride s.
_MOBILENET_V2_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class _ConvBNReLU6(nn.Sequential):
    """Conv (no padding: VainF pads the block's input instead), BatchNorm, ReLU6."""

    def __init__(self, cin, cout, kernel_size=3, stride=1, dilation=1, groups=1):
        super().__init__(
            nn.Conv2d(
                cin, cout, kernel_size, stride, 0, dilation=dilation, groups=groups, bias=False
            ),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class _InvertedResidual(nn.Module):
    """VainF's MobileNetV2 block: the input is zero-padded for the (dilated) 3x3 depthwise conv
    *before* the 1x1 expansion, so the border differs from torchvision's block (which pads after
    it); weights trained with VainF's layout need this layout."""

    def __init__(self, cin, cout, stride, dilation, expansion):
        super().__init__()
        hidden = int(round(cin * expansion))
        self.use_residual = stride == 1 and cin == cout
        layers = [_ConvBNReLU6(cin, hidden, kernel_size=1)] if expansion != 1 else []
        layers += [
            _ConvBNReLU6(hidden, hidden, stride=stride, dilation=dilation, groups=hidden),
            nn.Conv2d(hidden, cout, 1, 1, 0, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        total = 2 * dilation  # a 3x3 kernel dilated by d spans 2d + 1 pixels
        self.padding = (total // 2, total - total // 2) * 2

    def forward(self, x):
        y = self.conv(F.pad(x, self.padding))
        return x + y if self.use_residual else y


def _mobilenet_v2_layers(output_stride: int) -> list[nn.Module]:
    """MobileNetV2's features 0..17 (VainF's ``features[:-1]``; the last 1x1 conv to 1280 channels
    is unused by DeepLab), strides beyond ``output_stride`` replaced by dilation."""
    layers: list[nn.Module] = [_ConvBNReLU6(3, 32, stride=2)]
    current_stride, dilation, cin = 2, 1, 32
    for expansion, cout, repeats, stride in _MOBILENET_V2_STAGES:
        previous_dilation = dilation
        if current_stride == output_stride:
            stride, dilation = 1, dilation * stride
        else:
            current_stride *= stride
        for i in range(repeats):
            layers.append(
                _InvertedResidual(
                    cin,
                    cout,
                    stride if i == 0 else 1,
                    previous_dilation if i == 0 else dilation,
                    expansion,
                )
            )
            cin = cout
    return layers


class _MobileNetV2Backbone(nn.Module):
    """``low_level_features`` = features 0..3 (24 channels, stride 4) and
    ``high_level_features`` = features 4..17 (320 channels, stride ``output_stride``), keeping
    the original indices in the state-dict keys as VainF's ``nn.Sequential`` slices do."""

    def __init__(self, output_stride: int):
        super().__init__()
        layers = [(str(i), layer) for i, layer in enumerate(_mobilenet_v2_layers(output_stride))]
        self.low_level_features = nn.Sequential(OrderedDict(layers[:4]))
        self.high_level_features = nn.Sequential(OrderedDict(layers[4:]))


def _conv_bn_relu(cin, cout, kernel_size=1, dilation=1):
    padding = dilation if kernel_size == 3 else 0
    return [
        nn.Conv2d(cin, cout, kernel_size, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class _ASPPPooling(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.AdaptiveAvgPool2d(1), *_conv_bn_relu(cin, cout))

    def forward(self, x):
        return F.interpolate(super().forward(x), x.shape[-2:], mode="bilinear", align_corners=False)


class _ASPP(nn.Module):
    def __init__(self, cin, rates, cout=256):
        super().__init__()
        self.convs = nn.ModuleList(
            [nn.Sequential(*_conv_bn_relu(cin, cout))]
            + [nn.Sequential(*_conv_bn_relu(cin, cout, 3, rate)) for rate in rates]
            + [_ASPPPooling(cin, cout)]
        )
        self.project = nn.Sequential(*_conv_bn_relu(5 * cout, cout), nn.Dropout(0.1))

    def forward(self, x):
        return self.project(torch.cat([conv(x) for conv in self.convs], dim=1))


class _DeepLabV3PlusHead(nn.Module):
    def __init__(self, high_channels, low_channels, num_classes, rates):
        super().__init__()
        self.project = nn.Sequential(*_conv_bn_relu(low_channels, 48))
        self.aspp = _ASPP(high_channels, rates)
        self.classifier = nn.Sequential(
            *_conv_bn_relu(48 + 256, 256, 3), nn.Conv2d(256, num_classes, 1)
        )

    def forward(self, low, high):
        low = self.project(low)
        high = F.interpolate(self.aspp(high), low.shape[-2:], mode="bilinear", align_corners=False)
        return self.classifier(torch.cat([low, high], dim=1))


class DeepLabV3PlusMobileNetV2(nn.Module):
    """DeepLabV3+ (Chen et al. 2018) on a MobileNetV2 backbone, parameter for parameter and op for
    op the ``deeplabv3plus_mobilenet`` of VainF/DeepLabV3Plus-Pytorch, so that its Cityscapes
    checkpoint (``model_state``) loads with ``load_state_dict(strict=True)``.

    Keys: ``backbone.low_level_features.{0..3}.*``, ``backbone.high_level_features.{4..17}.*``,
    ``classifier.project.*`` (24 -> 48), ``classifier.aspp.convs.{0..4}.*`` and
    ``classifier.aspp.project.*`` (320 -> 256, atrous rates 6/12/18 at output stride 16, 12/24/36
    at 8), ``classifier.classifier.{0,1,3}.*`` (304 -> 256 -> ``num_classes``). Input: an
    ImageNet-normalised ``(B, 3, H, W)`` batch; output: logits ``(B, num_classes, H, W)``
    (bilinearly upsampled from stride 4).
    """

    def __init__(self, num_classes: int = NUM_CLASSES, output_stride: int = 16):
        super().__init__()
        runtime.check_int("num_classes", num_classes)
        if output_stride not in (8, 16):
            raise ValueError(f"output_stride must be one of 8, 16; got {output_stride!r}")
        rates = (12, 24, 36) if output_stride == 8 else (6, 12, 18)
        self.num_classes = num_classes
        self.output_stride = output_stride
        self.backbone = _MobileNetV2Backbone(output_stride)
        self.classifier = _DeepLabV3PlusHead(320, 24, num_classes, rates)
        for name, module in self.named_modules():  # VainF's initialisation
            if isinstance(module, nn.Conv2d):
                mode = "fan_out" if name.startswith("backbone") else "fan_in"
                nn.init.kaiming_normal_(module.weight, mode=mode)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.backbone.low_level_features(x)
        high = self.backbone.high_level_features(low)
        logits = self.classifier(low, high)
        return F.interpolate(logits, x.shape[-2:], mode="bilinear", align_corners=False)


def _imagenet_backbone_state() -> dict:
    """torchvision's ImageNet MobileNetV2 weights (the file VainF's backbone starts from) renamed
    to :class:`DeepLabV3PlusMobileNetV2` keys; the 1280-channel conv and classifier are dropped."""
    from torchvision.models import MobileNet_V2_Weights

    state = {}
    for key, value in MobileNet_V2_Weights.IMAGENET1K_V1.get_state_dict(progress=False).items():
        parts = key.split(".")
        if parts[0] != "features" or int(parts[1]) > 17:
            continue
        part = "low_level_features" if int(parts[1]) < 4 else "high_level_features"
        state[".".join(["backbone", part, *parts[1:]])] = value
    return state


# --------------------------------------------------------------------------------------------
# Loading weights
# --------------------------------------------------------------------------------------------


def _numpy_safe_globals() -> list:
    """What ``torch.load(weights_only=True)`` must be allowed to rebuild NumPy scalars: the
    ``scalar`` constructor (under its NumPy 1 and 2 module names), ``numpy.dtype`` and the dtype
    classes of NumPy >= 1.25 (``numpy.dtypes.Float64DType`` for VainF's ``best_score``)."""
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # NumPy < 1.26
        from numpy.core.multiarray import scalar
    allowed: list = [
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        np.dtype,
    ]
    dtypes = getattr(np, "dtypes", None)
    for name in ("Float64DType", "Float32DType", "Int64DType", "Int32DType", "BoolDType"):
        if dtypes is not None and hasattr(dtypes, name):
            allowed.append(getattr(dtypes, name))
    return allowed


def _load_file(path: Path):
    """``torch.load`` with ``weights_only=True``, NumPy scalars allowed, onto the CPU."""
    if not hasattr(torch.serialization, "safe_globals"):
        raise RuntimeError("loading task-model checkpoints needs torch >= 2.5")
    with torch.serialization.safe_globals(_numpy_safe_globals()):
        return torch.load(path, map_location="cpu", weights_only=True)


def _is_url(source) -> bool:
    return isinstance(source, str) and source.startswith(("http://", "https://"))


def _fetch(url: str, sha256: str | None = None) -> Path:
    """Download ``url`` into ``cache_dir()/weights`` (once) and log its SHA-256."""
    from gwnlib.download import download_url, file_hash

    name = Path(urllib.parse.urlparse(url).path).name or "weights.pth"
    target = runtime.cache_dir() / "weights" / name
    try:
        path = download_url(url, target, sha256=sha256)
    except OSError as error:
        raise RuntimeError(
            f"could not download {url} ({error}). Put the file at {target} by hand, or train a "
            "replacement with gwnlib.vision.tasks.pretrain() and pass its path as weights"
        ) from error
    if sha256 is None:
        _LOG.info("sha256 of %s: %s (not pinned)", path, file_hash(path))
    return path


def _state_dict(checkpoint, name: str) -> dict:
    """The model weights inside a checkpoint: VainF's (``model_state``), :func:`pretrain`'s
    (``model``) or a bare state dict; a ``module.`` prefix (DataParallel) is removed."""
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"weights file holds a {type(checkpoint).__name__}, not a state dict")
    if checkpoint.get("format") == _CHECKPOINT_FORMAT:
        if checkpoint["task"] != name:
            raise ValueError(
                f"weights file holds a {checkpoint['task']!r} model, not a {name!r} model"
            )
        state = checkpoint["model"]
    elif "model_state" in checkpoint:
        state = checkpoint["model_state"]
    else:
        state = checkpoint
    return {key.removeprefix("module."): value for key, value in state.items()}


def load_deeplab_weights(model: nn.Module, source: str | Path) -> nn.Module:
    """Load a DeepLabV3+ checkpoint into ``model`` (a :class:`DeepLabV3PlusMobileNetV2` or the
    :class:`TaskModel` around one) and return ``model``.

    ``source``: a local file or an ``http(s)`` URL (downloaded once into
    ``cache_dir()/weights``; :data:`SEGMENTATION_WEIGHTS_URL` is VainF's Cityscapes checkpoint).
    VainF's files are dicts with ``model_state`` plus ``best_score`` (a NumPy float64), which is
    why loading allows NumPy's scalar types; weights_only stays on. Keys must match exactly.
    """
    network = model.model if isinstance(model, TaskModel) else model
    if not isinstance(network, DeepLabV3PlusMobileNetV2):
        raise ValueError(
            "model must be a DeepLabV3PlusMobileNetV2 or a TaskModel around one; "
            f"got {type(network).__name__}"
        )
    path = _resolve_source(source, "source")
    network.load_state_dict(_state_dict(_load_file(path), "segmentation"))
    return model


def _resolve_source(source, parameter: str) -> Path:
    if _is_url(source):
        return _fetch(
            source, SEGMENTATION_WEIGHTS_SHA256 if source == SEGMENTATION_WEIGHTS_URL else None
        )
    if isinstance(source, (str, Path)) and Path(source).expanduser().is_file():
        return Path(source).expanduser()
    raise ValueError(
        f"{parameter} must be an http(s) URL or the path of an existing file; got {source!r}"
    )


def pretrained_path(
    task: str, preset: str | None = None, seed: int = 0, root: str | Path | None = None
) -> Path:
    """The checkpoint :func:`pretrain` wrote for ``task`` (``preset`` given, else the best there
    is: ``paper``, then ``short``); ``FileNotFoundError`` saying how to make one if none."""
    _check_task(task, _DENSE, "task")
    if preset is not None:
        runtime.check_preset(preset)
    folder = Path(root) if root is not None else runtime.cache_dir() / "weights"
    candidates = [preset] if preset is not None else ["paper", "short"]
    for name in candidates:
        path = folder / f"{task}-{name}-seed{seed}.pt"
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"no pretrained {task} model in {folder} (looked for "
        f"{', '.join(f'{task}-{name}-seed{seed}.pt' for name in candidates)}). Train one first, "
        f"e.g. gwnlib.vision.tasks.pretrain({task!r}, <train split of "
        "gwnlib.data.cityscapes.CityscapesTasks>, preset='short', validation=<its val split>), "
        "or pass weights=<path of a checkpoint>"
    )


# --------------------------------------------------------------------------------------------
# The frozen task model
# --------------------------------------------------------------------------------------------

_FROZEN_LAYERS = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm*
    nn.GroupNorm,
    nn.LayerNorm,
    nn.modules.dropout._DropoutNd,
)


class TaskModel(nn.Module):
    """A frozen pretrained task model appended to a synthesis transform (paper Sec. 4.3).

    Every parameter has ``requires_grad=False`` and the wrapped network stays in eval mode
    whatever ``.train()`` says, so batch statistics never move and dropout never fires; gradients
    still flow to the input images. ``loss_scale`` multiplies :meth:`loss` (default
    :data:`LOSS_SCALES`).

    * ``forward(images)``: dense tasks return their prediction channels ``(B, C, H, W)`` (19
      logits; 1 channel of disparity / 128), detection tasks their prediction dicts.
    * ``loss(images, targets)``: the distortion (see the module docstring).
    * ``predict(images)``: train ids ``(B, H, W)``; disparity in pixels ``(B, H, W)`` (raw, not
      clamped); torchvision's lists of dicts (``boxes``, ``labels``, ``scores``[, ``keypoints``]).
    """

    def __init__(self, name: str, model: nn.Module, loss_scale: float | None = None):
        super().__init__()
        self.name = _check_task(name)
        self.model = model
        scale = LOSS_SCALES[name] if loss_scale is None else loss_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise ValueError(f"loss_scale must be a positive number; got {loss_scale!r}")
        self.loss_scale = float(scale)
        self.register_buffer(
            "mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self._trainable = False
        self._set_trainable(False)

    @property
    def dense(self) -> bool:
        """Whether the task predicts per pixel (segmentation, depth)."""
        return self.name in _DENSE

    @property
    def channels(self) -> int | None:
        """Prediction channels of a dense task (19 or 1); None for detection tasks."""
        return _CHANNELS.get(self.name)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, loss_scale={self.loss_scale}"

    def _set_trainable(self, trainable: bool) -> None:
        """Unfreeze (for :func:`pretrain` only) or freeze the wrapped network."""
        self._trainable = trainable
        for parameter in self.model.parameters():
            parameter.requires_grad_(trainable)
        self.model.train(trainable and self.training)

    def train(self, mode: bool = True) -> TaskModel:
        super().train(mode)
        if not self._trainable:
            self.model.eval()
        return self

    # -- dense tasks --------------------------------------------------------------------------

    def forward(self, images: torch.Tensor, sizes=None):
        _check_images(images)
        if not self.dense:
            return self.predict(images, sizes=sizes)
        _no_sizes(sizes, self.name)
        x = (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        out = self.model(x)
        return out["out"] if self.name == "depth" else out

    def loss_from_outputs(self, outputs: torch.Tensor, targets) -> torch.Tensor:
        """The distortion of a dense task from prediction channels ``outputs`` (resized
        bilinearly to the targets' resolution when they differ)."""
        if self.name == "segmentation":
            labels = _segmentation_targets(targets)
            logits = _resize_to(outputs, labels.shape[-2:])
            if not (labels != IGNORE_INDEX).any():
                return logits.sum() * 0.0
            loss = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)
        elif self.name == "depth":
            disparity, valid = _depth_targets(targets)
            prediction = _resize_to(outputs, disparity.shape[-2:])[:, 0]
            loss = _masked_rmse(prediction, disparity / DISPARITY_SCALE, valid) * DISPARITY_SCALE
        else:
            raise ValueError(f"loss_from_outputs is for dense tasks ({', '.join(_DENSE)})")
        return loss * self.loss_scale

    def predict_from_outputs(self, outputs: torch.Tensor) -> torch.Tensor:
        """Train ids (argmax of the logits) or disparity in pixels (raw output x 128)."""
        if self.name == "segmentation":
            return outputs.argmax(dim=1)
        if self.name == "depth":
            return outputs[:, 0] * DISPARITY_SCALE
        raise ValueError(f"predict_from_outputs is for dense tasks ({', '.join(_DENSE)})")

    # -- every task ---------------------------------------------------------------------------

    def loss(self, images: torch.Tensor, targets, sizes=None) -> torch.Tensor:
        """The distortion ``D_i``: a scalar, differentiable with respect to ``images``.

        ``targets``: segmentation, an int64 ``(B, H, W)`` tensor of train ids or a batch dict
        with ``"segmentation"``; depth, a batch dict with ``"disparity"`` (pixels) and
        ``"valid"`` or a ``(disparity, valid)`` pair; detection tasks, one dict per image with
        ``boxes`` (N, 4) xyxy in pixels, ``labels`` (N,) and, for keypoints, ``keypoints``
        (N, 17, 3); N may be 0. ``sizes`` (detection tasks only): the ``(height, width)`` of each
        image's valid top-left region in a padded batch; the rest is cropped off.
        """
        if self.dense:
            return self.loss_from_outputs(self(images, sizes=sizes), targets)
        _check_images(images)
        targets = _detection_targets(targets, len(images), self.name, images.device)
        with _loss_mode(self.model):
            losses = self.model(_image_list(images, sizes), targets)
        return sum(losses.values()) * self.loss_scale

    def predict(self, images: torch.Tensor, sizes=None):
        """Predictions (see the class docstring); gradients are not turned off here."""
        if self.dense:
            return self.predict_from_outputs(self(images, sizes=sizes))
        _check_images(images)
        return self.model(_image_list(images, sizes))


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


def _check_images(images) -> None:
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"images must be a (B, 3, H, W) tensor in [0, 1]; got {shape}")
    if not images.is_floating_point():
        raise ValueError(f"images must be floating point in [0, 1]; got {images.dtype}")


def _no_sizes(sizes, name) -> None:
    if sizes is not None:
        raise ValueError(f"sizes is for detection and keypoints, not {name}; pass None")


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


def _detection_targets(targets, count: int, name: str, device) -> list[dict]:
    if not isinstance(targets, (list, tuple)) or len(targets) != count:
        raise ValueError(f"targets must be a list of {count} dicts, one per image")
    needed = ("boxes", "labels", "keypoints") if name == "keypoints" else ("boxes", "labels")
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


# --------------------------------------------------------------------------------------------
# Building the four task models
# --------------------------------------------------------------------------------------------


def _network(name: str, pretrained: bool, imagenet_backbone: bool, options: dict) -> nn.Module:
    """The bare network: with the public weights (``pretrained``, detection tasks only) or
    randomly initialised (ImageNet backbone when ``imagenet_backbone``)."""
    if name == "segmentation":
        network = DeepLabV3PlusMobileNetV2(NUM_CLASSES, output_stride=16)
        if imagenet_backbone:
            network.load_state_dict(_imagenet_backbone_state(), strict=False)
        return network
    if name == "depth":
        from torchvision.models import MobileNet_V3_Large_Weights
        from torchvision.models.segmentation import lraspp_mobilenet_v3_large

        backbone = MobileNet_V3_Large_Weights.IMAGENET1K_V1 if imagenet_backbone else None
        return lraspp_mobilenet_v3_large(weights=None, weights_backbone=backbone, num_classes=1)
    from torchvision.models import detection

    if name == "detection":
        weights = detection.FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1 if pretrained else None
        builder = detection.fasterrcnn_resnet50_fpn_v2
    else:
        weights = detection.KeypointRCNN_ResNet50_FPN_Weights.COCO_V1 if pretrained else None
        builder = detection.keypointrcnn_resnet50_fpn
    backbone = None
    if imagenet_backbone and not pretrained:
        from torchvision.models import ResNet50_Weights

        backbone = ResNet50_Weights.IMAGENET1K_V1
    return builder(weights=weights, weights_backbone=backbone, **options)


def _check_options(name: str, options: dict) -> tuple[float | None, dict]:
    unknown = sorted(set(options) - set(_OPTIONS[name]))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for task {name!r}; accepted: "
            f"{', '.join(_OPTIONS[name])}"
        )
    network_options = {key: value for key, value in options.items() if key != "loss_scale"}
    for key, value in network_options.items():
        if key in _RCNN_COUNTS:
            runtime.check_int(key, value)
        if key in _RCNN_FRACTIONS and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1
        ):
            raise ValueError(f"{key} must be a number in [0, 1]; got {value!r}")
    return options.get("loss_scale"), network_options


def build_task_model(name: str, weights="default", **options) -> TaskModel:
    """The frozen task model ``name`` (one of :data:`TASKS`) as a :class:`TaskModel`.

    ``weights``: ``"default"``, the real public weights (VainF's Cityscapes checkpoint for
    segmentation, downloaded once; torchvision's COCO weights for detection and keypoints; for
    depth, the checkpoint :func:`pretrain` wrote, see :func:`pretrained_path`); ``None``, random
    initialisation and no download at all (tests, smoke runs); or a local path (or URL) of a
    checkpoint: VainF's, :func:`pretrain`'s or a bare state dict. ``options``: ``loss_scale``
    (every task); for detection and keypoints, torchvision's scalar R-CNN settings, e.g.
    ``min_size`` and ``max_size`` (the transform's resizing bounds, 800 and 1333 by default) or
    ``rpn_post_nms_top_n_test`` and ``box_batch_size_per_image``: small values keep CPU runs
    small, the defaults are the published models' settings.
    """
    _check_task(name)
    loss_scale, network_options = _check_options(name, options)
    default = isinstance(weights, str) and weights == "default"
    if weights is None or default:
        network = _network(name, default and name in _DETECTION, False, network_options)
        if default and name == "segmentation":
            load_deeplab_weights(network, SEGMENTATION_WEIGHTS_URL)
        elif default and name == "depth":
            _load_into(network, pretrained_path("depth"), name)
    elif isinstance(weights, (str, Path)):
        try:
            path = _resolve_source(weights, "weights")
        except ValueError:
            raise ValueError(
                "weights must be 'default', None, an http(s) URL or the path of an existing "
                f"file; got {weights!r}"
            ) from None
        network = _network(name, False, False, network_options)
        _load_into(network, path, name)
    else:
        raise ValueError(
            f"weights must be 'default', None, an http(s) URL or a file path; got {weights!r}"
        )
    return TaskModel(name, network, loss_scale=loss_scale)


def _load_into(network: nn.Module, path: Path, name: str) -> None:
    network.load_state_dict(_state_dict(_load_file(path), name))
    _LOG.info("loaded %s weights from %s", name, path)


# --------------------------------------------------------------------------------------------
# The learned samplers around the Cityscapes task models (D.5)
# --------------------------------------------------------------------------------------------


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
    ``predict`` work as :class:`TaskModel`'s, against full-resolution targets. The samplers are
    trainable (the codec's parameters); the task model is not. ``weights``: the path of a
    :func:`pretrain` checkpoint whose samplers to start from (default: identity samplers).
    """

    def __init__(self, task_model: TaskModel, factor: int = SAMPLER_FACTOR, weights=None):
        super().__init__()
        if not isinstance(task_model, TaskModel) or not task_model.dense:
            raise ValueError(
                f"task_model must be a TaskModel of a dense task ({', '.join(_DENSE)}); got "
                f"{getattr(task_model, 'name', type(task_model).__name__)!r}"
            )
        self.task = task_model
        self.down = Resampler(3, factor, "down")
        self.up = Resampler(task_model.channels, factor, "up")
        if weights is not None:
            self._load_samplers(_resolve_source(weights, "weights"))

    @property
    def name(self) -> str:
        return self.task.name

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images)
        return self.up(self.task(self.down(images)), size=images.shape[-2:])

    def loss(self, images: torch.Tensor, targets) -> torch.Tensor:
        """The task distortion of the resampled prediction, at the targets' resolution."""
        return self.task.loss_from_outputs(self(images), targets)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return self.task.predict_from_outputs(self(images))

    def samplers_state_dict(self) -> dict:
        """The two samplers' weights (what :func:`pretrain` saves beside the task model)."""
        return {"down": self.down.state_dict(), "up": self.up.state_dict()}

    def _load_samplers(self, path: Path) -> None:
        checkpoint = _load_file(path)
        if not isinstance(checkpoint, Mapping) or checkpoint.get("format") != _CHECKPOINT_FORMAT:
            raise ValueError(f"weights must be a checkpoint written by pretrain(); {path} is not")
        if checkpoint["task"] != self.name or checkpoint["factor"] != self.down.factor:
            raise ValueError(
                f"{path} holds {checkpoint['task']!r} samplers of factor {checkpoint['factor']}, "
                f"not {self.name!r} samplers of factor {self.down.factor}"
            )
        self.down.load_state_dict(checkpoint["samplers"]["down"])
        self.up.load_state_dict(checkpoint["samplers"]["up"])


# --------------------------------------------------------------------------------------------
# Pretraining the Cityscapes task models without rate
# --------------------------------------------------------------------------------------------


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
    _check_task(task, _DENSE, "task")
    runtime.check_preset(preset)
    folder = Path(root) if root is not None else runtime.cache_dir() / "weights"
    path = folder / f"{task}-{preset}-seed{seed}.pt"
    if path.is_file():
        _LOG.info("pretrained %s model found at %s; not training again", task, path)
        return path
    recipe = PRETRAIN_PRESETS[preset]
    dev = runtime.device(device)
    runtime.seed_everything(seed)
    started = time.perf_counter()

    task_model = TaskModel(task, _network(task, False, recipe["imagenet_backbone"], {}))
    task_model._set_trainable(True)
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
    task_model._set_trainable(False)
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
        "format": _CHECKPOINT_FORMAT,
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
    from gwnlib.vision.metrics import DisparityRMSE, SegmentationIoU

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
