"""Two physical sources (chapter "Two sources"): the view laws and their exact values, the
two-view dataset on the real MNIST files, and the distributed Shared codec whose encoders each
see one view."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from gwnlib.data.colored_mnist import colourise
from gwnlib.data.two_views import TwoViewMNIST
from gwnlib.data.view_laws import (
    LAWS,
    MEASURES,
    distributed_rate,
    labels_given_digit,
    law_pmf,
    law_theory,
    sample_labels,
)
from gwnlib.experiments import Experiment, resolve
from gwnlib.model.codecs import CODECS, DISTRIBUTED, THREE_CHANNEL, WIRINGS, build
from gwnlib.theory.common_information import gacs_korner
from gwnlib.theory.entropy import entropy
from gwnlib.training.sweep import named

L, L5 = math.log2(10), math.log2(5)


# -- the laws ---------------------------------------------------------------------------------
@pytest.mark.parametrize("law", LAWS)
def test_each_law_is_a_distribution_with_uniform_first_digits(law):
    p = law_pmf(law)
    assert p.shape == (10,) * 4 and (p >= 0).all() and p.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(p.sum(axis=(1, 2, 3)), 0.1)
    np.testing.assert_allclose(labels_given_digit(law).sum(axis=(1, 2, 3)), 1.0)


#: The closed forms of the chapter's table, law by law (module docstring).
EXPECTED = {
    "same": {"I(T1;T2)": L, "K(T1;T2)": L, "C(T1;T2)": L, "H(T1,T2)": L, "I(V1;V2)": L,
             "K(V1;V2)": L, "R_t distributed": L, "loss": 0.0},
    "partial": {"I(T1;T2)": L5, "K(T1;T2)": L5, "C(T1;T2)": L5, "H(T1,T2)": L + 1,
                "I(V1;V2)": L5, "K(V1;V2)": L5, "R_t distributed": L + 1, "loss": 0.0},
    "neighbour": {"I(T1;T2)": L - 1, "K(T1;T2)": 0.0, "H(T1,T2)": L + 1, "I(V1;V2)": L - 1,
                  "K(V1;V2)": 0.0, "R_t distributed": 2 * L, "loss": L - 1},
    "digit": {"I(T1;T2)": 0.0, "K(T1;T2)": 0.0, "C(T1;T2)": 0.0, "H(T1,T2)": 2 * L,
              "I(V1;V2)": L, "K(V1;V2)": L, "R_t distributed": 2 * L, "loss": 0.0},
}  # fmt: skip
# Where K = I (same, partial) Wyner's C equals them (C >= I, and W = the common part reaches
# I); under "neighbour" C is a numerical search, checked against its bounds only.


@pytest.mark.parametrize("law", LAWS)
def test_law_theory_matches_the_closed_forms(law):
    values = law_theory(law)
    assert tuple(values) == MEASURES
    for name, expected in EXPECTED[law].items():
        assert values[name] == pytest.approx(expected, abs=1e-6), name
    assert values["H(T1)"] == pytest.approx(L) and values["H(T2)"] == pytest.approx(L)
    assert values["R_t centralised"] == pytest.approx(values["H(T1,T2)"])
    assert values["I(T1;T2)"] - 1e-6 <= values["C(T1;T2)"] <= L + 1e-6  # I <= C <= min H
    # What the views share bounds what the tasks (functions of the views) share.
    assert values["I(V1;V2)"] >= values["I(T1;T2)"] - 1e-9
    assert values["K(V1;V2)"] >= values["K(T1;T2)"] - 1e-9


def test_the_shortcut_where_the_bounds_meet_agrees_with_the_search():
    """law_theory skips the partition search when H(T1,T2) = H(T1) + H(T2) - K; for "partial"
    (W has 5 values) the search itself gives the same rate."""
    p_v = law_pmf("partial").reshape(100, 100)
    common = gacs_korner(p_v)
    p_w = np.zeros((len(common.components), 10, 10))
    for w, (v1s, v2s) in enumerate(common.components):
        np.add.at(p_w[w], (v1s[:, None] % 10, v2s[None, :] % 10), p_v[np.ix_(v1s, v2s)])
    assert len(p_w) == 5
    assert distributed_rate(p_w) == pytest.approx(law_theory("partial")["R_t distributed"])


def test_distributed_rate_on_small_worked_examples():
    # W uniform on {0, 1, 2}, T1 = [W = 0], T2 = [W <= 1]: K(T1; T2) = 0, yet Z = W makes both
    # receivers exact at H(W) = log2 3 = H(T1, T2), so a common part of the views beats K.
    p = np.zeros((3, 2, 2))
    for w in range(3):
        p[w, int(w == 0), int(w <= 1)] = 1 / 3
    assert distributed_rate(p) == pytest.approx(math.log2(3))
    assert gacs_korner(p.sum(axis=0)).value == pytest.approx(0.0)
    # A W with one value: nothing is common, so each task pays its own entropy.
    q = np.full((1, 2, 2), 0.25)
    q[0] = [[0.4, 0.1], [0.1, 0.4]]
    assert distributed_rate(q) == pytest.approx(2.0)


def _tasks_by_common_part(p_v, f1, f2):
    """p[w, t1, t2] for views with labels table ``p_v[v1, v2]`` and tasks T_i = f_i(V_i), W the
    views' Gacs-Korner common part."""
    common = gacs_korner(p_v)
    p = np.zeros((len(common.components), max(f1) + 1, max(f2) + 1))
    for w, (v1s, v2s) in enumerate(common.components):
        for v1 in v1s:
            for v2 in v2s:
                p[w, f1[v1], f2[v2]] += p_v[v1, v2]
    return p


def test_distributed_rate_lies_between_its_bounds_on_random_sources():
    """Random block-structured view tables (so that W is not trivial) and random task
    functions: H(T1, T2) <= rate <= H(T1) + H(T2) - K(T1; T2), and the upper bound is met when
    the tasks are the views themselves."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        blocks = rng.integers(1, 4)
        p_v = np.zeros((6, 6))
        cuts = np.sort(rng.choice(np.arange(1, 6), blocks - 1, replace=False)) if blocks > 1 else []
        edges = [0, *cuts, 6]
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            p_v[a:b, a:b] = rng.random((b - a, b - a)) + 0.05
        p_v /= p_v.sum()
        f1, f2 = rng.integers(0, 3, 6), rng.integers(0, 3, 6)
        p = _tasks_by_common_part(p_v, f1, f2)
        t = p.sum(axis=0)
        h1, h2 = entropy(t.sum(axis=1)), entropy(t.sum(axis=0))
        rate = distributed_rate(p)
        assert entropy(t) - 1e-9 <= rate <= h1 + h2 - gacs_korner(t).value + 1e-9
        identity = _tasks_by_common_part(p_v, np.arange(6), np.arange(6))
        views = identity.sum(axis=0)
        assert distributed_rate(identity) == pytest.approx(
            entropy(views.sum(axis=1)) + entropy(views.sum(axis=0)) - gacs_korner(views).value
        )


def test_distributed_rate_refuses_a_table_that_is_not_one():
    with pytest.raises(ValueError, match="p_w_t1_t2 must be a table with 3 axes"):
        distributed_rate(np.full((2, 2), 0.25))
    with pytest.raises(ValueError, match="p_w_t1_t2 must sum to 1"):
        distributed_rate(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="p_w_t1_t2 has negative entries"):
        distributed_rate(np.array([[[1.5, -0.5]]]))


def test_distributed_rate_refuses_a_common_part_too_large_to_search():
    with pytest.raises(ValueError, match="p_w_t1_t2 may have at most 10"):
        distributed_rate(np.full((11, 2, 2), 1 / 44))


@pytest.mark.parametrize("law", LAWS)
def test_sampled_labels_follow_the_law_and_are_seeded(law):
    rng = np.random.default_rng(1)
    digits = rng.integers(0, 10, 50_000)
    c1, d2, c2 = sample_labels(digits, law, seed=3, epoch=0)
    assert (law_pmf(law)[digits, c1, d2, c2] > 0).all()  # never an impossible outcome
    # The two-variable marginals, at most 0.1 per cell; a standard error of at most 0.0014 for
    # 50,000 draws, so 0.007 is 5 of them. (The 10^4-cell joint is too sparse to compare.)
    p = law_pmf(law)
    for axes, values in (((0, 2), (c1, c2)), ((1, 3), (digits, d2)), ((2, 3), (digits, c2))):
        empirical = np.zeros((10, 10))
        np.add.at(empirical, values, 1 / len(digits))
        assert np.abs(empirical - p.sum(axis=axes)).max() < 0.007
    again = sample_labels(digits, law, seed=3, epoch=0)
    assert all(np.array_equal(a, b) for a, b in zip((c1, d2, c2), again, strict=True))
    other = sample_labels(digits, law, seed=3, epoch=1)
    assert not np.array_equal(c1, other[0])


def test_a_bad_law_is_named_with_the_accepted_ones():
    with pytest.raises(ValueError, match="law must be one of same, partial, neighbour, digit"):
        law_pmf("twins")


# -- the dataset --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def views():
    return TwoViewMNIST(split="val", law="partial", val_size=500)


def test_items_are_two_coloured_digits_with_their_colours(views):
    labels = views.labels()
    images, c1, c2 = views.tensors(count=20)
    assert images.shape == (20, 6, 32, 32) and images.dtype == torch.float32
    for i in (0, 7, 19):
        image, (t1, t2) = views[i]
        assert torch.equal(image, images[i]) and (t1, t2) == (int(c1[i]), int(c2[i]))
        grey = views._images[views.indices[[i, int(labels["partner"][i])]]]
        assert torch.equal(image[:3], colourise(grey[0], t1))  # the paper's colouring
        assert torch.equal(image[3:], colourise(grey[1], t2))
    # View 2 shows an image of digit D2; under "partial" the colours share a = C // 2.
    assert torch.equal(views.digits[labels["partner"]], labels["d2"])
    assert torch.equal(labels["c1"] // 2, labels["c2"] // 2)


def test_the_digit_law_shows_the_same_class_in_both_views():
    dataset = TwoViewMNIST(split="val", law="digit", val_size=500)
    labels = dataset.labels()
    assert torch.equal(labels["d1"], labels["d2"])
    # The partner is drawn among the split's ~50 images of that class: itself 1 time in 50.
    assert (labels["partner"] != torch.arange(len(dataset))).float().mean() > 0.95


def test_training_draws_change_per_epoch_and_evaluation_draws_do_not(views):
    assert torch.equal(views.labels(0)["c1"], views.labels(5)["c1"])
    train = TwoViewMNIST(split="train", law="same", val_size=500)
    first, later = train.labels(0), train.labels(1)
    assert not torch.equal(first["c1"], later["c1"])
    assert not torch.equal(first["partner"], later["partner"])
    assert torch.equal(first["c1"], first["c2"])  # "same": one colour for both views


def test_a_bad_split_or_law_is_named():
    with pytest.raises(ValueError, match="split must be one of"):
        TwoViewMNIST(split="dev")
    with pytest.raises(ValueError, match="law must be one of same"):
        TwoViewMNIST(split="val", law="both", val_size=500)


# -- the distributed codec ------------------------------------------------------------------------
def small(name, **kwargs):
    torch.manual_seed(0)
    return build(name, in_channels=6, latent_channels=8, features=3, widths=(8, 8, 8), blocks=1,
                 **kwargs)  # fmt: skip


def test_each_distributed_encoder_sees_only_its_own_view():
    codec = small("distributed")
    x = 1000 * torch.rand(2, 6, 32, 32)  # large, so that freshly initialised latents are not 0
    y, _ = codec.encode(x)
    assert all(y[key].abs().sum() > 0 for key in ("y1", "y2"))
    for view, private in ((slice(3, 6), "y1"), (slice(0, 3), "y2")):
        changed = x.clone()
        changed[:, view] = 1000 * torch.rand(2, 3, 32, 32)
        assert torch.equal(codec.encode(changed)[0][private], y[private])
    # A centralised Shared encoder reads both views: changing view 2 changes its Y1.
    shared = small("shared")
    changed = x.clone()
    changed[:, 3:] = 0
    assert not torch.equal(shared.encode(changed)[0]["y1"], shared.encode(x)[0]["y1"])


def test_the_distributed_codec_is_shared_with_one_view_per_encoder():
    """Given the Shared codec's weights for 3-channel inputs, the distributed codec on two
    copies of one image makes the Shared codec's latents, rates and outputs exactly."""
    shared = build("shared", in_channels=3, latent_channels=8, features=3, widths=(8, 8, 8),
                   blocks=1)  # fmt: skip
    distributed = small("distributed")
    distributed.load_state_dict(shared.state_dict())
    x = torch.rand(2, 3, 32, 32)
    a, b = shared(x), distributed(torch.cat([x, x], 1))
    for key in ("y0", "y1", "y2", "z1_hat", "z2_hat", "aux", "rate_transmit"):
        assert torch.equal(a[key], b[key]), key


def test_an_odd_number_of_input_channels_is_refused():
    with pytest.raises(ValueError, match="in_channels must be even for codec 'distributed'"):
        build("distributed", in_channels=3, latent_channels=8)


def test_the_distributed_codec_needs_a_two_view_dataset():
    with pytest.raises(ValueError, match="codec 'distributed' needs an input of two views"):
        resolve("colored_mnist", codec="distributed")
    with pytest.raises(ValueError, match="codec must be one of lattice"):
        resolve("triple_mnist", codec="distributed")


def test_the_paper_codecs_keep_their_ids_and_the_distributed_one_follows():
    assert list(WIRINGS)[: len(CODECS)] == list(CODECS) and "distributed" not in CODECS
    assert DISTRIBUTED == ("distributed",) and "distributed" not in THREE_CHANNEL
    assert small("distributed").codec_id == len(CODECS)


def test_the_distributed_codec_codes_real_bitstreams_exactly():
    codec = small("distributed").eval()
    x = torch.rand(3, 6, 32, 32)
    with torch.no_grad():
        out = codec(x)
        coded = codec.compress(x)
        for tasks in ((1,), (2,), (1, 2)):
            decoded = codec.decompress(coded["strings"], coded["shapes"], tasks=tasks)
            for task in tasks:
                assert torch.equal(decoded[f"z{task}_hat"], out[f"z{task}_hat"])
    # A Shared codec refuses a distributed codec's stream.
    other = small("shared").eval()
    with pytest.raises(ValueError, match="distributed"):
        other.decompress(coded["strings"], coded["shapes"], tasks=(1,))


# -- config, experiment, sweep ------------------------------------------------------------------
def test_two_views_resolves_with_its_law_and_refuses_a_bad_one():
    config = resolve("two_views", "short", codec="distributed")
    assert (config.law, config.beta, config.latent_channels) == ("same", 1.0, 12)
    with pytest.raises(ValueError, match="law must be one of same, partial, neighbour, digit"):
        resolve("two_views", law="shared")
    with pytest.raises(ValueError, match="law only applies to triple_mnist, two_views"):
        resolve("colored_mnist", law="same")
    with pytest.raises(ValueError, match="codec must be one of"):
        resolve("two_views", codec="lattice")


def test_the_experiment_gives_two_view_batches_and_a_trainable_codec():
    config = resolve("two_views", "smoke", codec="distributed", law="digit")
    experiment = Experiment(config)
    x, c1, c2 = next(iter(experiment.batches("val")))
    assert x.shape == (config.batch_size, 6, 32, 32) and c1.shape == c2.shape == (len(x),)
    codec, loss = experiment.codec(), experiment.loss()
    terms = loss(codec(x), c1, c2)
    terms["loss"].backward()
    assert all(p.grad is not None for p in codec.encoders.parameters())
    assert set(experiment.task_metrics(codec(x), c1, c2)) == {"acc1", "acc2"}


def test_the_sweep_compares_every_codec_under_every_law():
    configs = named("two_views", "short").configs()
    main = {(c.codec, c.law, c.eta) for c in configs if c.seed == 0 and c.beta == 1.0}
    assert main == set(itertools.product(("shared", "distributed", "joint", "independent"),
                                         LAWS, (1.0, 30.0, 300.0)))  # fmt: skip
    seeds = [c for c in configs if c.seed != 0]
    assert {(c.codec, c.law, c.seed) for c in seeds} == set(
        itertools.product(("shared", "distributed"), ("neighbour",), (1, 2))
    )
    cheap = {(c.codec, c.law, c.eta) for c in configs if c.beta == 0.1}
    assert cheap == set(itertools.product(("shared", "distributed"), ("same", "neighbour"),
                                          (1.0, 30.0)))  # fmt: skip
    assert len(configs) == 48 + 8 + 8


def test_merge_agreement_counts_where_the_candidates_agree():
    from gwnlib.analysis.probes import merge_agreement

    codec = small("distributed")
    x = 1000 * torch.rand(3, 3, 32, 32)
    codec.encoders[1].load_state_dict(codec.encoders[0].state_dict())  # tied encoders
    same = merge_agreement(codec, torch.cat([x, x], 1))  # two copies of one view
    assert same["symbols"] == same["items"] == 1.0
    y0 = codec.encode(torch.cat([x, x], 1))[0]["y0"]
    assert same["nonzero"] == pytest.approx((y0 != 0).float().mean().item())
    other = merge_agreement(codec, torch.cat([x, 1000 * torch.rand(3, 3, 32, 32)], 1))
    assert other["items"] < 1.0 and other["symbols"] < 1.0
    with pytest.raises(ValueError, match="shared or distributed"):
        merge_agreement(small("joint"), torch.cat([x, x], 1))
