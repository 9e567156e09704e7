"""Layers of the learnable Gray-Wyner network (paper Sec. 3.3 and 4, appendix D.1, Fig. 6).

- :class:`ResidualBlock`: 1x1 conv, ELU, kxk conv, ELU, 1x1 conv, plus the input.
- :class:`SameConv2d`: a stride-1 'same' convolution that skips the kernel taps that only ever
  meet the zero padding (the same function, a fraction of the work on tiny latents).
- :func:`analysis_transform` / :func:`synthesis_transform` in two variants: ``"conv"``, the
  strided convolutions of Fig. 6 (channels 24, 48, 192, E; spatial size / 16), and ``"shuffle"``,
  the pixel-(un)shuffle transforms the paper uses for its synthetic source (D.3).

The operations on latents (quantisation, the merge, the alignment term) are in
:mod:`gwnlib.model.ops`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gwnlib.runtime import check_int

TRANSFORMS = ("conv", "shuffle")


def same_conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: tuple[int, int]
) -> torch.Tensor:
    """A stride-1 convolution of ``x`` with zero ``padding`` = half the (odd) kernel, as
    ``F.conv2d`` computes it, without the kernel taps that can only ever meet the padding.

    On a latent smaller than the kernel's reach (the synthetic laptop preset's 1 x 1 latent, or
    coloured MNIST's 2 x 2, under the entropy models' 5 x 5 kernels) most taps multiply zeros:
    a 5 x 5 kernel on a 1 x 1 input uses its centre only. Cropping the kernel to the taps within
    ``size - 1`` of the centre gives the same output and the same gradients (the cropped taps'
    gradient is exactly zero either way) for a fraction of the work, up to float32's rounding of
    a shorter sum; on larger inputs (the paper's 4 x 4 latent) nothing is cropped.
    """
    ph, pw = padding
    oh, ow = min(ph, x.shape[-2] - 1), min(pw, x.shape[-1] - 1)
    if (oh, ow) != (ph, pw):
        weight = weight[..., ph - oh : ph + oh + 1, pw - ow : pw + ow + 1]
    return F.conv2d(x, weight, bias, 1, (oh, ow))


class SameConvolution:
    """Mixin for ``nn.Conv2d`` (or a subclass such as CompressAI's ``MaskedConv2d``) with stride 1
    and 'same' zero padding: its convolution is :func:`same_conv2d`. It overrides
    ``_conv_forward``, which ``nn.Conv2d.forward`` calls with the weight to use, so that the
    layer's own forward (masking first), a compiled graph and a vmapped functional call all
    convolve this way. Same parameters and state dict as the plain layer."""

    def _check_same(self) -> None:
        k, p = self.kernel_size, self.padding
        same = all(size == 2 * pad + 1 for size, pad in zip(k, p, strict=True))
        plain = (self.stride == (1, 1) and self.dilation == (1, 1) and self.groups == 1
                 and self.padding_mode == "zeros")  # fmt: skip
        if not (same and plain):
            raise ValueError(
                "a SameConvolution needs an odd kernel, padding = kernel // 2, stride 1, "
                f"dilation 1, one group and zero padding; got kernel {k}, padding {p}, "
                f"stride {self.stride}"
            )

    def _conv_forward(self, input, weight, bias):  # noqa: A002  (nn.Conv2d's signature)
        return same_conv2d(input, weight, bias, self.padding)


class SameConv2d(SameConvolution, nn.Conv2d):
    """``nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)`` that skips
    the taps that only meet the padding (:func:`same_conv2d`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self._check_same()


class ResidualBlock(nn.Module):
    """1x1 conv, ELU, kxk conv, ELU, 1x1 conv, plus a skip; the hidden width equals the input's
    (paper D.1; the authors' code uses k = 3 in the transforms, k = 5 in the entropy models)."""

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd; got {kernel_size}")
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 1),
            nn.ELU(),
            SameConv2d(channels, channels, kernel_size),
            nn.ELU(),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _check_transform(transform: str) -> None:
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {', '.join(TRANSFORMS)}; got {transform!r}")


def analysis_transform(
    in_channels: int,
    out_channels: int,
    transform: str = "conv",
    widths: tuple[int, int, int] = (24, 48, 192),
    blocks: int = 3,
) -> nn.Module:
    """The encoder f: input (M, H, W) to latent (E, H / 16, W / 16) (paper Fig. 6).

    ``"conv"``: conv 5x5 stride 2 to 24, 3 residual blocks, to 48, 3 blocks, to 192, 3 blocks,
    conv to E. ``"shuffle"``: pixel-unshuffle by 2 four times (channels x4 each), a residual block
    after each of the first three; the paper's synthetic setting ends at M * 256 = 512 channels,
    and a 5x5 conv (stride 1, same padding) maps to E when E differs, as the authors' E/2-channel
    encoders of Separated and 3E/2-channel encoder of Combined do.

    ``widths`` and ``blocks`` (``"conv"`` only): the three hidden widths and the residual blocks
    after each; the defaults are the paper's. Chapter "Beyond two tasks" trains narrower ones.
    """
    _check_transform(transform)
    _check_channels(in_channels=in_channels, out_channels=out_channels)
    _check_widths(widths, blocks)
    if transform == "conv":
        layers: list[nn.Module] = []
        previous = in_channels
        for width in widths:
            layers.append(nn.Conv2d(previous, width, 5, stride=2, padding=2))
            layers += [ResidualBlock(width) for _ in range(blocks)]
            previous = width
        layers.append(nn.Conv2d(previous, out_channels, 5, stride=2, padding=2))
        return nn.Sequential(*layers)
    layers = []
    channels = in_channels
    for stage in range(4):
        layers.append(nn.PixelUnshuffle(2))
        channels *= 4
        if stage < 3:
            layers.append(ResidualBlock(channels))
    if channels != out_channels:
        layers.append(SameConv2d(channels, out_channels, 5))
    return nn.Sequential(*layers)


def synthesis_transform(
    in_channels: int,
    out_channels: int,
    transform: str = "conv",
    widths: tuple[int, int, int] = (24, 48, 192),
    blocks: int = 3,
) -> nn.Module:
    """The decoder g: latent (E, h, w) to features (M, 16 h, 16 w), mirroring the analysis.

    ``"conv"``: transposed convs (kernel 5, stride 2, padding 2, output padding 1) through 192, 48,
    24 with 3 residual blocks after each, then to M. ``"shuffle"``: a 1x1 conv to M * 256 channels
    when the latent has another width, then pixel-shuffle by 2 four times with a residual block
    after each of the last three. ``widths`` and ``blocks``: as :func:`analysis_transform`'s, in
    the encoder's order (the decoder visits them in reverse).
    """
    _check_transform(transform)
    _check_channels(in_channels=in_channels, out_channels=out_channels)
    _check_widths(widths, blocks)
    if transform == "conv":
        layers: list[nn.Module] = []
        previous = in_channels
        for width in reversed(widths):
            layers.append(nn.ConvTranspose2d(previous, width, 5, 2, padding=2, output_padding=1))
            layers += [ResidualBlock(width) for _ in range(blocks)]
            previous = width
        layers.append(nn.ConvTranspose2d(previous, out_channels, 5, 2, padding=2, output_padding=1))
        return nn.Sequential(*layers)
    channels = out_channels * 256
    layers = [] if in_channels == channels else [nn.Conv2d(in_channels, channels, 1)]
    for stage in range(4):
        layers.append(nn.PixelShuffle(2))
        channels //= 4
        if stage < 3:
            layers.append(ResidualBlock(channels))
    return nn.Sequential(*layers)


def _check_widths(widths, blocks) -> None:
    if len(tuple(widths)) != 3:
        raise ValueError(f"widths must be three channel counts; got {tuple(widths)}")
    for width in widths:
        check_int("widths", width)
    check_int("blocks", blocks, low=0)


def _check_channels(**channels: int) -> None:
    for name, value in channels.items():
        check_int(name, value)
