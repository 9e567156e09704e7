"""gwnlib.data.coco (paper Sec. 4.3, appendix D.5) on the offline real COCO 2017 subset.

The conftest points GWN_DATA_DIR at ../shared/data when it exists; its coco_small folder holds
real COCO images and trimmed official annotations in the official layout. Tests that need it are
skipped, with the reason, where it is absent. Padding, flips and download_coco need no data.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gwnlib import data_dir
from gwnlib.data import coco
from gwnlib.data.coco import (
    KEYPOINT_FLIP,
    CocoArchive,
    CocoTasks,
    collate,
    download_coco,
    flip_targets,
    pad_to_multiple,
    training_targets,
)

COCO_SMALL = data_dir() / "coco_small"
needs_coco = pytest.mark.skipif(
    not (COCO_SMALL / "annotations").is_dir(),
    reason=f"the offline COCO subset is not in {COCO_SMALL} (set GWN_DATA_DIR to ../shared/data)",
)


@pytest.fixture(scope="module")
def val() -> CocoTasks:
    return CocoTasks(COCO_SMALL, split="val2017")


@pytest.fixture(scope="module")
def raw() -> dict:
    """The val2017 json files as plain dicts: images and annotations by image id."""
    result = {}
    for kind in ("instances", "person_keypoints"):
        data = json.loads((COCO_SMALL / "annotations" / f"{kind}_val2017.json").read_text())
        by_image = {image["id"]: [] for image in data["images"]}
        for annotation in data["annotations"]:
            by_image[annotation["image_id"]].append(annotation)
        result[kind] = by_image
        result["images"] = {image["id"]: image for image in data["images"]}
    return result


# --------------------------------------------------------------------------------------------
# The dataset on real COCO
# --------------------------------------------------------------------------------------------


@needs_coco
def test_items_have_the_documented_shapes(val, raw):
    assert len(val) == 79 and val.image_ids == sorted(raw["images"])
    for index in (0, 6, 31):
        image, detection, keypoints = val[index]
        info = raw["images"][val.image_ids[index]]
        assert image.dtype == torch.float32 and image.shape == (3, info["height"], info["width"])
        assert 0 <= image.min() and image.max() <= 1 and image.max() > 0.5
        n = len(raw["instances"][info["id"]])
        assert detection["boxes"].shape == (n, 4) and detection["boxes"].dtype == torch.float32
        assert detection["labels"].dtype == torch.int64 and detection["iscrowd"].shape == (n,)
        assert detection["area"].shape == (n,) and detection["image_id"] == info["id"]
        people = len(raw["person_keypoints"][info["id"]])
        assert keypoints["keypoints"].shape == (people, 17, 3)
        assert keypoints["keypoints"].dtype == torch.float32
        assert keypoints["boxes"].shape == (people, 4)
        assert keypoints["labels"].tolist() == [1] * people and keypoints["image_id"] == info["id"]


@needs_coco
def test_boxes_are_the_json_boxes_as_xyxy(val, raw):
    for index in range(0, len(val), 10):
        _, detection, keypoints = val[index]
        image_id = val.image_ids[index]
        for target, objects in (
            (detection, raw["instances"][image_id]),
            (keypoints, raw["person_keypoints"][image_id]),
        ):
            xywh = np.array([a["bbox"] for a in objects], dtype=np.float64).reshape(-1, 4)
            xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
            np.testing.assert_allclose(target["boxes"].numpy(), xyxy, rtol=0, atol=1e-4)
        labels = [a["category_id"] for a in raw["instances"][image_id]]
        assert detection["labels"].tolist() == labels
        assert all(1 <= label <= 90 for label in labels)
        points = [a["keypoints"] for a in raw["person_keypoints"][image_id]]
        assert keypoints["keypoints"].reshape(-1, 51).tolist() == points


@needs_coco
def test_image_without_people_has_empty_keypoint_targets(val, raw):
    assert not raw["person_keypoints"][val.image_ids[1]]
    _, _, keypoints = val[1]
    assert keypoints["boxes"].shape == (0, 4) and keypoints["keypoints"].shape == (0, 17, 3)
    assert training_targets(keypoints)["keypoints"].shape == (0, 17, 3)


@needs_coco
def test_crowd_is_kept_for_evaluation_and_dropped_for_training(val, raw):
    image_id = val.image_ids[31]
    crowd = [a for a in raw["instances"][image_id] if a["iscrowd"]]
    assert crowd  # this image has a crowd region, in both annotation files
    _, detection, keypoints = val[31]
    assert detection["iscrowd"].sum() == len(crowd) and keypoints["iscrowd"].sum() >= 1
    assert val.coco_instances.loadAnns([crowd[0]["id"]])[0]["iscrowd"] == 1
    train_detection = training_targets(detection)
    assert len(train_detection["boxes"]) == len(detection["boxes"]) - len(crowd)
    assert (train_detection["iscrowd"] == 0).all()
    assert train_detection["image_id"] == image_id
    for name in ("labels", "area", "iscrowd"):
        assert len(train_detection[name]) == len(train_detection["boxes"])
    train_keypoints = training_targets(keypoints)
    assert len(train_keypoints["keypoints"]) == len(keypoints["keypoints"]) - 1


@needs_coco
def test_ground_truth_scores_a_perfect_coco_map(val):
    """Targets fed back as detections: COCOeval (which reads the official annotations, crowd
    included) gives AP 1, so image ids, category ids and boxes all round-trip."""
    from pycocotools.cocoeval import COCOeval

    results = []
    for index in range(len(val)):
        _, detection, _ = val[index]
        for box, label in zip(
            training_targets(detection)["boxes"].tolist(),
            training_targets(detection)["labels"].tolist(),
            strict=True,
        ):
            x1, y1, x2, y2 = box
            bbox = [x1, y1, x2 - x1, y2 - y1]
            results.append({"image_id": val.image_ids[index], "category_id": label,
                            "bbox": bbox, "score": 1.0})  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = COCOeval(val.coco_instances, val.coco_instances.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)


@needs_coco
def test_flip_moves_boxes_and_swaps_left_and_right_keypoints(val):
    augmented = CocoTasks(COCO_SMALL, split="val2017", augment=True, seed=0)
    flips = set()
    for index in (0, 6, 9, 31):
        image, detection, keypoints = val[index]
        width = image.shape[-1]
        for epoch in range(3):
            augmented.set_epoch(epoch)
            got_image, got_detection, got_keypoints = augmented[index]
            again = augmented[index]
            assert torch.equal(again[0], got_image)
            assert torch.equal(again[2]["keypoints"], got_keypoints["keypoints"])
            flipped = not torch.equal(got_image, image)
            flips.add(flipped)
            if not flipped:
                assert torch.equal(got_detection["boxes"], detection["boxes"])
                continue
            assert torch.equal(got_image, image.flip(-1))
            boxes = detection["boxes"]
            assert torch.equal(got_detection["boxes"][:, 0], width - boxes[:, 2])
            assert torch.equal(got_detection["boxes"][:, 2], width - boxes[:, 0])
            assert torch.equal(got_detection["boxes"][:, 1::2], boxes[:, 1::2])
            before, after = keypoints["keypoints"], got_keypoints["keypoints"]
            for k, source in enumerate(KEYPOINT_FLIP):
                labelled = before[:, source, 2] > 0
                assert torch.equal(after[:, k, 2], before[:, source, 2])
                assert torch.equal(after[labelled, k, 0], width - before[labelled, source, 0])
                assert (after[~labelled, k] == 0).all()
    assert flips == {True, False}


@needs_coco
def test_dataloader_batches_are_padded_to_64(val):
    loader = torch.utils.data.DataLoader(val, batch_size=3, collate_fn=collate)
    images, mask, detections, keypoints = next(iter(loader))
    assert images.shape[0] == 3 and images.shape[-2] % 64 == 0 and images.shape[-1] % 64 == 0
    assert mask.shape == (3, 1, *images.shape[-2:]) and mask.dtype == torch.bool
    for b in range(3):
        image, detection, _ = val[b]
        h, w = image.shape[-2:]
        assert mask[b].sum() == h * w
        assert torch.equal(images[b, :, :h, :w], image)
        assert torch.equal(detections[b]["boxes"], detection["boxes"])
    assert len(keypoints) == 3


@needs_coco
def test_set_epoch_is_checked(val):
    with pytest.raises(ValueError, match="epoch must be an integer >= 0"):
        val.set_epoch(1.5)


# --------------------------------------------------------------------------------------------
# Without data
# --------------------------------------------------------------------------------------------


def test_flip_targets_by_hand():
    keypoints = torch.zeros(1, 17, 3)
    keypoints[0, 1] = torch.tensor([10.0, 5.0, 2.0])  # left eye
    keypoints[0, 0] = torch.tensor([12.0, 6.0, 1.0])  # nose
    target = {"boxes": torch.tensor([[2.0, 3.0, 20.0, 30.0]]), "keypoints": keypoints}
    flipped = flip_targets(target, width=100)
    assert flipped["boxes"].tolist() == [[80.0, 3.0, 98.0, 30.0]]
    assert flipped["keypoints"][0, 2].tolist() == [90.0, 5.0, 2.0]  # now the right eye
    assert flipped["keypoints"][0, 0].tolist() == [88.0, 6.0, 1.0]
    assert (flipped["keypoints"][0, 1] == 0).all()  # the right eye was not labelled
    twice = flip_targets(flipped, width=100)
    assert torch.equal(twice["boxes"], target["boxes"])
    assert torch.equal(twice["keypoints"], target["keypoints"])
    assert sorted(KEYPOINT_FLIP) == list(range(17))
    assert all(KEYPOINT_FLIP[KEYPOINT_FLIP[k]] == k for k in range(17))


def test_training_targets_drop_degenerate_boxes():
    target = {
        "boxes": torch.tensor([[0.0, 0, 5, 5], [3, 3, 3, 9], [1, 1, 4, 1], [0, 0, 1, 1]]),
        "labels": torch.tensor([1, 2, 3, 4]),
        "iscrowd": torch.tensor([0, 0, 0, 1]),
        "image_id": 7,
    }
    kept = training_targets(target)
    assert kept["labels"].tolist() == [1] and kept["boxes"].shape == (1, 4)
    assert kept["image_id"] == 7 and len(target["labels"]) == 4  # the input is untouched


def test_pad_to_multiple_shapes_and_masks():
    images = [torch.rand(3, 50, 70), torch.rand(3, 64, 65), torch.rand(3, 1, 1)]
    batch, mask = pad_to_multiple(images)
    assert batch.shape == (3, 3, 64, 128) and mask.shape == (3, 1, 64, 128)
    assert mask.dtype == torch.bool
    assert mask.sum(dim=(1, 2, 3)).tolist() == [50 * 70, 64 * 65, 1]
    for b, image in enumerate(images):
        h, w = image.shape[1:]
        assert torch.equal(batch[b, :, :h, :w], image)
        assert mask[b, 0, :h, :w].all()
        assert (batch[b][~mask[b].expand(3, -1, -1)] == 0).all()
    batch, mask = pad_to_multiple([torch.rand(3, 128, 192)], multiple=64)
    assert batch.shape == (1, 3, 128, 192) and mask.all()  # already a multiple: no padding
    assert pad_to_multiple([torch.rand(3, 5, 7)], multiple=1)[0].shape == (1, 3, 5, 7)


def test_pad_to_multiple_errors():
    with pytest.raises(ValueError, match="multiple must be an integer >= 1; got 0"):
        pad_to_multiple([torch.rand(3, 4, 4)], multiple=0)
    with pytest.raises(ValueError, match="at least one image"):
        pad_to_multiple([])
    with pytest.raises(ValueError, match=r"\[C, H, W\] tensors with one C"):
        pad_to_multiple([torch.rand(3, 4, 4), torch.rand(1, 4, 4)])
    with pytest.raises(ValueError, match=r"\[C, H, W\] tensors with one C"):
        pad_to_multiple([torch.rand(4, 4)])


def test_missing_dataset_and_bad_split(tmp_path, monkeypatch):
    monkeypatch.setenv("GWN_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        CocoTasks()
    message = str(error.value)
    assert str(tmp_path / "coco" / "annotations" / "instances_train2017.json") in message
    for words in ("person_keypoints_{train,val}2017.json", "download_coco", "GWN_DATA_DIR"):
        assert words in message
    with pytest.raises(ValueError, match="split must be one of train2017, val2017; got 'test2017'"):
        CocoTasks(tmp_path, split="test2017")


# --------------------------------------------------------------------------------------------
# download_coco, from local zips through file:// URLs
# --------------------------------------------------------------------------------------------


def _zip(path: Path, members: dict[str, bytes]) -> CocoArchive:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return CocoArchive(path.as_uri(), hashlib.md5(path.read_bytes()).hexdigest())


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_download_coco_fetches_checks_and_unpacks(tmp_path, monkeypatch):
    source = tmp_path / "source"
    source.mkdir()
    jsons = {f"annotations/{name}": b"{}" for name in coco.ANNOTATION_FILES}
    images = {f"val2017/{i:012d}.jpg": _jpeg() for i in (1, 2)}
    archives = {
        "annotations": _zip(source / "annotations_trainval2017.zip", jsons),
        "val2017": _zip(source / "val2017.zip", images),
    }
    monkeypatch.setattr(coco, "COCO_ARCHIVES", archives)
    monkeypatch.setattr(coco, "IMAGE_COUNTS", {"val2017": 2})
    root = tmp_path / "coco"
    assert download_coco(root, progress=False) == root
    assert sorted(p.name for p in (root / "val2017").iterdir()) == [
        "000000000001.jpg",
        "000000000002.jpg",
    ]
    assert sorted(p.name for p in (root / "annotations").iterdir()) == sorted(coco.ANNOTATION_FILES)
    assert not list(root.glob("*.zip"))  # archives removed after unpacking
    for archive in source.iterdir():  # a second call finds everything unpacked
        archive.unlink()
    download_coco(root, parts="val2017", progress=False)


def test_download_coco_refuses_bad_archives_and_parts(tmp_path, monkeypatch):
    archive = _zip(tmp_path / "val2017.zip", {"../outside.jpg": b"x"})
    monkeypatch.setattr(coco, "COCO_ARCHIVES", {"val2017": archive})
    with pytest.raises(ValueError, match="points outside"):
        download_coco(tmp_path / "coco", parts=("val2017",), progress=False)
    assert not (tmp_path / "outside.jpg").exists()
    wrong = CocoArchive(archive.url, "0" * 32)
    monkeypatch.setattr(coco, "COCO_ARCHIVES", {"val2017": wrong})
    with pytest.raises(ValueError, match="checksum mismatch"):
        download_coco(tmp_path / "other", parts=("val2017",), progress=False)
    with pytest.raises(ValueError, match="parts must hold names from val2017; got 'test2017'"):
        download_coco(tmp_path / "coco", parts=("test2017",))


def test_official_archives_and_checksums():
    archives = {name: (a.url, a.md5) for name, a in coco.COCO_ARCHIVES.items()}
    assert archives == {
        "annotations": (
            "http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
            "f4bbac642086de4f52a3fdda2de5fa2c",
        ),
        "val2017": ("http://images.cocodataset.org/zips/val2017.zip",
                    "442b8da7639aecaf257c1dceb8ba8c80"),
        "train2017": ("http://images.cocodataset.org/zips/train2017.zip",
                      "cced6f7f71b7629ddf16f17bbcfab6b2"),
    }  # fmt: skip
    assert coco.COCO_ARCHIVES["val2017"].filename == "val2017.zip"


@needs_coco
def test_download_coco_small_makes_the_offline_subset_from_the_official_files(
    tmp_path, monkeypatch, capsys
):
    """From an annotations archive holding more than the subset (here: the offline subset's
    files with one more image and its annotation) and a folder of single images (the offline
    subset's, through file:// URLs), ``python -m gwnlib download coco_small`` writes the
    offline subset again: the same annotations, the same images. So SMALL_IDS lists the
    offline copy's images, and the build without that copy reads what the tests read."""
    from gwnlib.__main__ import main

    jsons = {}
    for name in coco.ANNOTATION_FILES:
        data = json.loads((COCO_SMALL / "annotations" / name).read_text())
        extra = {**data["images"][0], "id": 1, "file_name": "000000000001.jpg"}
        data["images"].insert(1, extra)
        data["annotations"].insert(0, {**data["annotations"][0], "id": 10**12, "image_id": 1})
        jsons[f"annotations/{name}"] = json.dumps(data).encode()
    archive = _zip(tmp_path / "annotations_trainval2017.zip", jsons)
    monkeypatch.setattr(coco, "COCO_ARCHIVES", {"annotations": archive})
    monkeypatch.setattr(coco, "IMAGES_URL", COCO_SMALL.as_uri())
    assert main(["download", "coco_small", "--root", str(tmp_path / "data")]) == 0
    made = tmp_path / "data" / "coco_small"
    assert f"COCO subset: {made}" in capsys.readouterr().out
    for name in coco.ANNOTATION_FILES:
        expected = json.loads((COCO_SMALL / "annotations" / name).read_text())
        assert json.loads((made / "annotations" / name).read_text()) == expected, name
    for split in coco.SPLITS:
        names = sorted(p.name for p in (COCO_SMALL / split).iterdir())
        assert sorted(p.name for p in (made / split).iterdir()) == names
        assert len(names) == len(coco.SMALL_IDS[split])
    assert (made / "val2017" / names[0]).read_bytes() == (
        COCO_SMALL / "val2017" / names[0]
    ).read_bytes()
    assert sorted(p.name for p in made.iterdir()) == ["annotations", "train2017", "val2017"]
    archive_path = tmp_path / "annotations_trainval2017.zip"
    archive_path.unlink()  # a second call finds the subset complete and fetches nothing
    assert main(["download", "coco_small", "--root", str(tmp_path / "data")]) == 0


def test_subset_annotations_names_missing_ids():
    full = {"info": {}, "images": [{"id": 5}], "annotations": [{"id": 1, "image_id": 5}]}
    assert coco.subset_annotations(full, [5]) == full
    with pytest.raises(ValueError, match=r"image ids not in the annotations: \[7\]"):
        coco.subset_annotations(full, [5, 7])
