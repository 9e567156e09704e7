"""Three-task coloured MNIST as an experiment: digit, stroke-colour and background-colour
classifiers on decoded images, coded by the K-task codecs of :mod:`gwnlib.model.lattice`
(chapter "Beyond two tasks"; not in the paper).

The transforms are narrower than the paper's (hidden widths 16, 32, 64 with one residual block
per stage, classifier heads with 256 hidden units): three encoders and three decoders of the
paper's size train at about 30 images/s on one CPU thread, these at about 150-280, which is what
lets a whole sweep run on a laptop. The codecs compared in the chapter all share this size.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from gwnlib.experiments.base import Experiment
from gwnlib.experiments.config import check_split, derive_seed
from gwnlib.model.heads import classifier_head
from gwnlib.model.lattice import LatticeCodec, LatticeLoss, build_lattice, choose_streams, rate_key
from gwnlib.runtime import data_dir
from gwnlib.theory.multiterminal import subsets

#: The three tasks, in order: task 1 the digit, 2 the stroke colour, 3 the background colour.
TASKS = ("digit", "colour", "background")
#: The narrow transforms and heads of this experiment (see the module docstring).
WIDTHS, BLOCKS, HIDDEN = (16, 32, 64), 1, 256
#: The dynamic codec keeps a stream when it carries more than this many bits (choose_streams).
THRESHOLD = 0.05


class TripleMnistExperiment(Experiment, datasets=("triple_mnist",)):
    """Three classifiers (digit, colour, background) on the images of
    :class:`~gwnlib.data.triple_mnist.TripleColoredMNIST` under ``config.law``; the colours of
    the training images are drawn afresh each epoch, the order shuffled per (seed, epoch)."""

    terms = ("loss", *(rate_key(s) for s in subsets(3)), "rate_transmit", "rate_receive",
             "d1", "d2", "d3", "aux")  # fmt: skip

    def streams(self):
        """The dynamic codec's streams: :func:`~gwnlib.model.lattice.choose_streams` on the
        empirical table of the training targets (epoch 0); None for the other codecs."""
        if self.config.codec != "dynamic":
            return None
        return choose_streams(self.target_table(), THRESHOLD)

    def target_table(self) -> np.ndarray:
        """The empirical joint table [digit, colour, background] of the training split's
        targets at epoch 0 (its first ``train_size`` items)."""
        c = self.config
        dataset = _dataset("train", c.law, c.seed, c.val_size)
        n = c.train_size if c.train_size is not None else len(dataset)
        colours, backgrounds = dataset.attributes(0)
        table = np.zeros((10, 10, 10))
        np.add.at(table, (dataset.digits[:n].numpy(), colours[:n].numpy(),
                          backgrounds[:n].numpy()), 1.0)  # fmt: skip
        return table / table.sum()

    def codec(self) -> LatticeCodec:
        c = self.config
        streams = self.streams()
        torch.manual_seed(derive_seed(c.seed, "init"))
        heads = [classifier_head(3 * 32 * 32, 10, HIDDEN) for _ in TASKS]
        return build_lattice(c.codec, tasks=3, in_channels=3, latent_channels=c.latent_channels,
                             transform=c.transform, features=3, heads=heads, streams=streams,
                             widths=WIDTHS, blocks=BLOCKS)  # fmt: skip

    def loss(self) -> LatticeLoss:
        c = self.config
        return LatticeLoss(
            beta=c.beta, eta=c.eta, gamma=c.gamma, distortions=(F.cross_entropy,) * 3
        )

    def task_metrics(self, output: dict, *targets) -> dict:
        """Top-1 accuracies ``acc1``, ``acc2``, ``acc3``."""
        return {f"acc{i}": (output[f"z{i}_hat"].argmax(1) == t).float().mean()
                for i, t in enumerate(targets, start=1)}  # fmt: skip

    def steps(self, split: str) -> int:
        c = self.config
        check_split(split)
        size = self._split_size(split)
        n = size if size is not None else len(_dataset(split, c.law, c.seed, c.val_size))
        return -(-n // c.batch_size)

    def batches(self, split: str, epoch: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
        """``(x, digit, colour, background)`` batches of ``split`` at ``epoch``; validation and
        test batches are the same at every epoch."""
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


@functools.lru_cache(maxsize=12)  # every split of every law: a sweep alternates laws
def _dataset_at(split, law, seed, val_size, root):
    from gwnlib.data.triple_mnist import TripleColoredMNIST

    return TripleColoredMNIST(split=split, law=law, seed=seed, val_size=val_size, root=root)
