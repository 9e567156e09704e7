"""Two-view coloured MNIST as an experiment: each task classifies the colour of its own view, on
images decoded by a two-task codec (chapter "Two sources"; not in the paper).

The centralised codecs (``shared``, ``joint``, ``independent``, ...) see both views, the 6-channel
input; ``distributed`` gives encoder i view i only. All use the narrow transforms of the
three-task experiment (:data:`gwnlib.experiments.triple_mnist.WIDTHS`), which let a whole sweep
run on a laptop, and classifier heads on the 3-channel output of each decoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gwnlib.experiments.base import LawSplitsExperiment, top1_accuracies
from gwnlib.experiments.config import derive_seed
from gwnlib.experiments.triple_mnist import BLOCKS, HIDDEN, WIDTHS
from gwnlib.model.codecs import GrayWynerCodec, build
from gwnlib.model.heads import classifier_head
from gwnlib.model.loss import GrayWynerLoss


class TwoViewsExperiment(LawSplitsExperiment, datasets=("two_views",)):
    """Two colour classifiers on the views of
    :class:`~gwnlib.data.two_views.TwoViewMNIST` under ``config.law``: batches ``(x, c1, c2)``,
    x the two views stacked [B, 6, 32, 32]; labels and partner images are drawn afresh each
    epoch, the order shuffled per (seed, epoch)."""

    dataset_class = "gwnlib.data.two_views.TwoViewMNIST"

    def codec(self) -> GrayWynerCodec:
        c = self.config
        torch.manual_seed(derive_seed(c.seed, "init"))
        heads = tuple(classifier_head(3 * 32 * 32, 10, HIDDEN) for _ in range(2))
        return build(c.codec, in_channels=6, latent_channels=c.latent_channels,
                     transform=c.transform, features=3, heads=heads, widths=WIDTHS,
                     blocks=BLOCKS)  # fmt: skip

    def loss(self) -> GrayWynerLoss:
        c = self.config
        return GrayWynerLoss(
            beta=c.beta, eta=c.eta, gamma=c.gamma, distortions=(F.cross_entropy,) * 2
        )

    def task_metrics(self, output: dict, t1: torch.Tensor, t2: torch.Tensor) -> dict:
        """Top-1 accuracies ``acc1``, ``acc2`` of the two colour classifiers."""
        return top1_accuracies(output, t1, t2)
