"""gwnlib.data.cityscapes (paper Sec. 4.3, appendix D.5) on a synthetic tree in the official layout.

Cityscapes itself cannot be redistributed, so these tests write a tiny fake tree with
write_synthetic_cityscapes and check the label table, the 16-bit disparity decoding, the dataset
and its augmentation against it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from gwnlib.data.augment import augmentation_generator
from gwnlib.data.cityscapes import (
    CLASS_NAMES,
    DISPARITY_SCALE,
    IGNORE_INDEX,
    NUM_CLASSES,
    CityscapesTasks,
    colour_jitter,
    decode_disparity,
    disparity_path,
    label_ids_to_train_ids,
    read_png_uint16,
)
from gwnlib.data.synthetic_cityscapes import write_synthetic_cityscapes


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_synthetic_cityscapes(
        tmp_path_factory.mktemp("cityscapes"), images_per_city=3, size=(48, 96)
    )


@pytest.fixture(scope="module")
def train(root):
    return CityscapesTasks(root, split="train")


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------


def test_label_ids_map_to_the_official_train_ids():
    label_ids = np.array([7, 26, 0, 33, 8, 11, 23, 24, -1, 1, 9, 34, 255, -7])
    expected = [0, 13, 255, 18, 1, 2, 10, 11, 255, 255, 255, 255, 255, 255]
    assert label_ids_to_train_ids(label_ids).tolist() == expected
    mapped = label_ids_to_train_ids(torch.arange(-1, 34).reshape(5, 7))
    assert mapped.dtype == torch.int64 and mapped.shape == (5, 7)
    assert sorted(set(mapped.flatten().tolist()) - {IGNORE_INDEX}) == list(range(NUM_CLASSES))
    assert label_ids_to_train_ids(np.array([[26]], dtype=np.uint8)).tolist() == [[13]]


def test_label_mapping_refuses_non_integer_labels():
    with pytest.raises(TypeError, match="label must hold integer label ids"):
        label_ids_to_train_ids(np.array([7.0]))


def test_class_names_follow_the_train_ids():
    assert len(CLASS_NAMES) == NUM_CLASSES == 19
    assert CLASS_NAMES[0] == "road" and CLASS_NAMES[13] == "car" and CLASS_NAMES[18] == "bicycle"
    assert IGNORE_INDEX == 255 and DISPARITY_SCALE == 128.0


# --------------------------------------------------------------------------------------------
# Disparity
# --------------------------------------------------------------------------------------------


def test_decode_disparity():
    png = np.array([[0, 1, 257, 65535]], dtype=np.uint16)
    disparity, valid = decode_disparity(png)
    assert disparity.dtype == torch.float32 and valid.dtype == torch.bool
    assert valid.tolist() == [[False, True, True, True]]
    assert disparity.tolist() == [[0.0, 0.0, 1.0, 65534 / 256]]  # 255.9921875, exact in float32
    assert decode_disparity(torch.tensor([513]))[0].item() == 2.0
    with pytest.raises(ValueError, match="0..65535"):
        decode_disparity(np.array([70_000]))
    with pytest.raises(TypeError, match="integer 16-bit"):
        decode_disparity(np.array([1.5]))


def test_16_bit_png_round_trip(tmp_path):
    values = np.random.default_rng(1).integers(0, 65536, size=(20, 30)).astype(np.uint16)
    values[0, :3] = [0, 32768, 65535]  # zero and the values a signed 16-bit read would break
    Image.fromarray(values).save(tmp_path / "d.png")
    read = read_png_uint16(tmp_path / "d.png")
    assert read.dtype == np.uint16 and np.array_equal(read, values)
    # Older Pillow versions open 16-bit files as 32-bit mode "I"; that branch, through a TIFF:
    Image.fromarray(values.astype(np.int32)).save(tmp_path / "d.tif")
    assert np.array_equal(read_png_uint16(tmp_path / "d.tif"), values)
    Image.fromarray(values.astype(np.uint8)).save(tmp_path / "d8.png")
    with pytest.raises(ValueError, match="must be a 16-bit greyscale PNG"):
        read_png_uint16(tmp_path / "d8.png")


def test_disparity_path_replaces_folder_and_suffix():
    image = "/data/leftImg8bit_copy/leftImg8bit/val/lindau/lindau_000001_000019_leftImg8bit.png"
    assert str(disparity_path(image)) == (
        "/data/leftImg8bit_copy/disparity/val/lindau/lindau_000001_000019_disparity.png"
    )
    with pytest.raises(ValueError, match="image_path must look like"):
        disparity_path("/data/leftImg8bit/val/lindau/lindau_000001_000019_gtFine_labelIds.png")


# --------------------------------------------------------------------------------------------
# The synthetic tree and the dataset
# --------------------------------------------------------------------------------------------


def test_synthetic_tree_has_the_official_layout(root):
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*.png"))
    assert len(files) == 2 * 3 * 3  # splits x images x (image, labelIds, disparity)
    assert "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png" in files
    assert "gtFine/val/frankfurt/frankfurt_000002_000019_gtFine_labelIds.png" in files
    assert "disparity/train/aachen/aachen_000001_000019_disparity.png" in files
    image, label = torchvision.datasets.Cityscapes(root, split="val", target_type="semantic")[0]
    assert image.mode == "RGB" and image.size == (96, 48) and label.mode == "L"
    png = Image.open(root / "disparity/train/aachen/aachen_000000_000019_disparity.png")
    assert png.mode == "I;16"


def test_items_have_the_documented_shapes_types_and_ranges(root, train):
    assert len(train) == 3 and len(CityscapesTasks(root, split="val")) == 3
    assert train.images == sorted(train.images)
    for item in train:
        assert set(item) == {"image", "segmentation", "disparity", "valid"}
        assert item["image"].shape == (3, 48, 96) and item["image"].dtype == torch.float32
        assert 0 <= item["image"].min() and item["image"].max() <= 1
        assert item["segmentation"].shape == (48, 96) and item["segmentation"].dtype == torch.int64
        classes = set(item["segmentation"].unique().tolist())
        assert {0, 13, IGNORE_INDEX} <= classes <= set(range(NUM_CLASSES)) | {IGNORE_INDEX}
        assert item["disparity"].dtype == torch.float32 and item["valid"].dtype == torch.bool
        assert item["disparity"].shape == item["valid"].shape == (48, 96)
        assert item["valid"].any() and not item["valid"].all()
        assert (item["disparity"][~item["valid"]] == 0).all()
        assert (item["disparity"][item["valid"]] > 0).all()


def test_items_match_the_files(root, train):
    item = train[1]
    png = read_png_uint16(train.disparities[1])
    assert torch.equal(
        item["disparity"], torch.from_numpy((png.astype(np.float32) - 1) / 256).clamp(min=0)
    )
    rgb = np.array(Image.open(train.images[1]))
    assert torch.equal(item["image"], torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)
    labels = np.array(
        Image.open(root / "gtFine/train/aachen/aachen_000001_000019_gtFine_labelIds.png")
    )
    assert torch.equal(item["segmentation"], label_ids_to_train_ids(labels))


def test_synthetic_images_follow_their_labels(train):
    item = train[0]
    image, labels = item["image"], item["segmentation"]
    road = image[:, labels == 0].mean(dim=1)
    car = image[:, labels == 13].mean(dim=1)
    assert (road - car).abs().max() > 0.2  # regions have their own colours
    assert write_synthetic_cityscapes.__doc__.count("not Cityscapes") == 1


def test_augmentation_is_reproducible_and_flips_every_map_together(root, train):
    augmented = CityscapesTasks(root, split="train", augment=True, seed=3)
    again = CityscapesTasks(root, split="train", augment=True, seed=3)
    flips = set()
    for epoch in range(4):
        augmented.set_epoch(epoch)
        again.set_epoch(epoch)
        for index in range(len(train)):
            plain, item = train[index], augmented[index]
            for name in item:
                assert torch.equal(item[name], again[index][name])
            flipped = not torch.equal(item["segmentation"], plain["segmentation"])
            flips.add(flipped)
            view = (lambda t: t.flip(-1)) if flipped else (lambda t: t)
            for name in ("segmentation", "disparity", "valid"):
                assert torch.equal(item[name], view(plain[name]))
            assert not torch.equal(item["image"], view(plain["image"]))  # jittered
            generator = augmentation_generator(3, epoch, index)
            torch.rand(1, generator=generator)  # the flip's draw
            assert torch.equal(item["image"], colour_jitter(view(plain["image"]), generator))
    assert flips == {True, False}
    augmented.set_epoch(0)
    first = augmented[0]["image"]
    augmented.set_epoch(1)
    assert not torch.equal(first, augmented[0]["image"])


def test_colour_jitter_is_torchvisions_colorjitter_with_a_generator():
    image = torch.rand(3, 16, 24, generator=torch.Generator().manual_seed(5))
    for seed in range(5):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            expected = torchvision.transforms.ColorJitter(0.3, 0.3, 0.3)(image)
        got = colour_jitter(image, torch.Generator().manual_seed(seed))
        assert torch.equal(got, expected)


def test_set_epoch_and_split_are_checked(root, train):
    with pytest.raises(ValueError, match="epoch must be an integer >= 0; got -1"):
        train.set_epoch(-1)
    with pytest.raises(ValueError, match="split must be one of train, val, test; got 'training'"):
        CityscapesTasks(root, split="training")


# --------------------------------------------------------------------------------------------
# Missing data
# --------------------------------------------------------------------------------------------


def test_missing_dataset_explains_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GWN_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        CityscapesTasks()
    message = str(error.value)
    assert str(tmp_path / "cityscapes") in message
    for words in ("cityscapes-dataset.com", "pip install cityscapesscripts", "csDownload",
                  "disparity_trainvaltest.zip", "GWN_DATA_DIR"):  # fmt: skip
        assert words in message


def test_incomplete_split_names_what_is_missing(tmp_path):
    root = write_synthetic_cityscapes(tmp_path, splits=("train",), images_per_city=1)
    with pytest.raises(FileNotFoundError, match=r"'val' is incomplete.*csDownload"):
        CityscapesTasks(root, split="val")
    (root / "disparity/train/aachen/aachen_000000_000019_disparity.png").unlink()
    with pytest.raises(FileNotFoundError, match="1 of 1 disparity files"):
        CityscapesTasks(root, split="train")


def test_synthetic_writer_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="splits must hold names from train, val, test"):
        write_synthetic_cityscapes(tmp_path, splits=("training",))
    with pytest.raises(ValueError, match="images_per_city must be an integer >= 1"):
        write_synthetic_cityscapes(tmp_path, images_per_city=0)
    with pytest.raises(ValueError, match="size must be"):
        write_synthetic_cityscapes(tmp_path, size=(8, 8))
    with pytest.raises(ValueError, match="cities must name the cities of every split"):
        write_synthetic_cityscapes(tmp_path, cities={"train": ("ulm",)})
    root = write_synthetic_cityscapes(
        tmp_path, splits=("test",), cities=("bonn", "mainz"), size=(16, 32)
    )
    assert len(CityscapesTasks(root, split="test")) == 4
