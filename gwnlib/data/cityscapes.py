"""Cityscapes for two tasks at once: semantic segmentation and disparity (depth) estimation.

The paper's first vision experiment (Sec. 4.3, appendix D.5, and the authors' code) codes
Cityscapes street scenes for two frozen task models, DeepLabV3+ for the 19-class segmentation
and LRASPP for disparity. :class:`CityscapesTasks` gives, for each left camera image, the image
and both targets:

* the segmentation in *train ids* 0..18 (:data:`NUM_CLASSES` classes, named in
  :data:`CLASS_NAMES`), converted from the ``gtFine_labelIds`` files with the official table
  (:func:`label_ids_to_train_ids`); every other label is :data:`IGNORE_INDEX`;
* the disparity in pixels decoded from the 16-bit ``disparity`` PNGs as d = (p - 1) / 256, with
  p = 0 marking pixels without a measurement (:func:`decode_disparity`).

Image and labels are read through ``torchvision.datasets.Cityscapes``; torchvision knows nothing
of disparity, so its PNG is found beside the image (:func:`disparity_path`). Training items may
be augmented as the paper's Table 1 says for Cityscapes, by a random horizontal flip (of the
image and both maps) and a colour jitter (of the image), drawn from (seed, epoch, index) so that
a run can be repeated exactly.

Cityscapes needs a (free) registration and may not be redistributed, so it is never downloaded
here: :class:`CityscapesTasks` explains how to get it when it is missing, and
:func:`gwnlib.data.synthetic_cityscapes.write_synthetic_cityscapes` writes a tiny fake tree in
the official layout for tests and the smoke build of the book (chapter "Vision tasks: Cityscapes
and COCO 2017").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as TF
from PIL import Image

from gwnlib.data.augment import AugmentedSplit
from gwnlib.runtime import DATA_DIR_ENV, data_dir

__all__ = [
    "CLASS_NAMES",
    "COLOR_JITTER",
    "DISPARITY_SCALE",
    "IGNORE_INDEX",
    "NUM_CLASSES",
    "SPLITS",
    "CityscapesTasks",
    "colour_jitter",
    "decode_disparity",
    "default_root",
    "disparity_path",
    "label_ids_to_train_ids",
    "read_png_uint16",
]

#: The splits of Cityscapes' fine annotations (``test`` has images and disparity, but its labels
#: are withheld by the benchmark and are all "unlabeled").
SPLITS = ("train", "val", "test")

#: Train id of pixels that count in neither the segmentation loss nor mIoU. The authors map them
#: to 19 (one past the last class); we keep the convention of Cityscapes and torchvision, 255.
#: mIoU is over the 19 train ids either way.
IGNORE_INDEX = 255

#: Number of evaluated classes (train ids 0..18).
NUM_CLASSES = 19

#: The authors train their disparity head on (p - 1) / 32768 = disparity / 128, a target of
#: about [0, 2); predictions are multiplied back by this scale to report RMSE in disparity pixels.
DISPARITY_SCALE = 128.0

#: Our colour jitter for Cityscapes training images (``torchvision.transforms.ColorJitter``
#: arguments). The paper's Table 1 names the augmentation but not its strength; these are ours.
COLOR_JITTER = {"brightness": 0.3, "contrast": 0.3, "saturation": 0.3}

_CLASSES = torchvision.datasets.Cityscapes.classes
#: The 19 class names in train-id order (road, sidewalk, ..., bicycle).
CLASS_NAMES = tuple(
    c.name for c in sorted((c for c in _CLASSES if 0 <= c.train_id < 255), key=lambda c: c.train_id)
)
#: Smallest and largest label id of the official table (-1 is "license plate").
_MIN_LABEL_ID = min(c.id for c in _CLASSES)
_MAX_LABEL_ID = max(c.id for c in _CLASSES)
#: Train id of label id ``i`` at position ``i - _MIN_LABEL_ID`` (ignored labels -> IGNORE_INDEX).
_TRAIN_ID_TABLE = torch.full((_MAX_LABEL_ID - _MIN_LABEL_ID + 1,), IGNORE_INDEX, dtype=torch.int64)
for _c in _CLASSES:
    if 0 <= _c.train_id < 255:
        _TRAIN_ID_TABLE[_c.id - _MIN_LABEL_ID] = _c.train_id
del _c


# --------------------------------------------------------------------------------------------
# Labels and disparity
# --------------------------------------------------------------------------------------------


def label_ids_to_train_ids(label: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Train ids (int64, same shape) of Cityscapes label ids (the ``gtFine_labelIds`` values).

    Uses the official table as ``torchvision.datasets.Cityscapes.classes`` holds it: e.g. road
    (7) -> 0, car (26) -> 13, bicycle (33) -> 18. Label ids whose train id is 255 or -1
    (unlabeled, ego vehicle, parking, license plate, ...) and values outside the table's -1..33
    become :data:`IGNORE_INDEX`.
    """
    if not torch.is_tensor(label):
        label = np.asarray(label)
        if np.issubdtype(label.dtype, np.integer):
            label = label.astype(np.int64)  # torch lacks most operations on uint16 and uint32
    label = torch.as_tensor(label)
    if label.is_floating_point() or label.is_complex() or label.dtype == torch.bool:
        raise TypeError(f"label must hold integer label ids; got dtype {label.dtype}")
    label = label.to(torch.int64)
    known = (label >= _MIN_LABEL_ID) & (label <= _MAX_LABEL_ID)
    index = torch.where(known, label - _MIN_LABEL_ID, 0)
    table = _TRAIN_ID_TABLE.to(label.device)
    return torch.where(known, table[index], IGNORE_INDEX)


def read_png_uint16(path: str | Path) -> np.ndarray:
    """The pixels of a 16-bit greyscale PNG as a uint16 array [H, W], with no bit lost.

    Pillow opens such files as mode ``"I;16"`` (recent versions; NumPy then gives uint16) or
    ``"I"`` (older ones; int32); both are returned as uint16. Any other mode (an 8-bit or colour
    PNG) raises ``ValueError``, since a disparity map must have 16 bits.
    """
    with Image.open(path) as image:
        mode = image.mode
        if mode not in ("I;16", "I;16L", "I;16B", "I"):
            raise ValueError(f"{path} must be a 16-bit greyscale PNG (mode I;16 or I); got {mode}")
        pixels = np.array(image)
    if pixels.size and (pixels.min() < 0 or pixels.max() > 65535):
        raise ValueError(f"{path} holds values outside 0..65535; not a 16-bit PNG")
    return pixels.astype(np.uint16)


def decode_disparity(png: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(disparity in pixels, valid) of a Cityscapes disparity PNG's 16-bit values ``png``.

    Cityscapes stores d = (p - 1) / 256 for p > 0 and p = 0 where stereo matching gave nothing
    (Cordts et al., the dataset's README). Returns a float32 tensor (0 at invalid pixels; exact,
    since p - 1 < 2**16) and a bool tensor, true where p > 0, both of ``png``'s shape.
    """
    if not torch.is_tensor(png):
        png = np.asarray(png)
        if not np.issubdtype(png.dtype, np.integer):
            raise TypeError(f"png must hold integer 16-bit values; got dtype {png.dtype}")
        png = png.astype(np.int64)  # torch lacks most operations on uint16
    values = torch.as_tensor(png)
    if values.is_floating_point() or values.is_complex() or values.dtype == torch.bool:
        raise TypeError(f"png must hold integer 16-bit values; got dtype {values.dtype}")
    values = values.to(torch.int64)
    if values.numel() and (values.min() < 0 or values.max() > 65535):
        raise ValueError("png must hold 16-bit values in 0..65535")
    valid = values > 0
    disparity = torch.where(valid, (values - 1).to(torch.float32) / 256.0, 0.0)
    return disparity, valid


def disparity_path(image_path: str | Path) -> Path:
    """The disparity PNG that belongs to a ``leftImg8bit`` image.

    ``<root>/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` becomes
    ``<root>/disparity/<split>/<city>/<name>_disparity.png`` (the last ``leftImg8bit`` folder
    and the file name's suffix are replaced; the root may contain any name).
    """
    path = Path(image_path)
    suffix = "_leftImg8bit.png"
    if not path.name.endswith(suffix) or "leftImg8bit" not in path.parts[:-1]:
        raise ValueError(
            f"image_path must look like <root>/leftImg8bit/<split>/<city>/<name>{suffix}; "
            f"got {str(path)!r}"
        )
    parts = list(path.parts[:-1])
    folder = len(parts) - 1 - parts[::-1].index("leftImg8bit")
    parts[folder] = "disparity"
    return Path(*parts) / (path.name[: -len(suffix)] + "_disparity.png")


# --------------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------------


def colour_jitter(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``torchvision.transforms.ColorJitter(**COLOR_JITTER)`` applied to ``image`` [3, H, W]
    with its random numbers drawn from ``generator`` instead of torch's global state.

    The draws and their order are ColorJitter's own (a permutation of its four adjustments, then
    one uniform factor per enabled adjustment), so the result equals ColorJitter's output after
    ``torch.manual_seed`` with the generator's seed.
    """
    jitter = torchvision.transforms.ColorJitter(**COLOR_JITTER)
    order = torch.randperm(4, generator=generator)
    factors = {}
    for name in ("brightness", "contrast", "saturation", "hue"):
        bounds = getattr(jitter, name)
        if bounds is not None:
            low, high = bounds
            factors[name] = float(torch.empty(1).uniform_(low, high, generator=generator))
    adjust = {
        0: ("brightness", TF.adjust_brightness),
        1: ("contrast", TF.adjust_contrast),
        2: ("saturation", TF.adjust_saturation),
        3: ("hue", TF.adjust_hue),
    }
    for step in order.tolist():
        name, function = adjust[step]
        if name in factors:
            image = function(image, factors[name])
    return image


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------

_FOLDERS = ("leftImg8bit", "gtFine", "disparity")


class CityscapesTasks(AugmentedSplit):
    """Cityscapes images with their segmentation and disparity (paper Sec. 4.3, appendix D.5).

    Item ``i`` is a dict:

    * ``"image"``: float32 [3, H, W] RGB in [0, 1];
    * ``"segmentation"``: int64 [H, W] train ids 0..18, :data:`IGNORE_INDEX` elsewhere;
    * ``"disparity"``: float32 [H, W] disparity in pixels (0 where not valid); divide by
      :data:`DISPARITY_SCALE` for the authors' training target;
    * ``"valid"``: bool [H, W], where the disparity was measured.

    ``root``: the folder holding ``leftImg8bit/``, ``gtFine/`` and ``disparity/`` (default
    ``<data root>/cityscapes``, the data root being :func:`gwnlib.data_dir`); ``split``: one of
    :data:`SPLITS`. Items are sorted by file name (torchvision lists them in the file system's
    order).

    ``augment=True`` (for training): with probability 1/2 the image and all three maps are
    flipped left-right (a flip mirrors the disparity map but does not change its values), and
    the image alone goes through :func:`colour_jitter`, both drawn from
    :func:`~gwnlib.data.augment.augmentation_generator` of (``seed``, epoch, index). Call
    :meth:`set_epoch` at each epoch for fresh draws.
    """

    SPLITS = SPLITS

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        augment: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(root, split, augment, seed, default_root)
        _check_layout(self.root, split)
        self._base = torchvision.datasets.Cityscapes(
            str(self.root), split=split, mode="fine", target_type="semantic"
        )
        order = sorted(range(len(self._base.images)), key=self._base.images.__getitem__)
        self._base.images = [self._base.images[i] for i in order]
        self._base.targets = [self._base.targets[i] for i in order]
        #: The ``leftImg8bit`` image of each item, sorted.
        self.images = [Path(p) for p in self._base.images]
        #: The disparity PNG of each item.
        self.disparities = [disparity_path(p) for p in self.images]
        missing = [p for p in self.disparities if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} of {len(self.images)} disparity files of split {split!r} are "
                f"missing, e.g. {missing[0]}. " + _how_to_get_cityscapes(self.root)
            )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image, label = self._base[index]
        image = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)
        item = {"image": image.to(torch.float32).div_(255)}
        item["segmentation"] = label_ids_to_train_ids(np.array(label))
        item["disparity"], item["valid"] = decode_disparity(
            read_png_uint16(self.disparities[index])
        )
        shapes = {name: tuple(value.shape[-2:]) for name, value in item.items()}
        if len(set(shapes.values())) != 1:
            raise ValueError(
                f"item {index} ({self.images[index].name}) has mismatched sizes {shapes}"
            )
        if self.augment:
            item = self._augmented(item, index)
        return item

    def _augmented(self, item: dict[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
        generator = self.generator(index)
        if bool(torch.rand(1, generator=generator) < 0.5):
            item = {name: value.flip(-1) for name, value in item.items()}
        item["image"] = colour_jitter(item["image"], generator)
        return item


def default_root() -> Path:
    """``<data root>/cityscapes``, where :class:`CityscapesTasks` looks by default."""
    return data_dir() / "cityscapes"


def _check_layout(root: Path, split: str) -> None:
    if not root.is_dir():
        raise FileNotFoundError(
            f"Cityscapes is not in {root} (no such folder). " + _how_to_get_cityscapes(root)
        )
    missing = [root / folder / split for folder in _FOLDERS if not (root / folder / split).is_dir()]
    if missing:
        names = ", ".join(str(p) for p in missing)
        raise FileNotFoundError(
            f"Cityscapes split {split!r} is incomplete in {root}: {names} missing. "
            + _how_to_get_cityscapes(root)
        )


def _how_to_get_cityscapes(root: Path) -> str:
    return (
        "Cityscapes needs a free registration at https://www.cityscapes-dataset.com. Then "
        "`pip install cityscapesscripts` and run `csDownload gtFine_trainvaltest.zip "
        "leftImg8bit_trainvaltest.zip disparity_trainvaltest.zip` (add `-d <folder>` to choose "
        "where; `csDownload -l` lists the packages your account may download), and unzip the "
        f"three archives into {root} so that it holds leftImg8bit/, gtFine/ and disparity/. Or set "
        f"the environment variable {DATA_DIR_ENV} to a data root whose cityscapes/ folder holds "
        "them, or pass root=."
    )
