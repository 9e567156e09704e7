"""Colored MNIST: digits painted in one of ten colours drawn from a law P(colour | digit).

The paper's edge-case experiment (Sec. 4.2, appendix D.4; chapters "Two controlled sources: the
synthetic Gray-Wyner source and coloured MNIST" and "Coloured MNIST: edge cases of common
information"): one task predicts the digit, the other the colour, and the law that couples them
(:mod:`gwnlib.data.colour_laws`: dependent, independent or mixture) sets how much information the
two tasks share. This module is the dataset: MNIST on disk, coloured as the authors do.

Images follow the authors' recipe: PIL's ``ImageOps.colorize(img, black="black", white=name)``
then a bicubic resize from 28x28 to 32x32, as an RGB float tensor in [0, 1]. Unlike the authors,
who redraw every colour at every access with no seed and validate on MNIST's test split, colours
here are a seeded function of (seed, item, epoch) and validation uses images held out of MNIST's
training split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageColor

from gwnlib.data.colour_laws import PMFS, sample_colours
from gwnlib.runtime import DATA_DIR_ENV, check_choice, check_epoch, check_seed, data_dir

__all__ = [
    "COLOURS",
    "COLOUR_RGB",
    "IMAGE_SIZE",
    "SPLITS",
    "SPLIT_SEED",
    "ColoredMNIST",
    "MnistSplit",
    "check_count",
    "check_split",
    "colorize_table",
    "colourise",
    "mnist_images",
    "resize_rgb",
    "split_indices",
    "split_positions",
]

#: The ten colours in the authors' order, as PIL colour names (paper Sec. 4.2).
COLOURS = (
    "red",
    "orange",
    "yellow",
    "lime",
    "green",
    "cyan",
    "blue",
    "purple",
    "magenta",
    "grey",
)
#: The splits of :class:`ColoredMNIST`: train and val partition MNIST's training images.
SPLITS = ("train", "val", "test")
#: RGB of each colour of :data:`COLOURS`, exactly ``PIL.ImageColor.getrgb(name)``; shape [10, 3].
COLOUR_RGB = np.array([ImageColor.getrgb(name) for name in COLOURS], dtype=np.int64)
#: Side of the square images after the bicubic resize (the authors' 32x32).
IMAGE_SIZE = 32
#: Number of images in MNIST's training split, which train and val partition.
MNIST_TRAIN_SIZE = 60_000
#: Seed of the train/val partition. It is fixed, not the dataset's ``seed``, so that every run,
#: whatever its seed, validates on the same images.
SPLIT_SEED = 20_260_423

# --------------------------------------------------------------------------------------------
# Colourisation
# --------------------------------------------------------------------------------------------

#: The distinct non-zero channel values of the ten colours (0, 128, 165 and 255 occur).
_LEVELS = tuple(sorted({int(v) for v in COLOUR_RGB.flat} - {0}))
#: For each colour and RGB channel, the index of its value in _LEVELS, or -1 for a zero channel.
_PLANE_OF = torch.tensor([[_LEVELS.index(v) if v else -1 for v in rgb] for rgb in COLOUR_RGB])
#: Per colour: the plane of each channel (0 where the channel is 0) and which channels are on.
_PLANE_INDEX = _PLANE_OF.clamp(min=0)
_CHANNEL_ON = (_PLANE_OF >= 0).to(torch.float32)[:, :, None, None]
_RESIZE_CHUNK = 10_000  # images per batch of the one-off resize (bounds its memory)


def colorize_table(black, white) -> np.ndarray:
    """PIL's ``ImageOps.colorize`` table, uint8 [..., 256], for channels from ``black`` to
    ``white`` (channel values 0..255, or arrays of them, which broadcast).

    Intensity i maps to black + floor(i * (white - black) / 255), exactly as PIL's 2-colour
    ``colorize`` builds it (PIL sets i = 255 to ``white``, which the formula gives too). With
    black = 0, a channel of 255 is the grey image itself and a channel of 0 stays 0. Shared with
    :mod:`gwnlib.data.triple_mnist`, whose backgrounds are not black.
    """
    black = np.asarray(black, dtype=np.int64)[..., None]
    white = np.asarray(white, dtype=np.int64)[..., None]
    return (black + np.arange(256) * (white - black) // 255).astype(np.uint8)


def _resized_planes(grey: np.ndarray) -> torch.Tensor:
    """uint8 planes [len(_LEVELS), N, 32, 32]: each level's colorize table, then the resize.

    ``grey`` is a uint8 array [N, H, W]. Plane k of image n is what PIL gives for a colour
    channel of value _LEVELS[k]: ``ImageOps.colorize`` works channel by channel and PIL's bicubic
    resize too (rounding and clipping to 8 bits after each of its two passes), so assembling
    an RGB image from these planes reproduces ``colorize`` + ``resize`` bit for bit. Resizing
    the grey image once and scaling it afterwards would not: the clipping of the bicubic
    overshoot makes the resize non-linear, and that shortcut was up to 27/255 off on 300 real
    digits.
    """
    tables = np.stack([colorize_table(0, level) for level in _LEVELS])
    n_levels, n = len(tables), len(grey)
    planes = np.empty((n_levels, n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for first in range(0, n_levels, 3):  # three planes at a time, as the bands of an RGB image
        bands = np.zeros((3, 256), dtype=np.uint8)
        group = tables[first : first + 3]
        bands[: len(group)] = group
        for start in range(0, n, _RESIZE_CHUNK):
            chunk = grey[start : start + _RESIZE_CHUNK]
            rgb = np.ascontiguousarray(np.moveaxis(bands[:, chunk], 0, -1))  # [n, H, W, 3]
            resized = np.stack([resize_rgb(image) for image in rgb])
            planes[first : first + len(group), start : start + len(chunk)] = np.moveaxis(
                resized[..., : len(group)], -1, 0
            )
    return torch.from_numpy(planes)


def resize_rgb(image: np.ndarray) -> np.ndarray:
    """PIL's bicubic resize of one uint8 RGB array [H, W, 3] to [32, 32, 3]."""
    size = (IMAGE_SIZE, IMAGE_SIZE)
    return np.asarray(Image.fromarray(image, "RGB").resize(size, Image.Resampling.BICUBIC))


def _assemble(planes: torch.Tensor, positions: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
    """float32 images [N, 3, 32, 32] in [0, 1] of the images at ``positions`` [N] of ``planes``
    [L, M, 32, 32], in ``colours`` [N]."""
    images = planes[_PLANE_INDEX[colours], positions[:, None]].to(torch.float32)
    return images.mul_(_CHANNEL_ON[colours]).div_(255)


def colourise(grey, colours) -> torch.Tensor:
    """Colour grey digits as the authors do: ``ImageOps.colorize`` then a bicubic 32x32 resize.

    ``grey``: uint8 images [N, H, W] (or one [H, W]); ``colours``: indices into :data:`COLOURS`,
    one per image (or one for all). Returns float32 [N, 3, 32, 32] (or [3, 32, 32]) in [0, 1],
    equal to ``ImageOps.colorize(img, black="black", white=name).resize((32, 32), BICUBIC)``
    divided by 255, bit for bit: black stays black and white becomes the colour, channel c
    mapping intensity L to about c * L / 255 (paper Sec. 4.2). :class:`ColoredMNIST` uses the
    same planes, computed once per MNIST split.
    """
    grey = np.asarray(grey)
    if grey.dtype != np.uint8 or grey.ndim not in (2, 3):
        raise ValueError(
            f"grey must be uint8 images [N, H, W] or [H, W]; got {grey.dtype} "
            f"with shape {grey.shape}"
        )
    single = grey.ndim == 2
    grey = grey[None] if single else grey
    colours = np.broadcast_to(np.asarray(colours), (len(grey),))
    if colours.size and (
        not np.issubdtype(colours.dtype, np.integer) or colours.min() < 0 or colours.max() > 9
    ):
        raise ValueError(f"colours must be integer indices 0..9 into COLOURS; got {colours!r}")
    colours = torch.from_numpy(colours.astype(np.int64))
    images = _assemble(_resized_planes(grey), torch.arange(len(grey)), colours)
    return images[0] if single else images


# --------------------------------------------------------------------------------------------
# MNIST on disk, resized once per process
# --------------------------------------------------------------------------------------------

_CACHE: dict[tuple[str, bool], tuple[torch.Tensor, torch.Tensor]] = {}
_GREY_CACHE: dict[tuple[str, bool], tuple[np.ndarray, torch.Tensor]] = {}


def mnist_images(root: Path, train: bool, download: bool) -> tuple[np.ndarray, torch.Tensor]:
    """(grey images [N, 28, 28] uint8, digits [N] int64 LongTensor) of one MNIST split, as on
    disk, cached per process: what :mod:`gwnlib.data.triple_mnist` colours item by item.
    (:class:`ColoredMNIST` keeps resized planes instead and does not fill this cache.)"""
    key = (str(root), train)
    if key not in _GREY_CACHE:
        grey, digits = _load_mnist(root, train, download)
        _GREY_CACHE[key] = (grey, torch.from_numpy(digits))
    return _GREY_CACHE[key]


def _mnist_planes(root: Path, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(planes [L, N, 32, 32] uint8, digits [N] int64) of one MNIST split, cached per process."""
    key = (str(root), train)
    if key not in _CACHE:
        grey, digits = _load_mnist(root, train, download)
        _CACHE[key] = (_resized_planes(grey), torch.from_numpy(digits))
    return _CACHE[key]


def _load_mnist(root: Path, train: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's images [N, 28, 28] uint8 and labels [N] int64, through torchvision.

    torchvision skips the download when the files are already there (and unpacks the .gz
    archives when only those are); any failure becomes a RuntimeError that says where to put
    the files.
    """
    from torchvision.datasets import MNIST  # imported only when MNIST is needed

    try:
        mnist = MNIST(str(root), train=train, download=download)
    except (RuntimeError, OSError) as error:
        raise RuntimeError(_missing_mnist_message(root, download, error)) from error
    return mnist.data.numpy(), mnist.targets.numpy().astype(np.int64)


def _missing_mnist_message(root: Path, download: bool, error: Exception) -> str:
    raw = root / "MNIST" / "raw"
    files = ", ".join(
        f"{split}-{kind}-ubyte"
        for split in ("train", "t10k")
        for kind in ("images-idx3", "labels-idx1")
    )
    detail = " ".join(str(error).split())[:300] or type(error).__name__
    what = "downloading it failed" if download else "download=False"
    return (
        f"MNIST is not in {raw} ({what}; torchvision said: {detail}). Put the four MNIST files "
        f"({files}) in {raw}, uncompressed or as .gz archives (which download=True unpacks "
        f"without going online); or run once with download=True on a machine with internet; or "
        f"set the environment variable {DATA_DIR_ENV} to a data root that holds MNIST/raw/."
    )


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------


def split_indices(split: str, val_size: int = 10_000) -> np.ndarray:
    """Sorted positions, in MNIST's training split, of the images of ``split`` ("train"/"val").

    A permutation of the 60,000 training images drawn with :data:`SPLIT_SEED` (never with the
    dataset's seed): its first ``val_size`` entries are the validation images, the rest the
    training images. Validation sets of different sizes are therefore nested.
    """
    split = check_choice("split", split, ("train", "val"))
    val_size = _check_val_size(val_size)
    permutation = np.random.default_rng(SPLIT_SEED).permutation(MNIST_TRAIN_SIZE)
    chosen = permutation[:val_size] if split == "val" else permutation[val_size:]
    return np.sort(chosen).astype(np.int64)


def check_split(split: str, val_size: int) -> tuple[str, int]:
    """``(split, val_size)`` checked: ``split`` one of :data:`SPLITS`, ``val_size`` an integer
    in [0, 60000), at least 1 when ``split`` is ``"val"``; else a ValueError."""
    split = check_choice("split", split, SPLITS)
    val_size = _check_val_size(val_size)
    if split == "val" and val_size == 0:
        raise ValueError("val_size must be at least 1 for split='val'; got 0")
    return split, val_size


def split_positions(split: str, val_size: int, test_size: int) -> np.ndarray:
    """Positions int64 of the items of ``split`` in their MNIST split: all ``test_size`` test
    images for ``"test"``, else :func:`split_indices` of MNIST's training images."""
    split, val_size = check_split(split, val_size)
    if split == "test":
        return np.arange(test_size, dtype=np.int64)
    return split_indices(split, val_size)


def check_count(count, n: int) -> int:
    """The number of items a ``tensors(count=...)`` call takes: ``n`` when ``count`` is None,
    else ``count`` checked to be an integer in [1, n] (TypeError / ValueError otherwise)."""
    if count is None:
        return n
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
        raise TypeError(f"count must be an integer in [1, {n}] or None; got {count!r}")
    if not 1 <= count <= n:
        raise ValueError(f"count must be an integer in [1, {n}] or None; got {count}")
    return int(count)


class MnistSplit(torch.utils.data.Dataset):
    """A split of MNIST whose items carry attributes drawn for (``seed``, epoch, item) by the
    subclass's ``_draw(epoch)``: what :class:`ColoredMNIST` and
    :class:`gwnlib.data.triple_mnist.TripleColoredMNIST` share.

    ``split`` and ``val_size`` as in :func:`split_indices`; ``load(root, train, download)`` gives
    the images of MNIST's training or test file, in whatever form the subclass colours from
    (kept as ``_images``), and their digits. The training split redraws its attributes at
    :meth:`set_epoch`; val and test keep epoch 0's whatever the epoch.
    """

    def __init__(self, root, split: str, seed: int, val_size: int, download: bool, load) -> None:
        check_seed(seed)
        self.seed = int(seed)
        self.split, self.val_size = check_split(split, val_size)
        self.root = Path(root).expanduser().resolve() if root is not None else data_dir()
        self._images, digits = load(self.root, self.split != "test", download)
        self.indices = split_positions(self.split, self.val_size, len(digits))
        self._positions = torch.from_numpy(self.indices)
        #: The digit of every item, a LongTensor [N].
        self.digits = digits[self._positions]
        self.epoch = 0
        self._drawn = self._draw(0)

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        """Draw the training attributes of ``epoch`` (an int >= 0); val and test keep epoch
        0's."""
        self.epoch = check_epoch(epoch)
        if self.split == "train":
            self._drawn = self._draw(self.epoch)

    def _drawn_at(self, epoch: int | None) -> torch.Tensor:
        """The attributes at ``epoch`` (None: the current one; val and test: epoch 0's)."""
        if epoch is None or self.split != "train":
            return self._drawn.clone()
        return self._draw(check_epoch(epoch))

    def _draw(self, epoch: int) -> torch.Tensor:
        raise NotImplementedError


class ColoredMNIST(MnistSplit):
    """MNIST digits coloured by a law P(colour | digit) (paper Sec. 4.2, appendix D.4).

    Items are ``(image, (digit, colour))``: ``image`` a float32 tensor [3, 32, 32] in [0, 1]
    (RGB), ``digit`` and ``colour`` Python ints (0..9, colour indexing :data:`COLOURS`), which
    a DataLoader collates into two LongTensors.

    ``split``: ``"train"`` and ``"val"`` are a fixed partition of MNIST's 60,000 training
    images (``val_size`` of them for validation; see :func:`split_indices`), the same for every
    ``seed``; ``"test"`` is MNIST's 10,000 test images. ``pmf``: one of
    :data:`~gwnlib.data.colour_laws.PMFS`. ``root``: the data root holding ``MNIST/raw``
    (default :func:`gwnlib.data_dir`); ``download``: let torchvision fetch MNIST when it is not
    there.

    Colours: item i of the training split has the colour that
    :func:`~gwnlib.data.colour_laws.sample_colours` gives for (``seed``, epoch, i); call
    :meth:`set_epoch` at the start of each epoch (as with a DistributedSampler) for a fresh draw,
    which is how the authors' colours, redrawn at every access, vary over training. Validation and
    test colours are those of epoch 0 whatever the epoch, so their metrics are comparable across
    epochs and runs. With DataLoader workers, call :meth:`set_epoch` before iterating and keep
    ``persistent_workers=False``, so that each epoch's workers receive the new colours.

    Images are bit for bit those of the authors' ``ImageOps.colorize`` + bicubic resize
    (:func:`colourise`). Each MNIST split is resized once per process and kept in memory as one
    uint8 plane per channel value (about 184 MB for the training images); colouring an item is
    then a lookup. :meth:`tensors` gives a whole split at once.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        pmf: str = "dependent",
        seed: int = 0,
        val_size: int = 10_000,
        download: bool = True,
    ) -> None:
        check_choice("split", split, SPLITS)  # first: a bad split is named before a bad pmf
        self.pmf = check_choice("pmf", pmf, PMFS)
        super().__init__(root, split, seed, val_size, download, _mnist_planes)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, tuple[int, int]]:
        # The one-item case of _assemble, in the operations that are fastest for one image.
        colour = int(self._drawn[index])
        planes = self._images[:, int(self.indices[index])]  # a view [L, 32, 32]
        image = planes.index_select(0, _PLANE_INDEX[colour]).to(torch.float32)
        image = image.mul_(_CHANNEL_ON[colour]).div_(255)
        return image, (int(self.digits[index]), colour)

    def colours(self, epoch: int | None = None) -> torch.Tensor:
        """The colour of every item, a LongTensor [N], at ``epoch`` (default: the current one).

        Val and test give epoch 0's colours for any epoch.
        """
        return self._drawn_at(epoch)

    def tensors(
        self, epoch: int | None = None, count: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The whole split at once: (images [N, 3, 32, 32] float32, digits [N], colours [N]).

        ``epoch`` as in :meth:`colours`; ``count``: only the first ``count`` items (all when
        None). Item i equals ``self[i]`` at that epoch. For small-data runs and for training
        from GPU memory; the training split takes about 600 MB.
        """
        n = check_count(count, len(self))
        colours = self.colours(epoch)[:n]
        images = _assemble(self._images, self._positions[:n], colours)
        return images, self.digits[:n].clone(), colours

    def __repr__(self) -> str:
        return (
            f"ColoredMNIST(split={self.split!r}, pmf={self.pmf!r}, seed={self.seed}, "
            f"epoch={self.epoch}, items={len(self)}, root={str(self.root)!r})"
        )

    def _draw(self, epoch: int) -> torch.Tensor:
        stream = SPLITS.index(self.split)
        colours = sample_colours(self.digits.numpy(), self.pmf, self.seed, epoch, stream)
        return torch.from_numpy(colours)


def _check_val_size(val_size) -> int:
    if isinstance(val_size, bool) or not isinstance(val_size, (int, np.integer)):
        raise ValueError(
            f"val_size must be an integer in [0, {MNIST_TRAIN_SIZE}); got {val_size!r}"
        )
    if not 0 <= val_size < MNIST_TRAIN_SIZE:
        raise ValueError(
            f"val_size must be an integer in [0, {MNIST_TRAIN_SIZE}); got {val_size!r}"
        )
    return int(val_size)
