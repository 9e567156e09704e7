"""Coloured MNIST as an experiment: a digit and a colour classifier on decoded images (paper
Sec. 4.2, appendix D.4; chapter "Coloured MNIST")."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from gwnlib.experiments.base import Experiment, top1_accuracies
from gwnlib.experiments.config import check_split, derive_seed
from gwnlib.model.codecs import GrayWynerCodec, build
from gwnlib.model.heads import classifier_head
from gwnlib.model.loss import GrayWynerLoss
from gwnlib.runtime import data_dir


class ColoredMnistExperiment(Experiment, datasets=("colored_mnist",)):
    """Strided-convolution codecs with the authors' classifier heads; the colours of the
    training images are drawn afresh each epoch, the order shuffled per (seed, epoch)."""

    def codec(self) -> GrayWynerCodec:
        c = self.config
        torch.manual_seed(derive_seed(c.seed, "init"))
        heads = (classifier_head(3 * 32 * 32, 10), classifier_head(3 * 32 * 32, 10))
        return build(c.codec, in_channels=3, latent_channels=c.latent_channels,
                     transform=c.transform, features=3, heads=heads)  # fmt: skip

    def loss(self) -> GrayWynerLoss:
        c = self.config
        distortions = (F.cross_entropy, F.cross_entropy)  # D.4: digit and colour
        return GrayWynerLoss(beta=c.beta, eta=c.eta, gamma=c.gamma, distortions=distortions)

    def task_metrics(self, output: dict, t1: torch.Tensor, t2: torch.Tensor) -> dict:
        """Top-1 accuracies ``acc1``, ``acc2`` (the paper's 1/D)."""
        return top1_accuracies(output, t1, t2)

    def steps(self, split: str) -> int:
        c = self.config
        check_split(split)
        size = self._split_size(split)
        n = size if size is not None else len(_mnist_dataset(split, c.pmf, c.seed, c.val_size))
        return -(-n // c.batch_size)

    def batches(self, split: str, epoch: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
        """``(x, t1, t2)`` batches of ``split`` at ``epoch``; validation and test batches are
        the same at every epoch."""
        check_split(split)
        epoch = epoch if split == "train" else 0
        yield from self._shuffled(self._mnist(split, epoch), split, epoch)

    def _mnist(self, split: str, epoch: int = 0):
        c = self.config
        return _mnist_tensors(split, c.pmf, c.seed, c.val_size, self._split_size(split), epoch)


def _mnist_tensors(split, pmf, seed, val_size, size, epoch):
    """(images, digits, colours) of a coloured-MNIST split, the first ``size`` items (all when
    None). The datasets are cached per process; the colours are drawn per epoch."""
    dataset = _mnist_dataset(split, pmf, seed, val_size)
    if size is not None and size > len(dataset):
        raise ValueError(f"{split}_size must be at most {len(dataset)}; got {size}")
    return dataset.tensors(epoch, count=size)


def _mnist_dataset(split, pmf, seed, val_size):
    # The data root is part of the cache key: a changed GWN_DATA_DIR is read afresh.
    return _mnist_dataset_at(split, pmf, seed, val_size, data_dir())


@functools.lru_cache(maxsize=6)
def _mnist_dataset_at(split, pmf, seed, val_size, root):
    from gwnlib.data.colored_mnist import ColoredMNIST

    return ColoredMNIST(split=split, pmf=pmf, seed=seed, val_size=val_size, root=root)
