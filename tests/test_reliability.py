"""Fault cases, at smoke size: each gives a clear error that names the parameter or the file, or
recovers. Streams outside the coder's range, sweep selections that match nothing, damaged result
and run files, a full disk, and sweeps whose workers outlive their parent."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from gwnlib.model.codecs import build


# -- 1. latents outside the entropy coder's range ---------------------------------------------
def test_latents_outside_the_coders_range_are_refused_before_coding():
    """Scaled by 1e9, the Joint codec's latent is far beyond 2^27, where CompressAI's rANS coder
    used to loop forever; now compress refuses it at once and says why."""
    torch.manual_seed(0)
    codec = build("joint", in_channels=2, latent_channels=16, transform="shuffle").eval()
    x = torch.rand(1, 2, 32, 32) * 1e9
    with pytest.raises(ValueError, match=r"latent 'y0' reaches .* outside the coder's range"):
        codec.compress(x)
    with pytest.raises(ValueError, match="latent 'y0' holds inf or NaN"):
        codec.compress(torch.full((1, 2, 32, 32), float("nan")))


def test_the_largest_latent_in_range_codes_and_decodes_exactly():
    """The bound is not a guess: latents of +-MAX_LATENT beside a far-off mean round-trip, in a
    child process with a time limit (a coder that loops fails the test instead of hanging it)."""
    script = textwrap.dedent(
        """
        import torch
        from gwnlib.model import entropy, streams, tables
        from gwnlib.model.codecs import build

        torch.manual_seed(0)
        codec = build("joint", in_channels=2, latent_channels=16, transform="shuffle").eval()
        model = codec.entropy_models["y0"]
        grid = tables.cdf_tables()
        y = torch.zeros(1, 16, 2, 2)
        y[0, 0, 0, 0], y[0, 1, 1, 1], y[0, 2, 0, 1] = streams.MAX_LATENT, -streams.MAX_LATENT, 7
        payload = entropy.encode_latent(model, y, None, grid)
        assert torch.equal(entropy.decode_latent(model, payload, None, (16, 2, 2), grid), y)
        print("exact", len(payload))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("exact")


# -- 2. sweep selections that match nothing ---------------------------------------------------
@pytest.mark.parametrize(
    "where, message",
    [
        (
            ["beta=banana"],
            r"beta='banana' is not a value of the synthetic smoke grid; beta accepts",
        ),
        (
            ["codec=unknown"],
            r"codec='unknown' is not a value .* accepts 'joint', 'independent', 'shared'",
        ),
        (["seed=5"], r"seed=5 is not a value .* seed accepts 0"),
        (["colour=red"], r"cannot select on 'colour'"),
        (["codec=joint", "codec=shared"], r"--where names 'codec' twice; .* --where codec=A,B"),
        (["codec=joint", "beta=2"], r"--where codec=joint beta=2 matches no point of the grid"),
    ],
)
def test_a_sweep_selection_that_matches_nothing_is_an_error(tmp_path, capsys, where, message):
    from gwnlib.__main__ import main

    args = ["sweep", "synthetic", "--root", str(tmp_path), "--list"]
    assert main([*args, *(a for w in where for a in ("--where", w))]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not any(tmp_path.iterdir())  # nothing written


# -- 3. damaged results files -----------------------------------------------------------------
RESULTS = Path(__file__).resolve().parents[1] / "book" / "results" / "synthetic-short.csv"


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda ls: [*ls[:3], ls[3][: len(ls[3]) // 2]],
            r"line 4: (the row is cut short|\w+ is empty)",
        ),
        (lambda ls: [*ls, ls[2]], r"key '\w+' is on more than one row \(lines 3, 5\)"),
        (lambda ls: ls, None),
        (
            lambda ls: [ls[0], "<<<<<<< HEAD", ls[1], "=======", ls[2], ">>>>>>> other", ls[3]],
            r"line 2: a git conflict marker \(<<<<<<<\); resolve the merge",
        ),
        (lambda ls: [ls[0].replace("rate_receive", "rate_rx"), *ls[1:]], r"no column rate_receive"),
    ],
    ids=["truncated-row", "duplicated-row", "intact", "conflict-markers", "renamed-column"],
)
def test_a_damaged_results_file_is_an_error_naming_file_and_line(tmp_path, damage, message):
    from gwnlib.training.sweep import named

    lines = RESULTS.read_text().splitlines()[:4]
    path = tmp_path / "synthetic-short.csv"
    path.write_text("\n".join(damage(lines)) + "\n")
    sweep = named("synthetic", "short", root=tmp_path / "runs")
    if message is None:  # the undamaged control: it loads, three rows
        assert len(sweep.load(tmp_path)) == 3
        return
    before = path.read_bytes()
    for call in (sweep.load, sweep.export):  # export never writes broken rows back
        with pytest.raises(ValueError, match=message) as error:
            call(tmp_path)
        assert str(path) in str(error.value)
    assert path.read_bytes() == before


def test_text_in_a_number_column_is_named_with_its_line(tmp_path):
    import pandas as pd

    from gwnlib.training.sweep import named

    table = pd.read_csv(RESULTS).head(3)
    table["rate_transmit"] = table["rate_transmit"].astype(object)
    table.loc[1, "rate_transmit"] = "0.5 bpp"
    table.to_csv(tmp_path / "synthetic-short.csv", index=False)
    with pytest.raises(ValueError, match=r"line 3: rate_transmit is '0.5 bpp', not a number"):
        named("synthetic", "short").load(tmp_path)
    table.loc[1, "rate_transmit"] = None  # an empty required metric
    table.to_csv(tmp_path / "synthetic-short.csv", index=False)
    with pytest.raises(ValueError, match=r"line 3: rate_transmit is empty"):
        named("synthetic", "short").load(tmp_path)


# -- 4. damaged run files and a full disk -----------------------------------------------------
TINY = {"max_epochs": 1, "train_steps": 2}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """Two finished tiny points (Joint and Independent, eta = 1): a sweep, its root folder."""
    from gwnlib.training.sweep import Sweep

    root = tmp_path_factory.mktemp("runs")
    sweep = Sweep(
        "synthetic", {"codec": ["joint", "independent"], "eta": [1.0]}, root=root, settings=TINY
    )
    sweep.run()
    return sweep


@pytest.fixture
def copy_of(finished, tmp_path):
    """A copy of the finished sweep under ``tmp_path``, free to damage."""
    import dataclasses
    import shutil

    shutil.copytree(finished.root, tmp_path / "runs")
    return dataclasses.replace(finished, root=tmp_path / "runs")


def folder_of(sweep, codec):
    from gwnlib.training.runs import run_dir

    return run_dir(next(c for c in sweep.configs() if c.codec == codec), sweep.root)


def test_a_damaged_metrics_file_is_set_aside_and_its_point_retrained(copy_of):
    joint, independent = folder_of(copy_of, "joint"), folder_of(copy_of, "independent")
    before = json.loads((independent / "metrics.json").read_text())
    (joint / "metrics.json").write_text('{"rate_transmit": 0.1, "d1"')  # cut short
    with pytest.warns(UserWarning, match=r"1 point\(s\) left out, .*joint.*metrics.json"):
        table = copy_of.results()
    assert table.key.tolist() == [before["key"]]  # the other point is not blocked
    assert [c.codec for c in copy_of.pending()] == ["joint"]
    with pytest.warns(
        UserWarning, match=r"metrics.json was damaged; set aside as metrics.json.dam"
    ):
        table = copy_of.run()
    assert len(table) == 2 and (joint / "metrics.json.damaged").is_file()
    assert not table.rate_transmit.isna().any()


def test_a_damaged_checkpoint_is_set_aside_and_training_restarts(copy_of):
    from gwnlib.training.train import fit

    joint = folder_of(copy_of, "joint")
    (joint / "metrics.json").unlink()  # an interrupted run: resumes from last.pt
    (joint / "last.pt").write_bytes(b"")  # empty: torch.load's bare EOFError
    config = next(c for c in copy_of.configs() if c.codec == "joint")
    with pytest.warns(UserWarning, match=r"last.pt is damaged \(EOFError\); set aside"):
        metrics = fit(config, root=copy_of.root, device="cpu", progress=False)
    assert metrics["epochs"] == 1 and (joint / "last.pt.damaged").is_file()


@pytest.mark.parametrize("name", ["config.json", "best.pt"])
def test_loading_a_damaged_run_names_the_file_and_what_to_do(copy_of, name):
    from gwnlib.files import DamagedFile
    from gwnlib.training.runs import load_codec

    joint = folder_of(copy_of, "joint")
    (joint / name).write_bytes(b"\x00garbage")
    with pytest.raises(DamagedFile, match=rf"{name} is damaged .*delete the run folder .*again"):
        load_codec(joint, device="cpu")


def test_a_damaged_config_stops_only_its_own_point(copy_of):
    from gwnlib.files import DamagedFile
    from gwnlib.training.train import fit

    joint = folder_of(copy_of, "joint")
    (joint / "metrics.json").unlink()
    (joint / "config.json").write_text("[1, 2")
    config = next(c for c in copy_of.configs() if c.codec == "joint")
    with pytest.raises(DamagedFile, match=r"config.json is damaged"):
        fit(config, root=copy_of.root, device="cpu", progress=False)


def test_a_damaged_transforms_cache_is_rebuilt(tmp_path, monkeypatch):
    from gwnlib.data.synthetic import SyntheticGrayWyner

    monkeypatch.setenv("GWN_CACHE_DIR", str(tmp_path))
    source = SyntheticGrayWyner(side=8, seed=3)
    expected = [t.clone() for t in source.transforms]
    path = source._cache_path()
    assert path.is_file()
    path.write_bytes(path.read_bytes()[:100])  # cut short
    with pytest.warns(UserWarning, match="is damaged .*; rebuilding it"):
        rebuilt = SyntheticGrayWyner(side=8, seed=3).transforms
    assert all(torch.equal(a, b) for a, b in zip(expected, rebuilt, strict=True))


def test_a_full_disk_is_named_as_such_and_leaves_the_old_file(tmp_path, monkeypatch):
    import errno

    from gwnlib import files

    path = tmp_path / "last.pt"
    files.save_torch(path, {"epoch": 1})
    before = path.read_bytes()

    def full(f):  # what the kernel answers on a full disk
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(files.DiskFull, match=r"no space left on the device holding .* last.pt"):
        files.atomic_write(path, full)
    # torch.save reports a full disk as a RuntimeError from its zip writer
    monkeypatch.setattr(files.shutil, "disk_usage", lambda _: type("U", (), {"free": 0})())

    def torch_full(f):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64")

    with pytest.raises(files.DiskFull) as error:
        files.atomic_write(path, torch_full)
    assert error.value.errno == errno.ENOSPC
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


# -- 5. a pool sweep whose parent is killed ----------------------------------------------------
def test_a_point_another_process_trains_is_reported_not_skipped_silently(tmp_path, capsys):
    from gwnlib.__main__ import main
    from gwnlib.training.runs import exclusive, is_in_progress, run_dir
    from gwnlib.training.sweep import named

    config = named("synthetic", "smoke").select(codec="joint", eta=1.0).configs()[0]
    folder = run_dir(config, tmp_path)
    folder.mkdir(parents=True)
    args = ["sweep", "synthetic", "--root", str(tmp_path), "--where", "codec=joint"]
    with exclusive(folder):  # a live holder of the lock: "another process"
        assert is_in_progress(folder)
        assert main([*args, "--where", "eta=1.0"]) == 2
    assert not is_in_progress(folder)
    error = capsys.readouterr().err
    assert "1 point(s) are being trained by another process" in error and str(folder) in error


def test_pool_workers_die_with_their_killed_parent(tmp_path):
    """kill -9 of a pool sweep's parent: its workers end too, within seconds, and free the
    locks, so that a restart can take over the points."""
    import os
    import signal
    import time

    from gwnlib.training.runs import is_in_progress, run_dir
    from gwnlib.training.sweep import Sweep

    grid = {"codec": ["joint", "independent"], "eta": [1.0]}
    settings = {"max_epochs": 1, "train_steps": 10**6}  # hours, were the workers to go on
    script = textwrap.dedent(
        f"""
        from gwnlib.training.sweep import Sweep
        Sweep("synthetic", {grid!r}, root={str(tmp_path)!r}, settings={settings!r}).run(
            "pool", workers=2, device="cpu", progress=False
        )
        """
    )
    folders = [run_dir(c, tmp_path) for c in Sweep("synthetic", grid, settings=settings).configs()]
    parent = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not all(is_in_progress(f) for f in folders):  # both workers are training
            assert parent.poll() is None and time.monotonic() < deadline, "workers never started"
            time.sleep(0.5)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 20
        while any(is_in_progress(f) for f in folders):
            assert time.monotonic() < deadline, "the workers outlived their parent"
            time.sleep(0.5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)  # whatever is left of the session


# -- the minor cases ---------------------------------------------------------------------------
def test_a_corrupted_header_shape_is_refused_without_given_shapes():
    """With ``shapes=None`` the header's shape is all the decoder has: a flipped shape byte was
    an IndexError (or a decode of the wrong size); it is a ValueError naming the stream."""
    torch.manual_seed(0)
    codec = build("shared", in_channels=2, latent_channels=16, transform="shuffle").eval()
    compressed = codec.compress(torch.rand(1, 2, 32, 32))
    for key in ("y0", "y1"):
        for offset in range(6, 12):  # the bytes of C, H and W
            for flip in (0x01, 0x80):
                bad = bytearray(compressed["strings"][key][0])
                bad[offset] ^= flip
                strings = {**compressed["strings"], key: [bytes(bad)]}
                with pytest.raises(ValueError, match=rf"stream '{key}'.* corrupted"):
                    codec.decompress(strings, None, tasks=(1,))


def test_update_sees_writes_through_data():
    from gwnlib.model import streams

    torch.manual_seed(0)
    codec = build("joint", in_channels=2, latent_channels=16, transform="shuffle").eval()
    x = torch.rand(1, 2, 32, 32)
    assert streams.update(codec) is True and streams.update(codec) is False
    with torch.no_grad():
        for p in codec.entropy_models["y0"].parameters():
            p.data.mul_(1.5)  # bypasses the version counter that the cheap fingerprint reads
    assert streams.update(codec) is True  # as the module's docs promise
    compressed = codec.compress(x)
    with torch.no_grad():
        expected = codec(x)["z1_hat"]
    assert torch.equal(
        codec.decompress(compressed["strings"], compressed["shapes"])["z1_hat"], expected
    )


def test_a_run_that_fails_before_training_leaves_no_folder(tmp_path):
    """A warm start from a run that has not finished fails at once, and leaves no run folder
    (it used to leave config.json and .lock behind)."""
    from gwnlib.experiments import resolve
    from gwnlib.training.runs import run_dir
    from gwnlib.training.train import fit

    config = resolve("synthetic", "smoke", codec="joint", eta=1.0, init_eta=0.5, **TINY)
    with pytest.raises(RuntimeError, match="init_eta.*has not finished"):
        fit(config, root=tmp_path, device="cpu", progress=False)
    assert not run_dir(config, tmp_path).exists()


def test_a_damaged_benchmark_file_is_named(tmp_path, capsys):
    from gwnlib.__main__ import main

    path = tmp_path / "bench-cpu.json"
    path.write_text('[{"codec": "shared", "samples_per_s": 4')  # cut short
    assert main(["bench", "report", str(path)]) == 2
    error = capsys.readouterr().err
    assert f"{path} is damaged (JSONDecodeError" in error and "restore it from git" in error
