"""Three-task coloured MNIST as an experiment: digit, stroke-colour and background-colour
classifiers on decoded images, coded by the K-task codecs of :mod:`gwnlib.model.lattice`
(chapter "Beyond two tasks"; not in the paper).

The transforms are narrower than the paper's (hidden widths 16, 32, 64 with one residual block
per stage, classifier heads with 256 hidden units): three encoders and three decoders of the
paper's size train at about 30 images/s on one CPU thread, these at about 150-280, which is what
lets a whole sweep run on a laptop. The codecs compared in the chapter all share this size.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from gwnlib.experiments.base import LawSplitsExperiment, top1_accuracies
from gwnlib.experiments.config import derive_seed
from gwnlib.model.heads import classifier_head
from gwnlib.model.lattice import LatticeCodec, LatticeLoss, build_lattice, choose_streams, rate_key
from gwnlib.theory.multiterminal import subsets

#: The three tasks, in order: task 1 the digit, 2 the stroke colour, 3 the background colour.
TASKS = ("digit", "colour", "background")
#: The narrow transforms and heads of this experiment (see the module docstring).
WIDTHS, BLOCKS, HIDDEN = (16, 32, 64), 1, 256
#: The dynamic codec keeps a stream when it carries more than this many bits (choose_streams).
THRESHOLD = 0.05


class TripleMnistExperiment(LawSplitsExperiment, datasets=("triple_mnist",)):
    """Three classifiers (digit, colour, background) on the images of
    :class:`~gwnlib.data.triple_mnist.TripleColoredMNIST` under ``config.law``: batches ``(x,
    digit, colour, background)``; the colours of the training images are drawn afresh each
    epoch, the order shuffled per (seed, epoch)."""

    dataset_class = "gwnlib.data.triple_mnist.TripleColoredMNIST"

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
        dataset = self.dataset("train")
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
        return top1_accuracies(output, *targets)
