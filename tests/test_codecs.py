"""Codecs, layers, entropy models and the loss: shapes, gradients, causality, errors."""

import pytest
import torch

from gwnlib.model.codecs import CODECS, THREE_CHANNEL, build
from gwnlib.model.entropy import LatentEntropyModel, bits
from gwnlib.model.heads import classifier_head, regression_head
from gwnlib.model.layers import analysis_transform
from gwnlib.model.loss import GrayWynerLoss, rmse
from gwnlib.model.ops import alignment_loss, merge_common, quantize, round_half_toward_zero

# Small versions of the two configurations: the synthetic source's pixel-shuffle transforms (2
# input channels; E reduced to 16 by the final 5x5 conv) and MNIST's strided convolutions (E = 6).
CONFIGS = {
    "shuffle": dict(in_channels=2, latent_channels=16, transform="shuffle", size=32),
    "conv": dict(in_channels=3, latent_channels=6, transform="conv", size=32),
}


def make(name, variant, heads=None):
    config = dict(CONFIGS[variant])
    size = config.pop("size")
    torch.manual_seed(0)
    codec = build(name, heads=heads, **config)
    x = torch.rand(3, config["in_channels"], size, size) * 2 - 1
    return codec, x


@pytest.mark.parametrize("variant", CONFIGS)
@pytest.mark.parametrize("name", CODECS)
def test_forward_contract(name, variant):
    codec, x = make(name, variant)
    out = codec(x)
    e, size = CONFIGS[variant]["latent_channels"], CONFIGS[variant]["size"]
    expected = {
        "shared": ("y0", "y1", "y2"), "separated": ("y0", "y1", "y2"),
        "combined": ("y0", "y1", "y2"), "joint": ("y0",), "independent": ("y1", "y2"),
    }[name]  # fmt: skip
    assert tuple(k for k in ("y0", "y1", "y2") if k in out) == expected
    assert set(out["likelihoods"]) == set(expected)
    assert set(out["rates"]) == {f"r{k[1]}" for k in expected}
    width = e // 2 if name in THREE_CHANNEL else e
    for key in expected:
        assert out[key].shape == (3, width, size // 16, size // 16)
        assert torch.equal(out[key], torch.round(out[key])), "latents are integers"
        lik = out["likelihoods"][key]
        assert lik.shape == out[key].shape and torch.all((lik >= 1e-9) & (lik <= 1))
        rate = bits(lik).mean() / size**2
        assert torch.allclose(out["rates"][f"r{key[1]}"], rate)
    r = {k: out["rates"].get(k, torch.tensor(0.0)) for k in ("r0", "r1", "r2")}
    assert torch.allclose(out["rate_transmit"], r["r0"] + r["r1"] + r["r2"])
    assert torch.allclose(out["rate_receive"], 2 * r["r0"] + r["r1"] + r["r2"])
    assert (
        out["z1_hat"].shape
        == out["z2_hat"].shape
        == (3, CONFIGS[variant]["in_channels"], size, size)
    )
    assert out["aux"].shape == () and out["aux"] >= 0
    if name == "shared":  # the mean squared difference of the two common candidates (Eq. 15)
        a, b = (quantize(f(x))[:, : e // 2] for f in codec.encoders)
        assert torch.allclose(out["aux"], alignment_loss(a, b))
        assert torch.equal(out["y0"], merge_common(a, b))
    else:
        assert out["aux"].item() == 0.0


def test_heads_plug_in():
    codec, x = make("shared", "conv", heads=(classifier_head(), regression_head(3)))
    out = codec(x)
    assert out["z1_hat"].shape == (3, 10) and out["z2_hat"].shape == (3, 1, 32, 32)


def test_quantize_rounds_half_toward_zero_with_identity_gradient():
    y = torch.tensor([0.5, -0.5, 1.5, -1.5, 0.49, 2.51], requires_grad=True)
    q = quantize(y)
    assert q.tolist() == [0.0, 0.0, 1.0, -1.0, 0.0, 3.0]
    q.sum().backward()
    assert y.grad.tolist() == [1.0] * 6


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_straight_through_values_are_exactly_the_rounded_ones(dtype):
    """``y + (q - y).detach()`` must equal q bit for bit (no -0.0 either), at every magnitude."""
    generator = torch.Generator().manual_seed(0)
    scales = 10.0 ** torch.arange(-8, 7, dtype=torch.float64)
    y = torch.randn(4000, len(scales), generator=generator, dtype=torch.float64) * scales
    halves = torch.arange(-40, 41, dtype=torch.float64) / 2  # every tie from -20 to 20
    y = torch.cat([y.flatten(), halves, halves + 1e-3, halves - 1e-3]).to(dtype)
    want = round_half_toward_zero(y)
    got = quantize(y)
    assert torch.equal(got, want)
    assert not torch.signbit(got[got == 0]).any()
    assert torch.equal(round_half_toward_zero(halves), torch.trunc(halves))  # ties toward zero


def test_merge_sends_gradient_to_both_candidates_where_they_match():
    a = torch.tensor([1.0, 2.0, -1.0], requires_grad=True)
    b = torch.tensor([1.0, 3.0, -1.0], requires_grad=True)
    y0 = merge_common(a, b)
    assert y0.tolist() == [1.0, 0.0, -1.0]
    y0.sum().backward()
    assert a.grad.tolist() == b.grad.tolist() == [0.5, 0.0, 0.5]
    assert alignment_loss(a, b).item() == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="shape"):
        merge_common(a, b[:2])


def test_gradient_reaches_both_shared_encoders_through_the_merge():
    codec, x = make("shared", "shuffle")
    codec.encoders[1].load_state_dict(codec.encoders[0].state_dict())  # candidates now agree
    # A larger input: on a 2x2 latent the 5x5 channel-mapping conv (model revision 2) sees 4 of
    # its 25 taps, and the unit-range input rounds every common element to 0 at initialisation.
    out = codec(4 * x)
    half = CONFIGS["shuffle"]["latent_channels"] // 2
    y0 = out["y0"]
    assert torch.count_nonzero(y0) > 0 and out["aux"].item() == 0.0
    (y0 * torch.randn_like(y0)).sum().backward()
    g1 = [p.grad for p in codec.encoders[0].parameters() if p.grad is not None]
    g2 = [p.grad for p in codec.encoders[1].parameters() if p.grad is not None]
    assert g1 and g2 and all(torch.allclose(u, v) for u, v in zip(g1, g2, strict=True))
    assert any(u.abs().sum() > 0 for u in g1)
    assert out["y1"].shape[1] == half


def test_context_is_causal_in_raster_order():
    torch.manual_seed(1)
    model = LatentEntropyModel(4)
    y = torch.round(torch.randn(1, 4, 6, 6) * 3)
    scales, means = model.gaussian_parameters(y)
    changed = y.clone()
    changed[0, :, 3, 2] += 5
    scales2, means2 = model.gaussian_parameters(changed)
    same = (scales == scales2) & (means == means2)
    for row in range(6):
        for col in range(6):
            if row < 3 or (row == 3 and col <= 2):  # before, and at, the changed position
                assert same[0, :, row, col].all(), (row, col)
    assert not same.all(), "later positions do see it"


def test_layers_follow_the_authors_code():
    """Where the paper is silent, the authors' layers (REFERENCE.md; model revision 2): LeakyReLU
    in the unconditional entropy model's parameter network and ELU in the conditional one; a 5x5
    convolution from the shuffle encoder's M * 256 channels to the latent width when it differs
    (the E/2-channel encoders of Separated, the 3E/2-channel one of Combined)."""

    def activations(model):
        return {type(m) for m in model.parameters_net if not isinstance(m, torch.nn.Conv2d)}

    assert activations(LatentEntropyModel(6)) == {torch.nn.LeakyReLU}
    assert activations(LatentEntropyModel(6, condition_channels=6)) == {torch.nn.ELU}
    assert isinstance(analysis_transform(2, 512, "shuffle")[-1], torch.nn.PixelUnshuffle)
    for name, width in (("separated", 8), ("combined", 24)):
        codec, _ = make(name, "shuffle")  # E = 16: encoders of 8 (three) or 24 channels (one)
        for encoder in codec.encoders:
            last = encoder[-1]
            assert isinstance(last, torch.nn.Conv2d) and last.kernel_size == (5, 5)
            assert (last.in_channels, last.out_channels, last.padding) == (512, width, (2, 2))


def test_conditional_model_needs_its_condition():
    model = LatentEntropyModel(3, condition_channels=3)
    with pytest.raises(ValueError, match="condition"):
        model(torch.zeros(1, 3, 2, 2))
    assert model(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)).shape == (1, 3, 2, 2)


def test_configuration_errors_are_clear():
    with pytest.raises(ValueError, match="codec must be one of shared, separated"):
        build("shard", in_channels=2, latent_channels=16)
    with pytest.raises(ValueError, match="latent_channels must be even for codec 'shared'"):
        build("shared", in_channels=3, latent_channels=5)
    build("joint", in_channels=3, latent_channels=5)  # no split, odd E is fine
    with pytest.raises(ValueError, match="transform must be one of conv, shuffle"):
        analysis_transform(3, 6, "strided")
    codec, _ = make("joint", "conv")
    with pytest.raises(ValueError, match=r"x must be a batch \(B, 3, H, W\)"):
        codec(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="heads must be a pair"):
        build("joint", in_channels=3, latent_channels=6, heads=(torch.nn.Identity(),))


def test_loss_is_eq_12_with_the_alignment_term():
    out = {
        "rates": {"r0": torch.tensor(2.0), "r1": torch.tensor(3.0), "r2": torch.tensor(5.0)},
        "z1_hat": torch.ones(2, 1, 4, 4),
        "z2_hat": torch.zeros(2, 1, 4, 4),
        "aux": torch.tensor(0.25),
    }
    z1, z2 = torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    terms = GrayWynerLoss(beta=1.5, eta=0.1, gamma=2.0)(out, z1, z2)
    assert terms["rate"].item() == pytest.approx(1.5 * 2 + 3 + 5)
    assert terms["d1"].item() == pytest.approx(1.0) and terms["d2"].item() == 0.0
    assert terms["loss"].item() == pytest.approx(0.1 * 11 + 1.0 + 0.0 + 2.0 * 0.25)
    joint_like = {**out, "rates": {"r0": torch.tensor(2.0)}}
    assert GrayWynerLoss(2.0, 1.0)(joint_like, z1, z2)["rate"].item() == pytest.approx(4.0)
    assert rmse(torch.ones(3), torch.zeros(3)).item() == 1.0


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(beta=0.0, eta=1.0), "beta must be > 0"),
    (dict(beta=1.0, eta=-1.0), "eta must be > 0"),
    (dict(beta=1.0, eta=1.0, gamma=-1.0), "gamma must be >= 0"),
])  # fmt: skip
def test_loss_rejects_bad_weights(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GrayWynerLoss(**kwargs)


def test_a_few_steps_of_training_lower_the_loss():
    codec, x = make("shared", "conv")
    z1, z2 = x.mean(dim=1, keepdim=True), x[:, :1]
    codec.heads = torch.nn.ModuleList([regression_head(3), regression_head(3)])
    loss_fn = GrayWynerLoss(beta=1.5, eta=0.01)
    optimizer = torch.optim.Adam(codec.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        terms = loss_fn(codec(x), z1, z2)
        terms["loss"].backward()
        optimizer.step()
        losses.append(terms["loss"].item())
    assert min(losses[-5:]) < 0.85 * losses[0]


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("masked", [False, True])
def test_same_convolutions_skip_only_taps_that_meet_the_padding(size, masked):
    """SameConv2d and the entropy models' masked context convolution crop the kernel on inputs
    smaller than its reach (the laptop preset's 1 x 1 latent): the same outputs and gradients as
    the full zero-padded convolution, to float32 rounding, and masking as CompressAI's layer
    (values zero at masked taps, the plain convolution's gradient there)."""
    import torch.nn.functional as F

    from gwnlib.model.entropy import MaskedSameConv2d
    from gwnlib.model.layers import SameConv2d

    torch.manual_seed(size)
    layer = MaskedSameConv2d(3, 4, 5, "A") if masked else SameConv2d(3, 4, 5)
    with torch.no_grad():
        layer.weight.normal_()  # masked taps nonzero: the forward must zero them
    x = torch.randn(2, 3, size, size, requires_grad=True)
    out = layer(x)
    upstream = torch.randn_like(out)
    grads = torch.autograd.grad((out * upstream).sum(), (x, layer.weight))
    weight = layer.weight.detach().clone().requires_grad_()  # masked in place by the forward
    if masked:
        assert (weight[:, :, 2, 2:] == 0).all() and (weight[:, :, 3:] == 0).all()
    x2 = x.detach().clone().requires_grad_()
    full = F.conv2d(x2, weight, layer.bias, 1, 2)
    expected = torch.autograd.grad((full * upstream).sum(), (x2, weight))
    torch.testing.assert_close(out, full, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads[0], expected[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads[1], expected[1], rtol=1e-5, atol=1e-6)


def test_same_convolutions_refuse_what_they_cannot_crop():
    from gwnlib.model.layers import SameConv2d

    layer = SameConv2d(2, 2, 3)
    layer.stride = (2, 2)
    with pytest.raises(ValueError, match="padding = kernel // 2, stride 1"):
        layer._check_same()
    with pytest.raises(ValueError, match="odd kernel"):
        SameConv2d(2, 2, 4)
