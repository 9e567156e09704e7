"""Training: configs, presets, the fit loop, early stopping, atomic files, resume after a kill."""

import hashlib
import json
import math
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from gwnlib import experiments
from gwnlib.experiments import TRAINING_PRESETS, Experiment, from_dict, resolve
from gwnlib.experiments import config as run_config
from gwnlib.experiments.config import _LATER_FIELDS
from gwnlib.model.codecs import build
from gwnlib.model.heads import regression_head
from gwnlib.runtime import PRESETS
from gwnlib.training import accel, loop, runs, train

# A run small enough for tests: the smoke preset of the synthetic source.
TINY = {"dataset": "synthetic", "preset": "smoke", "codec": "shared", "eta": 0.05}
TIMING_KEYS = {"train_seconds", "samples_per_s", "date"}


def _without_timings(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in TIMING_KEYS}


# -- configs ----------------------------------------------------------------------------------


def test_every_dataset_has_every_preset():
    for dataset, presets in TRAINING_PRESETS.items():
        assert tuple(presets) == ("paper", "short", "smoke") or set(presets) == set(PRESETS)
        for preset in PRESETS:
            resolve(dataset, preset)  # each resolves to a valid config


def test_paper_preset_is_the_papers_table_1():
    synthetic = resolve("synthetic", "paper")
    assert (synthetic.latent_channels, synthetic.batch_size, synthetic.lr) == (512, 100, 1e-4)
    assert (synthetic.patience, synthetic.max_epochs) == (10, 100)
    assert (synthetic.train_steps, synthetic.val_steps, synthetic.side) == (1000, 100, 64)
    assert (synthetic.transform, synthetic.clip, synthetic.gamma) == ("shuffle", 1.0, 1.0)
    mnist = resolve("colored_mnist", "paper")
    assert (mnist.latent_channels, mnist.batch_size, mnist.beta) == (6, 100, 0.1)
    assert (mnist.patience, mnist.max_epochs, mnist.transform) == (25, 200, "conv")


def test_config_key_identifies_the_run():
    a = resolve("synthetic", "smoke", codec="shared", beta=1, eta=0.1)
    assert a.key == resolve("synthetic", "smoke", codec="shared", beta=1.0, eta=0.1).key
    assert a.key != resolve("synthetic", "smoke", codec="shared", beta=1.5, eta=0.1).key
    assert a.key != resolve("synthetic", "short", codec="shared", beta=1, eta=0.1).key
    assert from_dict(json.loads(json.dumps(a.to_dict()))) == a
    assert len(a.key) == 12 and isinstance(a.beta, float)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dataset": "cifar"}, "dataset must be one of synthetic, colored_mnist"),
        ({"preset": "huge"}, "preset must be one of smoke, short, paper"),
        ({"codec": "shard"}, "codec must be one of shared, separated"),
        ({"eta": 0}, "eta must be a finite number > 0"),
        ({"beta": -1.0}, "beta must be a finite number > 0"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"side": 40}, "side must be a multiple of 16"),
        ({"learning_rate": 1e-3}, "unknown run setting.*learning_rate.*accepted:.*lr"),
        ({"dataset": "colored_mnist", "pmf": "uniform"}, "pmf must be one of dependent"),
        ({"eta_warmup": 0}, "eta_warmup must be an integer >= 1"),
        ({"eta_warmup": 2.5}, "eta_warmup must be an integer >= 1"),
        ({"init_eta": -1.0}, "init_eta must be None or a finite number > 0"),
        ({"eta": float("inf")}, "eta must be a finite number > 0; got inf"),
        ({"beta": float("nan")}, "beta must be a finite number > 0; got nan"),
        ({"lr": float("inf")}, "lr must be a finite number > 0; got inf"),
        ({"gamma": float("inf")}, "gamma must be a finite number >= 0; got inf"),
    ],
)
def test_bad_settings_name_the_parameter(kwargs, match):
    settings = {"dataset": "synthetic", "preset": "smoke", **kwargs}
    with pytest.raises(ValueError, match=match):
        resolve(**settings)


def test_batches_are_a_pure_function_of_seed_split_and_epoch():
    experiment = Experiment(resolve(**TINY))
    first = [x for x, _, _ in experiment.batches("train", epoch=1)]
    again = [x for x, _, _ in experiment.batches("train", epoch=1)]
    other = [x for x, _, _ in experiment.batches("train", epoch=2)]
    assert len(first) == experiment.steps("train") == 6
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])
    val0 = next(experiment.batches("val", epoch=0))[0]
    assert torch.equal(val0, next(experiment.batches("val", epoch=5))[0])  # fixed validation
    assert not torch.equal(val0, next(experiment.batches("test"))[0])


# -- the fit loop -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    metrics = train.fit(**TINY, root=root, device="cpu", progress=False)
    return root, metrics


def test_a_run_writes_its_directory(finished_run):
    root, metrics = finished_run
    folder = runs.run_dir(resolve(**TINY), root)
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [
        "best.pt",
        "config.json",
        "history.csv",
        "metrics.json",
    ]
    saved = json.loads((folder / "config.json").read_text())
    assert saved["config"] == resolve(**TINY).to_dict()
    assert saved["runtime"]["device"] == "cpu" and saved["runtime"]["amp"] == "fp32"
    history = (folder / "history.csv").read_text().splitlines()
    assert len(history) == 1 + metrics["epochs"] and "val_rate_transmit" in history[0]
    for key in ("r0", "r1", "r2", "rate_transmit", "rate_receive", "d1", "d2", "loss"):
        assert math.isfinite(metrics[key]), key
    assert metrics["rate_transmit"] == pytest.approx(metrics["r0"] + metrics["r1"] + metrics["r2"])
    assert metrics["rate_receive"] == pytest.approx(metrics["rate_transmit"] + metrics["r0"])
    for key in ("real_r0", "real_r1", "real_r2", "real_rate_transmit", "real_rate_receive"):
        assert metrics[key] > 0, key
    # Same 2 samples of 32 x 32: rANS adds at most 8 bytes (64 bits) per stream.
    for key, streams in (("r0", 1), ("r1", 1), ("r2", 1), ("rate_transmit", 3)):
        gap = metrics[f"real_{key}"] - metrics[f"coded_{key}"]
        assert -0.01 < gap <= streams * 2 * 64 / (2 * 32 * 32) + 0.02 * metrics[f"coded_{key}"]
    assert metrics["real_bits_samples"] == 2 and metrics["header_bits_per_stream"] == 8 * 32
    assert metrics["key"] == folder.name and metrics["preset"] == "smoke"


def test_real_bits_track_the_estimated_rates(finished_run):
    root, metrics = finished_run
    codec = runs.load_codec(runs.run_dir(resolve(**TINY), root), device="cpu")
    experiment = Experiment(resolve(**TINY))
    x = next(experiment.batches("test"))[0][:2]
    with torch.no_grad():
        estimated = codec(x)["rates"]
    real = train.real_rates(codec, x)
    pixels = x.shape[-1] * x.shape[-2]
    for key in ("r0", "r1", "r2"):
        # rANS adds at most a few bytes per stream over -log2 p.
        assert real[f"real_{key}"] == pytest.approx(estimated[key].item(), abs=2 * 64 / pixels)


def test_a_finished_run_is_not_trained_again(finished_run, monkeypatch):
    root, metrics = finished_run
    monkeypatch.setattr(train, "_train_epoch", lambda *a, **k: pytest.fail("retrained"))
    assert train.fit(**TINY, root=root, device="cpu", progress=False) == metrics


def test_training_is_deterministic_on_the_cpu(finished_run, tmp_path):
    _, metrics = finished_run
    again = train.fit(**TINY, root=tmp_path, device="cpu", progress=False)
    assert _without_timings(again) == _without_timings(metrics)


def test_early_stopping_waits_patience_epochs_after_the_best(tmp_path, monkeypatch):
    losses = iter([5.0, 4.0, 4.5, 3.9, 4.2, 4.1, 4.0, 1.0])
    real_evaluate = train.evaluate

    def scripted(experiment, codec, loss_fn, split="val", autocast=None):
        result = real_evaluate(experiment, codec, loss_fn, split)
        return {**result, "loss": next(losses)} if split == "val" else result

    monkeypatch.setattr(train, "evaluate", scripted)
    config = resolve(**TINY, patience=3, max_epochs=20, train_steps=1)
    metrics = train.fit(config, root=tmp_path, device="cpu", progress=False)
    # Best at epoch 4 (3.9); epochs 5, 6, 7 do not improve: stop after epoch 7, not at 8.
    assert (metrics["best_epoch"], metrics["epochs"]) == (4, 7)
    assert metrics["best_val_loss"] == 3.9
    saved = torch.load(runs.run_dir(config, tmp_path) / "best.pt", weights_only=True)
    assert saved["epoch"] == 4


def test_max_epochs_bounds_training(tmp_path):
    config = resolve(**TINY, patience=50, max_epochs=3, train_steps=1)
    metrics = train.fit(config, root=tmp_path, device="cpu", progress=False)
    assert metrics["epochs"] == 3


def test_eta_warmup_ramps_the_training_rate_weight_and_keeps_old_keys(tmp_path, monkeypatch):
    config = resolve(**TINY, eta_warmup=4)
    assert [loop.rate_scale(config, step) for step in range(6)] == [0.25, 0.5, 0.75, 1, 1, 1]
    assert loop.rate_scale(resolve(**TINY), 0) == 1.0
    # None (the default) leaves the key as it was before the field existed; a value changes it.
    plain = resolve(**TINY)
    text = json.dumps({**{k: v for k, v in plain.to_dict().items()
                          if v is not None or k not in _LATER_FIELDS},
                       "model_revision": experiments.MODEL_REVISION},
                      sort_keys=True, separators=(",", ":"))  # fmt: skip
    assert plain.key == hashlib.sha256(text.encode()).hexdigest()[:12]
    assert config.key != plain.key
    # A new model revision renames every run: no run of the older models is taken as finished.
    key = plain.key
    monkeypatch.setattr(run_config, "MODEL_REVISION", run_config.MODEL_REVISION + 1)
    assert resolve(**TINY).key != key
    monkeypatch.undo()
    # The rate is down-weighted in the gradient only: logged and validation losses use eta.
    seen = []
    real_backward = torch.Tensor.backward
    monkeypatch.setattr(torch.Tensor, "backward", lambda t, *a, **k: seen.append(t.item())
                        or real_backward(t, *a, **k))  # fmt: skip
    settings = {"max_epochs": 1, "train_steps": 3}
    warm = train.fit(resolve(**TINY, eta_warmup=1000, **settings), root=tmp_path, device="cpu",
                     progress=False)  # fmt: skip
    history = (tmp_path / "synthetic" / warm["key"] / "history.csv").read_text().splitlines()
    header, row = history[0].split(","), history[1].split(",")
    logged = float(row[header.index("train_loss")])
    assert sum(seen) / len(seen) < logged  # the objective had less rate in it than the loss
    cold = train.fit(resolve(**TINY, **settings), root=tmp_path, device="cpu", progress=False)
    assert warm["loss"] != cold["loss"]


def test_a_warm_started_run_begins_from_the_best_weights_of_its_source(tmp_path):
    assert resolve(**{**TINY, "eta": 0.05}, init_eta=0.05).init_eta is None  # not from itself
    assert resolve(**TINY, init_eta=0.1).key != resolve(**TINY).key
    settings = {"max_epochs": 1, "train_steps": 2}
    config = resolve(**TINY, init_eta=0.5, **settings)
    source = runs.warm_start_source(config)
    assert source == resolve(**{**TINY, "eta": 0.5}, **settings)
    with pytest.raises(RuntimeError, match="starts from the weights of .*eta=0.5.*train it first"):
        train.fit(config, root=tmp_path, device="cpu", progress=False)
    train.fit(source, root=tmp_path, device="cpu", progress=False)
    codec = Experiment(config).codec()
    runs.warm_start(codec, config, tmp_path)
    best = torch.load(runs.run_dir(source, tmp_path) / "best.pt", weights_only=True)["model"]
    for name, value in codec.state_dict().items():
        torch.testing.assert_close(value, best[name], rtol=0, atol=0)
    metrics = train.fit(config, root=tmp_path, device="cpu", progress=False)
    scratch = train.fit(resolve(**TINY, **settings), root=tmp_path, device="cpu", progress=False)
    assert metrics["init_eta"] == 0.5 and metrics["loss"] != scratch["loss"]


def test_channels_last_training_matches_the_default_layout(tmp_path):
    settings = {**TINY, "max_epochs": 1, "train_steps": 2}
    nhwc = train.fit(**settings, root=tmp_path / "a", device="cpu", progress=False,
                     channels_last=True)  # fmt: skip
    nchw = train.fit(**settings, root=tmp_path / "b", device="cpu", progress=False)
    assert nhwc["channels_last"] is True and nchw["channels_last"] is False
    for key in ("loss", "rate_transmit", "d1", "d2"):
        assert nhwc[key] == pytest.approx(nchw[key], rel=1e-4), key
    codec = runs.load_codec(runs.run_dir(resolve(**settings), tmp_path / "a"), device="cpu")
    assert all(p.is_contiguous() for p in codec.parameters())  # saved weights load as usual


def test_gradient_accumulation_runs_accumulate_micro_batches_per_step(tmp_path, monkeypatch):
    steps = []
    real_step = torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, *a: steps.append(1) or None)
    config = resolve(**TINY, accumulate=3, train_steps=2, max_epochs=1)
    assert Experiment(config).steps("train") == 6  # micro-batches
    train.fit(config, root=tmp_path, device="cpu", progress=False)
    monkeypatch.setattr(torch.optim.Adam, "step", real_step)
    assert len(steps) == 2


def test_a_diverged_run_fails_clearly_and_writes_no_metrics(tmp_path, monkeypatch):
    real_evaluate = train.evaluate

    def nan_loss(experiment, codec, loss_fn, split="val", autocast=None):
        return {**real_evaluate(experiment, codec, loss_fn, split), "loss": float("nan")}

    monkeypatch.setattr(train, "evaluate", nan_loss)
    config = resolve(**TINY, max_epochs=2, train_steps=1)
    with pytest.raises(RuntimeError, match="never reached a finite validation loss"):
        train.fit(config, root=tmp_path, device="cpu", progress=False)
    assert not runs.is_finished(runs.run_dir(config, tmp_path))


def test_a_run_being_trained_elsewhere_is_refused(tmp_path):
    config = resolve(**TINY)
    folder = runs.run_dir(config, tmp_path)
    folder.mkdir(parents=True)
    with runs.exclusive(folder), pytest.raises(runs.RunInProgress):
        train.fit(config, root=tmp_path, device="cpu", progress=False)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"amp": "fp16"}, ValueError, "amp must be one of auto, bf16, fp32"),
        ({"log_every": 0}, ValueError, "log_every must be an integer >= 1"),
        ({"device": "tpu"}, ValueError, "device must be one of"),
    ],
)
def test_bad_fit_options_are_refused(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        train.fit(**TINY, root=tmp_path, progress=False, **kwargs)


def test_a_config_and_settings_together_are_refused(tmp_path):
    with pytest.raises(TypeError, match="either a config or settings"):
        train.fit(resolve(**TINY), root=tmp_path, eta=0.1)


def test_bf16_autocast_keeps_likelihoods_and_rates_in_float32():
    torch.manual_seed(0)
    codec = build("shared", in_channels=2, latent_channels=8, transform="shuffle",
                  heads=(regression_head(2), regression_head(2)))  # fmt: skip
    x = torch.rand(2, 2, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = codec(x)
    assert out["z1_hat"].dtype == torch.bfloat16  # the transforms did run in bfloat16
    assert all(lik.dtype == torch.float32 for lik in out["likelihoods"].values())
    assert all(rate.dtype == torch.float32 for rate in out["rates"].values())
    assert out["rate_transmit"].dtype == torch.float32


def test_colored_mnist_runs_report_accuracies(tmp_path):
    metrics = train.fit(dataset="colored_mnist", preset="smoke", codec="shared", eta=1.0,
                        root=tmp_path, device="cpu", progress=False, max_epochs=1)  # fmt: skip
    assert 0 <= metrics["acc1"] <= 1 and 0 <= metrics["acc2"] <= 1
    assert metrics["d1"] > 0 and metrics["real_rate_transmit"] > 0
    assert metrics["pmf"] == "dependent" and metrics["beta"] == 0.1


# -- resume after a kill --------------------------------------------------------------------------


def test_a_killed_run_resumes_to_the_same_result(tmp_path):
    config = resolve(**TINY, max_epochs=5, patience=10, train_steps=4)
    root = tmp_path / "killed"
    folder = runs.run_dir(config, root)
    script = textwrap.dedent(f"""
        import json, time
        from gwnlib.training import train
        from gwnlib.experiments import from_dict
        real = train._train_epoch
        def slow(*args, **kwargs):
            time.sleep(0.4)  # room for the kill to land inside an epoch
            return real(*args, **kwargs)
        train._train_epoch = slow
        config = from_dict(json.loads({json.dumps(json.dumps(config.to_dict()))}))
        train.fit(config, root={str(root)!r}, device="cpu", progress=False)
    """)
    # Same thread count as this process: float reductions (hence weights) depend on it.
    script = f"import torch; torch.set_num_threads({torch.get_num_threads()})\n" + script
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 120
    while not _epochs_done(folder) >= 2:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not runs.is_finished(folder) and (folder / "last.pt").is_file()
    killed_at = _epochs_done(folder)
    assert 2 <= killed_at < 5

    resumed = train.fit(config, root=root, device="cpu", progress=False)
    uninterrupted = train.fit(config, root=tmp_path / "whole", device="cpu", progress=False)
    assert resumed["epochs"] == 5
    assert _without_timings(resumed) == _without_timings(uninterrupted)
    best = [torch.load(runs.run_dir(config, r) / "best.pt", weights_only=True)
            for r in (root, tmp_path / "whole")]  # fmt: skip
    assert best[0]["epoch"] == best[1]["epoch"]
    assert all(torch.equal(best[0]["model"][k], best[1]["model"][k]) for k in best[1]["model"])
    history = (folder / "history.csv").read_text().splitlines()
    assert len(history) == 6  # header + 5 epochs: none lost, none repeated
    assert not (folder / "last.pt").exists()


def _epochs_done(folder: Path) -> int:
    path = folder / "history.csv"
    return len(path.read_text().splitlines()) - 1 if path.is_file() else 0


@pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="resetting the peak RSS needs Linux"
)
def test_the_cpu_benchmarks_peak_memory_is_its_own_not_the_processes():
    from gwnlib.training.bench import _peak_memory_gib, training

    Path("/proc/self/clear_refs").write_text("5")  # not an earlier test's higher peak
    blob = torch.ones(2**27)  # 0.5 GiB in one mapping, handed back to the system when freed
    pieces = [torch.ones(2**13) for _ in range(2**15)]  # 1 GiB of 32 KiB heap blocks
    before = _peak_memory_gib(torch.device("cpu"))  # the process's peak holds all of it
    del blob, pieces[1::2]  # the heap keeps the freed half (holes between live blocks)
    result = training("joint", preset="smoke", device="cpu", windows=1, steps=1, warmup=1)
    # ru_maxrss keeps the 1.5 GiB, and the resident set the heap's 0.5 GiB of holes
    assert 0 < result["peak_memory_gib"] < before - 0.6


def test_the_training_benchmark_runs_at_a_tiny_size():
    from gwnlib.training.bench import training

    result = training("joint", preset="smoke", device="cpu", windows=2, steps=1, warmup=1)
    assert result["samples_per_s"] == pytest.approx(8 * result["steps_per_s"])
    assert result["steps_per_s"] > 0 and len(result["windows"]) == 2
    assert result["amp"] == "fp32" and result["hardware"].startswith("CPU")
    assert result["variant"] == "eager" and result["peak_memory_gib"] > 0
    tiny = dict(preset="smoke", device="cpu", windows=1, steps=1, warmup=1, amp="bf16")
    assert training("joint", variant="eager", **tiny)["amp"] == "bf16"
    assert training("joint", variant="eager_fp32", **tiny)["amp"] == "fp32"  # whatever amp says
    with pytest.raises(ValueError, match="amp must be one of"):
        training("joint", preset="smoke", device="cpu", amp="half")
    with pytest.raises(ValueError, match="variant must be one of authors, eager_fp32, eager"):
        training("joint", preset="smoke", device="cpu", variant="fast")
    with pytest.raises(ValueError, match="'cudagraphs' needs a CUDA device"):
        training("joint", preset="smoke", device="cpu", variant="cudagraphs")
    with pytest.raises(ValueError, match="points must be an integer >= 1"):
        training("joint", preset="smoke", device="cpu", variant="fused", points=0)


def test_the_benchmark_suite_covers_every_variant_on_the_cpu(tmp_path, monkeypatch, capsys):
    """The CLI form CI can run: every variant but torch.compile (a minute of C++ compilation
    on this CPU) at the smoke size; CUDA graphs are reported as skipped here."""
    from gwnlib.__main__ import main
    from gwnlib.training.bench_report import speedups

    out = tmp_path / "bench.json"
    argv = ["bench", "train", "--preset", "smoke", "--device", "cpu", "--windows", "1",
            "--steps", "1", "--warmup", "1", "--points", "3", "--out", str(out)]  # fmt: skip
    variants = ("authors", "eager_fp32", "eager", "channels_last", "fused", "cudagraphs")
    for count, variant in enumerate(variants, start=1):
        assert main([*argv, "--variant", variant]) == 0
        rows = json.loads(out.read_text())  # the file gathers the cases of every call
        assert [r["variant"] for r in rows] == list(variants[:count])
        row = rows[-1]
        if variant == "cudagraphs":
            assert row["skipped"] == "needs a CUDA device"
            continue
        assert row["samples_per_s"] == pytest.approx(
            row["steps_per_s"] * row["batch_size"] * row["points"]
        )
        assert row["points"] == (3 if variant == "fused" else 1)
    assert "samples/s" in capsys.readouterr().out
    table = [{"codec": "shared", "variant": "authors", "samples_per_s": 10.0},
             {"codec": "shared", "variant": "fused", "samples_per_s": 35.0}]  # fmt: skip
    assert speedups(table) == {("shared", "authors"): 1.0, ("shared", "fused"): 3.5}
    assert main([*argv, "--variant", "turbo"]) == 2


def test_a_stopped_benchmark_keeps_its_rows_and_goes_on_from_them(tmp_path, monkeypatch):
    """``out`` is rewritten after every case; a re-run takes the cases measured with the same
    settings from it and measures only the others (or all, when a setting changed)."""
    from gwnlib.training import bench

    out = tmp_path / "bench.json"
    options = dict(preset="smoke", device="cpu", windows=1, steps=1, warmup=1, progress=False)
    real, calls = bench.training, []

    def stopped_after_one(codec, **kwargs):
        if calls:
            raise KeyboardInterrupt  # the device call's time limit, say
        calls.append(codec)
        return real(codec, **kwargs)

    monkeypatch.setattr(bench, "training", stopped_after_one)
    with pytest.raises(KeyboardInterrupt):
        bench.training_suite(["joint", "independent"], ["eager"], out=out, **options)
    first = json.loads(out.read_text())
    assert [(r["codec"], r["variant"]) for r in first] == [("joint", "eager")]

    def counted(codec, **kwargs):
        calls.append(codec)
        return real(codec, **kwargs)

    calls.clear()
    monkeypatch.setattr(bench, "training", counted)
    rows = bench.training_suite(["joint", "independent"], ["eager"], out=out, **options)
    assert calls == ["independent"] and rows[0] == first[0]
    assert [r["codec"] for r in json.loads(out.read_text())] == ["joint", "independent"]
    calls.clear()
    bench.training_suite(["joint"], ["eager"], out=out, **{**options, "steps": 2})
    assert calls == ["joint"]  # other settings: measured again, and the other row kept
    saved = json.loads(out.read_text())
    assert [(r["codec"], r["settings"]["steps"]) for r in saved] == [
        ("independent", "1"),
        ("joint", "2"),
    ]
    calls.clear()  # rows of an older model revision are measured again
    monkeypatch.setattr(run_config, "MODEL_REVISION", run_config.MODEL_REVISION + 1)
    bench.training_suite(["joint", "independent"], ["eager"], out=out, **options)
    assert calls == ["joint", "independent"]


def test_a_partial_benchmark_reports_what_it_measured(tmp_path, capsys):
    """A lease's benchmark file may stop part-way or hold failed cases: the speed-ups, the
    fastest variant per codec and the report (``bench report FILE``) use the measured rows only,
    and the sweep's cost appears once every codec has a throughput."""
    from gwnlib.__main__ import main
    from gwnlib.training.bench_report import fastest, report, speedups
    from gwnlib.training.sweep import named

    def row(codec, variant, rate, points=1):
        return {"codec": codec, "variant": variant, "points": points, "amp": "bf16",
                "samples_per_s": rate, "steps_per_s": rate / 100 / points,
                "peak_memory_gib": 1.0, "hardware": "GPU: stand-in", "torch": "2.x",
                "benchmark": "training step, joint codec, synthetic paper size"}  # fmt: skip

    rows = [
        {"codec": "shared", "variant": "authors", "error": "RuntimeError: out of memory"},
        row("shared", "eager", 300.0),
        row("joint", "authors", 100.0),
        row("joint", "fused", 450.0, points=5),
        row("joint", "eager", 200.0),
        {"codec": "joint", "variant": "cudagraphs", "skipped": "needs a CUDA device"},
    ]
    assert speedups(rows) == {("joint", "authors"): 1.0, ("joint", "fused"): 4.5,
                              ("joint", "eager"): 2.0}  # fmt: skip
    assert {codec: r["variant"] for codec, r in fastest(rows).items()} == {
        "shared": "eager",
        "joint": "fused",
    }
    text = report(rows, named("synthetic", "paper"))
    assert "RuntimeError: out of memory" in text and "needs a CUDA device" in text
    assert re.search(r"joint +fused +5 bf16 +450\.0 +0\.900 +1\.00 +4\.50x", text)
    assert "no throughput yet for combined, independent, separated" in text
    # Rows without settings are from before model revisions (1): flagged when this code's is newer.
    current = {"settings": {"model_revision": experiments.MODEL_REVISION}}
    if experiments.MODEL_REVISION != 1:
        assert "model revision 1, older than this code's: shared, joint" in text
    assert "model revision" not in report([{**r, **current} for r in rows])
    everyone = rows + [row(c, "eager", 100.0) for c in ("independent", "separated", "combined")]
    paper_sweep = named("synthetic", "paper")
    hours = report(everyone, paper_sweep).splitlines()[-1]
    per_point = 100 * 1000 * 100  # epochs x steps x batch
    total = (5 * per_point / 450 + 5 * per_point / 100 + 15 * per_point / 300
             + 30 * per_point / 100) / 3600  # fmt: skip
    assert f"{total:.2f} h = " in hours and "joint 30.86 h (fused)" in hours
    path = tmp_path / "bench-stand-in.json"
    path.write_text(json.dumps(everyone))
    assert main(["bench", "report", str(path)]) == 0
    assert hours in capsys.readouterr().out
    assert main(["bench", "report", str(tmp_path / "missing.json")]) == 2
    assert main(["bench", "train", str(path)]) == 2  # files are for 'report' only


def test_the_cpu_variants_bf16_and_one_process_per_thread(monkeypatch):
    """``eager_bf16`` autocasts whatever ``amp`` says; ``processes`` runs ``eager`` in one
    single-thread process per thread of this one, timed together, and sums their rates."""
    from gwnlib.training.bench import training

    tiny = dict(preset="smoke", device="cpu", windows=1, steps=1, warmup=1)
    assert training("joint", variant="eager_bf16", amp="fp32", **tiny)["amp"] == "bf16"
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # two processes on any machine
    row = training("joint", variant="processes", amp="fp32", **tiny)
    assert row["variant"] == "processes" and row["processes"] == 2 and row["torch_threads"] == 1
    assert row["samples_per_s"] == pytest.approx(8 * row["steps_per_s"])
    assert row["samples_per_s"] == pytest.approx(sum(row["windows"]) * 8)  # one window each
    assert row["benchmark"] == "training step, joint codec, synthetic smoke size"


def test_one_benchmark_file_holds_several_sizes(tmp_path, monkeypatch):
    """The laptop preset's rows (and a larger batch) sit beside the paper size's in one file:
    cases differ by their size settings, each size is reported with its own speed-ups, and the
    paper-size rows are found exactly (not the batch-256 rows of the same preset)."""
    from gwnlib.training import bench, bench_report

    def fake(codec, variant="eager", dataset="synthetic", preset="paper", **options):
        known = ("device", "amp", "points", "windows", "steps", "warmup")
        overrides = {k: v for k, v in options.items() if k not in known}
        rate = {"eager_fp32": 10.0, "authors": 8.0}.get(variant, 20.0) * (2 if overrides else 1)
        return {"benchmark": f"training step, {codec} codec, "
                             f"{bench_report.size_label(dataset, preset, overrides)}",
                "codec": codec, "variant": variant, "points": 1, "amp": "fp32",
                "batch_size": overrides.get("batch_size", 16), "samples_per_s": rate,
                "steps_per_s": rate / 16, "peak_memory_gib": 1.0, "hardware": "CPU: stand-in",
                "torch": "2.x"}  # fmt: skip

    monkeypatch.setattr(bench, "training", fake)
    out = tmp_path / "bench-cpu.json"
    cases = (["joint"], ["authors", "eager_fp32", "eager"])
    bench.training_suite(*cases, out=out, preset="paper", device="cpu", progress=False)
    bench.training_suite(*cases, out=out, preset="short", device="cpu", progress=False)
    bench.training_suite(*cases, out=out, preset="short", device="cpu", progress=False,
                         batch_size=256)  # fmt: skip
    rows = json.loads(out.read_text())
    groups = bench_report.by_size(rows)
    assert list(groups) == ["synthetic paper size", "synthetic short size",
                            "synthetic short size, batch_size 256"]  # fmt: skip
    assert [len(g) for g in groups.values()] == [3, 3, 3]
    assert len(bench_report.measured_at(rows, "synthetic", "short")) == 3
    with pytest.raises(ValueError, match="rows of one size"):
        bench_report.speedups(rows)
    assert (
        bench_report.speedups(groups["synthetic short size"], "eager_fp32")[("joint", "eager")]
        == 2.0
    )
    text = bench_report.report(rows)
    assert text.count("-- synthetic") == 3 and "batch_size 256" in text
    assert re.search(r"joint +eager +1 fp32 +16 +20\.0 .* 2\.50x +2\.00x", text)


def test_step_flops_are_per_sample_and_agree_with_a_hand_count():
    from gwnlib.training.plan import step_flops

    one = step_flops("shared", preset="smoke", samples=1)
    three = step_flops("shared", preset="smoke", samples=3)
    assert one > 0 and three == pytest.approx(one, rel=1e-9)  # linear in the batch
    # By hand: a convolution's forward is 2 x (output elements) x (inputs per output) FLOPs, and
    # its backward twice that (input and weight gradients), less the first layer's input gradient.
    experiment = Experiment(resolve("synthetic", "smoke", codec="shared", batch_size=1), "cpu")
    model, forward = experiment.codec(), []

    def count(module, inputs, output):
        if isinstance(module, torch.nn.ConvTranspose2d):  # each input feeds k x k outputs
            per_input = module.out_channels // module.groups * math.prod(module.kernel_size)
            forward.append(2 * inputs[0].numel() * per_input)
        elif isinstance(module, torch.nn.Conv2d):
            per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
            forward.append(2 * output.numel() * per_output)
        elif isinstance(module, torch.nn.Linear):
            forward.append(2 * output.numel() * module.in_features)

    for module in model.modules():
        module.register_forward_hook(count)
    model(next(experiment.batches("train"))[0])
    assert 2.0 * sum(forward) < one < 3.0 * sum(forward), one / sum(forward)
    with pytest.raises(ValueError, match="samples must be an integer >= 1"):
        step_flops("shared", preset="smoke", samples=0)


def test_sweep_cost_is_every_point_to_its_last_epoch():
    from gwnlib.training.plan import sweep_cost
    from gwnlib.training.sweep import named

    sweep = named("synthetic", "smoke")
    codecs = {c.codec for c in sweep.configs()}
    table = sweep_cost(sweep, {codec: 10.0 for codec in codecs}).set_index("codec")
    smoke = TRAINING_PRESETS["synthetic"]["smoke"]
    per_point = smoke["max_epochs"] * smoke["train_steps"] * smoke["batch_size"]
    assert table.points.sum() == len(sweep.configs()) == 55
    assert table.loc["shared", "points"] == 15 and table.loc["joint", "points"] == 5
    assert (table.samples == table.points * per_point).all()
    assert table.loc["joint", "hours"] == pytest.approx(5 * per_point / 10.0 / 3600)
    with pytest.raises(ValueError, match="no throughput for codec 'joint'"):
        sweep_cost(sweep.select(codec="joint"), {"shared": 1.0})


@pytest.mark.gpu
def test_a_gpu_run_trains_under_bf16_autocast_with_float32_rates(tmp_path):
    metrics = train.fit(**TINY, root=tmp_path, device="cuda", progress=False)
    assert metrics["amp"] == "bf16" and metrics["device"].startswith("cuda")
    for key in ("r0", "r1", "r2", "d1", "d2", "real_rate_transmit"):
        assert math.isfinite(metrics[key]), key
    codec = runs.load_codec(runs.run_dir(resolve(**TINY), tmp_path), device="cuda")
    x = next(Experiment(resolve(**TINY), "cuda").batches("test"))[0]
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        out = codec(x)
    assert all(lik.dtype == torch.float32 for lik in out["likelihoods"].values())


def test_a_compiled_codec_masks_its_convolutions_as_compressai_does():
    """``CompiledCodec`` masks the weights before the graph, which convolves plainly (CompressAI's
    ``.data`` reassignment failed under torch 2.11's Inductor at the second step): the same
    values and gradients as CompressAI's layer, nonzero at the masked positions (clipping sees
    them), the same state_dict, and the layer's own forward outside the graph."""
    import copy

    from gwnlib.model.entropy import LatentEntropyModel, bits

    torch.manual_seed(0)
    model = LatentEntropyModel(4)
    with torch.no_grad():
        model.context.weight.normal_()  # nonzero where masked, as after an Adam step
    reference = copy.deepcopy(model)
    compiled = accel.CompiledCodec(model, backend="eager")  # dynamo's trace, no C++ build
    y = torch.randn(2, 4, 6, 6).mul(3).round()
    weight = model.context.weight
    storage = weight.data_ptr()
    bits(compiled(y)).sum().backward()
    bits(reference(y)).sum().backward()
    assert weight.data_ptr() == storage  # masked in place, no .data swap in the graph
    for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=name)
        torch.testing.assert_close(p.grad, q.grad, msg=name)
    assert weight.grad[model.context.mask == 0].abs().sum() > 0
    assert model.state_dict().keys() == reference.state_dict().keys()
    with torch.no_grad():
        weight.add_(1 - model.context.mask)  # nonzero again where masked
    torch.testing.assert_close(model(y), reference(y))  # eager: CompressAI's forward masks
    assert weight.data_ptr() != storage


@pytest.mark.slow
def test_a_compiled_run_matches_the_eager_run(tmp_path):
    # torch.compile on the CPU needs a C++ compiler and about a minute for the first graph.
    settings = {**TINY, "codec": "joint", "max_epochs": 1, "train_steps": 2}
    compiled = train.fit(
        **settings, root=tmp_path / "c", device="cpu", progress=False, compile=True
    )
    eager = train.fit(**settings, root=tmp_path / "e", device="cpu", progress=False)
    assert compiled["compile"] is True and eager["compile"] is False
    for key in ("loss", "rate_transmit", "rate_receive", "d1", "d2"):
        assert compiled[key] == pytest.approx(eager[key], rel=1e-4), key


def test_a_learning_curve_is_the_first_epoch_of_the_run_evaluated_as_it_goes(tmp_path):
    config = resolve("synthetic", "smoke", codec="joint", eta=0.1, max_epochs=1)  # 6 steps
    curve = train.learning_curve(config, every=4, progress=False)
    assert [row["step"] for row in curve] == [4, 6]  # every 4th step, and the epoch's last
    assert [row["samples"] for row in curve] == [4 * 8, 6 * 8]
    assert curve[0]["train_seconds"] < curve[1]["train_seconds"]
    # The last evaluation is the validation of fit's first epoch: the same steps, the same
    # batches, the same seeded weights.
    train.fit(config, root=tmp_path, device="cpu", progress=False)
    history = (runs.run_dir(config, tmp_path) / "history.csv").read_text().splitlines()
    header, first = history[0].split(","), history[1].split(",")
    assert float(first[header.index("val_loss")]) == pytest.approx(curve[-1]["loss"], rel=1e-6)
    assert curve[0]["loss"] != curve[-1]["loss"]
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        train.learning_curve(config, every=0)
    first = train.learning_curve(config, every=2, max_steps=4, progress=False)
    assert [row["step"] for row in first] == [2, 4]  # stops at max_steps, same run so far
    again = train.learning_curve(config, every=4, max_steps=4, progress=False)
    assert again[0]["loss"] == pytest.approx(curve[0]["loss"], rel=1e-6)


def test_the_curve_command_adds_rows_with_settings_hardware_and_date(tmp_path, capsys):
    from gwnlib.__main__ import main

    out = tmp_path / "curves.csv"
    argv = ["curve", "synthetic", "--set", "codec=joint", "--set", "eta=0.1", "--set",
            "max_epochs=1", "--every", "4", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0 and main(argv) == 0
    import pandas as pd

    table = pd.read_csv(out)
    assert list(table.step) == [4, 6, 4, 6] and set(table.codec) == {"joint"}
    assert {"hardware", "date", "torch", "samples", "loss"} <= set(table.columns)
    assert table.loss.iloc[1] == table.loss.iloc[3]  # the same run twice: the same numbers
    assert main(["curve", "synthetic", "--set", "codec", "--out", str(out)]) == 2
    assert "--set must look like NAME=VALUE" in capsys.readouterr().err
    assert main(["curve", "synthetic", "--set", "codec=jointt", "--out", str(out)]) == 2
    assert "codec must be one of" in capsys.readouterr().err
