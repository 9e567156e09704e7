"""Chunk streams, the stream-file container and the command-line codec (issue 30): many images
per stream, so the rANS coder's fixed cost is paid once per chunk; exact round trips; every
corruption caught."""

from __future__ import annotations

import pytest
import torch

from gwnlib.model import container, streams
from gwnlib.model.codecs import CODECS, build
from gwnlib.model.entropy import bits

CONFIGS = {
    "shuffle": dict(in_channels=2, latent_channels=16, transform="shuffle"),
    "conv": dict(in_channels=3, latent_channels=6, transform="conv"),
}


def make(name="shared", variant="conv", seed=0, batch=6, scale=4.0):
    torch.manual_seed(seed)
    codec = build(name, **CONFIGS[variant]).eval()
    x = (torch.rand(batch, CONFIGS[variant]["in_channels"], 32, 32) * 2 - 1) * scale
    return codec, x


@pytest.mark.parametrize("variant", CONFIGS)
@pytest.mark.parametrize("name", CODECS)
def test_a_chunk_round_trip_is_exact(name, variant):
    codec, x = make(name, variant)
    with torch.no_grad():
        out = codec(x)
    chunk = streams.compress_chunk(codec, x)
    assert chunk["count"] == len(x) and set(chunk["strings"]) == set(codec.channel_widths())
    decoded = streams.decompress_chunk(codec, chunk["strings"])
    for key in chunk["strings"]:
        assert torch.equal(decoded[key], out[key]), key
    for task in (1, 2):  # each receiver alone, from its own streams only
        mine = {key: chunk["strings"][key] for key in codec.channels_for([task])}
        alone = streams.decompress_chunk(codec, mine, tasks=(task,))
        assert set(alone) == {*mine, f"z{task}_hat"}


def test_a_chunk_pays_the_fixed_cost_once():
    codec, x = make(batch=64, scale=40.0)
    with torch.no_grad():
        out = codec(x)
    chunk = streams.compress_chunk(codec, x)
    single = codec.compress(x)
    for key, stream in chunk["strings"].items():
        payload = 8 * (len(stream) - streams.CHUNK_HEADER.size)
        estimate = bits(out["likelihoods"][key]).sum().item()
        per_sample = 8 * sum(len(s) - streams.HEADER_SIZE for s in single["strings"][key])
        assert payload <= 1.02 * estimate + 64, (key, payload, estimate)
        assert payload < per_sample  # the per-sample streams pay ~64 bits each


@pytest.fixture(scope="module")
def coded():
    codec, x = make(batch=5, scale=40.0)
    return codec, x, streams.compress_chunk(codec, x)


def test_corrupted_chunks_fail_loudly(coded):
    codec, x, chunk = coded
    strings = chunk["strings"]
    flipped = bytearray(strings["y1"])
    flipped[-1] ^= 1
    with pytest.raises(ValueError, match="corrupted"):
        streams.decompress_chunk(codec, {**strings, "y1": bytes(flipped)}, tasks=(1,))
    with pytest.raises(ValueError, match="truncated"):
        streams.decompress_chunk(codec, {**strings, "y1": strings["y1"][:-3]}, tasks=(1,))
    with pytest.raises(ValueError, match="not a gwnlib chunk"):
        single = codec.compress(x[:1])["strings"]["y0"][0]
        streams.decompress_chunk(codec, {**strings, "y0": single}, tasks=(1,))
    with pytest.raises(ValueError, match="holds channel 'y2', not 'y1'"):
        streams.decompress_chunk(codec, {**strings, "y1": strings["y2"]}, tasks=(1,))


def test_a_chunk_with_another_chunks_y0_or_another_model_fails(coded):
    codec, x, chunk = coded
    other = streams.compress_chunk(codec, x.flip(0))
    y0 = codec.encode(x)[0]["y0"]
    assert not torch.equal(y0, y0.flip(0))  # the other chunk's Y0 differs
    with pytest.raises(ValueError, match="coded given another Y0"):
        mixed = {"y0": other["strings"]["y0"], "y1": chunk["strings"]["y1"]}
        streams.decompress_chunk(codec, mixed, tasks=(1,))
    retrained, _ = make(seed=1)
    with pytest.raises(ValueError, match="other entropy-model weights"):
        streams.decompress_chunk(retrained, chunk["strings"], tasks=(1,))
    joint, _ = make("joint")
    with pytest.raises(ValueError, match="written by codec 'shared', not 'joint'"):
        streams.decompress_chunk(joint, {"y0": chunk["strings"]["y0"]}, tasks=(1,))


def test_the_container_round_trips_and_reads_only_what_a_receiver_needs(tmp_path, coded):
    codec, x, _ = coded
    x = torch.cat([x, x.flip(0), x[:2]])  # 12 images: chunks of 5, 5, 2
    with torch.no_grad():
        out = codec(x)
    path = tmp_path / "images.gwn"
    index = container.write(codec, x.split(5), path)
    assert index.counts == (5, 5, 2) and index.images == 12
    assert container.read_index(path) == index
    about = container.info(path)
    assert (about["codec"], about["images"], about["chunks"]) == ("shared", 12, 3)
    assert sum(c["bytes"] for c in about["channels"].values()) < path.stat().st_size
    # Spoil every y2 chunk stream: receiver 1 never reads them.
    data = bytearray(path.read_bytes())
    for entry in index.entries:
        offset, length = entry["y2"]
        data[offset + length - 1] ^= 0xFF
    path.write_bytes(bytes(data))
    decoded = container.decode(codec, path, tasks=(1,))
    assert torch.equal(decoded["y0"], out["y0"]) and torch.equal(decoded["y1"], out["y1"])
    with pytest.raises(ValueError, match=r"images.gwn, chunk 0: .*'y2' is corrupted"):
        container.decode(codec, path, tasks=(2,))


def test_a_damaged_container_names_the_file(tmp_path, coded):
    codec, x, _ = coded
    path = tmp_path / "a.gwn"
    container.write(codec, [x], path)
    data = path.read_bytes()
    (tmp_path / "cut.gwn").write_bytes(data[:-10])
    with pytest.raises(ValueError, match="cut.gwn is truncated"):
        container.read_index(tmp_path / "cut.gwn")
    spoiled = bytearray(data)
    spoiled[12] ^= 1  # inside the index
    (tmp_path / "index.gwn").write_bytes(bytes(spoiled))
    with pytest.raises(ValueError, match="index.gwn: its index is corrupted"):
        container.read_index(tmp_path / "index.gwn")
    (tmp_path / "text.gwn").write_bytes(b"hello world, not a stream file")
    with pytest.raises(ValueError, match="text.gwn: not a gwnlib stream file"):
        container.read_index(tmp_path / "text.gwn")
    joint, _ = make("joint")
    with pytest.raises(ValueError, match="written by codec 'shared', not 'joint'"):
        container.decode(joint, path)
    with pytest.raises(ValueError, match="at least one batch"):
        container.write(codec, [], tmp_path / "none.gwn")
    assert not (tmp_path / "none.gwn").exists()


# -- the command line ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    from gwnlib.experiments import resolve
    from gwnlib.training.train import fit

    root = tmp_path_factory.mktemp("runs")
    config = resolve("colored_mnist", "smoke", codec="shared", eta=1.0)
    fit(config, root=root, progress=False)
    from gwnlib.training.runs import run_dir

    return run_dir(config, root)


def test_the_command_line_codec_end_to_end(tmp_path, smoke_run, capsys):
    import numpy as np
    from PIL import Image

    from gwnlib.__main__ import main
    from gwnlib.data.colored_mnist import ColoredMNIST
    from gwnlib.training.runs import load_codec

    images, digits, colours = ColoredMNIST(split="test").tensors(count=20)
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"{i:02d}.png")
        array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(array).save(paths[-1])
    file = tmp_path / "digits.gwn"
    run = str(smoke_run)
    assert main(["codec", "encode", "--run", run, *map(str, paths), "-o", str(file),
                 "--chunk", "8"]) == 0  # fmt: skip
    assert main(["codec", "info", str(file)]) == 0
    assert '"images": 20' in capsys.readouterr().out
    codec = load_codec(smoke_run, device="cpu")
    reread = torch.stack([torch.from_numpy(np.asarray(Image.open(p), dtype=np.float32) / 255)
                          .permute(2, 0, 1) for p in paths])  # fmt: skip
    with torch.no_grad():
        expected = codec(reread)
    for task in (1, 2):
        out = tmp_path / f"task{task}.csv"
        assert main(["codec", "decode", str(file), "--run", run, "--task", str(task),
                     "-o", str(out)]) == 0  # fmt: skip
        rows = out.read_text().splitlines()
        classes = [int(row.split(",")[1]) for row in rows[1:]]
        assert rows[0] == "image,prediction" and len(classes) == 20
        assert classes == expected[f"z{task}_hat"].argmax(1).tolist()
    saved = tmp_path / "task1.pt"
    assert main(["codec", "decode", str(file), "--run", run, "--task", "1", "-o", str(saved)]) == 0
    tensors = torch.load(saved, weights_only=True)
    assert set(tensors) == {"y0", "y1", "z1_hat"}  # receiver 1 never decodes y2
    assert torch.equal(tensors["y1"], expected["y1"])


def test_the_command_line_names_the_file_and_the_problem(tmp_path, smoke_run, capsys):
    from gwnlib.__main__ import main

    run = str(smoke_run)
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    assert main(["codec", "encode", "--run", run, str(bad), "-o", str(tmp_path / "x.gwn")]) == 2
    assert "notes.txt: not an input this command reads" in capsys.readouterr().err
    assert main(["codec", "info", str(bad)]) == 2
    assert "notes.txt" in capsys.readouterr().err
    torch.save(torch.rand(2, 6, 32, 32), tmp_path / "six.pt")
    assert main(["codec", "encode", "--run", run, str(tmp_path / "six.pt"), "-o",
                 str(tmp_path / "x.gwn")]) == 2  # fmt: skip
    assert "6 channels; the codec of" in capsys.readouterr().err
    torch.save(torch.rand(3, 3, 32, 32), tmp_path / "three.pt")
    good = tmp_path / "good.gwn"
    assert main(["codec", "encode", "--run", run, str(tmp_path / "three.pt"), "-o", str(good)]) == 0
    assert main(["codec", "decode", str(good), "--run", run, "--task", "3", "-o",
                 str(tmp_path / "o.csv")]) == 2  # fmt: skip
    assert "task must be 1 or 2; got 3" in capsys.readouterr().err
    data = bytearray(good.read_bytes())
    data[-1] ^= 1
    good.write_bytes(bytes(data))
    assert main(["codec", "decode", str(good), "--run", run, "--task", "2", "-o",
                 str(tmp_path / "o.csv")]) == 2  # fmt: skip
    assert "good.gwn, chunk 0" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def _rewrite_index(path, index, entries):
    """Write ``path``'s index again with other ``entries`` (and a valid index CRC): a file whose
    chunks point at another chunk's streams."""
    import struct
    import zlib

    data = bytearray(path.read_bytes())
    name = index.name.encode()
    at = 7 + len(name) + 1 + len(index.channels) + 8
    for count, entry in zip(index.counts, entries, strict=True):
        struct.pack_into(">I", data, at, count)
        at += 4
        for key in index.channels:
            struct.pack_into(">QI", data, at, *entry[key])
            at += 12
    struct.pack_into(">I", data, at, zlib.crc32(bytes(data[:at])))
    path.write_bytes(bytes(data))


def test_the_command_line_refuses_every_corruption(tmp_path, smoke_run, capsys):
    import shutil

    from gwnlib.__main__ import main
    from gwnlib.training.runs import load_codec

    run = str(smoke_run)
    torch.manual_seed(0)
    # Inputs far outside [0, 1], so that even the smoke codec's Y0 is nonzero and differs
    # between the two chunks (with equal Y0 streams, a swap would decode correctly).
    torch.save((torch.rand(8, 3, 32, 32) * 2 - 1) * 40, tmp_path / "x.pt")
    good = tmp_path / "good.gwn"
    assert main(["codec", "encode", "--run", run, str(tmp_path / "x.pt"), "-o", str(good),
                 "--chunk", "4"]) == 0  # fmt: skip
    capsys.readouterr()

    def refused(file, expected, task="1", with_run=run):
        out = tmp_path / "out.csv"
        code = main(["codec", "decode", str(file), "--run", with_run, "--task", task, "-o",
                     str(out)])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and expected in err and str(file) in err, err
        assert not out.exists()

    truncated = tmp_path / "truncated.gwn"
    truncated.write_bytes(good.read_bytes()[:-10])
    refused(truncated, "truncated")
    assert main(["codec", "info", str(truncated)]) == 2
    assert "truncated.gwn is truncated" in capsys.readouterr().err
    cut = tmp_path / "cut.gwn"
    cut.write_bytes(good.read_bytes()[:40])
    refused(cut, "truncated")
    # Receiver 1 handed chunk 0's Y0 with chunk 1's Y1 (a consistent index pointing across).
    mixed = tmp_path / "mixed.gwn"
    shutil.copy(good, mixed)
    index = container.read_index(mixed)
    entries = [dict(entry) for entry in index.entries]
    entries[0]["y1"], entries[1]["y1"] = index.entries[1]["y1"], index.entries[0]["y1"]
    _rewrite_index(mixed, index, entries)
    y0 = container.decode(load_codec(smoke_run, device="cpu"), good, tasks=(2,))["y0"]
    assert not torch.equal(y0[:4], y0[4:])
    refused(mixed, "another Y0")
    # Another model: the same architecture with one entropy-model weight changed.
    other = tmp_path / "other-run"
    shutil.copytree(smoke_run, other)
    saved = torch.load(other / "best.pt", weights_only=False)
    saved["model"]["entropy_models.y1.parameters_net.0.bias"] += 0.5
    torch.save(saved, other / "best.pt")
    refused(good, "other entropy-model weights", with_run=str(other))


def test_the_coding_benchmark_command(tmp_path, smoke_run, capsys):
    import json

    from gwnlib.__main__ import main

    out = tmp_path / "coding.json"
    assert main(["bench", "coding", str(smoke_run), "--images", "32", "--chunks", "1,16,32",
                 "--single", "8", "--out", str(out)]) == 0  # fmt: skip
    assert "| chunks | 32 |" in capsys.readouterr().out
    rows = json.loads(out.read_text())
    assert [(r["mode"], r["chunk"], r["images"]) for r in rows] == [
        ("single-image streams", 1, 8),
        ("chunks", 1, 8),
        ("chunks", 16, 16),
        ("chunks", 32, 32),
    ]
    assert all(r["exact"] and r["source"] == f"run {smoke_run.name}" for r in rows)
    for r in rows:  # the channels add up to the totals
        for what in ("estimated", "payload"):
            parts = sum(r[f"{k} {what} bits per image"] for k in ("y0", "y1", "y2"))
            assert parts == pytest.approx(r[f"{what} bits per image"])
    single, one, _, whole = rows
    assert single["payload bits per image"] == one["payload bits per image"]  # same flushes
    assert whole["payload bits per image"] < one["payload bits per image"] / 4
    assert whole["header bits per image"] == 8 * streams.CHUNK_HEADER.size * 3 / 32
    assert main(["bench", "coding", str(smoke_run), "--chunks", "1,x"]) == 2
    assert "--chunks must be a comma list of integers" in capsys.readouterr().err
    assert main(["bench", "coding", str(smoke_run), "--images", "100000"]) == 2
    assert "images must be at most the test split's size" in capsys.readouterr().err
