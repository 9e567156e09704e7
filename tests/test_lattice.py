"""The K-task Gray-Wyner codecs (gwnlib.model.lattice; chapter "Beyond two tasks"): wiring,
the generalised merge and loss, K = 2 against the two-task Shared codec, real bitstreams per
stream with partial decoding, the dynamic codec's stream choice, and the three-task experiment."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gwnlib.data.triple_laws import LAWS, law_pmf
from gwnlib.model.codecs import build
from gwnlib.model.lattice import (
    LATTICES,
    LatticeLoss,
    build_lattice,
    choose_streams,
    lattice_streams,
    merge_candidates,
    pairwise_alignment,
)
from gwnlib.model.loss import GrayWynerLoss
from gwnlib.model.ops import alignment_loss, merge_common
from gwnlib.theory.multiterminal import subsets
from gwnlib.theory.multivariate import common_plus_noise_source, pairwise_bits_source

SMALL = dict(in_channels=3, latent_channels=8, widths=(8, 8, 8), blocks=1)


def make(name="lattice", tasks=3, streams=None, seed=0, batch=2, **config):
    torch.manual_seed(seed)
    codec = build_lattice(name, tasks=tasks, streams=streams, **{**SMALL, **config}).eval()
    x = torch.rand(batch, 3, 32, 32) * 8 - 4  # wide inputs: latents far from zero
    return codec, x


# -- the generalised merge and alignment (Eq. 14, 15) ----------------------------------------
def test_merge_of_two_is_eq14_and_of_three_needs_all_to_agree():
    a = torch.tensor([1.0, 2.0, 3.0, -1.0])
    b = torch.tensor([1.0, 0.0, 3.0, -1.0])
    c = torch.tensor([1.0, 2.0, 5.0, -1.0])
    assert torch.equal(merge_candidates([a, b]), merge_common(a, b))
    assert torch.equal(merge_candidates([a, b, c]), torch.tensor([1.0, 0.0, 0.0, -1.0]))
    assert torch.equal(merge_candidates([a]), a)
    with pytest.raises(ValueError, match="differ in shape"):
        merge_candidates([a, a[:2]])


def test_merge_sends_gradient_to_every_agreeing_encoder():
    a, b, c = (torch.tensor([2.0, 1.0], requires_grad=True) for _ in range(3))
    with torch.no_grad():
        c[1] = 4.0
    merge_candidates([a, b, c]).sum().backward()
    for t in (a, b, c):
        assert torch.allclose(t.grad, torch.tensor([1 / 3, 0.0]))


def test_alignment_sums_every_pair():
    a, b, c = torch.zeros(3), torch.ones(3), 2 * torch.ones(3)
    expected = alignment_loss(a, b) + alignment_loss(a, c) + alignment_loss(b, c)
    assert torch.isclose(pairwise_alignment([a, b, c]), expected)
    assert float(pairwise_alignment([a])) == 0.0


# -- wiring -------------------------------------------------------------------------------------
def test_streams_of_each_codec():
    assert lattice_streams("lattice", 3) == tuple(subsets(3))
    assert lattice_streams("joint", 3) == ((1, 2, 3),)
    assert lattice_streams("independent", 3) == ((1,), (2,), (3,))
    assert lattice_streams("dynamic", 3, [(3,), (2, 1)]) == ((1, 2), (3,))  # sorted, ordered
    assert lattice_streams("lattice", 2) == ((1, 2), (1,), (2,))


@pytest.mark.parametrize(
    ("name", "streams", "match"),
    [
        ("dynamic", None, "needs streams"),
        ("lattice", [(1, 2)], "dynamic codec only"),
        ("dynamic", [(1, 2)], r"tasks \[3\] read none"),
        ("dynamic", [(1, 4), (3,)], "tasks 1..3"),
        ("dynamic", [(1, 2, 3), (3, 2, 1)], "distinct"),
        ("dynamic", [], "non-empty list"),
        ("mixed", None, "codec must be one of lattice, dynamic, joint, independent"),
    ],
)
def test_bad_streams_are_refused(name, streams, match):
    with pytest.raises(ValueError, match=match):
        lattice_streams(name, 3, streams)


def test_latent_channels_must_divide_among_a_decoders_streams():
    with pytest.raises(ValueError, match="latent_channels must be a multiple of 4"):
        build_lattice("lattice", tasks=3, in_channels=3, latent_channels=6)
    codec = build_lattice("dynamic", tasks=3, in_channels=3, latent_channels=6,
                          streams=[(1, 2), (1, 3), (2, 3)], widths=(8, 8, 8), blocks=1)  # fmt: skip
    assert codec.width == 3 and codec.channel_widths() == {"y12": 3, "y13": 3, "y23": 3}


def test_one_encoder_makes_the_dynamic_and_joint_streams():
    codec, x = make("dynamic", streams=[(1, 2), (1, 3), (2, 3)])
    assert len(codec.encoders) == 1 and codec.one_encoder
    with torch.no_grad():
        y, aux = codec.encode(x)
        whole = codec.encoders[0](x).round()
    assert float(aux) == 0.0
    w = codec.width
    for k, key in enumerate(("y12", "y13", "y23")):
        assert torch.equal(y[key], whole[:, k * w : (k + 1) * w])
    lattice, _ = make("lattice")
    assert len(lattice.encoders) == 3 and not lattice.one_encoder


def test_entropy_models_condition_on_supersets():
    codec, _ = make()
    assert codec.supersets((1,)) == ((1, 2, 3), (1, 2), (1, 3))
    assert codec.supersets((2, 3)) == ((1, 2, 3),)
    assert codec.supersets((1, 2, 3)) == ()
    w = codec.width
    assert codec.entropy_models["y123"].condition is None
    assert codec.entropy_models["y12"].condition[0].body[0].in_channels == w
    assert codec.entropy_models["y3"].condition[0].body[0].in_channels == 3 * w
    assert codec.reads(2) == ((1, 2, 3), (1, 2), (2, 3), (2,))
    assert codec.channels_for([1]) == ("y123", "y12", "y13", "y1")


@pytest.mark.parametrize("name", ["lattice", "joint", "independent"])
def test_forward_contract_and_rate_totals(name):
    codec, x = make(name)
    with torch.no_grad():
        out = codec(x)
    keys = [k for k in out["rates"]]
    assert keys == list(codec.rate_keys)
    transmit = sum(out["rates"].values())
    receive = sum((len(k) - 1) * v for k, v in out["rates"].items())
    assert torch.isclose(out["rate_transmit"], transmit)
    assert torch.isclose(out["rate_receive"], receive)
    for task in (1, 2, 3):
        assert out[f"z{task}_hat"].shape == (2, 3, 32, 32)
    for key in codec.channel_widths():
        assert torch.equal(out[key], out[key].round())


def test_two_tasks_the_lattice_is_the_shared_codec():
    """K = 2: with the Shared codec's weights (Y0 renamed Y12), the lattice gives the same
    latents, rates, alignment term and task outputs, bit for bit."""
    torch.manual_seed(0)
    shared = build("shared", in_channels=3, latent_channels=8, transform="conv").eval()
    lattice = build_lattice("lattice", tasks=2, in_channels=3, latent_channels=8).eval()
    rename = {"entropy_models.y0.": "entropy_models.y12."}
    state = {}
    for key, value in shared.state_dict().items():
        for old, new in rename.items():
            key = key.replace(old, new)
        state[key] = value
    lattice.load_state_dict(state)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        a, b = shared(x), lattice(x)
    assert torch.equal(a["y0"], b["y12"])
    for key in ("y1", "y2", "z1_hat", "z2_hat", "aux", "rate_transmit", "rate_receive"):
        assert torch.equal(a[key], b[key]), key
    assert torch.equal(a["rates"]["r0"], b["rates"]["r12"])


# -- the loss with the generalised beta ----------------------------------------------------------
def test_loss_prices_transmit_at_beta_1_and_receive_at_beta_K():
    codec, x = make()
    targets = [torch.randint(0, 3, (2, 32, 32)) for _ in range(3)]
    ce = (F.cross_entropy,) * 3
    with torch.no_grad():
        out = codec(x)
        low = LatticeLoss(1.0, 2.0, 0.5, ce)(out, *targets)
        high = LatticeLoss(3.0, 2.0, 0.5, ce)(out, *targets)
    assert torch.isclose(low["rate"], out["rate_transmit"])
    assert torch.isclose(high["rate"], out["rate_receive"])
    d = sum(F.cross_entropy(out[f"z{i}_hat"], t) for i, t in enumerate(targets, 1))
    assert torch.isclose(low["loss"], 2.0 * out["rate_transmit"] + d + 0.5 * out["aux"])


def test_loss_for_two_tasks_is_eq12():
    codec, x = make(tasks=2)
    t1, t2 = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    rmse = GrayWynerLoss(1.5, 3.0).distortions
    with torch.no_grad():
        out = codec(x)
        ours = LatticeLoss(1.5, 3.0, 1.0, rmse)(out, t1, t2)
        rates = out["rates"]
        paper = {"rates": {"r0": rates["r12"], "r1": rates["r1"], "r2": rates["r2"]},
                 "z1_hat": out["z1_hat"], "z2_hat": out["z2_hat"], "aux": out["aux"]}  # fmt: skip
        expected = GrayWynerLoss(1.5, 3.0)(paper, t1, t2)
    assert torch.isclose(ours["loss"], expected["loss"])


@pytest.mark.parametrize(("beta", "match"), [(0.5, r"beta must lie in \[1, K\]"), (3.5, "beta")])
def test_loss_refuses_beta_outside_1_to_K(beta, match):
    with pytest.raises(ValueError, match=match):
        LatticeLoss(beta, 1.0, 1.0, (F.cross_entropy,) * 3)


# -- real bitstreams, per stream ------------------------------------------------------------------
@pytest.mark.parametrize("name", LATTICES)
def test_round_trip_is_exact_per_stream(name):
    streams = [(1, 2), (1, 3), (2, 3)] if name == "dynamic" else None
    codec, x = make(name, streams=streams)
    with torch.no_grad():
        out = codec(x)
    compressed = codec.compress(x)
    assert tuple(compressed["strings"]) == codec.channels_for((1, 2, 3))
    decoded = codec.decompress(compressed["strings"], compressed["shapes"])
    for key in compressed["strings"]:
        assert torch.equal(decoded[key], out[key]), key
    for task in (1, 2, 3):
        assert torch.equal(decoded[f"z{task}_hat"], out[f"z{task}_hat"])


def test_a_receiver_decodes_only_the_streams_it_reads():
    codec, x = make()
    with torch.no_grad():
        out = codec(x)
    compressed = codec.compress(x)
    mine = {key: compressed["strings"][key] for key in ("y123", "y12", "y13", "y1")}
    decoded = codec.decompress(mine, tasks=(1,))
    assert set(decoded) == {"y123", "y12", "y13", "y1", "z1_hat"}
    assert torch.equal(decoded["z1_hat"], out["z1_hat"])
    with pytest.raises(ValueError, match="need a list of 'y12' streams"):
        codec.decompress({"y123": mine["y123"], "y1": mine["y1"]}, tasks=(1,))


def test_bad_lattice_streams_are_refused():
    codec, x = make()
    with torch.no_grad():
        codec.encoders[0][-1].weight.mul_(100)  # latents far from zero
    for encoder in codec.encoders[1:]:  # equal encoders agree: Y123 then differs per sample
        encoder.load_state_dict(codec.encoders[0].state_dict())
    strings = codec.compress(x)["strings"]
    with torch.no_grad():
        y123 = codec(x)["y123"]
    assert not torch.equal(y123[0], y123[1])
    mixed = dict(strings, y12=strings["y12"][::-1])  # sample 0's Y12 given sample 1's Y123
    with pytest.raises(ValueError, match="coded given another superset streams"):
        codec.decompress(mixed)
    swapped = dict(strings, y13=strings["y12"])
    with pytest.raises(ValueError, match="holds channel 'y12', not 'y13'"):
        codec.decompress(swapped)
    joint, _ = make("joint")
    other = joint.compress(x)["strings"]
    with pytest.raises(ValueError, match="written by codec 'joint \\(K tasks\\)'"):
        codec.decompress(dict(strings, y123=other["y123"]))
    flipped = bytearray(strings["y1"][0])
    flipped[-1] ^= 1
    with pytest.raises(ValueError, match="corrupted"):
        codec.decompress(dict(strings, y1=[bytes(flipped), strings["y1"][1]]))


def test_two_task_streams_are_refused_by_a_lattice_codec():
    torch.manual_seed(0)
    shared = build("shared", in_channels=3, latent_channels=8, transform="conv").eval()
    codec, x = make(tasks=2)
    strings = dict(codec.compress(x)["strings"])
    strings["y1"] = shared.compress(x)["strings"]["y1"]
    with pytest.raises(ValueError, match="written by codec 'shared'"):
        codec.decompress(strings)


# -- the dynamic codec's streams ----------------------------------------------------------------
def test_choose_streams_per_law():
    expected = {
        "shared": ((1, 2, 3),),
        "pairwise": ((1, 2), (1, 3), (2, 3)),
        "private": ((1,), (2,), (3,)),
        "synergy": ((1,), (2,), (3,)),
    }
    for law in LAWS:
        assert choose_streams(law_pmf(law)) == expected[law], law
    # the sweep leaves the dynamic codec out where it is the Independent codec
    for law in ("private", "synergy"):
        assert choose_streams(law_pmf(law)) == lattice_streams("independent", 3)


def test_choose_streams_on_worked_sources():
    # Three pairwise shared bits: one stream per pair, nothing private.
    assert choose_streams(pairwise_bits_source()) == ((1, 2), (1, 3), (2, 3))
    # A common part plus private noise: the all-three stream and a private stream each.
    p = common_plus_noise_source(2)
    assert choose_streams(p) == ((1, 2, 3), (1,), (2,), (3,))
    # A threshold above every part's bits leaves each task its private stream only.
    assert choose_streams(p, threshold=10.0) == ((1,), (2,), (3,))
    with pytest.raises(ValueError, match="threshold must be >= 0"):
        choose_streams(p, threshold=-1.0)


# -- the experiment ------------------------------------------------------------------------------
def test_triple_mnist_config_checks():
    from gwnlib.experiments import resolve

    config = resolve("triple_mnist", "smoke", codec="dynamic", law="pairwise")
    assert config.label() == "dynamic pairwise beta=1 eta=0.01 seed=0"
    with pytest.raises(ValueError, match="codec must be one of lattice, dynamic"):
        resolve("triple_mnist", "smoke", codec="shared")
    with pytest.raises(ValueError, match="law must be one of shared, pairwise"):
        resolve("triple_mnist", "smoke", law="xor")
    with pytest.raises(ValueError, match=r"beta must lie in \[1, K\] = \[1, 3\]"):
        resolve("triple_mnist", "smoke", beta=0.1)
    with pytest.raises(ValueError, match="law only applies to triple_mnist"):
        resolve("colored_mnist", "smoke", law="shared")


def test_triple_mnist_smoke_run_trains_and_codes(tmp_path):
    from gwnlib.experiments import Experiment, resolve
    from gwnlib.training.train import fit

    config = resolve("triple_mnist", "smoke", codec="dynamic", law="pairwise", eta=1.0)
    assert Experiment(config).streams() == ((1, 2), (1, 3), (2, 3))
    metrics = fit(config, root=tmp_path, progress=False)
    for key in ("acc1", "acc2", "acc3", "r12", "r13", "r23", "real_r12", "coded_r23",
                "real_rate_transmit", "coded_rate_receive"):  # fmt: skip
        assert key in metrics and metrics[key] == metrics[key], key
    assert "r1" in metrics and metrics["r1"] == 0.0  # a stream it does not have costs nothing
    assert "real_r1" not in metrics
    coded = metrics["coded_r12"] + metrics["coded_r13"] + metrics["coded_r23"]
    assert metrics["coded_rate_transmit"] == pytest.approx(coded)
    assert metrics["coded_rate_receive"] == pytest.approx(2 * coded)
    again = fit(config, root=tmp_path / "again", progress=False)
    assert again["loss"] == metrics["loss"]  # seeded: the same numbers on a CPU


def test_the_chapters_sweep_and_its_results_file(tmp_path):
    from gwnlib.training.results_file import read_results
    from gwnlib.training.sweep import named

    configs = named("triple_mnist", "short").configs()
    assert len(configs) == 45
    assert {c.codec for c in configs if c.law == "synergy"} == {"lattice", "joint", "independent"}
    assert {c.beta for c in configs if c.codec == "lattice" and c.law == "pairwise"} == {1, 2, 3}
    assert not [c for c in configs if c.codec == "dynamic" and c.law in ("private", "synergy")]
    path = tmp_path / "triple_mnist-short.csv"
    path.write_text(
        "key,eta,rate_transmit,rate_receive,acc1,acc2,acc3,r123\nabc,1.0,0.1,0.2,0.9,0.9,0.9,\n"
    )  # a stream the codec does not have may be empty
    assert len(read_results(path, "triple_mnist")) == 1
    path.write_text("key,eta,rate_transmit,rate_receive,acc1,acc2\nabc,1.0,0.1,0.2,0.9,0.9\n")
    with pytest.raises(ValueError, match="no column acc3"):
        read_results(path, "triple_mnist")
