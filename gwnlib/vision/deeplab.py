"""DeepLabV3+ on a MobileNetV2 backbone, laid out like VainF/DeepLabV3Plus-Pytorch (paper
Sec. 4.3: the Cityscapes segmentation model, "weights provided by Chen et al. (2018a)").

:class:`DeepLabV3PlusMobileNetV2` matches VainF's ``deeplabv3plus_mobilenet`` key for key, so its
Cityscapes checkpoint loads strictly (:func:`gwnlib.vision.tasks.load_deeplab_weights`);
:func:`imagenet_backbone_state` renames torchvision's ImageNet MobileNetV2 weights to its keys.
Chapter "Vision tasks: Cityscapes and COCO 2017" uses it as a frozen task model.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from gwnlib import runtime
from gwnlib.data.cityscapes import NUM_CLASSES

__all__ = ["DeepLabV3PlusMobileNetV2", "imagenet_backbone_state"]

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


def imagenet_backbone_state() -> dict:
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
