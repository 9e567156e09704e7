"""Entropy coding (gwnlib.model.streams): exact round trips, partial decoding, rejected streams,
real vs estimated bits (paper Sec. 3.3: the codec contract, made real with CompressAI's rANS)."""

from __future__ import annotations

import struct

import pytest
import torch

from gwnlib.model import streams, tables
from gwnlib.model.codecs import CODECS, THREE_CHANNEL, build, channels_for
from gwnlib.model.entropy import bits

# The two small configurations of test_codecs.py (2x2 latents on 32x32 inputs).
CONFIGS = {
    "shuffle": dict(in_channels=2, latent_channels=16, transform="shuffle"),
    "conv": dict(in_channels=3, latent_channels=6, transform="conv"),
}
CHANNELS = {
    "shared": ("y0", "y1", "y2"),
    "separated": ("y0", "y1", "y2"),
    "combined": ("y0", "y1", "y2"),
    "joint": ("y0",),
    "independent": ("y1", "y2"),
}


def make(name, variant="shuffle", seed=0, batch=2, size=32):
    torch.manual_seed(seed)
    codec = build(name, **CONFIGS[variant]).eval()
    x = (torch.rand(batch, CONFIGS[variant]["in_channels"], size, size) * 2 - 1) * 4
    return codec, x


@pytest.fixture(scope="module")
def shared_streams():
    codec, x = make("shared")
    return codec, x, codec.compress(x)


@pytest.mark.parametrize("variant", CONFIGS)
@pytest.mark.parametrize("name", CODECS)
def test_round_trip_is_exact(name, variant):
    codec, x = make(name, variant)
    with torch.no_grad():
        out = codec(x)
    compressed = codec.compress(x)
    assert set(compressed) == {"strings", "shapes"}
    assert tuple(compressed["strings"]) == CHANNELS[name]
    for key in CHANNELS[name]:
        assert compressed["shapes"][key] == tuple(out[key].shape[1:])
        strings = compressed["strings"][key]
        assert len(strings) == 2 and all(isinstance(s, bytes) for s in strings)
    decoded = codec.decompress(compressed["strings"], compressed["shapes"])
    for key in CHANNELS[name]:
        assert torch.equal(decoded[key], out[key]), f"{key} differs from the forward pass"
    assert torch.equal(decoded["z1_hat"], out["z1_hat"])
    assert torch.equal(decoded["z2_hat"], out["z2_hat"])


@pytest.mark.parametrize("name", CODECS)
@pytest.mark.parametrize("task", [1, 2])
def test_partial_decoding_never_reads_the_other_private_stream(name, task):
    codec, x = make(name)
    with torch.no_grad():
        out = codec(x)
    compressed = codec.compress(x)
    needed = channels_for(name, (task,))
    strings = {key: compressed["strings"][key] for key in needed}
    other = f"y{3 - task}"
    if other in compressed["strings"] and other not in needed:
        strings[other] = [b"garbage", None]  # decoding it would raise
    decoded = codec.decompress(strings, compressed["shapes"], tasks=(task,))
    assert set(decoded) == {*needed, f"z{task}_hat"}
    assert torch.equal(decoded[f"z{task}_hat"], out[f"z{task}_hat"])
    for key in needed:
        assert torch.equal(decoded[key], out[key])


def test_channels_each_task_needs():
    for name in THREE_CHANNEL:
        assert channels_for(name, (1,)) == ("y0", "y1")
        assert channels_for(name, (2,)) == ("y0", "y2")
        assert channels_for(name, (2, 1)) == ("y0", "y1", "y2")
    assert channels_for("joint", (1,)) == channels_for("joint", (2,)) == ("y0",)
    assert channels_for("independent", (1,)) == ("y1",)
    assert channels_for("independent", (2,)) == ("y2",)
    for bad in [(), (3,), (0, 1)]:
        with pytest.raises(ValueError, match="tasks"):
            channels_for("shared", bad)


def test_stream_header(shared_streams):
    codec, x, compressed = shared_streams
    assert streams.HEADER_SIZE == 32
    stream = compressed["strings"]["y1"][0]
    fields = struct.unpack(">2sBBBBHHHIIIII", stream[: streams.HEADER_SIZE])
    magic, version, codec_id, channel, offsets, c, h, w, length = fields[:9]
    assert (magic, version, offsets) == (streams.MAGIC, streams.FORMAT_VERSION, tables.OFFSETS)
    assert (CODECS[codec_id], streams.CHANNELS[channel]) == ("shared", "y1")
    assert (c, h, w) == compressed["shapes"]["y1"] == (8, 2, 2)
    assert len(stream) == streams.HEADER_SIZE + length
    with torch.no_grad():
        latents, _ = codec.encode(x[:1])
    assert fields[11:] == (streams.latent_crc(latents["y1"]), streams.latent_crc(latents["y0"]))
    y0_fields = struct.unpack(">2sBBBBHHHIIIII", compressed["strings"]["y0"][0][:32])
    assert y0_fields[11:] == (streams.latent_crc(latents["y0"]), 0)  # coded on its own


def test_mixed_samples_and_wrong_decodes_are_rejected(shared_streams, monkeypatch):
    """Y1 of one sample with Y0 of another, and a decoder whose arithmetic picks another table
    for one element (what a last-bit float32 difference between machines does at a table
    boundary), raise instead of decoding to garbage."""
    codec, _, compressed = shared_streams
    strings, shapes = compressed["strings"], compressed["shapes"]
    mixed = {"y0": strings["y0"][::-1], "y1": strings["y1"]}
    with pytest.raises(ValueError, match="'y1' of sample 0 was coded given another Y0"):
        codec.decompress(mixed, shapes, tasks=(1,))
    real_indexes, calls = tables.CdfTables.indexes, []

    def one_off(self, scales, means):  # the decoder's third position picks the next scale up
        index, centres = real_indexes(self, scales, means)
        calls.append(len(index))
        if len(calls) == 3 and scales.numel() < 100:
            index = [i + self.offsets if i + self.offsets < len(self.cdfs) else i for i in index]
        return index, centres

    monkeypatch.setattr(tables.CdfTables, "indexes", one_off)
    with pytest.raises(ValueError, match="'y0' of sample 0 decoded to another latent"):
        codec.decompress(strings, shapes, tasks=(1,))


def _decode_y0(codec, compressed, stream):
    strings = {"y0": [stream], "y1": compressed["strings"]["y1"][:1]}
    return codec.decompress(strings, compressed["shapes"], tasks=(1,))


def test_corrupted_or_truncated_streams_are_rejected(shared_streams):
    codec, _, compressed = shared_streams
    stream = compressed["strings"]["y0"][0]
    for i in range(len(stream)):  # every single byte, header and payload
        bad = bytearray(stream)
        bad[i] ^= 0x5A
        with pytest.raises(ValueError):
            _decode_y0(codec, compressed, bytes(bad))
    for bad, match in [
        (stream[:10], "truncated"),
        (stream[:-1], "truncated"),
        (stream + b"\0", "longer"),
        (b"", "truncated"),
        ("text", "expected bytes"),
    ]:
        with pytest.raises(ValueError, match=match):
            _decode_y0(codec, compressed, bad)


def test_streams_of_another_codec_channel_or_model_are_rejected(shared_streams):
    codec, x, compressed = shared_streams
    strings, shapes = compressed["strings"], compressed["shapes"]
    swapped = {"y0": strings["y0"], "y1": strings["y2"], "y2": strings["y1"]}
    with pytest.raises(ValueError, match="holds channel 'y2', not 'y1'"):
        codec.decompress(swapped, shapes, tasks=(1,))
    separated, _ = make("separated")
    with pytest.raises(ValueError, match="written by codec 'shared', not 'separated'"):
        separated.decompress(strings, shapes)
    retrained, _ = make("shared", seed=1)  # same architecture, other weights
    with pytest.raises(ValueError, match="other entropy-model weights"):
        retrained.decompress(strings, shapes)
    with pytest.raises(ValueError, match="differs from shapes"):
        codec.decompress(strings, {**shapes, "y0": (8, 4, 1)})
    with pytest.raises(ValueError, match="same, nonzero, number"):
        codec.decompress({**strings, "y1": strings["y1"][:1]}, shapes, tasks=(1,))
    with pytest.raises(ValueError, match="need a list of 'y2'"):
        codec.decompress({"y0": strings["y0"], "y1": strings["y1"]}, shapes, tasks=(2,))


def test_tables_are_built_lazily_and_rebuilt_when_the_weights_change():
    codec, x = make("shared")
    codec.double()  # not float32 on the CPU: the coder keeps a CPU float32 copy, as for a GPU
    assert not hasattr(codec, "_entropy_coder")
    compressed = codec.compress(x.double())  # no update() call: built lazily
    assert codec.update() is False  # current: nothing to rebuild
    decoded = codec.decompress(compressed["strings"], compressed["shapes"])
    with torch.no_grad():
        out = codec(x.double())
        assert torch.equal(decoded["z1_hat"], out["z1_hat"])
        for p in codec.entropy_models["y1"].parameters():
            p.mul_(1.01)  # an optimiser step, in place
    with pytest.raises(ValueError, match="other entropy-model weights"):
        codec.decompress(compressed["strings"], compressed["shapes"])  # the copy was refreshed
    assert codec.update() is False  # decompress already rebuilt it
    assert codec.update(force=True) is True
    assert codec.train().update() is True  # training mode: always rebuilt


def test_weights_checksum_ignores_the_masking_at_the_first_forward():
    codec, x = make("joint")
    compressed = codec.compress(x)  # before any forward pass: masked weights not yet zeroed
    with torch.no_grad():
        out = codec(x)  # MaskedConv2d zeroes them in place (through .data)
    codec.update(force=True)
    decoded = codec.decompress(compressed["strings"], compressed["shapes"])
    assert torch.equal(decoded["y0"], out["y0"])


def test_cdf_table_grid():
    grid = tables.cdf_tables()
    k = tables.OFFSETS
    levels = tables.SCALE_LEVELS
    assert len(grid.cdfs) == levels * k and grid.offsets == k
    for cdf in grid.cdfs[:: k + 1]:
        assert cdf[0] == 0 and cdf[-1] == 2**tables.PRECISION
        assert all(a < b for a, b in zip(cdf, cdf[1:], strict=False))
    index, centre = grid.indexes(torch.tensor([0.0, 0.11, 1e4]), torch.tensor([0.49, -2.6, 3.0]))
    assert centre == [0, -3, 3]
    assert index[0] == 0 * k + k - 1  # smallest scale, offset bin just under +1/2
    assert index[1] // k in (0, 1) and index[1] % k == int((0.4 + 0.5) * k)
    assert index[2] == (levels - 1) * k + k // 2  # scales beyond the table use its largest
    # The nearest scale in log distance: just above a level picks it, not the next one up.
    level = grid.scales[10].item()
    (near,), _ = grid.indexes(torch.tensor([level * 1.01]), torch.tensor([0.0]))
    assert near // k == 10


def test_real_bits_match_the_estimate_after_training():
    """After a short fit of the entropy models, each stream costs -log2 p of its symbols plus
    the coder's fixed cost: rANS flushes a 64-bit state (<= 8 bytes per stream); the table grid
    (the nearest of 128 log-spaced scales, mean offsets within 1/64, 16-bit CDFs) adds under 1%,
    the issue's bound."""
    torch.manual_seed(0)
    codec = build("shared", **CONFIGS["shuffle"])
    x = (torch.rand(4, 2, 128, 128, generator=torch.Generator().manual_seed(1)) * 2 - 1) * 4
    with torch.no_grad():
        latents, _ = codec.encode(x)  # 8x8 latents, 8 channels each
    optimiser = torch.optim.Adam(codec.entropy_models.parameters(), lr=1e-2)
    for _ in range(60):
        loss = sum(bits(p).sum() for p in codec.likelihoods(latents).values())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    codec.eval()
    with torch.no_grad():
        estimated = {key: bits(p).sum().item() for key, p in codec.likelihoods(latents).items()}
    strings = codec.compress(x)["strings"]
    for key, est in estimated.items():
        real = sum(8 * (len(s) - streams.HEADER_SIZE) for s in strings[key])
        assert 0.99 * est <= real <= 1.01 * est + 64 * len(x), (key, real, est)
    assert estimated["y1"] > 2000  # enough symbols for the 1% to bind
