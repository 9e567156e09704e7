"""The Gray-Wyner Lagrangian (paper Eq. 12) with the alignment term of Eq. 15.

    L = eta * (beta * r0 + r1 + r2) + d1 + d2 + gamma * aux

This is Eq. 12 divided by lambda (lambda_1 = lambda_2 = lambda, paper D.2) with eta = 1 / lambda:
the paper's tables list eta, and the authors' code calls the same number ``alpha``
(``alpha * (beta * r0 + r1 + r2) + d1 + d2``). beta prices the common channel: 1 optimises the
transmit rate, 2 the receive rate (Sec. 3.2). Codecs without Y0 (Independent) or without private
channels (Joint) simply have those rates at zero.

Leaving the alignment term ``gamma * aux`` (Eq. 15) outside the eta scaling is a choice, and the
paper allows two readings. Appendix D.2 scales "the optimization objective L" by eta. Read as
Eq. 12's L, that is the loss above, and it is what the authors' code does
(``alpha * (beta * r0 + r1 + r2) + d1 + d2 + aux``). Read as the objective actually optimised,
L_aug of Eq. 15, the alignment term would be scaled too (``eta * gamma * aux``). We follow the
code. Chapter "Training and sweeps" (Sec. 1) states the choice.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def rmse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Root mean squared error over the whole batch (as the authors compute it; paper D.3)."""
    return torch.sqrt(torch.mean((prediction - target) ** 2))


class GrayWynerLoss(nn.Module):
    """``GrayWynerLoss(beta, eta, gamma=1)(output, z1, z2)`` -> dict with ``loss`` and its terms.

    ``distortions`` are the two task losses d1, d2 (default: RMSE for both, the synthetic tasks);
    pass cross-entropy for classifiers. ``output`` is a codec's forward dict.
    """

    def __init__(
        self,
        beta: float,
        eta: float,
        gamma: float = 1.0,
        distortions: tuple[Callable, Callable] = (rmse, rmse),
    ):
        super().__init__()
        for name, value in (("beta", beta), ("eta", eta)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0; got {value!r}")
        if not gamma >= 0:
            raise ValueError(f"gamma must be >= 0; got {gamma!r}")
        self.beta, self.eta, self.gamma = float(beta), float(eta), float(gamma)
        self.distortions = distortions

    def forward(self, output: dict, z1: torch.Tensor, z2: torch.Tensor) -> dict:
        return lagrangian(output, z1, z2, self.beta, self.eta, self.gamma, self.distortions)


def lagrangian(output: dict, z1, z2, beta, eta, gamma, distortions) -> dict:
    """The terms of Eq. 12 + Eq. 15 for a codec's forward dict (what :class:`GrayWynerLoss`
    computes). ``beta`` and ``eta`` may be tensors: the fused sweeps of
    :mod:`gwnlib.training.fused` pass one value per point under ``torch.func.vmap``."""
    # Distortions in float32 even when the decoders ran under bfloat16 autocast.
    d1 = distortions[0](output["z1_hat"].float(), z1)
    d2 = distortions[1](output["z2_hat"].float(), z2)
    return combine(output, d1, d2, beta, eta, gamma)


def combine(output: dict, d1, d2, beta, eta, gamma) -> dict:
    """Eq. 12 + Eq. 15 from a forward dict's rates and alignment term and the two task
    distortions: ``loss = eta * (beta * r0 + r1 + r2) + d1 + d2 + gamma * aux``, with its terms.
    Losses with more terms (the vision tasks' reconstruction) add them to this one."""
    rates = output["rates"]
    zero = output["z1_hat"].new_zeros(())
    r0, r1, r2 = (rates.get(k, zero) for k in ("r0", "r1", "r2"))
    rate = beta * r0 + r1 + r2
    aux = output["aux"].float()
    loss = eta * rate + d1 + d2 + gamma * aux
    return {"loss": loss, "rate": rate, "d1": d1, "d2": d2, "aux": aux}
