"""The package, its version ranges, the tested lock and environment.yml agree with each other."""

import importlib.metadata
import re
import sys
import sysconfig

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import gwnlib
from gwnlib.runtime import PROJECT_ROOT as ROOT

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

sys.path.insert(0, str(ROOT))
import make  # noqa: E402  (the stdlib-only bootstrap at the top of the checkout)

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ISSUE_DEPENDENCIES = {
    "torch", "torchvision", "compressai", "numpy", "matplotlib", "ipywidgets", "papermill", "tqdm",
}  # fmt: skip


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", line)
        assert match, f"lock line is not a plain pin: {line!r}"
        name = canonicalize_name(match[1])
        assert name not in pins, f"{name} is pinned twice"
        pins[name] = match[2]
    return pins


def declared_requirements() -> list[Requirement]:
    project = PYPROJECT["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return reqs


def test_version_is_the_installed_metadata_version():
    assert importlib.metadata.version("gwnlib") == gwnlib.__version__
    assert Version(gwnlib.__version__)


def test_python_floor_and_core_dependencies():
    assert PYPROJECT["project"]["requires-python"] == ">=3.10"
    core = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
    assert core >= ISSUE_DEPENDENCIES
    for req in declared_requirements():
        assert req.specifier, f"{req.name} has no version range in pyproject.toml"


def test_every_declared_dependency_is_pinned_within_its_range():
    pins = lock_pins()
    assert "gwnlib" not in pins
    for req in declared_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{name} is declared in pyproject.toml but not pinned in the lock"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"lock pins {name}=={pins[name]}, outside pyproject's range {req.specifier}"
        )


def test_torch_and_torchvision_pins_are_a_released_pair():
    # torchvision 0.N pairs with torch 2.(N - 15): 0.29 <-> 2.14, 0.19 <-> 2.4.
    pins = lock_pins()
    torch_minor = Version(pins["torch"]).minor
    vision = Version(pins["torchvision"])
    assert Version(pins["torch"]).major == 2 and vision.major == 0
    assert vision.minor == torch_minor + 15, (pins["torch"], pins["torchvision"])


def test_environment_matches_the_lock():
    if make.locked_python() != f"{sys.version_info.major}.{sys.version_info.minor}":
        pytest.skip("the lock was tested on another Python; make.py installs ranges here")
    pins = lock_pins()
    mismatched = {}
    # The environment's own packages only: importing setuptools (torch.compile's C++ builder
    # does) puts its vendored copies of platformdirs, zipp, tomli ... on sys.path.
    site_packages = sorted({sysconfig.get_paths()[key] for key in ("purelib", "platlib")})
    for dist in importlib.metadata.distributions(path=site_packages):
        name = canonicalize_name(dist.metadata["Name"])
        if name in pins and Version(dist.version).public != Version(pins[name]).public:
            mismatched[name] = (dist.version, pins[name])
    assert not mismatched, f"installed versions differ from requirements-lock.txt: {mismatched}"


def test_environment_yml_is_in_sync_with_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert f"python={make.locked_python()}" in deps
    (pip_section,) = [d["pip"] for d in deps if isinstance(d, dict)]
    assert "-c requirements-lock.txt" in pip_section
    assert f"-e .[{make.EXTRAS}]" in pip_section
    pinned = {}
    for line in pip_section:
        if line.startswith("-"):
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", line
        pinned[canonicalize_name(req.name)] = spec.version
    declared = {canonicalize_name(r.name) for r in declared_requirements()}
    assert set(pinned) == declared, "environment.yml must list exactly pyproject's dependencies"
    pins = lock_pins()
    assert {n: pins[n] for n in pinned} == pinned


def test_make_installs_the_extras_that_pyproject_defines():
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    assert set(make.EXTRAS.split(",")) == extras


def test_the_gpu_script_carries_the_locked_versions_and_runs_a_step_here(tmp_path):
    """``.ci/gpu`` (the GPU work in lease-sized steps): its wheels are the lock's versions, it
    refuses unknown steps with its usage, and its benchmark step runs here on the CPU, writing
    to $OUT only (a trial is not a result for the book)."""
    import json
    import os
    import subprocess

    script = ROOT / ".ci" / "gpu"
    wheels = re.search(r"^WHEELS=\((.*)\)$", script.read_text(), re.M)[1].split()
    pins = lock_pins()
    for wheel in wheels:
        name, version = wheel.split("==")
        assert pins[canonicalize_name(name)] == version, wheel
    env = {**os.environ, "OUT": str(tmp_path / "out"), "DEVICE": "cpu", "PYTHON": sys.executable,
           "GWN_RUNS_DIR": str(tmp_path / "runs")}  # fmt: skip
    usage = subprocess.run(["bash", str(script), "fly"], env=env, capture_output=True, text=True)
    assert usage.returncode == 2 and "bash .ci/gpu bench" in usage.stderr
    before = sorted((ROOT / "book" / "results").iterdir())
    args = ["--preset", "smoke", "--codec", "joint", "--variant", "eager", "--windows", "1",
            "--steps", "1", "--warmup", "1"]  # fmt: skip
    run = subprocess.run(["bash", str(script), "bench", *args], env=env, capture_output=True,
                         text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    rows = json.loads((tmp_path / "out" / "bench-try.json").read_text())
    assert [(r["codec"], r["variant"]) for r in rows] == [("joint", "eager")]
    assert sorted((ROOT / "book" / "results").iterdir()) == before


def test_a_gpu_lease_runs_every_step_within_its_time_here(tmp_path):
    """``bash .ci/gpu lease SECONDS`` is the whole GPU work of one short device call: tests,
    the benchmark's missing cases, the sweep's points that its rates say fit the time left, and
    the collection. Tried on the CPU at a tiny size: each step runs within its own time,
    everything comes back in $OUT (at most 8 files, as a device call returns), and nothing is
    written into the book's results."""
    import json
    import os
    import subprocess
    import tarfile
    import time
    from pathlib import Path

    import pandas as pd
    import torch

    from gwnlib.runtime import hardware

    out = tmp_path / "out"
    out.mkdir()
    # The Joint rates the plan needs, as if an earlier lease had measured them (the benchmark
    # step below has time for some Shared cases only).
    joint = {"codec": "joint", "variant": "eager", "points": 1, "samples_per_s": 50.0,
             "steps_per_s": 6.25, "amp": "fp32", "peak_memory_gib": 1.0, "torch": "2.x",
             "hardware": hardware(torch.device("cpu")),
             "benchmark": "training step, joint codec, synthetic smoke size"}  # fmt: skip
    (out / "bench-try.json").write_text(json.dumps([joint]))
    env = {**os.environ, "OUT": str(out), "DEVICE": "cpu", "PYTHON": sys.executable,
           "GWN_RUNS_DIR": str(tmp_path / "runs"), "LEASE_CHECK": "0", "LEASE_BENCH": "20",
           "LEASE_COLLECT": "20", "SWEEP_PRESET": "smoke",
           # --overrun: with 30 s kept for finishing a point, a lease this short may fit none.
           "SWEEP_ARGS": "--where codec=joint --where eta=0.1 --overrun",
           "BENCH_ARGS": "--preset smoke --windows 1 --steps 1 --warmup 1"}  # fmt: skip
    before = sorted((ROOT / "book" / "results").iterdir())
    started = time.monotonic()
    run = subprocess.run(["bash", str(ROOT / ".ci" / "gpu"), "lease", "110"], env=env,
                         capture_output=True, text=True)  # fmt: skip
    seconds = time.monotonic() - started
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert seconds < 110 + 30, seconds  # collecting is the only step without a timeout
    log = (out / "lease.log").read_text()
    for step in ("== setup", "== bench shared: authors,", "== sweep synthetic smoke", "== collect"):
        assert step in log, step
    assert "== check" not in log  # LEASE_CHECK=0 skips it
    assert "plan for " in log and "sequential 1 joint point(s)" in log, log[-2000:]
    assert len(list(out.iterdir())) <= 8
    # Shared's first case measured; the Joint row kept (or measured again, if time allowed).
    cases = {(r["codec"], r["variant"]) for r in json.loads((out / "bench-try.json").read_text())}
    assert {("shared", "authors"), ("joint", "eager")} <= cases
    points = pd.read_csv(out / "synthetic-smoke.csv")
    assert list(points.codec) == ["joint"] and list(points.eta) == [0.1]
    with tarfile.open(out / "runs-smoke.tar.gz") as archive:
        names = archive.getnames()
    assert sorted(Path(n).name for n in names) == ["config.json", "history.csv", "metrics.json"]
    assert "samples/s" in run.stdout  # the benchmark's report closes the output
    assert sorted((ROOT / "book" / "results").iterdir()) == before
