"""Sweeps: grids, resume without lost or repeated points, the three executors, results, CLI."""

import dataclasses
import json
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
import torch

from gwnlib.__main__ import main
from gwnlib.analysis import paper
from gwnlib.training import executors, runs, train
from gwnlib.training.sweep import SWEEPS, Sweep, expand, named, sweep_time

# Tiny points: one epoch of the synthetic smoke preset each.
SETTINGS = {"max_epochs": 1, "train_steps": 2}
VARYING = {"train_seconds", "samples_per_s", "date"}


def tiny(root, grid=None, **kwargs):
    grid = grid or {"codec": ["joint", "independent"], "eta": [0.1, 1.0]}
    return Sweep("synthetic", grid, root=root, settings=SETTINGS, **kwargs)


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=sorted(VARYING)).sort_values("key").reset_index(drop=True)


def test_a_grid_is_a_product_and_a_list_of_grids_a_union():
    assert expand({"codec": ["a", "b"], "eta": [1, 2]}) == [
        {"codec": "a", "eta": 1},
        {"codec": "a", "eta": 2},
        {"codec": "b", "eta": 1},
        {"codec": "b", "eta": 2},
    ]
    assert expand([{"codec": "a", "eta": [1]}, {"codec": ["b"], "eta": 3}]) == [
        {"codec": "a", "eta": 1},
        {"codec": "b", "eta": 3},
    ]
    with pytest.raises(ValueError, match="'eta' has no values"):
        expand({"eta": []})


def test_the_chapters_sweeps_are_the_papers_grids():
    synthetic = named("synthetic", "paper").configs()
    assert len(synthetic) == 2 * 5 + 3 * 3 * 5  # Tables 2-5
    assert {c.eta for c in synthetic} == {0.001, 0.01, 0.1, 0.5, 1.0}
    assert {c.beta for c in synthetic if c.codec == "shared"} == {1.0, 1.5, 2.0}
    mnist = named("colored_mnist", "paper").configs()
    assert len(mnist) == 3 * 6 + 5  # Table 6 (the Mixture's Independent baseline: 5 etas)
    assert {c.beta for c in mnist} == {0.1}
    assert set(SWEEPS) == {
        "synthetic",
        "synthetic_seeds",
        "colored_mnist",
        "cityscapes",
        "coco",
        "triple_mnist",
        "two_views",
    }  # the last two: chapters "Beyond two tasks" and "Two sources" (not the paper)


def test_the_seed_sweep_gives_three_seeds_of_the_beta_1_shared_and_joint_curves():
    main = named("synthetic", "short").configs()
    seeds = named("synthetic_seeds", "short").configs()
    points = {}
    for c in main + seeds:
        if c.codec in ("shared", "joint") and c.beta == 1.0:
            points.setdefault((c.codec, c.eta), set()).add(c.seed)
    assert len(points) == 10 and all(s == {0, 1, 2} for s in points.values())
    assert not {c.key for c in main} & {c.key for c in seeds}
    # Apart from the seed, the same settings: seed noise, not another preset.
    strip = {"seed": 0}
    assert {dataclasses.replace(c, **strip) for c in seeds} <= {
        dataclasses.replace(c, **strip) for c in main
    }


def test_sweep_time_counts_the_union_of_the_training_intervals():
    table = pd.DataFrame(
        {
            "train_seconds": [100.0, 100.0, 50.0, 30.0],
            "date": [  # two overlapping points, one inside them, one a day later
                "2026-12-01T10:01:40+00:00",
                "2026-12-01T10:02:30+00:00",
                "2026-12-01T10:02:00+00:00",
                "2026-12-02T09:00:00+00:00",
            ],
        }
    )
    t = sweep_time(table)
    assert (t.points, t.training_s, t.median_s) == (4, 280.0, 75.0)
    assert t.wall_s == pytest.approx(150.0 + 30.0) and t.stretches == 2
    # A point starting 40 s after the last finish joins that stretch, gap and all.
    later = pd.DataFrame({"train_seconds": [60.0], "date": ["2026-12-01T10:04:10+00:00"]})
    t = sweep_time(pd.concat([table, later]))
    assert t.wall_s == pytest.approx(250.0 + 30.0) and t.stretches == 2
    assert sweep_time(pd.concat([table, later]), gap=30).stretches == 3
    with pytest.raises(ValueError, match="gap must be >= 0"):
        sweep_time(table, gap=-1)
    with pytest.raises(ValueError, match="missing \\['date'\\]"):
        sweep_time(table.drop(columns="date"))
    with pytest.raises(ValueError, match="no finished point"):
        sweep_time(table.iloc[:0])


@pytest.mark.parametrize("name", ["cityscapes", "coco"])
def test_the_vision_sweeps_are_tables_7_and_8(name):
    configs = named(name, "paper").configs()
    points = sorted((c.codec, c.eta) for c in configs)
    assert points == sorted(map(tuple, paper.results(name)[["codec", "eta"]].values.tolist()))
    widths = {(c.codec, c.latent_channels) for c in configs}
    shared_width = 288 if name == "coco" else 192  # D.5: COCO's Shared codec needs E = 288
    assert widths == {("joint", 192), ("independent", 192), ("shared", shared_width)}


def test_duplicates_collapse_and_where_filters(tmp_path):
    s = tiny(tmp_path, [{"codec": ["joint"], "eta": [0.1, 0.1, 1]}, {"codec": "joint", "eta": 1}])
    assert [c.eta for c in s.configs()] == [0.1, 1.0]
    assert [c.eta for c in s.select(eta=1.0).configs()] == [1.0]
    # A value the grid lacks is an error naming the accepted ones; an empty combination is not.
    with pytest.raises(ValueError, match=r"codec='shared' is not a value of .* accepts 'joint'"):
        s.select(eta=[0.1, 1.0], codec="shared")
    with pytest.raises(ValueError, match=r"eta=2 is not a value of .* accepts 0\.1, 1\.0"):
        s.select(eta=[1.0, 2])
    both = tiny(tmp_path, [{"codec": "joint", "eta": 0.1}, {"codec": "independent", "eta": 1}])
    assert both.select(codec="joint", eta=1.0).configs() == []
    with pytest.raises(ValueError, match="cannot select on 'lambda'"):
        s.select(**{"lambda": 1}).configs()


def test_bad_sweeps_fail_before_any_training(tmp_path):
    with pytest.raises(ValueError, match="codec must be one of"):
        tiny(tmp_path, {"codec": ["jointt"], "eta": [1]})
    with pytest.raises(ValueError, match="preset must be one of"):
        tiny(tmp_path, preset="medium")
    with pytest.raises(
        ValueError, match="sweep must be one of synthetic, synthetic_seeds, colored_mnist"
    ):
        named("cityscape")
    with pytest.raises(ValueError, match="executor must be one of sequential, pool, slurm, fused"):
        tiny(tmp_path).run("threads")
    with pytest.raises(ValueError, match="workers applies only to executor='pool'"):
        tiny(tmp_path).run(workers=2)
    with pytest.raises(ValueError, match="cluster must be one of slurm, local, debug"):
        tiny(tmp_path).run("slurm", cluster="lsf")


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    root = tmp_path_factory.mktemp("sequential")
    s = tiny(root)
    return s, s.run(device="cpu", progress=False)


def test_a_sequential_sweep_gathers_one_row_per_point(sequential):
    s, table = sequential
    assert len(table) == 4 and list(table["key"]) == [c.key for c in s.configs()]
    assert list(table["codec"]) == ["joint", "joint", "independent", "independent"]
    for column in ("r0", "r1", "r2", "rate_transmit", "rate_receive", "d1", "d2", "real_r0"):
        assert table[column].notna().all(), column
    assert (table["preset"] == "smoke").all() and table["hardware"].str.startswith("CPU").all()
    assert s.pending() == [] and s.status()["finished"].all()


def test_finished_points_are_skipped(sequential, monkeypatch):
    s, table = sequential
    monkeypatch.setattr(executors, "fit", lambda *a, **k: pytest.fail("trained again"))
    pd.testing.assert_frame_equal(s.run(device="cpu", progress=False), table)


def test_a_killed_sweep_resumes_without_losing_or_repeating_points(tmp_path):
    s = tiny(tmp_path, {"codec": ["joint"], "eta": [0.01, 0.1, 0.5, 1.0]})
    script = textwrap.dedent(f"""
        from gwnlib.training.sweep import Sweep
        Sweep("synthetic", {{"codec": ["joint"], "eta": [0.01, 0.1, 0.5, 1.0]}},
              root={str(tmp_path)!r}, settings={SETTINGS!r}).run(device="cpu", progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 120
    while len(s.results()) < 2:
        assert proc.poll() is None, "the sweep ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {c.key: runs.run_dir(c, tmp_path) / "metrics.json" for c in s.configs()}
    before = {k: p.stat().st_mtime_ns for k, p in finished.items() if p.is_file()}
    assert 2 <= len(before) < 4

    trained = []
    real_fit = executors.fit
    executors.fit = lambda config, **kw: trained.append(config.key) or real_fit(config, **kw)
    try:
        table = s.run(device="cpu", progress=False)
    finally:
        executors.fit = real_fit
    assert len(table) == 4
    assert set(trained) == set(finished) - set(before)  # only the unfinished points ran
    assert all(finished[k].stat().st_mtime_ns == t for k, t in before.items())  # untouched


def test_a_process_pool_gives_the_sequential_results(sequential, tmp_path):
    _, table = sequential
    pooled = tiny(tmp_path).run("pool", device="cpu", workers=2, progress=False)
    pd.testing.assert_frame_equal(comparable(pooled), comparable(table))


def test_pool_workers_take_the_gpus_in_turn(monkeypatch):
    """With several GPUs, worker k trains on GPU k mod n (not all on the first one)."""
    import multiprocessing

    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    counter = multiprocessing.get_context("spawn").Value("i", 0)
    threads = torch.get_num_threads()
    try:
        for _ in range(5):
            executors.pool_init(1, counter, gpus=2)
        executors.pool_init(1, counter, gpus=1)  # one GPU (or none): nothing to choose
    finally:
        torch.set_num_threads(threads)
    assert chosen == [0, 1, 0, 1, 0]


def test_the_fused_executor_gives_the_sequential_results(sequential, tmp_path):
    _, table = sequential
    together = tiny(tmp_path).run("fused", device="cpu", progress=False)
    assert (together["fused_points"] == 2).all()  # one group per codec, two etas each
    numbers = comparable(table).select_dtypes("number").columns
    pd.testing.assert_frame_equal(
        comparable(together)[numbers], comparable(table)[numbers], rtol=2e-6, atol=1e-7
    )
    with pytest.raises(ValueError, match="channels_last does not apply"):
        tiny(tmp_path).run("fused", channels_last=True)


@pytest.mark.parametrize("executor", ["sequential", "fused"])
def test_warm_started_points_run_after_the_points_they_start_from(tmp_path, executor):
    # Grid order puts eta = 0.5 (which starts from eta = 0.1) first; the waves reorder it.
    s = Sweep("synthetic", {"codec": ["joint"], "eta": [0.5, 1.0, 0.1]}, root=tmp_path,
              settings={**SETTINGS, "init_eta": 0.1})  # fmt: skip
    assert [[c.eta for c in wave] for wave in executors.waves(s.pending())] == [
        [0.1],
        [0.5, 1.0],
    ]
    table = s.run(executor, device="cpu", progress=False)
    assert sorted(table["eta"]) == [0.1, 0.5, 1.0]
    assert table.set_index("eta")["init_eta"].isna().tolist() == [False, False, True]


def test_the_slurm_path_runs_through_submitits_local_executor(sequential, tmp_path):
    _, table = sequential
    s = tiny(tmp_path).select(codec="joint")
    local = s.run("slurm", device="cpu", cluster="local", slurm={"timeout_min": 10},
                  progress=False)  # fmt: skip
    expected = table[table["codec"] == "joint"]
    pd.testing.assert_frame_equal(comparable(local), comparable(expected))
    logs = list((tmp_path / "submitit").rglob("*_log.out"))
    assert len(logs) == 2  # one array task per point


def test_the_slurm_path_one_job_per_point_with_the_debug_executor(sequential, tmp_path):
    _, table = sequential
    s = tiny(tmp_path).select(codec="independent")
    debug = s.run("slurm", device="cpu", cluster="debug", array=False, progress=False)
    expected = table[table["codec"] == "independent"]
    pd.testing.assert_frame_equal(comparable(debug), comparable(expected))


def test_failed_points_are_reported_together_after_the_others(tmp_path, monkeypatch):
    real_fit = executors.fit

    def flaky(config, **kwargs):
        if config.eta == 0.1:
            raise RuntimeError("out of memory")
        return real_fit(config, **kwargs)

    monkeypatch.setattr(executors, "fit", flaky)
    s = tiny(tmp_path, {"codec": ["joint"], "eta": [0.1, 1.0]})
    with pytest.raises(RuntimeError, match=r"1 of 2 point\(s\) failed:\n  joint beta=1 eta=0.1"):
        s.run(device="cpu", progress=False)
    assert len(s.results()) == 1  # the other point finished


def test_export_load_and_load_or_run(sequential, tmp_path, monkeypatch):
    s, table = sequential
    assert s.load(tmp_path) is None
    path = s.export(tmp_path)
    assert path == tmp_path / "synthetic-smoke.csv"
    loaded = s.load(tmp_path)
    assert len(loaded) == 4 and {"preset", "hardware", "date"} <= set(loaded.columns)
    assert loaded["rate_transmit"].tolist() == pytest.approx(table["rate_transmit"].tolist())
    monkeypatch.setattr(executors, "fit", lambda *a, **k: pytest.fail("trained"))
    assert (s.load_or_run(tmp_path)["source"] == "committed").all()
    # Exporting a subset keeps the other points' rows, and drops rows that are no point of the
    # grid: runs of an older model revision (other keys) or of other settings.
    stale = loaded.iloc[:1].assign(key="0123456789ab")
    pd.concat([pd.read_csv(path), stale]).to_csv(path, index=False)
    s.select(codec="joint").export(tmp_path)
    assert sorted(pd.read_csv(path)["key"]) == sorted(loaded["key"])


def test_load_or_run_trains_when_nothing_is_committed(sequential, tmp_path):
    s, _ = sequential
    assert (s.load_or_run(tmp_path, device="cpu", progress=False)["source"] == "trained").all()


def test_load_or_run_trains_the_points_the_committed_results_lack(sequential, tmp_path):
    """A partial results file (a lease's few points) gives its rows and the others are trained;
    a file with none of the sweep's points (another seed, an older model revision) counts as
    no file."""
    s, table = sequential
    path = s.export(tmp_path)
    full = pd.read_csv(path)
    full.iloc[[1]].to_csv(path, index=False)
    mixed = s.load_or_run(tmp_path, device="cpu", progress=False)
    assert mixed["key"].tolist() == table["key"].tolist()  # every point, in grid order
    assert mixed["source"].tolist() == ["trained", "committed", "trained", "trained"]
    full.assign(key="0123456789ab").iloc[:1].to_csv(path, index=False)
    assert s.load(tmp_path) is None
    assert (s.load_or_run(tmp_path, device="cpu", progress=False)["source"] == "trained").all()


def test_the_command_line_runs_lists_and_exports(tmp_path, capsys):
    args = ["sweep", "synthetic", "--where", "codec=joint", "--where", "eta=1",
            "--root", str(tmp_path), "--device", "cpu"]  # fmt: skip
    assert main([*args, "--list", "--export", str(tmp_path / "none")]) == 0  # trains nothing
    listed = capsys.readouterr().out
    assert "joint beta=1 eta=1 seed=0" in listed and "nothing exported" in listed
    assert not (tmp_path / "none").exists()
    assert not list(tmp_path.rglob("metrics.json"))
    assert main([*args, "--export", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 point(s) finished" in out
    exported = pd.read_csv(tmp_path / "out" / "synthetic-smoke.csv")
    metrics = json.loads(next(tmp_path.rglob("metrics.json")).read_text())
    assert exported["key"].tolist() == [metrics["key"]]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--where", "eta"], "--where must look like NAME=VALUE"),
        (["--gpus", "1"], "the slurm options need --executor slurm"),
        (["--workers", "2"], "--workers needs --executor pool"),
        (["--preset", "huge"], "preset must be one of"),
        (["--executor", "fused", "--channels-last"], "channels_last does not apply"),
    ],
)
def test_the_command_line_reports_bad_options(tmp_path, capsys, extra, message):
    assert main(["sweep", "synthetic", "--root", str(tmp_path), *extra]) == 2
    assert message in capsys.readouterr().err


def bench_row(codec, variant, samples_per_s, points=1, size="synthetic smoke size", where=None):
    """A benchmark row as ``bench.training`` writes it, measured on this CPU (or ``where``)."""
    from gwnlib.runtime import hardware

    return {"codec": codec, "variant": variant, "points": points,
            "samples_per_s": samples_per_s, "hardware": where or hardware(torch.device("cpu")),
            "benchmark": f"training step, {codec} codec, {size}"}  # fmt: skip


def test_a_plan_finishes_the_most_points_a_budget_allows():
    """``plan.plan``: every point costed to its last epoch; one fused group at the ``fused``
    row's rate, or eager runs one after another; the most finished points win, then the
    quickest; with nothing that fits, the quickest single point, marked as not fitting."""
    from gwnlib.training.plan import plan, point_samples

    joint = named("synthetic", "paper").select(codec="joint").configs()
    work = point_samples(joint[0])
    assert work == 100 * 1000 * 100  # Table 1: 100 epochs of 1,000 steps of 100 samples
    rows = [bench_row("joint", "eager", 1e5), bench_row("joint", "fused", 3e5, points=5),
            bench_row("shared", "eager", 2e4), {"codec": "shared", "variant": "fused",
                                                "error": "OutOfMemoryError"}]  # fmt: skip
    fused = plan(joint, rows, 200)  # a group of 5 needs 5 x 1e7 / 3e5 = 167 s
    assert (fused.executor, fused.configs, fused.fits) == ("fused", tuple(joint), True)
    assert fused.seconds == pytest.approx(5 * work / 3e5)
    assert "fused 5 joint point(s)" in str(fused) and "fits" in str(fused)
    two = plan(joint, rows, 150)  # no group fits; 100 s per eager run
    assert (two.executor, two.configs, two.seconds) == ("sequential", tuple(joint[:1]), 100)
    eager_only = [row for row in rows if row["variant"] == "eager"]
    assert plan(joint, eager_only, 250).configs == tuple(joint[:2])  # 2 x 100 s
    none = plan(joint, rows, 50)
    assert (none.executor, none.configs, none.fits) == ("sequential", tuple(joint[:1]), False)
    assert "does NOT fit" in str(none)
    everything = named("synthetic", "paper").select(codec=["shared", "joint"]).configs()
    assert plan(everything, rows, 200).configs[0].codec == "joint"  # the quicker codec
    shared_only = [c for c in everything if c.codec == "shared"]
    assert plan(shared_only, rows, 600).configs == tuple(shared_only[:1])  # 500 s per run
    finishing = plan(joint, rows, 200, finish=10.0)  # a group needs 167 + 5 x 10 s
    assert (finishing.executor, finishing.configs, finishing.seconds) == (
        "sequential",
        tuple(joint[:1]),
        100 + 10,
    )
    assert plan(joint, rows, 220, finish=10.0).executor == "fused"
    with pytest.raises(ValueError, match="no 'eager' throughput for joint"):
        plan(joint, rows[1:], 200)
    with pytest.raises(ValueError, match="no points"):
        plan([], rows, 200)


def test_the_command_line_trains_what_a_budget_allows(tmp_path, capsys, monkeypatch):
    """``sweep ... --budget SECONDS --bench FILE``: the plan is made from rows measured on this
    device at the sweep's size, points the committed results hold are left out, and only the
    chosen points train, with the executor the plan chose."""
    smoke = named("synthetic", "smoke").select(codec="joint", eta=[0.1, 1.0]).configs()
    work = train.Experiment(smoke[0], "cpu").steps("train") * smoke[0].batch_size * 2
    bench = tmp_path / "bench.json"
    rows = [bench_row("joint", "eager", work / 100), bench_row("joint", "fused", work / 10, 5),
            bench_row("joint", "eager", 1e9, size="synthetic paper size"),
            bench_row("joint", "eager", 1e9, where="GPU: another machine")]  # fmt: skip
    bench.write_text(json.dumps(rows))
    results = tmp_path / "results"
    monkeypatch.setenv("GWN_RESULTS_DIR", str(results))
    args = ["sweep", "synthetic", "--where", "codec=joint", "--where", "eta=0.1,1.0", "--root",
            str(tmp_path / "runs"), "--device", "cpu", "--bench", str(bench)]  # fmt: skip
    # 100 s per eager run, a fused group of 2 in 50 s, and 30 s to finish each point: 120 s
    # fit the group (110 s), not one eager run (130 s).
    assert main([*args, "--budget", "120", "--export"]) == 0
    out = capsys.readouterr().out
    assert "plan for 120 s: fused 2 joint point(s)" in out and "2 of 2 point(s)" in out
    metrics = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("metrics.json")]
    assert sorted(m["eta"] for m in metrics) == [0.1, 1.0]
    assert all(m["fused_points"] == 2 for m in metrics)
    # On a fresh machine (no run directories), the committed points are not trained again.
    assert main([*args, "--root", str(tmp_path / "fresh"), "--budget", "120"]) == 0
    assert "every point is finished; nothing to train" in capsys.readouterr().out
    assert not list((tmp_path / "fresh").rglob("metrics.json"))
    # A budget that no point fits trains nothing, unless --overrun asks for the quickest.
    monkeypatch.setenv("GWN_RESULTS_DIR", str(tmp_path / "none"))
    assert main([*args, "--root", str(tmp_path / "short"), "--budget", "60"]) == 0
    assert "does NOT fit" in capsys.readouterr().out
    assert not list((tmp_path / "short").rglob("metrics.json"))
    assert main([*args, "--root", str(tmp_path / "short"), "--budget", "60", "--overrun"]) == 0
    assert "1 of 1 point(s)" in capsys.readouterr().out
    assert len(list((tmp_path / "short").rglob("metrics.json"))) == 1
    for extra, message in [
        (["--budget", "120", "--executor", "fused"], "--budget chooses the executor"),
        (["--budget", "0"], "--budget must be a number of seconds > 0"),
        (["--budget", "120", "--preset", "short"], "no rows measured on CPU"),
    ]:
        assert main([*args, *extra]) == 2
        assert message in capsys.readouterr().err
    assert main([a for a in args if a != str(bench) and a != "--bench"] + ["--budget", "9"]) == 2
    assert "--budget needs --bench FILE" in capsys.readouterr().err
    assert main([*args]) == 2
    assert "--bench and --overrun are read only with --budget" in capsys.readouterr().err
