"""Two-view coloured MNIST as an experiment: each task classifies the colour of its own view, on
images decoded by a two-task codec (chapter "Two sources"; not in the paper).

The centralised codecs (``shared``, ``joint``, ``independent``, ...) see both views, the 6-channel
input; ``distributed`` gives encoder i view i only. All use the narrow transforms of the
three-task experiment (:data:`gwnlib.experiments.triple_mnist.WIDTHS`), which let a whole sweep
run on a laptop, and classifier heads on the 3-channel output of each decoder.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from gwnlib.experiments.base import Experiment
from gwnlib.experiments.config import check_split, derive_seed
from gwnlib.experiments.triple_mnist import BLOCKS, HIDDEN, WIDTHS
from gwnlib.model.codecs import GrayWynerCodec, build
from gwnlib.model.heads import classifier_head
from gwnlib.model.loss import GrayWynerLoss
from gwnlib.runtime import data_dir


class TwoViewsExperiment(Experiment, datasets=("two_views",)):
    """Two colour classifiers on the views of
    :class:`~gwnlib.data.two_views.TwoViewMNIST` under ``config.law``; labels and partner images
    are drawn afresh each epoch, the order shuffled per (seed, epoch)."""

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
        return {
            "acc1": (output["z1_hat"].argmax(1) == t1).float().mean(),
            "acc2": (output["z2_hat"].argmax(1) == t2).float().mean(),
        }

    def steps(self, split: str) -> int:
        c = self.config
        check_split(split)
        size = self._split_size(split)
        n = size if size is not None else len(_dataset(split, c.law, c.seed, c.val_size))
        return -(-n // c.batch_size)

    def batches(self, split: str, epoch: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
        """``(x, c1, c2)`` batches of ``split`` at ``epoch``, x the two views stacked [B, 6, 32,
        32]; validation and test batches are the same at every epoch."""
        c = self.config
        check_split(split)
        epoch = epoch if split == "train" else 0
        dataset = _dataset(split, c.law, c.seed, c.val_size)
        size = self._split_size(split)
        if size is not None and size > len(dataset):
            raise ValueError(f"{split}_size must be at most {len(dataset)}; got {size}")
        yield from self._shuffled(dataset.tensors(epoch, count=size), split, epoch)


def _dataset(split, law, seed, val_size):
    # The data root is part of the cache key: a changed GWN_DATA_DIR is read afresh.
    return _dataset_at(split, law, seed, val_size, data_dir())


@functools.lru_cache(maxsize=36)  # every split of every law and seed (0-2): a sweep alternates
def _dataset_at(split, law, seed, val_size, root):
    from gwnlib.data.two_views import TwoViewMNIST

    return TwoViewMNIST(split=split, law=law, seed=seed, val_size=val_size, root=root)
