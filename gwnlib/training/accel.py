"""Faster steps without other numbers: mixed precision, channels-last memory, ``torch.compile``
and ``torch.func.vmap`` (the fused groups of :mod:`gwnlib.training.fused`), with the workarounds
CompressAI's layers need under each (chapter "Training and sweeps", the benchmark section).
"""

from __future__ import annotations

import contextlib
import types

import torch
from compressai.ops import LowerBound
from torch import nn

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


# --------------------------------------------------------------------------------------------
# vmap-able stand-ins for CompressAI's in-place masked convolution and lower bound
# --------------------------------------------------------------------------------------------


# CompressAI's LowerBound is an autograd.Function: torch.func.vmap cannot batch it, and
# torch.compile over vmap would drop a batchable Function's backward (pytorch/pytorch#129845).
# A custom operator with its own autograd and vmap rules composes with both.


@torch.library.custom_op("gwnlib::lower_bound", mutates_args=())
def lower_bound(x: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:
    """``max(x, bound)`` with CompressAI's ``LowerBoundFunction`` gradient: it passes where x is
    at or above the bound, and below it only where it pushes x up (a negative gradient)."""
    return torch.max(x, bound).contiguous()


@torch.library.custom_op("gwnlib::lower_bound_backward", mutates_args=())
def _lower_bound_backward(grad: torch.Tensor, x: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:
    return (((x >= bound) | (grad < 0)) * grad).contiguous()


# What torch.compile traces: outputs of the broadcast shape, contiguous like the ops', of the
# type torch.max promotes to (forward) or of the incoming gradient (backward).
@lower_bound.register_fake
def _(x, bound):
    shape = torch.broadcast_shapes(x.shape, bound.shape)
    return x.new_empty(shape, dtype=torch.result_type(x, bound))


@_lower_bound_backward.register_fake
def _(grad, x, bound):
    return grad.new_empty(torch.broadcast_shapes(grad.shape, x.shape, bound.shape))


def _save_inputs(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _lower_bound_grad(ctx, grad):
    x, bound = ctx.saved_tensors
    return _lower_bound_backward(grad, x, bound), None


lower_bound.register_autograd(_lower_bound_grad, setup_context=_save_inputs)


def _batch_first(in_dims, *tensors) -> list[torch.Tensor]:
    """The operands of a batched elementwise op with the vmap axis first and as many dimensions
    each, so that they broadcast as their unbatched samples do (aligned on the right)."""
    ndim = 1 + max(t.dim() - (d is not None) for t, d in zip(tensors, in_dims, strict=True))
    out = []
    for t, d in zip(tensors, in_dims, strict=True):
        t = t.unsqueeze(0) if d is None else t.movedim(d, 0)
        out.append(t.reshape(t.shape[0], *([1] * (ndim - t.dim())), *t.shape[1:]))
    return out


def _batched_lower_bound(info, in_dims, x, bound):
    return lower_bound(*_batch_first(in_dims, x, bound)), 0


def _batched_lower_bound_backward(info, in_dims, grad, x, bound):
    return _lower_bound_backward(*_batch_first(in_dims, grad, x, bound)), 0


lower_bound.register_vmap(_batched_lower_bound)
_lower_bound_backward.register_vmap(_batched_lower_bound_backward)


def _lower_bound_forward(self, x):
    return lower_bound(x, self.bound)


def vmappable(template: nn.Module) -> list[str]:
    """Rewire ``template``'s CompressAI layers for ``functional_call`` under ``vmap`` and return
    the names of its masked convolutions. ``MaskedConv2d`` multiplies its weight by its mask in
    place at every call; the fused step masks the stacked weights itself before each forward
    (:func:`~gwnlib.model.entropy.mask_weights`: same values, same gradients), and the template's
    layers become plain convolutions. CompressAI's lower bounds become :func:`lower_bound`."""
    masked = masked_convolutions(template)
    for layer in masked.values():
        layer.forward = types.MethodType(nn.Conv2d.forward, layer)
    for module in template.modules():
        if isinstance(module, LowerBound):
            module.forward = types.MethodType(_lower_bound_forward, module)
    return list(masked)
