"""The codec and loss of the vision tasks: decoders that synthesise images for frozen task
models, rates per valid pixel and the reconstruction term (paper Sec. 4.3, appendix D.5; chapter
"Vision tasks"). The experiments that train them are :mod:`gwnlib.experiments.images`.
"""

from __future__ import annotations

import torch
from torch import nn

from gwnlib.model.codecs import GrayWynerCodec
from gwnlib.model.entropy import bits
from gwnlib.model.loss import combine, rmse


class VisionCodec(GrayWynerCodec):
    """A :class:`~gwnlib.model.GrayWynerCodec` whose decoders synthesise images for frozen task
    models. ``forward(x, mask=None)`` keeps the codec contract and adds:

    - rates in bits per *valid* pixel: with a padding ``mask`` (B, 1, H, W), the batch's bits
      divided by ``mask.sum()`` (D.5), else by B x H x W as for every codec;
    - ``x1_hat``, ``x2_hat``: the synthesised images (before the heads, i.e. the task inputs);
    - ``reconstruction``: the sum over both decoders of the RMSE between input and synthesised
      image, in 8-bit units, over valid pixels (Table 1's reconstruction loss);
    - ``mask``: the padding mask (None for unpadded batches).
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> dict:
        y, aux = self.encode(x)
        if mask is not None and (mask.shape[0] != x.shape[0] or mask.shape[-2:] != x.shape[-2:]):
            raise ValueError(
                f"mask must be (B, 1, H, W) like x {tuple(x.shape)}; got {tuple(mask.shape)}"
            )
        pixels = mask.sum() if mask is not None else x.shape[0] * x.shape[-2] * x.shape[-1]
        out = self.rate_terms(x, y, lambda likelihood: bits(likelihood).sum() / pixels)
        images = [self.decoders[t - 1](self.decoder_input(y, t)) for t in (1, 2)]
        out["x1_hat"], out["x2_hat"] = images
        out["z1_hat"], out["z2_hat"] = (
            head(image) for head, image in zip(self.heads, images, strict=True)
        )
        out["aux"] = aux
        out["reconstruction"] = sum(_masked_rmse(255 * image.float(), 255 * x.float(), mask)
                                    for image in images)  # fmt: skip
        out["mask"] = mask
        return out


def _masked_rmse(prediction: torch.Tensor, target: torch.Tensor, mask) -> torch.Tensor:
    if mask is None:
        return rmse(prediction, target)
    weight = mask.to(prediction.dtype).expand_as(prediction)
    return torch.sqrt(((prediction - target) ** 2 * weight).sum() / weight.sum())


class VisionLoss(nn.Module):
    """Eq. 12 with frozen task models:
    ``eta * (beta * r0 + r1 + r2) + d1 + d2 + gamma * aux + reconstruction * rec``.

    ``distortions``: two callables ``d(output, target) -> scalar`` (see
    :func:`task_distortions`). Returns the terms like :class:`gwnlib.model.loss.GrayWynerLoss`, plus
    ``reconstruction``.
    """

    def __init__(self, beta, eta, gamma, reconstruction, distortions):
        super().__init__()
        self.beta, self.eta, self.gamma = float(beta), float(eta), float(gamma)
        self.reconstruction = float(reconstruction)
        self.distortions = distortions

    def forward(self, output: dict, t1, t2) -> dict:
        d1 = self.distortions[0](output, 1, t1).float()
        d2 = self.distortions[1](output, 2, t2).float()
        terms = combine(output, d1, d2, self.beta, self.eta, self.gamma)
        rec = output["reconstruction"].float()
        terms["loss"] = terms["loss"] + self.reconstruction * rec
        terms["reconstruction"] = rec
        return terms


class DenseDistortion:
    """A dense task's loss (:meth:`gwnlib.vision.dense.DenseTaskModel.loss_from_outputs`:
    cross-entropy x 19 for segmentation, masked RMSE in disparity pixels for depth, as the
    authors) of the codec's full-resolution prediction ``z{task}_hat``."""

    def __init__(self, model):
        self.model = model

    def __call__(self, output: dict, task: int, target) -> torch.Tensor:
        return self.model.loss_from_outputs(output[f"z{task}_hat"].float(), target)


class DetectionDistortion:
    """A frozen torchvision detector's training loss (the sum of its loss dict, as the
    authors) on the decoded images, each cropped to its valid pixels."""

    def __init__(self, model):
        self.model = model

    def __call__(self, output: dict, task: int, targets: list[dict]) -> torch.Tensor:
        images = output[f"z{task}_hat"]
        return self.model.loss(images, targets, sizes=valid_sizes(output["mask"], images))


def valid_sizes(mask: torch.Tensor | None, images: torch.Tensor) -> list[tuple[int, int]]:
    """The (height, width) of each image's valid top-left region in a padded batch."""
    if mask is None:
        return [tuple(images.shape[-2:])] * len(images)
    return [(int(m[0].any(1).sum()), int(m[0].any(0).sum())) for m in mask]
