"""Seeded augmentation of the vision datasets (paper Table 1: horizontal flips, colour jitter).

Each item's random draws come from its own generator, seeded by (run seed, epoch, index)
(:func:`augmentation_generator`), so a run's augmentations do not depend on worker processes or on
the order items are read in. :class:`AugmentedSplit` is what Cityscapes and COCO 2017 share: a
split of a dataset on disk, its seed, and the epoch of its draws. Chapter "Vision tasks:
Cityscapes and COCO 2017" trains on them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from gwnlib.runtime import check_choice, check_epoch, check_seed

__all__ = ["AugmentedSplit", "augmentation_generator"]


def augmentation_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The torch generator of item ``index``'s augmentation at ``epoch`` for a run's ``seed``:
    seeded from ``numpy.random.SeedSequence([seed, epoch, index])``, so each draw depends on
    those three numbers only (not on worker processes or the order items are read in)."""
    state = np.random.SeedSequence([int(seed), int(epoch), int(index)]).generate_state(1, np.uint64)
    return torch.Generator().manual_seed(int(state[0]))


class AugmentedSplit(torch.utils.data.Dataset):
    """A split (one of the subclass's ``SPLITS``) of a dataset in ``root`` (default:
    ``default_root()``), augmented when ``augment`` with draws from :meth:`generator`; call
    :meth:`set_epoch` at each epoch for fresh draws. Subclasses load the files and define
    ``__len__`` and ``__getitem__``."""

    SPLITS: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        root: str | Path | None,
        split: str,
        augment: bool,
        seed: int,
        default_root: Callable[[], Path],
    ) -> None:
        check_choice("split", split, self.SPLITS)
        check_seed(seed)
        self.root = Path(root).expanduser().resolve() if root is not None else default_root()
        self.split = split
        self.augment = bool(augment)
        self.seed = int(seed)
        self.epoch = 0

    def generator(self, index: int) -> torch.Generator:
        """The generator of item ``index``'s augmentation at the current epoch."""
        return augmentation_generator(self.seed, self.epoch, index)

    def set_epoch(self, epoch: int) -> None:
        """Use the augmentations of ``epoch`` (an int >= 0) from now on."""
        self.epoch = check_epoch(epoch)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, "
            f"augment={self.augment}, seed={self.seed}; {len(self)} images)"
        )
