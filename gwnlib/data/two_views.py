"""Two-view coloured MNIST: two digits, one per view, each in its own stroke colour, their labels
coupled by a law of :mod:`gwnlib.data.view_laws` (chapter "Two sources"; not in the paper).

In the paper's vision experiments both tasks read one image, and the synthetic source's two
halves both reach every encoder. Here the input is two physical sources: view 1 is an MNIST
image of digit D_1 in colour C_1, view 2 a second MNIST image, of digit D_2 in colour C_2 (drawn
independently of view 1's image given D_2, so only the labels couple the views), each
coloured as the paper's coloured MNIST (:func:`gwnlib.data.triple_mnist.colourise_on` on black,
bit for bit :func:`gwnlib.data.colored_mnist.colourise`). Task i reads its own view's colour. A
centralised encoder sees both views (the 6-channel image); a distributed encoder i sees only
channels [3(i - 1), 3i) (:class:`gwnlib.model.codecs.Distributed`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gwnlib.data.colored_mnist import SPLITS, MnistSplit, check_count, mnist_images
from gwnlib.data.triple_mnist import colourise_on
from gwnlib.data.view_laws import LAWS, sample_labels
from gwnlib.runtime import check_choice

__all__ = ["TwoViewMNIST"]


class TwoViewMNIST(MnistSplit):
    """Pairs of coloured MNIST digits whose labels follow a law P(C_1, D_2, C_2 | D_1).

    Items are ``(image, (c1, c2))``: ``image`` a float32 tensor [6, 32, 32] in [0, 1], view 1's
    RGB channels then view 2's; ``c1`` and ``c2`` the views' colours (Python ints indexing
    :data:`~gwnlib.data.colored_mnist.COLOURS`), the two tasks' targets. :meth:`labels` also
    gives the digits D_1, D_2.

    ``split``, ``seed``, ``val_size``, ``root`` and ``download`` are those of
    :class:`~gwnlib.data.colored_mnist.ColoredMNIST`; ``law``: one of
    :data:`~gwnlib.data.view_laws.LAWS`. Item i's view 1 is the split's i-th image; its labels
    are :func:`~gwnlib.data.view_laws.sample_labels` for (``seed``, epoch, i), and its view 2 is
    an image of digit D_2 from the same split, picked uniformly by a second seeded draw
    (``default_rng([seed, epoch, stream, 1])``). The training split redraws both at
    :meth:`set_epoch`; val and test keep epoch 0's.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        law: str = "same",
        seed: int = 0,
        val_size: int = 10_000,
        download: bool = True,
    ) -> None:
        check_choice("split", split, SPLITS)
        self.law = check_choice("law", law, LAWS)
        self._by_digit = None
        super().__init__(root, split, seed, val_size, download, mnist_images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, tuple[int, int]]:
        c1, _, c2, partner = (int(v) for v in self._drawn[:, index])
        grey = self._images[self.indices[[index, partner]]]
        image = colourise_on(grey, np.array([c1, c2]), 0).reshape(6, 32, 32)
        return image, (c1, c2)

    def labels(self, epoch: int | None = None) -> dict[str, torch.Tensor]:
        """LongTensors [N] ``d1``, ``c1``, ``d2``, ``c2`` and ``partner`` (the item whose image
        view 2 shows) at ``epoch`` (default: the current one; val and test give epoch 0's)."""
        drawn = self._drawn_at(epoch)
        c1, d2, c2, partner = drawn
        return {"d1": self.digits.clone(), "c1": c1, "d2": d2, "c2": c2, "partner": partner}

    def tensors(
        self, epoch: int | None = None, count: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The split at once: (images [N, 6, 32, 32] float32, c1 [N], c2 [N]); ``epoch`` as in
        :meth:`labels`, ``count`` the first ``count`` items (all when None). Item i equals
        ``self[i]`` at that epoch."""
        n = check_count(count, len(self))
        c1, _, c2, partner = (v[:n].numpy() for v in self._drawn_at(epoch))
        grey = self._images[self.indices[np.concatenate([np.arange(n), partner])]]
        views = colourise_on(grey, np.concatenate([c1, c2]), 0)
        images = torch.cat([views[:n], views[n:]], dim=1)
        return images, torch.from_numpy(c1.copy()), torch.from_numpy(c2.copy())

    def __repr__(self) -> str:
        return (
            f"TwoViewMNIST(split={self.split!r}, law={self.law!r}, seed={self.seed}, "
            f"epoch={self.epoch}, items={len(self)}, root={str(self.root)!r})"
        )

    def _draw(self, epoch: int) -> torch.Tensor:
        """LongTensor [4, N]: c1, d2, c2 and the partner item of ``epoch``."""
        stream = SPLITS.index(self.split)
        digits = self.digits.numpy()
        c1, d2, c2 = sample_labels(digits, self.law, self.seed, epoch, stream)
        if self._by_digit is None:
            self._by_digit = [np.flatnonzero(digits == d) for d in range(10)]
        counts = np.array([len(items) for items in self._by_digit])
        missing = [int(d) for d in np.unique(d2) if counts[d] == 0]
        if missing:
            raise ValueError(
                f"split {self.split!r} ({len(digits)} items) has no image of digit(s) {missing}, "
                "which view 2 needs under this law: use a larger val_size for the val split"
            )
        uniforms = np.random.default_rng([self.seed, epoch, stream, 1]).random(len(digits))
        picks = np.floor(uniforms * counts[d2]).astype(np.int64)
        partner = np.array([self._by_digit[d][k] for d, k in zip(d2, picks, strict=True)],
                           dtype=np.int64)  # fmt: skip
        return torch.from_numpy(np.stack([c1, d2, c2, partner]))
