"""A tiny FAKE Cityscapes tree in the official layout, for tests and the smoke build of the book
(chapter "Vision tasks: Cityscapes and COCO 2017").

Cityscapes needs a registration and may not be redistributed, so the ``smoke`` preset of the
vision tasks and the tests of :mod:`gwnlib.data.cityscapes` run on what
:func:`write_synthetic_cityscapes` writes: random street-like scenes whose files
``torchvision.datasets.Cityscapes`` and :class:`~gwnlib.data.cityscapes.CityscapesTasks` read
like the real ones. It is a stand-in, never a reproduction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torchvision
from PIL import Image

from gwnlib.data.cityscapes import SPLITS
from gwnlib.runtime import check_int, check_seed

__all__ = ["write_synthetic_cityscapes"]

#: Default fake cities per split (real Cityscapes city names of each split).
_SYNTHETIC_CITIES = {"train": ("aachen",), "val": ("frankfurt",), "test": ("berlin",)}
#: The official label id and colour of each class (``torchvision.datasets.Cityscapes.classes``).
_LABEL_ID = {c.name: c.id for c in torchvision.datasets.Cityscapes.classes}
_COLOUR = {c.id: c.color for c in torchvision.datasets.Cityscapes.classes}


def write_synthetic_cityscapes(
    root: str | Path,
    splits: Sequence[str] = ("train", "val"),
    cities: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    images_per_city: int = 2,
    size: tuple[int, int] = (64, 128),
    seed: int = 0,
) -> Path:
    """Write a tiny FAKE Cityscapes tree under ``root`` and return ``root``.

    A stand-in for tests and the smoke build of the book, not Cityscapes: random street-like
    scenes (sky, buildings, road, sidewalk, cars, people; an unlabeled band and an ego-vehicle
    strip at the bottom) with each label region painted in its official colour plus noise, so
    that image and labels are related and a smoke run has something to learn. Disparity grows
    towards the bottom of the image and is larger on cars and people; it is invalid (0) in the
    sky and in a few random holes.

    The files follow the official layout that ``torchvision.datasets.Cityscapes`` and
    :class:`~gwnlib.data.cityscapes.CityscapesTasks` read:
    ``leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` (RGB),
    ``gtFine/.../..._gtFine_labelIds.png`` (8-bit label ids; the only gtFine file torchvision
    opens for ``target_type="semantic"``) and ``disparity/.../..._disparity.png`` (16-bit,
    p = 256 d + 1). ``cities``: names for every split, or a mapping split -> names (default:
    aachen, frankfurt, berlin for train, val, test). ``size``: (H, W).
    """
    root = Path(root)
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"splits must hold names from {', '.join(SPLITS)}; got {split!r}")
    check_int("images_per_city", images_per_city)
    height, width = size
    if height < 16 or width < 16:
        raise ValueError(f"size must be (H, W) with both at least 16; got {size!r}")
    check_seed(seed)
    for split in splits:
        for city_index, city in enumerate(_cities_of(split, cities)):
            for number in range(images_per_city):
                rng = np.random.default_rng([int(seed), SPLITS.index(split), city_index, number])
                labels, image, png = _synthetic_scene(rng, height, width)
                stem = f"{city}_{number:06d}_000019"
                for folder, suffix, array in (
                    ("leftImg8bit", "leftImg8bit", image),
                    ("gtFine", "gtFine_labelIds", labels),
                    ("disparity", "disparity", png),
                ):
                    path = root / folder / split / city / f"{stem}_{suffix}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(array).save(path)
    return root


def _cities_of(split: str, cities: Sequence[str] | Mapping[str, Sequence[str]] | None) -> tuple:
    if cities is None:
        return _SYNTHETIC_CITIES[split]
    if isinstance(cities, Mapping):
        if split not in cities:
            raise ValueError(f"cities must name the cities of every split; {split!r} is missing")
        cities = cities[split]
    if isinstance(cities, str) or not cities or not all(isinstance(c, str) and c for c in cities):
        raise ValueError(f"cities must be a non-empty sequence of names; got {cities!r}")
    return tuple(cities)


def _synthetic_scene(rng: np.random.Generator, height: int, width: int):
    """(label ids uint8 [H, W], image uint8 [H, W, 3], disparity PNG values uint16 [H, W])."""
    rows = np.broadcast_to(np.arange(height)[:, None], (height, width))
    horizon = int(height * rng.uniform(0.35, 0.5))
    skyline = (horizon * rng.uniform(0.3, 0.9, size=width // 8 + 1)).astype(int).repeat(8)[:width]
    labels = np.full((height, width), _LABEL_ID["road"], dtype=np.uint8)
    labels[rows < horizon] = _LABEL_ID["building"]
    labels[rows < skyline] = _LABEL_ID["sky"]
    curb = horizon + int((height - horizon) * 0.2)
    labels[(rows >= horizon) & (rows < curb)] = _LABEL_ID["sidewalk"]
    objects = []
    for name in ("car", "car", "person"):
        h = int(height * (0.15 if name == "car" else 0.25))
        w = int(width * (0.2 if name == "car" else 0.05))
        top = int(rng.integers(horizon - h // 2, max(horizon - h // 2 + 1, height - h - 8)))
        left = int(rng.integers(0, width - w))
        labels[top : top + h, left : left + w] = _LABEL_ID[name]
        objects.append((top, left, h, w))
    labels[height - 6 : height - 3] = _LABEL_ID["unlabeled"]
    labels[height - 3 :] = _LABEL_ID["ego vehicle"]

    palette = np.zeros((256, 3), dtype=np.float64)
    for label_id, colour in _COLOUR.items():
        if label_id >= 0:
            palette[label_id] = colour
    image = palette[labels] + rng.normal(0, 12, size=(height, width, 3))
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)

    disparity = np.where(rows >= horizon, 2.0 + 60.0 * (rows - horizon) / height, 1.5)
    for top, left, h, w in objects:
        disparity[top : top + h, left : left + w] = 5.0 + 60.0 * max(top + h - horizon, 0) / height
    png = np.rint(disparity * 256 + 1).astype(np.uint16)
    png[labels == _LABEL_ID["sky"]] = 0
    png[rng.random((height, width)) < 0.05] = 0
    return labels, image, png
