"""The :class:`Experiment` contract and its registry: one subclass per dataset, registered by
naming its datasets, and ``Experiment(config)`` builds the one of ``config.dataset``.

Adding a dataset is one module here with one subclass (``class MyExperiment(Experiment,
datasets=("mine",))``) imported by the package, plus its presets in :mod:`.config`.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterator

import torch

from gwnlib.experiments.config import RunConfig, check_split, derive_seed
from gwnlib.runtime import data_dir

#: The rate and distortion terms logged for every epoch and reported at the end, for two tasks.
TERMS = ("loss", "r0", "r1", "r2", "rate_transmit", "rate_receive", "d1", "d2", "aux")

#: dataset name -> its :class:`Experiment` subclass (filled by ``__init_subclass__``).
EXPERIMENTS: dict[str, type[Experiment]] = {}


class Experiment:
    """The objects a run needs, built from its :class:`~gwnlib.experiments.RunConfig` on
    ``device``.

    ``codec()``: the codec with its heads (seeded); ``loss()``: Eq. 12 with the task
    distortions; ``batches(split, epoch)``: ``(x, t1, t2)`` batches on ``device`` (``(x, t1,
    ..., tK)`` for K tasks); ``steps(split)``: how many batches ``batches`` yields;
    ``task_metrics(output, *targets)``: extra quality measures (top-1 accuracies for
    classification); ``quality(codec, split)``: whole-split quality (mIoU, mAP); ``terms``: the
    rate and distortion terms the training loop logs. ``Experiment(config)`` returns the
    subclass registered for ``config.dataset``.
    """

    terms: tuple[str, ...] = TERMS

    def __init_subclass__(cls, datasets: tuple[str, ...] = (), **kwargs):
        super().__init_subclass__(**kwargs)
        for dataset in datasets:
            if dataset in EXPERIMENTS:
                raise ValueError(f"dataset {dataset!r} already has {EXPERIMENTS[dataset]}")
            EXPERIMENTS[dataset] = cls

    def __new__(cls, config: RunConfig, device: str | torch.device = "cpu"):
        if cls is Experiment:
            if config.dataset not in EXPERIMENTS:
                known = ", ".join(EXPERIMENTS)
                raise ValueError(f"dataset must be one of {known}; got {config.dataset!r}")
            cls = EXPERIMENTS[config.dataset]
        return super().__new__(cls)

    def __init__(self, config: RunConfig, device: str | torch.device = "cpu"):
        self.config = config
        self.device = torch.device(device)

    # -- model -------------------------------------------------------------------------------
    def codec(self):
        raise NotImplementedError

    def loss(self):
        raise NotImplementedError

    def task_metrics(self, output: dict, *targets) -> dict:
        """Extra per-batch measures (none by default)."""
        return {}

    def quality(self, codec, split: str = "test") -> dict:
        """Task quality over a whole split where it is not a mean of batch values (mIoU, mAP);
        none by default."""
        return {}

    # -- data --------------------------------------------------------------------------------
    def steps(self, split: str) -> int:
        raise NotImplementedError

    def batches(self, split: str, epoch: int = 0) -> Iterator[tuple]:
        raise NotImplementedError

    def _shuffled(self, tensors, split: str, epoch: int):
        """Batches of ``config.batch_size`` items of ``tensors`` (equal-length tensors, one item
        per row) on ``device``, one tuple per batch: in an order shuffled per (seed, epoch) for
        the training split, in order for the others."""
        c = self.config
        n = len(tensors[0])
        if split == "train":
            generator = torch.Generator().manual_seed(derive_seed(c.seed, "shuffle", epoch))
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.arange(n)
        for start in range(0, n, c.batch_size):
            index = order[start : start + c.batch_size]
            yield tuple(t[index].to(self.device, non_blocking=True) for t in tensors)

    def _split_size(self, split: str) -> int | None:
        c = self.config
        return {"train": c.train_size, "val": c.val_size, "test": c.test_size}[split]


def top1_accuracies(output: dict, *targets: torch.Tensor) -> dict:
    """Top-1 accuracy ``acc{i}`` of each task's ``z{i}_hat`` against its targets (the paper's
    1/D for classification)."""
    return {f"acc{i}": (output[f"z{i}_hat"].argmax(1) == t).float().mean()
            for i, t in enumerate(targets, start=1)}  # fmt: skip


class LawSplitsExperiment(Experiment):
    """An experiment whose splits are datasets of one class, ``dataset_class`` ("module.Class"),
    built from (split, law, seed, val_size, data root) and cached per process, each with a
    ``tensors(epoch, count)`` method: the coloured-MNIST sources whose labels follow a ``law``
    (three tasks, two views)."""

    dataset_class: str

    def dataset(self, split: str):
        """The dataset of ``split`` under this run's law, seed and validation size."""
        c = self.config
        return _law_dataset(self.dataset_class, split, c.law, c.seed, c.val_size, data_dir())

    def steps(self, split: str) -> int:
        check_split(split)
        size = self._split_size(split)
        n = size if size is not None else len(self.dataset(split))
        return -(-n // self.config.batch_size)

    def batches(self, split: str, epoch: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
        """``(x, *targets)`` batches of ``split`` at ``epoch``, as the dataset's ``tensors`` give
        them; validation and test batches are the same at every epoch."""
        check_split(split)
        epoch = epoch if split == "train" else 0
        dataset = self.dataset(split)
        size = self._split_size(split)
        if size is not None and size > len(dataset):
            raise ValueError(f"{split}_size must be at most {len(dataset)}; got {size}")
        yield from self._shuffled(dataset.tensors(epoch, count=size), split, epoch)


# Every split of every law and seed (0-2) of both sources: a sweep alternates them. The data
# root is part of the key, so a changed GWN_DATA_DIR is read afresh.
@functools.lru_cache(maxsize=48)
def _law_dataset(path, split, law, seed, val_size, root):
    module, name = path.rsplit(".", 1)
    dataset_class = getattr(importlib.import_module(module), name)
    return dataset_class(split=split, law=law, seed=seed, val_size=val_size, root=root)
