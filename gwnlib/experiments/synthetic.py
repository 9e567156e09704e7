"""The synthetic Gray-Wyner source as an experiment: two linear regression tasks on the two
halves of a sample (paper Sec. 4.1, appendix D.3; chapter "The synthetic transmit-receive
study")."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import torch

from gwnlib.experiments.base import Experiment
from gwnlib.experiments.config import check_split, derive_seed
from gwnlib.model.codecs import GrayWynerCodec, build
from gwnlib.model.heads import regression_head
from gwnlib.model.loss import GrayWynerLoss, rmse


class SyntheticExperiment(Experiment, datasets=("synthetic",)):
    """Pixel-shuffle codecs with linear regression heads; ``train_steps`` fresh batches per
    epoch from the source, a pure function of (seed, split, epoch)."""

    def codec(self) -> GrayWynerCodec:
        c = self.config
        torch.manual_seed(derive_seed(c.seed, "init"))
        heads = (regression_head(2, 1), regression_head(2, 1))
        return build(c.codec, in_channels=2, latent_channels=c.latent_channels,
                     transform=c.transform, heads=heads)  # fmt: skip

    def loss(self) -> GrayWynerLoss:
        c = self.config
        distortions = (rmse, rmse)  # D.3: RMSE over the batch, as the authors compute it
        return GrayWynerLoss(beta=c.beta, eta=c.eta, gamma=c.gamma, distortions=distortions)

    def steps(self, split: str) -> int:
        """Batches per pass over ``split`` (train: micro-batches = steps x accumulate)."""
        c = self.config
        check_split(split)
        steps = {"train": c.train_steps, "val": c.val_steps, "test": c.test_steps}[split]
        return steps * (c.accumulate if split == "train" else 1)

    def batches(self, split: str, epoch: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
        """``(x, t1, t2)`` batches of ``split`` at ``epoch``; validation and test batches are
        the same at every epoch."""
        c = self.config
        check_split(split)
        epoch = epoch if split == "train" else 0
        source = _synthetic_source(c.side, str(self.device))
        stream = source.batches(c.batch_size, seed=derive_seed(c.seed, split, epoch))
        for _ in range(self.steps(split)):
            yield next(stream)


@functools.lru_cache(maxsize=4)
def _synthetic_source(side: int, device: str):
    from gwnlib.data.synthetic import SyntheticGrayWyner

    return SyntheticGrayWyner(side=side, device=device)
