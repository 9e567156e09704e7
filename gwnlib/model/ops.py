"""Operations on the latents of the learnable Gray-Wyner network (paper Sec. 2.1 and 3.3).

- :func:`quantize`: rounding with a straight-through gradient, the q of Eq. 13 (Theis et al. 2017).
- :func:`merge_common`: the element-wise merge of the two common candidates (Eq. 14), and
  :func:`alignment_loss`, the auxiliary term that pulls them together (Eq. 15).
- :func:`transmit_rate`, :func:`receive_rate`: R_t and R_r of three channel rates (Sec. 2.1),
  for numbers and tensors alike; every R_t and R_r in gwnlib is computed by these two.
"""

from __future__ import annotations

import torch

from gwnlib.theory.gray_wyner import receive_rate, transmit_rate

__all__ = [
    "alignment_loss",
    "merge_common",
    "quantize",
    "receive_rate",
    "round_half_toward_zero",
    "transmit_rate",
]


def round_half_toward_zero(y: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer, ties toward zero, as the authors do (``torch.round`` rounds
    ties to even). ``+ 0.0`` turns the -0.0 that ``sign * ceil`` gives for small negatives into
    0.0."""
    return torch.sign(y) * torch.ceil(torch.abs(y) - 0.5) + 0.0


def quantize(y: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer (ties toward zero) with a straight-through gradient
    (Theis et al. 2017; the paper's q in Eq. 13). No noise, in training as at test time.

    Written ``y + (q - y).detach()`` rather than as an ``autograd.Function``: the values are
    exactly ``q`` (``q - y`` is exact in floating point, by Sterbenz's lemma, since q and y are
    within a factor 2 of each other or q = 0, so adding y back gives q), the gradient is the
    identity, and plain operations compose with ``torch.func.vmap`` *and* ``torch.compile``
    together, which silently drops a custom Function's backward (pytorch/pytorch#129845).
    """
    return y + (round_half_toward_zero(y) - y).detach()


def merge_common(candidate1: torch.Tensor, candidate2: torch.Tensor) -> torch.Tensor:
    """Eq. 14: [Y0]_i = (a_i + b_i) / 2 where the quantised candidates agree, else 0.

    Written as an average, so that where they agree the gradient flows to *both* encoders (half
    each); where they disagree no gradient flows through Y0 at all.
    """
    if candidate1.shape != candidate2.shape:
        raise ValueError(f"candidates differ in shape: {candidate1.shape} vs {candidate2.shape}")
    agree = candidate1 == candidate2
    return torch.where(agree, 0.5 * (candidate1 + candidate2), torch.zeros_like(candidate1))


def alignment_loss(candidate1: torch.Tensor, candidate2: torch.Tensor) -> torch.Tensor:
    """Eq. 15's auxiliary term without gamma: E[ ||Y0^(1) - Y0^(2)||^2 / |Y0| ], the mean squared
    difference of the two quantised common candidates (averaged over the batch)."""
    return torch.mean((candidate1 - candidate2) ** 2)
