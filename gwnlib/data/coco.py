"""COCO 2017 for two tasks at once: object detection and human keypoint detection.

The paper's second vision experiment (Sec. 4.3, appendix D.5, and the authors' code) codes
COCO images for two frozen torchvision models with COCO weights, Faster R-CNN (boxes of the 80
object categories) and Keypoint R-CNN (people and their 17 keypoints). :class:`CocoTasks` gives,
for each image, the image and one target per task in the format those models take:

* detection: ``boxes`` float32 [N, 4] as (x1, y1, x2, y2) pixels (COCO's json stores
  (x, y, width, height)), ``labels`` int64 [N] the COCO category ids 1..90 (the ids that
  torchvision's ``COCO_V1`` detection weights predict, gaps included), ``iscrowd`` int64 [N],
  ``area`` float32 [N] and ``image_id`` (an int);
* keypoints: the people of ``person_keypoints_*.json``: ``boxes``, ``labels`` (all 1),
  ``keypoints`` float32 [N, 17, 3] as (x, y, visibility), ``iscrowd``, ``area`` and
  ``image_id``.

Crowd regions are kept. The authors deleted them from their annotations, so that detections
falling on crowds count as false positives (COCOeval uses crowd regions to excuse them), which
lowers AP. The paper prints no uncompressed mAP; its best compressed box mAP (Table 8: 0.455,
Shared at eta = 0.5) is 1.2 points below torchvision's 0.467, and the authors' plotting code
draws Fig. 5's "Uncompressed" line at that same 0.455 (plus 0.65 keypoint AP) without saying
where it comes from. The deleted crowds may account for part of that gap. Evaluation therefore
reads the official annotations (:attr:`CocoTasks.coco_instances`,
:attr:`CocoTasks.coco_keypoints`) and the targets here keep crowd annotations, flagged by
``iscrowd``; :func:`training_targets` removes them (and degenerate boxes) only where the
torchvision models' training losses are computed.

Images have different sizes. The codec works on batches padded to a multiple of 64
(:func:`pad_to_multiple`, :func:`collate`) with masks of the real pixels, and rates are divided
by the number of real pixels (paper appendix D.5). Training items may be flipped left-right
(the paper's Table 1), boxes and keypoints with them.

The official files come from :func:`download_coco`; the smoke preset reads a small real subset
in the same layout, ``<data root>/coco_small``, which :func:`download_coco_small` makes from the
official annotations and images (the offline data folder of machines without internet holds the
same subset).
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from gwnlib.data.augment import AugmentedSplit
from gwnlib.download import download_url
from gwnlib.files import write_json
from gwnlib.runtime import DATA_DIR_ENV, check_int, data_dir, show_progress

__all__ = [
    "ANNOTATION_FILES",
    "COCO_ARCHIVES",
    "IMAGE_COUNTS",
    "IMAGES_URL",
    "KEYPOINT_FLIP",
    "NUM_KEYPOINTS",
    "SMALL_IDS",
    "SPLITS",
    "CocoArchive",
    "CocoTasks",
    "collate",
    "default_root",
    "detection_target",
    "download_coco",
    "download_coco_small",
    "flip_targets",
    "keypoint_target",
    "pad_to_multiple",
    "subset_annotations",
    "training_targets",
]

#: The annotated splits of COCO 2017.
SPLITS = ("train2017", "val2017")
#: Keypoints per person (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles).
NUM_KEYPOINTS = 17
#: Where each keypoint goes under a left-right flip: left and right parts swap, the nose stays.
KEYPOINT_FLIP = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
#: The annotation files a complete COCO root holds (in ``annotations/``).
ANNOTATION_FILES = tuple(
    f"{kind}_{split}.json" for kind in ("instances", "person_keypoints") for split in SPLITS
)
#: Number of images in each official split (how :func:`download_coco` sees a split is there).
IMAGE_COUNTS = {"train2017": 118_287, "val2017": 5_000}


@dataclass(frozen=True)
class CocoArchive:
    """One official COCO 2017 zip: where it is and its MD5 (as listed by cocodataset.org's
    mirrors and checked by torchvision-based and other loaders)."""

    url: str
    md5: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


#: The official archives, by part name: the annotations (about 241 MiB), the validation images
#: (about 778 MiB) and the training images (about 18 GiB).
COCO_ARCHIVES = {
    "annotations": CocoArchive(
        "http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
        "f4bbac642086de4f52a3fdda2de5fa2c",
    ),
    "val2017": CocoArchive(
        "http://images.cocodataset.org/zips/val2017.zip", "442b8da7639aecaf257c1dceb8ba8c80"
    ),
    "train2017": CocoArchive(
        "http://images.cocodataset.org/zips/train2017.zip", "cced6f7f71b7629ddf16f17bbcfab6b2"
    ),
}
#: Where the official images lie one by one (``IMAGES_URL/<split>/<file_name>``).
IMAGES_URL = "http://images.cocodataset.org"
#: The image ids of ``coco_small``, the smoke preset's subset: 80 train2017 images that cover
#: all 80 categories and 79 val2017 images (the offline data folder's copy, listed here so that
#: :func:`download_coco_small` makes the same subset wherever there is internet).
SMALL_IDS = {
    "train2017": (
        790, 30752, 37666, 54718, 63217, 69468, 70133, 72258, 78499, 84284, 84533, 89232, 100667,
        107438, 113488, 114174, 116270, 121647, 125870, 129648, 133030, 145311, 157206, 159269,
        161846, 163497, 172123, 174375, 174632, 177977, 183872, 187334, 194322, 196393, 211325,
        211891, 212679, 213148, 214704, 215657, 216794, 227000, 231460, 232357, 234748, 249346,
        252639, 256353, 281789, 284218, 322517, 330993, 332078, 353072, 358083, 370162, 373381,
        379349, 408805, 409194, 418049, 419474, 420862, 432430, 433998, 442450, 463557, 466137,
        466547, 484641, 488571, 489520, 493652, 516008, 525891, 535506, 538113, 539216, 544238,
        551757,
    ),
    "val2017": (
        139, 802, 11813, 18575, 22192, 22892, 34417, 62554, 73326, 92660, 99053, 101787, 106235,
        109313, 117645, 126107, 128598, 135561, 136334, 151938, 153797, 155341, 160012, 165518,
        172648, 174231, 181303, 183709, 192699, 205401, 214753, 217285, 229358, 229997, 231125,
        237517, 244592, 255165, 261712, 262227, 269196, 275791, 310200, 311002, 328683, 343803,
        349860, 350679, 357501, 358427, 359219, 368212, 370208, 377575, 397133, 403353, 406129,
        407574, 423617, 434204, 435206, 453302, 460229, 475678, 482585, 501368, 516916, 519208,
        519611, 530836, 536038, 549055, 551780, 552775, 553664, 557172, 565607, 568290, 570448,
    ),
}  # fmt: skip


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------


def _boxes_xyxy(annotations: list[dict]) -> torch.Tensor:
    """float32 [N, 4] (x1, y1, x2, y2) of COCO annotations' (x, y, width, height) boxes."""
    boxes = torch.tensor([a["bbox"] for a in annotations], dtype=torch.float64).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    return boxes.to(torch.float32)


def _common_fields(annotations: list[dict], image_id: int) -> dict:
    return {
        "boxes": _boxes_xyxy(annotations),
        "iscrowd": torch.tensor([a["iscrowd"] for a in annotations], dtype=torch.int64),
        "area": torch.tensor([a["area"] for a in annotations], dtype=torch.float32),
        "image_id": int(image_id),
    }


def detection_target(annotations: list[dict], image_id: int) -> dict:
    """The detection target (torchvision's format) of an image's instance annotations."""
    target = _common_fields(annotations, image_id)
    target["labels"] = torch.tensor([a["category_id"] for a in annotations], dtype=torch.int64)
    return target


def keypoint_target(annotations: list[dict], image_id: int) -> dict:
    """The keypoint target (torchvision's format) of an image's person annotations."""
    people = [a for a in annotations if a["category_id"] == 1]
    target = _common_fields(people, image_id)
    target["labels"] = torch.ones(len(people), dtype=torch.int64)
    keypoints = torch.tensor([a["keypoints"] for a in people], dtype=torch.float32)
    target["keypoints"] = keypoints.reshape(len(people), NUM_KEYPOINTS, 3)
    return target


def training_targets(target: dict) -> dict:
    """``target`` without crowd annotations and degenerate boxes, for the training losses.

    torchvision's detection models take every box of a target as an object to find; a crowd
    region is not one object, and a box of zero width or height breaks their box coding. This
    keeps the rows with ``iscrowd == 0``, x2 > x1 and y2 > y1 of every per-object field
    (``boxes``, ``labels``, ``iscrowd``, ``area``, ``keypoints``). Evaluation must use the whole
    target (COCOeval needs the crowd regions), which is why :class:`CocoTasks` returns it.
    """
    boxes = target["boxes"]
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    if "iscrowd" in target:
        keep &= target["iscrowd"] == 0
    count = len(boxes)
    return {
        name: value[keep]
        if torch.is_tensor(value) and value.ndim and len(value) == count
        else value
        for name, value in target.items()
    }


def flip_targets(target: dict, width: int) -> dict:
    """``target`` for the image flipped left-right, ``width`` being the image's width.

    Boxes: x1, x2 become width - x2, width - x1. Keypoints: x becomes width - x, and the left and
    right keypoints swap places (:data:`KEYPOINT_FLIP`), so that a left wrist is still a left
    wrist; keypoints that are not labelled (visibility 0, stored as (0, 0, 0)) stay (0, 0, 0),
    as in torchvision's reference scripts.
    """
    flipped = dict(target)
    boxes = target["boxes"]
    flipped["boxes"] = torch.stack(
        [width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1
    )
    if "keypoints" in target:
        keypoints = target["keypoints"][:, list(KEYPOINT_FLIP)].clone()
        labelled = keypoints[..., 2] > 0
        keypoints[..., 0] = torch.where(labelled, width - keypoints[..., 0], 0.0)
        flipped["keypoints"] = keypoints
    return flipped


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------


class CocoTasks(AugmentedSplit):
    """COCO 2017 images with detection and keypoint targets (paper Sec. 4.3, appendix D.5).

    Item ``i`` is ``(image, detection, keypoints)``: ``image`` float32 [3, H, W] RGB in [0, 1],
    and the two targets of the module docstring (crowd annotations included; see
    :func:`training_targets`). Every image of the split's annotation file is an item, in
    increasing image id (:attr:`image_ids`), including the images without any annotation.

    ``root``: a folder in the official layout, ``annotations/instances_<split>.json``,
    ``annotations/person_keypoints_<split>.json`` and ``<split>/`` with the images (default
    ``<data root>/coco``, the data root being :func:`gwnlib.data_dir`; the offline subset is
    ``<data root>/coco_small``). ``split``: one of :data:`SPLITS`.

    Images and instance annotations are read through ``torchvision.datasets.CocoDetection``; the
    keypoints through a second pycocotools ``COCO``. Both are exposed for COCOeval as
    :attr:`coco_instances` and :attr:`coco_keypoints`.

    ``augment=True`` (for training): each item is flipped left-right with probability 1/2
    (:func:`flip_targets`), drawn from (``seed``, epoch, index) as in
    :class:`gwnlib.data.cityscapes.CityscapesTasks`; call :meth:`set_epoch` at each epoch.
    """

    SPLITS = SPLITS

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train2017",
        augment: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(root, split, augment, seed, default_root)
        instances, keypoints = _check_layout(self.root, split)
        from pycocotools.coco import COCO
        from torchvision.datasets import CocoDetection

        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            self._detection = CocoDetection(str(self.root / split), str(instances))
            #: pycocotools ``COCO`` of ``person_keypoints_<split>.json``, for keypoint COCOeval.
            self.coco_keypoints = COCO(str(keypoints))
        #: pycocotools ``COCO`` of ``instances_<split>.json``, for box COCOeval.
        self.coco_instances = self._detection.coco
        #: The COCO image id of each item.
        self.image_ids: list[int] = list(self._detection.ids)

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict, dict]:
        index = int(index)
        image, annotations = self._detection[index]
        image_id = self.image_ids[index]
        image = torch.from_numpy(np.array(image)).permute(2, 0, 1).to(torch.float32).div_(255)
        people = self.coco_keypoints.loadAnns(self.coco_keypoints.getAnnIds(imgIds=[image_id]))
        detection = detection_target(annotations, image_id)
        keypoints = keypoint_target(people, image_id)
        if self.augment:
            generator = self.generator(index)
            if bool(torch.rand(1, generator=generator) < 0.5):
                width = image.shape[-1]
                image = image.flip(-1)
                detection = flip_targets(detection, width)
                keypoints = flip_targets(keypoints, width)
        return image, detection, keypoints


def default_root() -> Path:
    """``<data root>/coco``, where :class:`CocoTasks` looks by default."""
    return data_dir() / "coco"


def _check_layout(root: Path, split: str) -> tuple[Path, Path]:
    """The instance and keypoint annotation files of ``split`` under ``root``, which must hold
    them and the split's image folder."""
    instances = root / "annotations" / f"instances_{split}.json"
    keypoints = root / "annotations" / f"person_keypoints_{split}.json"
    missing = [p for p in (instances, keypoints, root / split) if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"COCO split {split!r} is not complete in {root}: missing "
            f"{', '.join(str(p) for p in missing)}. A COCO root holds the official layout "
            "annotations/instances_{train,val}2017.json, "
            "annotations/person_keypoints_{train,val}2017.json, train2017/ and val2017/. "
            f"Get it with gwnlib.data.coco.download_coco(root) (parts='annotations', 'val2017', "
            f"'train2017'), pass root=, or set the environment variable {DATA_DIR_ENV} to a data "
            "root whose coco/ folder holds it."
        )
    return instances, keypoints


# --------------------------------------------------------------------------------------------
# Batches of images of different sizes
# --------------------------------------------------------------------------------------------


def pad_to_multiple(
    images: Sequence[torch.Tensor], multiple: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch [B, C, H', W'], mask [B, 1, H', W'] bool) of images [C, H, W] of any sizes.

    Each image is padded with zeros at the bottom and right to the common size (H', W'): the
    largest height and width, each rounded up to a multiple of ``multiple`` (64 in the paper,
    the codec's total downsampling). ``mask`` is true on each image's own H x W pixels. The
    codec's rates are divided by the number of real pixels, ``mask[b].sum()``, never by
    H' x W' (paper appendix D.5); crop ``[..., :H, :W]`` before the task models.
    """
    check_int("multiple", multiple)
    images = list(images)
    if not images:
        raise ValueError("images must hold at least one image")
    channels = {image.shape[0] if image.ndim == 3 else None for image in images}
    if None in channels or len(channels) != 1:
        shapes = [tuple(image.shape) for image in images]
        raise ValueError(f"images must be [C, H, W] tensors with one C; got shapes {shapes}")
    height = -(-max(image.shape[1] for image in images) // multiple) * multiple
    width = -(-max(image.shape[2] for image in images) // multiple) * multiple
    first = images[0]
    batch = first.new_zeros((len(images), first.shape[0], height, width))
    mask = torch.zeros((len(images), 1, height, width), dtype=torch.bool, device=first.device)
    for b, image in enumerate(images):
        h, w = image.shape[1:]
        batch[b, :, :h, :w] = image
        mask[b, :, :h, :w] = True
    return batch, mask


def collate(batch: Sequence[tuple[torch.Tensor, dict, dict]]):
    """DataLoader ``collate_fn`` for :class:`CocoTasks`: ``(images, mask, detection targets,
    keypoint targets)``, the images padded by :func:`pad_to_multiple` (multiple 64) and the
    targets as lists (one dict per image, as torchvision's detection models take them)."""
    images, mask = pad_to_multiple([item[0] for item in batch], multiple=64)
    return images, mask, [item[1] for item in batch], [item[2] for item in batch]


# --------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------


def download_coco(
    root: str | Path | None = None,
    parts: Sequence[str] = ("annotations", "val2017"),
    progress: bool | None = None,
    keep_archives: bool = False,
) -> Path:
    """Download and unpack official COCO 2017 archives into ``root``; return ``root``.

    ``root`` defaults to ``<data root>/coco``; ``parts`` names archives of
    :data:`COCO_ARCHIVES` ("annotations", "val2017", "train2017"; the paper's experiment needs
    all three, 19 GiB). A part already unpacked (all :data:`ANNOTATION_FILES`, or the split's
    :data:`IMAGE_COUNTS` images) is skipped. Otherwise its zip is fetched with
    :func:`gwnlib.download.download_url` (resumable, checked against the archive's MD5),
    unpacked into ``root`` and, unless ``keep_archives``, deleted.
    """
    if isinstance(parts, str):
        parts = (parts,)
    for part in parts:
        if part not in COCO_ARCHIVES:
            raise ValueError(f"parts must hold names from {', '.join(COCO_ARCHIVES)}; got {part!r}")
    root = Path(root).expanduser().resolve() if root is not None else default_root()
    root.mkdir(parents=True, exist_ok=True)
    for part in parts:
        if _is_unpacked(root, part):
            continue
        archive = COCO_ARCHIVES[part]
        path = download_url(
            archive.url, root / archive.filename, md5=archive.md5, progress=progress
        )
        _unzip(path, root, progress)
        if not keep_archives:
            path.unlink()
    return root


def subset_annotations(annotations: dict, image_ids) -> dict:
    """An official annotation file (its parsed JSON) cut to the images ``image_ids``: their
    ``images`` and ``annotations`` entries, in the official order; ``info``, ``licenses`` and
    ``categories`` whole. Ids that the file lacks are an error naming them."""
    wanted = set(image_ids)
    images = [image for image in annotations["images"] if image["id"] in wanted]
    missing = wanted - {image["id"] for image in images}
    if missing:
        raise ValueError(f"image ids not in the annotations: {sorted(missing)[:10]}")
    return {
        **annotations,
        "images": images,
        "annotations": [a for a in annotations["annotations"] if a["image_id"] in wanted],
    }


def download_coco_small(root: str | Path | None = None, progress: bool | None = None) -> Path:
    """Make ``coco_small``, the smoke preset's real COCO subset (:data:`SMALL_IDS`), in
    ``root`` (default ``<data root>/coco_small``) from the official files; return ``root``.

    The annotations archive (about 241 MiB, MD5-checked) is fetched into a temporary folder,
    each of its four files is cut to the subset's images (:func:`subset_annotations`) and the
    archive is deleted; then the subset's 159 images are fetched one by one from
    :data:`IMAGES_URL` (about 27 MB). A subset already complete is left as it is, and an image
    already there is not fetched again.
    """
    root = Path(root).expanduser().resolve() if root is not None else data_dir() / "coco_small"
    notes = root / "annotations"
    if not all((notes / name).is_file() for name in ANNOTATION_FILES):
        notes.mkdir(parents=True, exist_ok=True)
        archive = COCO_ARCHIVES["annotations"]
        with tempfile.TemporaryDirectory(dir=root) as folder:
            path = download_url(
                archive.url, Path(folder) / archive.filename, md5=archive.md5, progress=progress
            )
            with zipfile.ZipFile(path) as members:
                for name in ANNOTATION_FILES:
                    split = name.rsplit("_", 1)[1].removesuffix(".json")
                    full = json.loads(members.read(f"annotations/{name}"))
                    write_json(notes / name, subset_annotations(full, SMALL_IDS[split]))
                    del full  # instances_train2017.json alone is 448 MB of JSON
    for split in SPLITS:
        images = json.loads((notes / f"instances_{split}.json").read_text())["images"]
        for image in tqdm(images, desc=f"coco_small {split}", disable=not show_progress(progress)):
            name = image["file_name"]
            download_url(f"{IMAGES_URL}/{split}/{name}", root / split / name, progress=False)
    return root


def _is_unpacked(root: Path, part: str) -> bool:
    if part == "annotations":
        return all((root / "annotations" / name).is_file() for name in ANNOTATION_FILES)
    folder = root / part
    return folder.is_dir() and sum(1 for _ in folder.glob("*.jpg")) >= IMAGE_COUNTS[part]


def _unzip(path: Path, root: Path, progress: bool | None) -> None:
    """Unpack the zip ``path`` into ``root``, refusing members that would land outside it."""
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        for member in members:
            target = (root / member.filename).resolve()
            if not target.is_relative_to(root):
                raise ValueError(f"{path} holds {member.filename!r}, which points outside {root}")
        for member in tqdm(
            members, desc=f"unpacking {path.name}", disable=not show_progress(progress)
        ):
            archive.extract(member, root)
