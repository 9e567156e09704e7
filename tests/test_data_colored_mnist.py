"""Colored MNIST (paper Sec. 4.2; REFERENCE.md "Colored MNIST") on the real MNIST files.

The conftest points GWN_DATA_DIR at the offline copy of MNIST, so these tests read real digits.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image, ImageColor, ImageOps

from gwnlib import data_dir
from gwnlib.data.colored_mnist import COLOURS, ColoredMNIST, colourise, split_indices
from gwnlib.data.colour_laws import (
    PAPER_VALUES,
    PMFS,
    colour_given_digit,
    pmf_table,
    pmf_theory,
    sample_colours,
)

LOG10 = math.log2(10)


@pytest.fixture(scope="module")
def mnist_train() -> torchvision.datasets.MNIST:
    return torchvision.datasets.MNIST(data_dir(), train=True, download=False)


@pytest.fixture(scope="module")
def train() -> ColoredMNIST:
    return ColoredMNIST(split="train", pmf="mixture", seed=0)


def _pil_reference(grey: np.ndarray, colour: int) -> np.ndarray:
    """The authors' pipeline: colorize, bicubic resize to 32x32, scale to [0, 1]; [3, 32, 32]."""
    image = ImageOps.colorize(Image.fromarray(grey, "L"), black="black", white=COLOURS[colour])
    resized = np.asarray(image.resize((32, 32), Image.Resampling.BICUBIC), dtype=np.float32)
    return np.moveaxis(resized / 255, -1, 0)


# --------------------------------------------------------------------------------------------
# The laws P(colour | digit) and their information measures
# --------------------------------------------------------------------------------------------


def test_colours_are_the_authors_pil_colours():
    assert COLOURS == (
        "red", "orange", "yellow", "lime", "green", "cyan", "blue", "purple", "magenta", "grey",
    )  # fmt: skip
    assert ImageColor.getrgb("orange") == (255, 165, 0)  # PIL's names, not matplotlib's


@pytest.mark.parametrize("pmf", PMFS)
def test_tables_are_probability_tables(pmf):
    conditional = colour_given_digit(pmf)
    assert conditional.shape == (10, 10) and np.all(conditional >= 0)
    np.testing.assert_allclose(conditional.sum(axis=1), 1.0, atol=1e-12)
    joint = pmf_table(pmf)
    assert joint.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(joint.sum(axis=1), 0.1, atol=1e-12)  # uniform digits


def test_mixture_law_gives_each_digit_its_colours():
    support = [set(np.flatnonzero(row)) for row in colour_given_digit("mixture")]
    assert support[:3] == [{0}, {1}, {2}]
    assert support[3:6] == [set(range(10))] * 3
    assert support[6:] == [{0, 1, 2, 3}, {2, 3, 4, 5}, {4, 5, 6, 7}, {6, 7, 8, 9}]
    np.testing.assert_array_equal(colour_given_digit("dependent"), np.eye(10))


# Gacs-Korner's K is the entropy of the connected component of the table's support (paper
# Eq. 8). Dependent: ten components (the diagonal), each of mass 1/10, so K = log2 10. Independent:
# one component, K = 0. Mixture: digits 3, 4, 5 may take every colour, which joins all digits
# and colours into one component, so K = 0 although I = 1.40 bits: none of the mixture's shared
# information can be split off as a common part that both tasks see for sure.
@pytest.mark.parametrize(
    "pmf, joint_entropy, information, gacs_korner",
    [
        ("dependent", LOG10, LOG10, LOG10),
        ("independent", 2 * LOG10, 0.0, 0.0),
        ("mixture", 5.1185, 1.4004, 0.0),
    ],
)
def test_theory_values(pmf, joint_entropy, information, gacs_korner):
    theory = pmf_theory(pmf)
    assert theory["joint_entropy"] == pytest.approx(joint_entropy, abs=1e-3)
    assert theory["mutual_information"] == pytest.approx(information, abs=1e-3)
    assert theory["gacs_korner"] == pytest.approx(gacs_korner, abs=1e-9)


@pytest.mark.parametrize("pmf", PMFS)
def test_paper_values_agree_with_theory_to_their_rounding(pmf):
    theory, paper = pmf_theory(pmf), PAPER_VALUES[pmf]
    assert theory["joint_entropy"] == pytest.approx(paper["joint_entropy"], abs=0.005)
    assert theory["mutual_information"] == pytest.approx(paper["mutual_information"], abs=0.05)


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pmf", PMFS)
def test_sampled_colours_follow_the_law(train, pmf):
    digits = train.digits.numpy()
    epochs = 4
    counts = np.zeros((10, 10))
    for epoch in range(epochs):
        colours = sample_colours(digits, pmf, seed=3, epoch=epoch)
        np.add.at(counts, (digits, colours), 1)
    law = colour_given_digit(pmf)
    assert np.all(counts[law == 0] == 0)  # impossible colours never appear
    # About 4 x 5,000 = 20,000 draws per digit: the standard error of a frequency is
    # sqrt(p (1 - p) / n) <= 0.0035. Five standard errors in any of the 100 cells would happen by
    # chance with probability about 100 x 6e-7; a wrong law (one colour off, a wrong range)
    # moves some frequency by at least 1/10 - 1/12 = 0.017, i.e. over 5 of them.
    n = counts.sum(axis=1, keepdims=True)
    frequency = counts / n
    standard_error = np.sqrt(np.maximum(law * (1 - law), 1e-12) / n)
    assert np.max(np.abs(frequency - law) / standard_error) < 5


def test_dataset_items_carry_the_sampled_colours(train):
    colours = train.colours()
    for i in range(0, len(train), 4999):
        image, (digit, colour) = train[i]
        assert colour == int(colours[i]) and digit == int(train.digits[i])
    expected = sample_colours(train.digits, "mixture", seed=0, epoch=0, stream=0)
    np.testing.assert_array_equal(colours.numpy(), expected)


# --------------------------------------------------------------------------------------------
# Colourisation
# --------------------------------------------------------------------------------------------


def test_black_stays_black_and_white_becomes_the_colour():
    black = colourise(np.zeros((10, 28, 28), dtype=np.uint8), np.arange(10))
    assert torch.count_nonzero(black) == 0
    white = colourise(np.full((10, 28, 28), 255, dtype=np.uint8), np.arange(10))
    for colour, name in enumerate(COLOURS):
        rgb = torch.tensor(ImageColor.getrgb(name), dtype=torch.float32) / 255
        assert torch.equal(white[colour], rgb[:, None, None].expand(3, 32, 32))


def test_colourise_reproduces_pil_on_real_digits(mnist_train):
    grey = mnist_train.data[:20].numpy()
    for colour in range(10):
        ours = colourise(grey, colour)
        for n in range(len(grey)):
            reference = _pil_reference(grey[n], colour)
            # bit for bit, far inside the 2/255 allowed for 8-bit rounding
            np.testing.assert_allclose(ours[n].numpy(), reference, rtol=0, atol=1e-7)


def test_dataset_images_are_the_pil_images(train, mnist_train):
    for i in (0, 1, 777, 12_345, len(train) - 1):
        image, (digit, colour) = train[i]
        grey = mnist_train.data[train.indices[i]].numpy()
        assert digit == int(mnist_train.targets[train.indices[i]])
        np.testing.assert_allclose(image.numpy(), _pil_reference(grey, colour), atol=1e-7)


def test_colourise_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        colourise(np.zeros((28, 28)), 0)
    with pytest.raises(ValueError, match="colours"):
        colourise(np.zeros((28, 28), dtype=np.uint8), 10)


# --------------------------------------------------------------------------------------------
# Splits and reproducibility
# --------------------------------------------------------------------------------------------


def test_splits_partition_mnist_the_same_way_for_every_seed():
    train = ColoredMNIST(split="train", seed=0)
    val = ColoredMNIST(split="val", seed=0)
    test = ColoredMNIST(split="test", seed=0)
    assert (len(train), len(val), len(test)) == (50_000, 10_000, 10_000)
    assert np.intersect1d(train.indices, val.indices).size == 0
    np.testing.assert_array_equal(
        np.sort(np.concatenate([train.indices, val.indices])), np.arange(60_000)
    )
    np.testing.assert_array_equal(ColoredMNIST(split="val", seed=7).indices, val.indices)
    np.testing.assert_array_equal(ColoredMNIST(split="train", seed=7).indices, train.indices)
    assert set(split_indices("val", 2_000)) <= set(val.indices)  # smaller val sets are nested


def test_same_seed_and_epoch_give_identical_items():
    a = ColoredMNIST(split="train", pmf="independent", seed=5)
    b = ColoredMNIST(split="train", pmf="independent", seed=5)
    a.set_epoch(2)
    b.set_epoch(2)
    assert torch.equal(a.colours(), b.colours())
    for i in (0, 100, 40_000):
        image_a, labels_a = a[i]
        image_b, labels_b = b[i]
        assert torch.equal(image_a, image_b) and labels_a == labels_b


def test_training_colours_change_with_epoch_and_seed():
    data = ColoredMNIST(split="train", pmf="independent", seed=0)
    first = data.colours()
    data.set_epoch(1)
    assert data.epoch == 1
    second = data.colours()
    assert (first != second).float().mean() > 0.85  # independent draws agree 1 time in 10
    assert torch.equal(data.colours(epoch=0), first)
    data.set_epoch(0)
    assert torch.equal(data.colours(), first)
    other_seed = ColoredMNIST(split="train", pmf="independent", seed=1)
    assert (other_seed.colours() != first).float().mean() > 0.85


@pytest.mark.parametrize("split", ["val", "test"])
def test_evaluation_colours_stay_fixed_across_epochs(split):
    data = ColoredMNIST(split=split, pmf="mixture", seed=0)
    before = data.colours()
    data.set_epoch(3)
    assert torch.equal(data.colours(), before)
    assert torch.equal(data.colours(epoch=9), before)
    assert torch.equal(data.tensors(epoch=4)[2], before)
    other_seed = ColoredMNIST(split=split, pmf="mixture", seed=1)
    assert not torch.equal(other_seed.colours(), before)


def test_splits_draw_from_separate_streams():
    # The independent law ignores the digit, so one shared stream would colour the first 10,000
    # val and test items alike.
    val = ColoredMNIST(split="val", pmf="independent", seed=0)
    test = ColoredMNIST(split="test", pmf="independent", seed=0)
    assert (val.colours() != test.colours()).float().mean() > 0.85


def test_dependent_colours_are_the_digits():
    data = ColoredMNIST(split="val", pmf="dependent", seed=11)
    assert torch.equal(data.colours(), data.digits)


# --------------------------------------------------------------------------------------------
# Shapes, dtypes and the whole-split tensors
# --------------------------------------------------------------------------------------------


def test_items_shapes_dtypes_and_ranges(train):
    image, (digit, colour) = train[3]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.max() > 0.3
    assert isinstance(digit, int) and isinstance(colour, int)
    assert 0 <= digit <= 9 and 0 <= colour <= 9
    assert train.root == data_dir()
    loader = torch.utils.data.DataLoader(train, batch_size=8)
    images, (digits, colours) = next(iter(loader))
    assert images.shape == (8, 3, 32, 32)
    assert digits.dtype == colours.dtype == torch.int64


def test_tensors_equal_the_items():
    data = ColoredMNIST(split="val", pmf="independent", seed=2)
    images, digits, colours = data.tensors()
    assert images.shape == (10_000, 3, 32, 32) and images.dtype == torch.float32
    assert digits.dtype == colours.dtype == torch.int64 and digits.shape == colours.shape
    assert 0.0 <= images.min() and images.max() <= 1.0
    for i in (0, 4_321, 9_999):
        image, (digit, colour) = data[i]
        assert torch.equal(images[i], image) and (digit, colour) == (digits[i], colours[i])


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_unknown_pmf_and_split_list_the_accepted_values():
    accepted = "dependent, independent, mixture"
    with pytest.raises(ValueError, match=f"pmf must be one of {accepted}; got 'colour'"):
        colour_given_digit("colour")
    with pytest.raises(ValueError, match=f"pmf must be one of {accepted}"):
        ColoredMNIST(pmf="Dependent")
    with pytest.raises(ValueError, match="split must be one of train, val, test; got 'validation'"):
        ColoredMNIST(split="validation")


def test_bad_sizes_and_epochs_are_refused():
    with pytest.raises(ValueError, match="val_size"):
        ColoredMNIST(split="val", val_size=60_000)
    with pytest.raises(ValueError, match="val_size"):
        ColoredMNIST(split="val", val_size=0)
    with pytest.raises(ValueError, match="epoch"):
        ColoredMNIST(split="test").set_epoch(-1)


def test_missing_mnist_says_where_to_put_it(tmp_path):
    with pytest.raises(RuntimeError) as error:
        ColoredMNIST(root=tmp_path, download=False)
    message = str(error.value)
    assert str(tmp_path.resolve() / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert "download=True" in message and "GWN_DATA_DIR" in message


def test_the_download_command_fetches_mnist_where_it_is_missing(tmp_path, capsys):
    """``python -m gwnlib download mnist`` is torchvision's download, which here finds the
    four archives (no internet) and unpacks them: both splits load afterwards."""
    import shutil

    from gwnlib.__main__ import main

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for archive in (data_dir() / "MNIST" / "raw").glob("*.gz"):
        shutil.copy(archive, raw)
    assert len(list(raw.iterdir())) == 4
    assert main(["download", "mnist", "--root", str(tmp_path)]) == 0
    assert f"MNIST: {tmp_path / 'MNIST'}" in capsys.readouterr().out
    test = torchvision.datasets.MNIST(tmp_path, train=False, download=False)
    assert len(test) == 10_000
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "MNIST").write_text("not a folder")  # where the files should go: refused, named
    assert main(["download", "mnist", "--root", str(empty)]) == 1
    assert "MNIST is not in" in capsys.readouterr().err
