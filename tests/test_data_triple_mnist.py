"""Three-task coloured MNIST (chapter "Beyond two tasks"): the laws P(colour, background | digit),
their exact information, and the dataset on the real MNIST files (the conftest points
GWN_DATA_DIR at the offline copy)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image, ImageOps

from gwnlib import data_dir
from gwnlib.data.colored_mnist import (
    COLOUR_RGB,
    COLOURS,
    ColoredMNIST,
    colorize_table,
    colourise,
    split_indices,
)
from gwnlib.data.triple_laws import (
    LAWS,
    MEASURES,
    attributes_given_digit,
    law_pmf,
    law_theory,
    sample_attributes,
    table,
)
from gwnlib.data.triple_mnist import (
    BACKGROUND_RGB,
    BACKGROUNDS,
    TripleColoredMNIST,
    colourise_on,
)
from gwnlib.theory.entropy import interaction_information

L = math.log2(10)
L5 = math.log2(5)


@pytest.fixture(scope="module")
def mnist_test() -> torchvision.datasets.MNIST:
    return torchvision.datasets.MNIST(data_dir(), train=False, download=False)


@pytest.fixture(scope="module")
def train() -> TripleColoredMNIST:
    return TripleColoredMNIST(split="train", law="pairwise", seed=0)


# --------------------------------------------------------------------------------------------
# The laws and their exact information
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("law", LAWS)
def test_laws_are_probability_tables_with_uniform_digits(law):
    p = law_pmf(law)
    assert p.shape == (10, 10, 10) and np.all(p >= 0)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(p.sum(axis=(1, 2)), 0.1, atol=1e-12)
    np.testing.assert_allclose(attributes_given_digit(law).sum(axis=(1, 2)), 1.0, atol=1e-12)


def test_pairwise_law_is_built_from_three_components():
    # digit = 2a + b, colour = 2a + c, background = 2b + c; a in 0..4, b and c fair bits.
    support = {tuple(int(v) for v in t) for t in np.argwhere(law_pmf("pairwise") > 0)}
    expected = {(2 * a + b, 2 * a + c, 2 * b + c) for a in range(5) for b in (0, 1) for c in (0, 1)}
    assert support == expected and len(support) == 20
    assert {b for _, _, b in support} == {0, 1, 2, 3}  # only the first four backgrounds


# The values, derived by hand (bits; L = log2 10; D digit, C colour, B background):
#
# shared (C = B = D): every H is H(D) = L and every I is L. I(D;C|B) = 0 since B fixes both, so
#   the co-information I(D;C) - I(D;C|B) = L. TC = 3L - L = 2L. DTC = H(DCB) - sum of
#   H(X | other two) = L - 0 = L. Each pair's support is the diagonal, ten components of mass
#   1/10: every K, the three-way one too, is L.
# pairwise (a uniform on 5, b and c fair bits; D = (a,b), C = (a,c), B = (b,c)): H(D) = H(C) =
#   L, H(B) = 2; every pair and the triple are 1-1 with (a,b,c), so their H = log2 20 = L + 1.
#   I(D;C) = H(a) = log2 5, I(D;B) = H(b) = 1, I(C;B) = H(c) = 1. Given B = (b,c), D and C
#   both reduce to a: I(D;C|B) = log2 5 and the co-information is log2 5 - log2 5 = 0.
#   TC = 2L + 2 - (L + 1) = L + 1 = log2 5 + 1 + 1 (the sum of the pairwise I's); any two fix
#   the third, so DTC = H(DCB) = L + 1. The pair (D, C) splits into five components (one per
#   a, each a 2x2 block): K(D;C) = log2 5; likewise K(D;B) = H(b) = 1, K(C;B) = H(c) = 1. But
#   a links D = 2a + b to C = 2a + c, c links C to B = 2b + c, b links B back to D: all values
#   fall into one component of the triple, so K(D;C;B) = 0.
# private (independent uniforms): H = L each, pairs 2L, triple 3L; every I, TC, DTC, K is 0.
# synergy (D, C independent uniform, B = D + C mod 10): every pair is independent (for any d,
#   B = d + C is uniform), so pairwise I = 0, pairwise H = 2L, and H(DCB) = H(D,C) = 2L. Given
#   B, C = B - D: I(D;C|B) = L, co-information 0 - L = -L. TC = 3L - 2L = L; DTC = 2L - 0 = 2L.
#   Every pair's support is the full 10x10 grid, one component: every K is 0.
EXPECTED = {
    "shared": dict.fromkeys(MEASURES, L) | {"I(D;C|B)": 0.0, "TC": 2 * L},
    "pairwise": {
        "H(D)": L, "H(C)": L, "H(B)": 2.0,
        "H(D,C)": L + 1, "H(D,B)": L + 1, "H(C,B)": L + 1, "H(D,C,B)": L + 1,
        "I(D;C)": L5, "I(D;B)": 1.0, "I(C;B)": 1.0, "I(D;C|B)": L5, "I(D;C;B)": 0.0,
        "TC": L5 + 2, "DTC": L5 + 2,
        "K(D;C)": L5, "K(D;B)": 1.0, "K(C;B)": 1.0, "K(D;C;B)": 0.0,
    },
    "private": dict.fromkeys(MEASURES, 0.0) | {
        "H(D)": L, "H(C)": L, "H(B)": L, "H(D,C)": 2 * L, "H(D,B)": 2 * L, "H(C,B)": 2 * L,
        "H(D,C,B)": 3 * L,
    },
    "synergy": dict.fromkeys(MEASURES, 0.0) | {
        "H(D)": L, "H(C)": L, "H(B)": L, "H(D,C)": 2 * L, "H(D,B)": 2 * L, "H(C,B)": 2 * L,
        "H(D,C,B)": 2 * L, "I(D;C|B)": L, "I(D;C;B)": -L, "TC": L, "DTC": 2 * L,
    },
}  # fmt: skip


@pytest.mark.parametrize("law", LAWS)
def test_exact_values_match_the_hand_derivation(law):
    values = law_theory(law)
    assert tuple(values) == MEASURES
    for measure in MEASURES:
        assert values[measure] == pytest.approx(EXPECTED[law][measure], abs=1e-9), measure
    assert table()[law] == values


def test_co_information_is_yeungs_sign():
    # Redundant tasks give a positive co-information, synergistic ones a negative one.
    assert law_theory("shared")["I(D;C;B)"] > 0 > law_theory("synergy")["I(D;C;B)"]
    assert law_theory("synergy")["I(D;C;B)"] == interaction_information(law_pmf("synergy"))


# --------------------------------------------------------------------------------------------
# Seeded draws
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("law", LAWS)
def test_sampled_triples_follow_the_law(law):
    digits = np.repeat(np.arange(10), 6_000)
    colours, backgrounds = sample_attributes(digits, law, seed=5, epoch=0)
    counts = np.zeros((10, 10, 10))
    np.add.at(counts, (digits, colours, backgrounds), 1)
    frequencies = counts / 6_000  # per digit: estimates of P(colour, background | digit)
    expected = attributes_given_digit(law)
    assert np.all(frequencies[expected == 0] == 0)  # never outside the support
    # Each frequency is a mean of 6,000 Bernoulli(p): its standard deviation is at most
    # sqrt(p (1 - p) / 6000); 5 of them bound every one of the 1,000 cells at this fixed seed.
    bound = 5 * np.sqrt(expected * (1 - expected) / 6_000)
    assert np.all(np.abs(frequencies - expected) <= bound + 1e-12)


def test_dataset_draws_follow_the_law(train):
    digits = train.digits.numpy()
    colours, backgrounds = (v.numpy() for v in train.attributes())
    # pairwise: the colour's half 2a and the digit's agree, and b, c are the digit's and
    # colour's parity bits (every triple lies in the support).
    assert np.all(colours // 2 == digits // 2)
    assert np.all(backgrounds == 2 * (digits % 2) + colours % 2)
    c_bits = colours % 2
    assert abs(c_bits.mean() - 0.5) < 0.01  # 50,000 fair bits: sd 0.0022


def test_same_seed_same_tensors_and_epochs_redraw():
    first = TripleColoredMNIST(split="train", law="private", seed=3)
    second = TripleColoredMNIST(split="train", law="private", seed=3)
    a, b = first.tensors(count=40), second.tensors(count=40)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert torch.equal(first[7][0], second[7][0]) and first[7][1] == second[7][1]
    epoch0 = first.attributes()
    first.set_epoch(1)
    epoch1 = first.attributes()
    assert not torch.equal(epoch0[0], epoch1[0])
    assert all(torch.equal(x, y) for x, y in zip(first.attributes(0), epoch0, strict=True))
    other = TripleColoredMNIST(split="train", law="private", seed=4).attributes()
    assert not torch.equal(other[1], epoch0[1])
    val = TripleColoredMNIST(split="val", law="private", seed=3, val_size=500)
    fixed = val.attributes()
    val.set_epoch(4)
    assert all(torch.equal(x, y) for x, y in zip(val.attributes(), fixed, strict=True))
    assert all(torch.equal(x, y) for x, y in zip(val.attributes(9), fixed, strict=True))


def test_splits_and_digits_are_coloured_mnists():
    triple = TripleColoredMNIST(split="val", law="shared", seed=1, val_size=300)
    np.testing.assert_array_equal(triple.indices, split_indices("val", 300))  # ColoredMNIST's
    targets = torchvision.datasets.MNIST(data_dir(), train=True, download=False).targets
    assert torch.equal(triple.digits, targets[triple.indices])
    colours, backgrounds = triple.attributes()
    assert torch.equal(colours, triple.digits) and torch.equal(backgrounds, triple.digits)
    assert len(TripleColoredMNIST(split="test", law="shared")) == 10_000


def test_items_tensors_and_pil_agree(train, mnist_test):
    images, digits, colours, backgrounds = train.tensors(count=25)
    assert images.shape == (25, 3, 32, 32) and images.dtype == torch.float32
    assert all(t.dtype == torch.int64 for t in (digits, colours, backgrounds))
    for i in (0, 11, 24):
        image, targets = train[i]
        assert torch.equal(image, images[i])
        assert targets == (int(digits[i]), int(colours[i]), int(backgrounds[i]))
    grey = mnist_test.data[:20].numpy()
    colours, backgrounds = np.arange(20) % 10, (np.arange(20) * 3) % 10
    ours = colourise_on(grey, colours, backgrounds)
    for image, g, c, b in zip(ours, grey, colours, backgrounds, strict=True):
        pil = ImageOps.colorize(Image.fromarray(g, "L"), black=BACKGROUNDS[b], white=COLOURS[c])
        pil = np.asarray(pil.resize((32, 32), Image.Resampling.BICUBIC), dtype=np.float32)
        np.testing.assert_array_equal(image.numpy(), np.moveaxis(pil / 255, -1, 0))
    assert torch.equal(colourise_on(grey, colours, 0), colourise(grey, colours))  # black


# --------------------------------------------------------------------------------------------
# The third task is visible
# --------------------------------------------------------------------------------------------


def test_colorize_tables_are_pils_for_every_pair():
    ramp = Image.fromarray(np.arange(256, dtype=np.uint8)[None], "L")  # every intensity once
    for c, colour in enumerate(COLOURS):
        for b, background in enumerate(BACKGROUNDS):
            pil = np.asarray(ImageOps.colorize(ramp, black=background, white=colour))[0].T
            np.testing.assert_array_equal(colorize_table(BACKGROUND_RGB[b], COLOUR_RGB[c]), pil)


def test_palette_keeps_strokes_and_backgrounds_apart():
    stroke_to_background = np.linalg.norm(COLOUR_RGB[:, None] - BACKGROUND_RGB[None], axis=2)
    between = np.linalg.norm(BACKGROUND_RGB[:, None] - BACKGROUND_RGB[None], axis=2)
    assert stroke_to_background.min() >= 127  # the two-task book's own minimum is 128
    assert between[~np.eye(10, dtype=bool)].min() >= 127


def test_background_and_stroke_are_recoverable_from_every_image(mnist_test):
    """Corner pixel = background exactly (MNIST's margins are 0); the pixel farthest from it is
    nearest to the stroke colour: all 100 (colour, background) pairs, on 5 digits each."""
    grey = np.repeat(mnist_test.data[:5].numpy(), 100, axis=0)
    colours, backgrounds = np.tile(np.arange(100) % 10, 5), np.tile(np.arange(100) // 10, 5)
    pixels = (colourise_on(grey, colours, backgrounds) * 255).round().permute(0, 2, 3, 1)
    pixels = pixels.reshape(len(grey), -1, 3).numpy()
    np.testing.assert_array_equal(pixels[:, 0], BACKGROUND_RGB[backgrounds])
    far = np.linalg.norm(pixels - pixels[:, :1], axis=2).argmax(axis=1)
    extreme = pixels[np.arange(len(grey)), far]
    nearest = np.linalg.norm(extreme[:, None] - COLOUR_RGB[None], axis=2).argmin(axis=1)
    np.testing.assert_array_equal(nearest, colours)


# --------------------------------------------------------------------------------------------
# Bad input, and ColoredMNIST unchanged by the shared helpers
# --------------------------------------------------------------------------------------------


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="law must be one of shared, pairwise, private, synergy"):
        TripleColoredMNIST(law="dependent")
    with pytest.raises(ValueError, match="split must be one of train, val, test; got 'dev'"):
        TripleColoredMNIST(split="dev")
    with pytest.raises(ValueError, match="val_size must be at least 1"):
        TripleColoredMNIST(split="val", val_size=0)
    with pytest.raises(TypeError, match="seed"):
        TripleColoredMNIST(seed=1.5)
    with pytest.raises(ValueError, match="law must be one of"):
        law_pmf("mixture")
    with pytest.raises(ValueError, match="digits must be integers 0..9"):
        sample_attributes([3, 10], "shared", seed=0, epoch=0)
    with pytest.raises(ValueError, match="epoch"):
        sample_attributes([3], "shared", seed=0, epoch=-1)
    grey = np.zeros((2, 28, 28), dtype=np.uint8)
    with pytest.raises(ValueError, match="backgrounds must be integer indices 0..9"):
        colourise_on(grey, 0, [0, 10])
    with pytest.raises(ValueError, match="colours must be integer indices 0..9"):
        colourise_on(grey, 0.5, 0)
    with pytest.raises(ValueError, match="grey must be uint8"):
        colourise_on(grey.astype(np.float32), 0, 0)
    with pytest.raises(ValueError, match="count"):
        TripleColoredMNIST(split="val", val_size=5).tensors(count=6)


def test_coloured_mnist_items_are_unchanged_by_the_refactor():
    """The hash of 64 ColoredMNIST test items, computed before colored_mnist.py's helpers were
    shared with TripleColoredMNIST (commit 8549545)."""
    images, digits, colours = ColoredMNIST(split="test", pmf="mixture", seed=7).tensors(count=64)
    digest = hashlib.sha256()
    for tensor in (images, digits, colours):
        digest.update(tensor.numpy().tobytes())
    assert digest.hexdigest() == (
        "b566b0976c8895b1d49c6e7d446fee4359aaf4e6025d19c28d57e071964eebce"
    )


@pytest.mark.parametrize("law", LAWS)
def test_lossless_streams_reach_the_transmit_bound(law):
    from gwnlib.data.triple_laws import LOSSLESS_STREAMS
    from gwnlib.theory.multiterminal import multiterminal_bounds, receive_rate, transmit_rate

    rates = LOSSLESS_STREAMS[law]
    bounds = multiterminal_bounds(law_pmf(law))
    assert bounds.violations(rates) == {}  # every receiver can recover its attribute
    assert transmit_rate(rates, 3) == pytest.approx(bounds.transmit)  # at the least R_t
    if law == "synergy":  # (D, C) on Y_123 reaches H too, but receivers read 6L, not 4L
        assert receive_rate(rates, 3) == pytest.approx(4 * np.log2(10))
        everything = {(1, 2, 3): 2 * np.log2(10)}
        assert bounds.violations(everything) == {}
        assert receive_rate(everything, 3) == pytest.approx(6 * np.log2(10))
        assert bounds.violations({(1, 2, 3): np.log2(10), (3,): np.log2(10)})  # a cut missed
