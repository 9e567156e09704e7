"""Faster steps without other numbers: mixed precision, channels-last memory and
``torch.compile``, with the workarounds CompressAI's layers need under each (chapter "Training
and sweeps", the benchmark section).
"""

from __future__ import annotations

import contextlib
import types

import torch

from gwnlib.model.entropy import mask_weights, masked_convolutions

#: Accepted values of ``fit(amp=...)``: ``"auto"`` is bfloat16 autocast on CUDA, float32 elsewhere
#: (on CPUs, bf16 was not measured both faster and as good: :func:`uses_bf16`).
AMP_MODES = ("auto", "bf16", "fp32")


def uses_bf16(amp: str, dev: torch.device) -> bool:
    """Whether ``amp`` (:data:`AMP_MODES`) means bfloat16 autocast on ``dev``: ``"auto"`` on
    CUDA only.

    On a CPU ``"auto"`` stays float32: bfloat16 autocast is only worth taking where it is both
    faster and as good, and no CPU measured for this book showed both. On a 2-core AMD EPYC
    without native bf16 instructions (``lscpu``: no ``avx512_bf16``; oneDNN emulates them) the
    synthetic step was about 7-12 times *slower* under bf16 (the ``eager_bf16`` rows of
    ``book/results/bench-cpu.json``); where ``avx512_bf16`` exists it gained 1.0-1.14x on the
    synthetic codec and 1.35x on the coloured-MNIST one, with no seed-noise comparison of the
    results yet. ``amp="bf16"`` asks for it explicitly."""
    return amp == "bf16" or (amp == "auto" and dev.type == "cuda")


def autocast_context(dev: torch.device, bf16: bool):
    if not bf16:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=dev.type, dtype=torch.bfloat16)


class ChannelsLastInputs(torch.nn.Module):
    """Calls ``codec`` with its 4-D image input in channels-last (NHWC) memory: convolutions pick
    NHWC kernels only when the input is NHWC, so converting the weights alone does not help."""

    def __init__(self, codec):
        super().__init__()
        self.codec = codec

    def forward(self, x, *rest):
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.codec(x, *rest)


class CompiledCodec(torch.nn.Module):
    """``torch.compile(model, **options)`` for a model with CompressAI masked convolutions: their
    weights are masked in place before each call, outside the compiled region
    (:func:`~gwnlib.model.entropy.mask_weights`: the same values and gradients as CompressAI's
    layer), and the compiled graph sees plain convolutions instead of the layer's ``.data``
    reassignment, which torch 2.11's Inductor fails on at the second step. Called outside a
    compiled graph (evaluation, entropy coding), the layers still run CompressAI's forward."""

    def __init__(self, model: torch.nn.Module, **options):
        super().__init__()
        self.layers = list(masked_convolutions(model).values())
        for layer in self.layers:
            layer.forward = types.MethodType(_plain_when_compiled, layer)
        self.compiled = torch.compile(model, **options)

    def forward(self, *args, **kwargs):
        mask_weights((layer.weight, layer.mask) for layer in self.layers)
        return self.compiled(*args, **kwargs)


def _plain_when_compiled(layer, x):
    """A masked convolution's forward: a plain convolution in a graph that torch.compile
    traces (:class:`CompiledCodec` has masked the weight), the layer's own forward elsewhere."""
    if torch.compiler.is_compiling():
        return torch.nn.Conv2d.forward(layer, x)
    return type(layer).forward(layer, x)
