"""The frozen task model (paper Sec. 4.3): the base class of one subclass per kind of task.

A :class:`TaskModel` wraps a pretrained network appended to a synthesis transform, keeps it frozen
and turns decoded images into the distortion ``D_i`` of the Lagrangian (:meth:`TaskModel.loss`) or
a prediction. The per-pixel kinds are in :mod:`gwnlib.vision.dense`, the R-CNN kinds in
:mod:`gwnlib.vision.detection`, the registry in :mod:`gwnlib.vision.tasks`. Chapter "Vision
tasks: Cityscapes and COCO 2017" builds them.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

__all__ = ["TaskModel", "check_images"]


class TaskModel(nn.Module):
    """A frozen pretrained task model appended to a synthesis transform (paper Sec. 4.3); the
    base of one subclass per kind of task (:data:`gwnlib.vision.tasks.TASK_MODELS`).

    Every parameter has ``requires_grad=False`` and the wrapped network stays in eval mode
    whatever ``.train()`` says, so batch statistics never move and dropout never fires; gradients
    still flow to the input images. ``loss_scale`` multiplies :meth:`loss` (default
    :data:`gwnlib.vision.tasks.LOSS_SCALES`).

    * ``forward(images)``: dense tasks return their prediction channels ``(B, C, H, W)`` (19
      logits; 1 channel of disparity / 128), detection tasks their prediction dicts.
    * ``loss(images, targets)``: the distortion (see the module docstring).
    * ``predict(images)``: train ids ``(B, H, W)``; disparity in pixels ``(B, H, W)`` (raw, not
      clamped); torchvision's lists of dicts (``boxes``, ``labels``, ``scores``[, ``keypoints``]).

    A subclass sets ``name``, ``default_loss_scale`` and the ``options`` that
    :func:`gwnlib.vision.tasks.build_task_model` accepts, and builds its bare network in
    :meth:`network` (random or ImageNet-backbone initialisation) and :meth:`default_network`
    (the public weights).
    """

    name: ClassVar[str]
    default_loss_scale: ClassVar[float] = 1.0
    dense: ClassVar[bool] = False  # whether the task predicts per pixel
    channels: ClassVar[int | None] = None  # prediction channels of a dense task
    options: ClassVar[tuple[str, ...]] = ("loss_scale",)

    def __init__(self, model: nn.Module, loss_scale: float | None = None):
        super().__init__()
        self.model = model
        scale = self.default_loss_scale if loss_scale is None else loss_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise ValueError(f"loss_scale must be a positive number; got {loss_scale!r}")
        self.loss_scale = float(scale)
        self._trainable = False
        self.set_trainable(False)

    @classmethod
    def network(cls, imagenet_backbone: bool = False, **options) -> nn.Module:
        """The bare network, randomly initialised (ImageNet backbone when asked)."""
        raise NotImplementedError

    @classmethod
    def default_network(cls, **options) -> nn.Module:
        """The bare network with the task's public weights."""
        raise NotImplementedError

    @classmethod
    def check_options(cls, options: dict) -> tuple[float | None, dict]:
        """``(loss_scale, the network's options)`` from the keywords of
        :func:`gwnlib.vision.tasks.build_task_model`; a ValueError for an unknown one."""
        unknown = sorted(set(options) - set(cls.options))
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(unknown)} for task {cls.name!r}; accepted: "
                f"{', '.join(cls.options)}"
            )
        network_options = {key: value for key, value in options.items() if key != "loss_scale"}
        return options.get("loss_scale"), network_options

    def extra_repr(self) -> str:
        return f"name={self.name!r}, loss_scale={self.loss_scale}"

    def set_trainable(self, trainable: bool) -> None:
        """Unfreeze (for :func:`gwnlib.vision.pretrain.pretrain` only) or freeze the network."""
        self._trainable = trainable
        for parameter in self.model.parameters():
            parameter.requires_grad_(trainable)
        self.model.train(trainable and self.training)

    def train(self, mode: bool = True) -> TaskModel:
        super().train(mode)
        if not self._trainable:
            self.model.eval()
        return self

    def loss(self, images: torch.Tensor, targets, sizes=None) -> torch.Tensor:
        """The distortion ``D_i``: a scalar, differentiable with respect to ``images``.

        ``targets``: segmentation, an int64 ``(B, H, W)`` tensor of train ids or a batch dict
        with ``"segmentation"``; depth, a batch dict with ``"disparity"`` (pixels) and
        ``"valid"`` or a ``(disparity, valid)`` pair; detection tasks, one dict per image with
        ``boxes`` (N, 4) xyxy in pixels, ``labels`` (N,) and, for keypoints, ``keypoints``
        (N, 17, 3); N may be 0. ``sizes`` (detection tasks only): the ``(height, width)`` of each
        image's valid top-left region in a padded batch; the rest is cropped off.
        """
        raise NotImplementedError

    def predict(self, images: torch.Tensor, sizes=None):
        """Predictions (see the class docstring); gradients are not turned off here."""
        raise NotImplementedError


def check_images(images) -> None:
    """A ValueError unless ``images`` is a floating ``(B, 3, H, W)`` tensor."""
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"images must be a (B, 3, H, W) tensor in [0, 1]; got {shape}")
    if not images.is_floating_point():
        raise ValueError(f"images must be floating point in [0, 1]; got {images.dtype}")
