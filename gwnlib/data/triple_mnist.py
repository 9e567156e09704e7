"""Three-task coloured MNIST: a digit painted in a stroke colour on a background colour, the pair
of colours drawn from a law P(colour, background | digit) (chapter "Beyond two tasks").

The paper's coloured MNIST (Sec. 4.2, appendix D.4; :mod:`gwnlib.data.colored_mnist`) has two
tasks, digit and colour. This source adds a third visible attribute, the background colour, so
that the common information of three tasks can be set exactly: shared by all three, shared only
by pairs, or not shared (:mod:`gwnlib.data.triple_laws`).

Images extend the authors' recipe: PIL's ``ImageOps.colorize(img, black=background,
white=colour)`` then the same bicubic resize from 28x28 to 32x32, as an RGB float tensor in
[0, 1]. Splits, seeds and per-(seed, item, epoch) draws are those of
:class:`~gwnlib.data.colored_mnist.ColoredMNIST`, through the same functions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import ImageColor

from gwnlib.data.colored_mnist import (
    COLOUR_RGB,
    SPLITS,
    MnistSplit,
    check_count,
    colorize_table,
    mnist_images,
    resize_rgb,
)
from gwnlib.data.triple_laws import LAWS, sample_attributes
from gwnlib.runtime import check_choice

__all__ = [
    "BACKGROUNDS",
    "BACKGROUND_RGB",
    "TripleColoredMNIST",
    "colourise_on",
]

#: The ten background colours, as PIL colour names. Chosen among PIL's named colours so that
#: every background is at least 127 (of 255, Euclidean RGB distance) from every stroke colour
#: of :data:`~gwnlib.data.colored_mnist.COLOURS` and from every other background: the book's
#: two-task images already have stroke-to-background contrasts down to 128 (green or purple
#: on black). The "pairwise" law uses only the first four.
BACKGROUNDS = (
    "black",
    "navy",
    "maroon",
    "teal",
    "olive",
    "white",
    "chartreuse",
    "springgreen",
    "skyblue",
    "violet",
)
#: RGB of each background of :data:`BACKGROUNDS`, exactly ``PIL.ImageColor.getrgb(name)``;
#: shape [10, 3].
BACKGROUND_RGB = np.array([ImageColor.getrgb(name) for name in BACKGROUNDS], dtype=np.int64)

#: PIL's colorize tables [colour, background, channel, intensity] for every pair of colours.
_TABLES = colorize_table(BACKGROUND_RGB[None, :, :], COLOUR_RGB[:, None, :])
_CHANNELS = np.arange(3)[:, None, None]


def _paint(grey: np.ndarray, colour: int, background: int) -> np.ndarray:
    """uint8 [32, 32, 3]: one grey uint8 image [H, W] coloured (PIL's colorize tables, applied
    channel by channel as ``colorize`` does) and resized."""
    rgb = np.ascontiguousarray(np.moveaxis(_TABLES[colour, background, _CHANNELS, grey], 0, -1))
    return resize_rgb(rgb)


def _to_float(images: np.ndarray) -> torch.Tensor:
    """float32 [..., 3, 32, 32] in [0, 1] from uint8 [..., 32, 32, 3]."""
    return torch.from_numpy(np.moveaxis(images, -1, -3).astype(np.float32)).div_(255)


def colourise_on(grey, colours, backgrounds) -> torch.Tensor:
    """Colour grey digits on a background: ``ImageOps.colorize`` then a bicubic 32x32 resize.

    ``grey``: uint8 images [N, H, W] (or one [H, W]); ``colours`` and ``backgrounds``: indices
    into :data:`~gwnlib.data.colored_mnist.COLOURS` and :data:`BACKGROUNDS`, one per image (or
    one for all). Returns float32 [N, 3, 32, 32] (or [3, 32, 32]) in [0, 1], equal bit for bit to
    ``ImageOps.colorize(img, black=BACKGROUNDS[b], white=COLOURS[c]).resize((32, 32),
    BICUBIC)`` divided by 255: intensity 0 is the background, 255 the stroke colour. With
    background 0 (black) it is :func:`gwnlib.data.colored_mnist.colourise`.
    """
    grey = np.asarray(grey)
    if grey.dtype != np.uint8 or grey.ndim not in (2, 3):
        raise ValueError(
            f"grey must be uint8 images [N, H, W] or [H, W]; got {grey.dtype} "
            f"with shape {grey.shape}"
        )
    single = grey.ndim == 2
    grey = grey[None] if single else grey
    colours = _check_indices("colours", colours, len(grey), "COLOURS")
    backgrounds = _check_indices("backgrounds", backgrounds, len(grey), "BACKGROUNDS")
    images = np.empty((len(grey), 32, 32, 3), dtype=np.uint8)
    for i, (image, colour, background) in enumerate(zip(grey, colours, backgrounds, strict=True)):
        images[i] = _paint(image, int(colour), int(background))
    images = _to_float(images)
    return images[0] if single else images


def _check_indices(name: str, values, n: int, palette: str) -> np.ndarray:
    values = np.broadcast_to(np.asarray(values), (n,))
    if values.size and (
        not np.issubdtype(values.dtype, np.integer) or values.min() < 0 or values.max() > 9
    ):
        raise ValueError(f"{name} must be integer indices 0..9 into {palette}; got {values!r}")
    return values


class TripleColoredMNIST(MnistSplit):
    """MNIST digits in a stroke colour on a background colour, both drawn from a law
    P(colour, background | digit) (chapter "Beyond two tasks"; the two-task source is paper
    Sec. 4.2 and appendix D.4).

    Items are ``(image, (digit, colour, background))``: ``image`` a float32 tensor [3, 32, 32]
    in [0, 1] (RGB), ``digit``, ``colour`` and ``background`` Python ints 0..9 (``colour``
    indexing :data:`~gwnlib.data.colored_mnist.COLOURS`, ``background`` :data:`BACKGROUNDS`),
    which a DataLoader collates into three LongTensors: the targets tuple of
    :class:`~gwnlib.data.colored_mnist.ColoredMNIST` with a third task.

    ``split``, ``seed``, ``val_size``, ``root`` and ``download`` are those of
    :class:`~gwnlib.data.colored_mnist.ColoredMNIST`, with the same train/val partition;
    ``law``: one of :data:`~gwnlib.data.triple_laws.LAWS`. Item i of the training split has the
    (colour, background) that :func:`~gwnlib.data.triple_laws.sample_attributes` gives for
    (``seed``, epoch, i); :meth:`set_epoch` redraws them, val and test keep epoch 0's.

    Images are bit for bit :func:`colourise_on`'s. Unlike ColoredMNIST, which keeps resized
    planes per colour channel, this class keeps MNIST's grey images (47 MB for the training
    split) and colours and resizes each item when it is read, about 0.1 ms each: with
    a background, the 100 (colour, background) pairs have too many distinct channel tables to
    precompute.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        law: str = "shared",
        seed: int = 0,
        val_size: int = 10_000,
        download: bool = True,
    ) -> None:
        check_choice("split", split, SPLITS)  # first: a bad split is named before a bad law
        self.law = check_choice("law", law, LAWS)
        super().__init__(root, split, seed, val_size, download, mnist_images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, tuple[int, int, int]]:
        colour, background = (int(v) for v in self._drawn[:, index])
        image = _to_float(_paint(self._images[int(self.indices[index])], colour, background))
        return image, (int(self.digits[index]), colour, background)

    def attributes(self, epoch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(colours [N], backgrounds [N]) LongTensors at ``epoch`` (default: the current one);
        val and test give epoch 0's for any epoch."""
        drawn = self._drawn_at(epoch)
        return drawn[0], drawn[1]

    def tensors(
        self, epoch: int | None = None, count: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The split at once: (images [N, 3, 32, 32] float32, digits, colours, backgrounds).

        ``epoch`` as in :meth:`attributes`; ``count``: only the first ``count`` items (all when
        None). Item i equals ``self[i]`` at that epoch. Colouring every image takes a few seconds
        for the training split, whose tensors take about 670 MB.
        """
        n = check_count(count, len(self))
        colours, backgrounds = (v[:n] for v in self.attributes(epoch))
        images = colourise_on(self._images[self.indices[:n]], colours.numpy(), backgrounds.numpy())
        return images, self.digits[:n].clone(), colours, backgrounds

    def __repr__(self) -> str:
        return (
            f"TripleColoredMNIST(split={self.split!r}, law={self.law!r}, seed={self.seed}, "
            f"epoch={self.epoch}, items={len(self)}, root={str(self.root)!r})"
        )

    def _draw(self, epoch: int) -> torch.Tensor:
        """LongTensor [2, N]: the colours and backgrounds of ``epoch``."""
        stream = SPLITS.index(self.split)
        drawn = sample_attributes(self.digits.numpy(), self.law, self.seed, epoch, stream)
        return torch.from_numpy(np.stack(drawn))
