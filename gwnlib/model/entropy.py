"""Entropy models of the learnable Gray-Wyner network (paper Sec. 3.3 and 4, appendix D.1, Fig. 7).

Each latent gets a Gaussian entropy model whose mean and scale come from an autoregressive context:
a 5x5 masked convolution over the already-coded elements (mask type A, as in Minnen et al. 2018;
CompressAI's ``MaskedConv2d``). There is no hyperprior. The private latents Y1 and Y2 are also
conditioned on the common one, Y0, through two residual blocks, a 5x5 conv to 2C channels and two
more residual blocks (the "2 + 2" conditioning path): r_i = -log2 P(Y_i | Y0), the conditional
rates of Eq. 11. The likelihood of an integer y is the mass of N(mean, scale) on [y - 1/2, y + 1/2],
with the scale bounded below by 0.11 and the likelihood by 1e-9 (CompressAI's
``GaussianConditional``).

Where the authors' code differs (the paper does not say): their ``GaussianConditionalQuantized``
rounds ``y - mean`` (straight-through) and takes that integer's bin under N(0, scale), which for an
integer y is the bin of y under N(round(mean), scale): an integer mean. We keep CompressAI's
fractional mean, the usual choice: integer means are a special case of it, so for the same latents
the best rates it can reach are at most the authors', and :mod:`gwnlib.model.streams` codes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from compressai.ans import RansDecoder, RansEncoder
from compressai.entropy_models import GaussianConditional
from compressai.layers import MaskedConv2d
from torch import nn

from gwnlib.model.layers import ResidualBlock, SameConv2d, SameConvolution
from gwnlib.model.tables import CdfTables


class MaskedSameConv2d(SameConvolution, MaskedConv2d):
    """CompressAI's ``MaskedConv2d`` (its forward, masking and state dict) convolving with
    :func:`~gwnlib.model.layers.same_conv2d`: on a latent smaller than the kernel's reach it
    skips the taps that only meet the padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                         mask_type=mask_type)  # fmt: skip
        self._check_same()


class LatentEntropyModel(nn.Module):
    """Autoregressive Gaussian entropy model of one latent with ``channels`` channels.

    With ``condition_channels`` it also reads a conditioning latent (Y0 for Y1 and Y2). The
    parameter network is three 1x1 convolutions, 2C (or 4C with a condition) -> 10C/3 -> 8C/3 ->
    2C, giving (scale, mean) per element (paper Fig. 7), with LeakyReLU between them (ELU with a
    condition), as in the authors' code.
    """

    def __init__(self, channels: int, condition_channels: int | None = None):
        super().__init__()
        c = channels
        self.channels = channels
        self.context = MaskedSameConv2d(c, 2 * c, kernel_size=5, mask_type="A")
        self.condition = None
        inputs = 2 * c
        if condition_channels is not None:
            k = condition_channels
            self.condition = nn.Sequential(
                ResidualBlock(k, 5),
                ResidualBlock(k, 5),
                SameConv2d(k, 2 * c, 5),
                ResidualBlock(2 * c, 5),
                ResidualBlock(2 * c, 5),
            )
            inputs = 4 * c
        hidden1, hidden2 = max(1, 10 * c // 3), max(1, 8 * c // 3)
        # The authors' activations: LeakyReLU in the unconditional model, ELU in the conditional
        # one (their GaussianEntropyModel / GaussianConditionalEntropyModel).
        activation = nn.LeakyReLU if condition_channels is None else nn.ELU
        self.parameters_net = nn.Sequential(
            nn.Conv2d(inputs, hidden1, 1),
            activation(inplace=True),
            nn.Conv2d(hidden1, hidden2, 1),
            activation(inplace=True),
            nn.Conv2d(hidden2, 2 * c, 1),
        )
        self.gaussian = GaussianConditional(None)

    def gaussian_parameters(
        self, y: torch.Tensor, condition: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(scales, means) for every element of ``y``, each from the elements before it."""
        features = self.context(y)
        if self.condition is not None:
            if condition is None:
                raise ValueError("this entropy model is conditional: pass condition (Y0)")
            features = torch.cat([self.condition(condition), features], dim=1)
        scales, means = self.parameters_net(features).chunk(2, dim=1)
        return scales, means

    def forward(self, y: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Likelihoods of the (already quantised, integer-valued) latent ``y``, elementwise."""
        scales, means = self.gaussian_parameters(y, condition)
        likelihood = self.gaussian._likelihood(y, scales, means)  # bin mass, scale >= 0.11
        return self.gaussian.likelihood_lower_bound(likelihood)  # >= 1e-9


def bits(likelihoods: torch.Tensor) -> torch.Tensor:
    """Information content in bits per sample: -sum log2 p over all but the batch axis."""
    return -torch.log2(likelihoods).flatten(1).sum(dim=1)


def masked_convolutions(module: nn.Module) -> dict[str, MaskedConv2d]:
    """CompressAI's masked convolutions inside ``module``, by qualified name."""
    return {name: m for name, m in module.named_modules() if isinstance(m, MaskedConv2d)}


def mask_weights(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """``weight *= mask`` in place for each (weight, mask), outside autograd.

    CompressAI's ``MaskedConv2d.forward`` does this first (as ``weight.data = weight.data *
    mask``) and then convolves. Doing it before the forward instead lets the layer run as a plain
    convolution, with the same values and the same gradient: the plain convolution's, nonzero at
    the masked positions (Table 1's gradient-norm clipping sees it; the next masking zeroes what
    Adam puts there). ``torch.func.vmap`` cannot batch the ``.data`` reassignment, and
    ``torch.compile`` traces it as a swap of the parameter for a tensor whose memory layout
    Inductor chooses (channels-last before a CPU convolution), which torch 2.11's guards miss at
    the next call (an Inductor stride assertion; pytorch/pytorch#136837)."""
    with torch.no_grad():
        for weight, mask in pairs:
            weight.mul_(mask)


# -- the serial scan shared by encoder and decoder ------------------------------------------
@contextlib.contextmanager
def one_thread():
    """Run the entropy coder's small tensor operations on one CPU thread.

    Serial decoding is a long run of tiny operations, which multi-threaded kernels slow down
    (by 100x when the cores are busy), and a fixed thread count keeps the float reductions that
    pick the tables independent of the machine's core count.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _pointwise(net: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The 1x1 parameter network at one position, (1, channels) -> (1, 2C), as linear layers."""
    for layer in net:
        if isinstance(layer, nn.Conv2d):
            if layer.kernel_size != (1, 1):
                raise ValueError("the parameter network must be made of 1x1 convolutions")
            inputs = F.linear(inputs, layer.weight.flatten(1), layer.bias)
        else:
            inputs = layer(inputs)
    return inputs


def scan(
    model: nn.Module,
    condition: torch.Tensor | None,
    shape: tuple[int, int, int],
    tables: CdfTables,
    code: Callable[[int, int, list[int], list[int]], torch.Tensor],
    count: int = 1,
) -> torch.Tensor:
    """Visit ``count`` latents together in raster order; at each position compute (scale, mean)
    from the 5x5 window of already-coded elements (and the condition features there) of every
    sample at once, pick the tables and let ``code(h, w, indexes, centres)`` return the
    position's integer values, [count, C] (indexes and centres sample-major). Returns the
    latents (count, C, H, W). The encoder and the decoder both run this with the same ``count``,
    so their float32 arithmetic, and hence their tables, agree.
    """
    channels, height, width = shape
    context = model.context
    size = context.kernel_size[0]
    pad = size // 2
    # The masked convolution at one position, as a matrix product over the windows (a conv2d
    # call on a 5x5 window costs milliseconds on the CPU; this, microseconds).
    weight = (context.weight * context.mask).flatten(1)
    features = None if condition is None else model.condition(condition)
    y_hat = torch.zeros(count, channels, height + 2 * pad, width + 2 * pad)
    for h in range(height):
        for w in range(width):
            window = y_hat[:, :, h : h + size, w : w + size].reshape(count, -1)
            inputs = F.linear(window, weight, context.bias)
            if features is not None:
                inputs = torch.cat([features[:, :, h, w], inputs], dim=1)
            scales, means = _pointwise(model.parameters_net, inputs).chunk(2, dim=1)
            indexes, centres = tables.indexes(scales.flatten(), means.flatten())
            values = code(h, w, indexes, centres).float()
            y_hat[:, :, h + pad, w + pad] = values.reshape(count, channels)
    return y_hat[:, :, pad : pad + height, pad : pad + width]


def encode_latent(
    model: nn.Module, y: torch.Tensor, condition: torch.Tensor | None, tables: CdfTables
) -> bytes:
    """rANS payload of one sample's integer latent ``y`` (1, C, H, W) (no header): a chunk of
    one (:func:`encode_latents`)."""
    return encode_latents(model, y, condition, tables)


def encode_latents(
    model: nn.Module, y: torch.Tensor, condition: torch.Tensor | None, tables: CdfTables
) -> bytes:
    """One rANS payload for the integer latents ``y`` (N, C, H, W) of a chunk of N samples,
    coded together (:func:`scan` with ``count = N``): position by position, every sample's
    channels in turn, so the coder's fixed cost is paid once per chunk."""
    symbols: list[int] = []
    indexes: list[int] = []
    values = y.long()

    def code(h, w, index, centres):
        column = values[:, :, h, w]
        symbols.extend((column.flatten() - torch.tensor(centres)).tolist())
        indexes.extend(index)
        return column

    scan(model, condition, tuple(y.shape[1:]), tables, code, count=len(y))
    local, cdfs, lengths, starts = tables.select(indexes)
    return RansEncoder().encode_with_indexes(symbols, local, cdfs, lengths, starts)


def decode_latent(
    model: nn.Module,
    payload: bytes,
    condition: torch.Tensor | None,
    shape: tuple[int, int, int],
    tables: CdfTables,
) -> torch.Tensor:
    """Inverse of :func:`encode_latent`: the latent (1, C, H, W) as float32 integers."""
    return decode_latents(model, payload, condition, shape, tables)


def decode_latents(
    model: nn.Module,
    payload: bytes,
    condition: torch.Tensor | None,
    shape: tuple[int, int, int],
    tables: CdfTables,
    count: int = 1,
) -> torch.Tensor:
    """Inverse of :func:`encode_latents`: the ``count`` latents (count, C, H, W) of a chunk,
    as float32 integers."""
    decoder = RansDecoder()
    decoder.set_stream(payload)

    def code(h, w, index, centres):
        local, cdfs, lengths, starts = tables.select(index)
        symbols = decoder.decode_stream(local, cdfs, lengths, starts)
        return torch.tensor(symbols) + torch.tensor(centres)

    return scan(model, condition, shape, tables, code, count=count)
