"""Sweeps: grids of runs keyed by config hash, resumable, on one CPU, a process pool or Slurm.

A :class:`Sweep` is a dataset, a preset and a grid, e.g. codec x beta x eta x seed. Each grid point
resolves to a :class:`~gwnlib.experiments.RunConfig` whose hash names its run directory
(:func:`gwnlib.training.train.run_dir`), so a point is trained at most once: finished points are
skipped, interrupted ones resume from their last epoch, and duplicates in a grid collapse. A sweep
killed at any moment therefore resumes without losing or repeating work. :meth:`Sweep.results`
gathers the finished points into one pandas DataFrame (one row per run).

The same sweep runs unchanged under four executors (:data:`EXECUTORS`):

- ``"sequential"`` (default; what notebooks use): one point after another in this process;
- ``"pool"``: a local pool of processes (``workers``), each with its share of the CPU threads;
- ``"slurm"``: one Slurm job per point, or a job array, through ``submitit`` (GPUs, CPUs, time
  limit and partition as options); a job stopped at its time limit or preempted is requeued and
  resumes from ``last.pt``. ``cluster="local"`` or ``"debug"`` runs the same jobs on this
  machine, which is how the tests check this path;
- ``"fused"``: the points that differ only in eta and beta trained together as one batched model
  in this process (:mod:`gwnlib.training.fused`; one GPU runs a whole codec's curve at once).

Named sweeps (:data:`SWEEPS`) are the chapters' grids; ``python -m gwnlib sweep NAME`` runs one
outside the notebook, e.g. on a cluster. Chapters call :meth:`Sweep.load_or_run`: the book's
committed results (``book/results/NAME-PRESET.csv``, one row per run with its preset, hardware
and date) when they exist, else train.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from gwnlib.experiments import DATASETS, RunConfig, resolve
from gwnlib.files import DamagedFile, atomic_write
from gwnlib.runtime import check_preset, results_dir, runs_dir, show_progress
from gwnlib.training.executors import (
    check_slurm_parameters,
    run_fused,
    run_pool,
    run_sequential,
    run_submitit,
    waves,
)
from gwnlib.training.results_file import read_results
from gwnlib.training.runs import (
    RunInProgress,
    is_finished,
    is_in_progress,
    load_metrics,
    run_dir,
)

#: Ways to execute a sweep's points.
EXECUTORS = ("sequential", "pool", "slurm", "fused")

#: The paper's synthetic etas (Tables 2-5) and coloured-MNIST etas (Table 6).
SYNTHETIC_ETAS = (0.001, 0.01, 0.1, 0.5, 1.0)
MNIST_ETAS = (1.0, 10.0, 25.0, 50.0, 75.0, 100.0)
CITYSCAPES_ETAS = (0.001, 0.01, 0.05, 0.1, 1.0, 5.0)
#: Not in the paper: the etas of chapters "Beyond two tasks" and "Two sources".
TRIPLE_ETAS = (1.0, 30.0, 300.0)

#: The chapters' sweeps: name -> (dataset, grid). A grid is a dict of lists (their product) or a
#: list of such dicts (the union of their products).
SWEEPS: dict[str, tuple[str, list[dict]]] = {
    # Sec. 4.1, Tables 2-5: the baselines over eta; the three-channel codecs over beta and eta.
    "synthetic": (
        "synthetic",
        [
            {"codec": ["joint", "independent"], "beta": [1.0], "eta": list(SYNTHETIC_ETAS)},
            {
                "codec": ["shared", "separated", "combined"],
                "beta": [1.0, 1.5, 2.0],
                "eta": list(SYNTHETIC_ETAS),
            },
        ],
    ),
    # Not in the paper (it reports one seed): seeds 1 and 2 of the beta = 1 Shared and Joint
    # curves, which with seed 0 of "synthetic" give three seeds per point, the seed noise that
    # tells which of the curves' differences are real.
    "synthetic_seeds": (
        "synthetic",
        [
            {
                "codec": ["shared", "joint"],
                "beta": [1.0],
                "eta": list(SYNTHETIC_ETAS),
                "seed": [1, 2],
            }
        ],
    ),
    # Sec. 4.2, Table 6: Shared per PMF over eta; Independent for the Mixture PMF.
    "colored_mnist": (
        "colored_mnist",
        [
            {
                "codec": ["shared"],
                "pmf": ["dependent", "independent", "mixture"],
                "eta": list(MNIST_ETAS),
            },
            {"codec": ["independent"], "pmf": ["mixture"], "eta": list(MNIST_ETAS[:5])},
        ],
    ),
    # Not in the paper (chapter "Beyond two tasks"): the four K-task codecs on three-task coloured
    # MNIST under the laws where they differ, at beta = 1 (transmit rate). Under "private" and
    # "synergy" the dynamic codec's rule picks the three private streams, the Independent codec's
    # (a test checks it), so it is not trained there. The full lattice also at beta = 2
    # and 3 (receive rate) under "pairwise": the transmit/receive trade-off.
    "triple_mnist": (
        "triple_mnist",
        [
            {
                "codec": ["lattice", "dynamic", "joint", "independent"],
                "law": ["shared", "pairwise"],
                "eta": list(TRIPLE_ETAS),
            },
            {
                "codec": ["lattice", "joint", "independent"],
                "law": ["synergy"],
                "eta": list(TRIPLE_ETAS),
            },
            {"codec": ["lattice", "independent"], "law": ["private"], "eta": list(TRIPLE_ETAS)},
            {
                "codec": ["lattice"],
                "law": ["pairwise"],
                "beta": [2.0, 3.0],
                "eta": list(TRIPLE_ETAS),
            },
        ],
    ),  # fmt: skip
    # Not in the paper (chapter "Two sources"): centralised codecs (each encoder sees both
    # views) against the distributed Shared codec (encoder i sees view i) on two-view coloured
    # MNIST under every law, at beta = 1 (transmit rate); seeds 1 and 2 of Shared and
    # Distributed under "neighbour", where the theory says distributed encoders lose; and both
    # at beta = 0.1 (coloured MNIST's, D.4: a cheap common channel) under "same" and "neighbour".
    "two_views": (
        "two_views",
        [
            {
                "codec": ["shared", "distributed", "joint", "independent"],
                "law": ["same", "partial", "neighbour", "digit"],
                "eta": list(TRIPLE_ETAS),
            },
            {
                "codec": ["shared", "distributed"],
                "law": ["neighbour"],
                "eta": list(TRIPLE_ETAS[:2]),
                "seed": [1, 2],
            },
            {
                "codec": ["shared", "distributed"],
                "law": ["same", "neighbour"],
                "beta": [0.1],
                "eta": list(TRIPLE_ETAS[:2]),
            },
        ],
    ),  # fmt: skip
    # Sec. 4.3, Table 7: Cityscapes (segmentation + depth), E = 192, beta = 1.
    "cityscapes": (
        "cityscapes",
        [
            {"codec": ["joint", "independent"], "eta": list(CITYSCAPES_ETAS[:5])},
            {"codec": ["shared"], "eta": list(CITYSCAPES_ETAS)},
        ],
    ),
    # Sec. 4.3, Table 8: COCO 2017 (detection + keypoints); the Shared codec needs E = 288 (D.5).
    "coco": (
        "coco",
        [
            {"codec": ["joint"], "eta": [0.001, 0.05, 0.1, 1.0]},
            {"codec": ["independent"], "eta": [0.001, 0.01, 0.05, 0.1, 1.0]},
            {"codec": ["shared"], "latent_channels": [288], "eta": [0.001, 0.5, 1.0, 2.5]},
        ],
    ),
}


def expand(grid: dict | list[dict]) -> list[dict]:
    """The grid's points: the product of each dict's value lists, dicts concatenated, in order."""
    grids = [grid] if isinstance(grid, dict) else list(grid)
    points = []
    for part in grids:
        if not isinstance(part, dict):
            raise TypeError(f"a grid is a dict of lists or a list of such dicts; got {part!r}")
        names = list(part)
        values = []
        for name in names:
            options = _as_list(part[name])
            if not options:
                raise ValueError(f"grid entry {name!r} has no values")
            values.append(options)
        points += [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]
    return points


@dataclass
class Sweep:
    """A grid of runs of one dataset under one preset.

    ``grid``: see :func:`expand`; ``settings``: fixed overrides for every point (e.g.
    ``{"max_epochs": 5}``); ``where``: keep only points whose settings (or ``key``) take these
    values (a value or a list of values per name); ``root``: where run directories live
    (default :func:`gwnlib.runtime.runs_dir`); ``name``: the results file's stem.
    """

    dataset: str
    grid: dict | list[dict]
    preset: str = "smoke"
    settings: dict = field(default_factory=dict)
    where: dict = field(default_factory=dict)
    root: str | Path | None = None
    name: str | None = None

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {self.dataset!r}")
        check_preset(self.preset)
        self.name = self.name or self.dataset
        self.root = Path(self.root) if self.root is not None else runs_dir()
        self.configs()  # fail now, not in a worker, on a bad grid
        self._check_where()

    def _check_where(self) -> None:
        """Every value ``where`` asks for must occur in the grid: a typo (``beta="banana"``,
        ``seed=5`` on a seed-0 grid) would otherwise select nothing, silently."""
        if not self.where:
            return
        everything = dataclasses.replace(self, where={}).configs()
        for name, wanted in self.where.items():
            offered = []
            for config in everything:
                values = {**config.to_dict(), "key": config.key}
                if name not in values:
                    raise ValueError(f"cannot select on {name!r}: not a run setting or 'key'")
                if values[name] not in offered:
                    offered.append(values[name])
            unknown = [value for value in _as_list(wanted) if value not in offered]
            if unknown:
                accepted = (
                    f"one of the grid's {len(offered)} keys (see --list)"
                    if name == "key"
                    else ", ".join(map(repr, offered))
                )
                raise ValueError(
                    f"{name}={', '.join(map(repr, unknown))} is not a value of the "
                    f"{self.dataset} {self.preset} grid; {name} accepts {accepted}"
                )

    # -- the points ----------------------------------------------------------------------------
    def configs(self) -> list[RunConfig]:
        """The resolved configs of the grid, filtered by ``where``, without duplicates."""
        seen, configs = set(), []
        for point in expand(self.grid):
            config = resolve(self.dataset, self.preset, **{**self.settings, **point})
            if not _matches(config, self.where) or config.key in seen:
                continue
            seen.add(config.key)
            configs.append(config)
        return configs

    def select(self, **where) -> Sweep:
        """The same sweep restricted to points whose settings take the given values."""
        return dataclasses.replace(self, where={**self.where, **where})

    def pending(self) -> list[RunConfig]:
        """The points not finished yet."""
        return [c for c in self.configs() if not is_finished(run_dir(c, self.root))]

    def status(self) -> pd.DataFrame:
        """One row per point: its label, key, run directory, and finished or not."""
        rows = []
        for config in self.configs():
            folder = run_dir(config, self.root)
            rows.append(
                {
                    "label": config.label(),
                    "key": config.key,
                    "finished": is_finished(folder),
                    "started": (folder / "config.json").is_file(),
                    "dir": str(folder),
                }
            )
        return pd.DataFrame(rows)

    # -- running ---------------------------------------------------------------------------------
    def run(
        self,
        executor: str = "sequential",
        device: str = "auto",
        amp: str = "auto",
        compile: bool = False,
        channels_last: bool = False,
        progress: bool | None = None,
        workers: int | None = None,
        cluster: str | None = None,
        array: bool = True,
        wait: bool = True,
        slurm: dict | None = None,
    ) -> pd.DataFrame:
        """Train every pending point and return :meth:`results`.

        ``executor``: one of :data:`EXECUTORS`. ``workers``: processes of the ``"pool"``
        executor (default: up to 4, one per 2 CPU cores). For ``"slurm"``: ``cluster`` (one of
        :data:`~gwnlib.training.executors.CLUSTERS`; default Slurm when available, else local
        processes), ``array`` (one job array rather than one job per point), ``wait`` (block
        until the jobs end; False returns the results finished so far at once), ``slurm``:
        submitit parameters, e.g.
        ``{"gpus_per_node": 1, "timeout_min": 600, "slurm_partition": "gpu",
        "cpus_per_task": 8}``, with ``"slurm_max_num_timeout"`` (requeues of a job stopped at its
        time limit, default 3) and ``"slurm_signal_delay_s"`` (how long before the limit Slurm
        signals it, default 90): a requeued point resumes from its ``last.pt``
        (:class:`~gwnlib.training.executors.SubmittedPoint`). Points that fail are reported
        together at the end (a ``RuntimeError`` naming them) after the others have run.
        """
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}; got {executor!r}")
        if executor != "slurm" and (cluster is not None or slurm):
            raise ValueError("cluster and slurm options apply only to executor='slurm'")
        if executor == "slurm":
            check_slurm_parameters(slurm or {})
        if executor != "pool" and workers is not None:
            raise ValueError("workers applies only to executor='pool'")
        if executor == "fused" and channels_last:
            raise ValueError("executor='fused' runs vmapped steps: channels_last does not apply")
        progress = show_progress(progress)
        pending = self.pending()
        options = {
            "root": str(self.root),
            "device": device,
            "amp": amp,
            "compile": compile,
            "channels_last": channels_last,
        }
        failures = []
        for wave in waves(pending):  # warm-started points after the runs they start from
            jobs = [(c.to_dict(), options) for c in wave]
            if executor == "sequential":
                failures += run_sequential(jobs, progress)
            elif executor == "pool":
                failures += run_pool(jobs, workers, progress)
            elif executor == "fused":
                failures += run_fused(wave, options, progress)
            else:
                failures += run_submitit(jobs, self, cluster, array, wait, slurm or {}, progress)
        if failures:
            lines = "\n".join(f"  {label}: {error}" for label, error in failures)
            raise RuntimeError(f"{len(failures)} of {len(pending)} point(s) failed:\n{lines}")
        if executor != "slurm" or wait:
            self._check_none_in_progress()
        return self.results()

    def _check_none_in_progress(self) -> None:
        """Points left pending because another process holds their lock are an error, not a
        silent skip: that process may be a sweep running beside this one, or the workers of a
        pool sweep whose parent was killed."""
        busy = [c for c in self.pending() if is_in_progress(run_dir(c, self.root))]
        if busy:
            lines = "\n".join(f"  {c.label()}: {run_dir(c, self.root)}" for c in busy)
            raise RunInProgress(
                f"{len(busy)} point(s) are being trained by another process, which holds their "
                f"lock:\n{lines}\nWait for it to finish and run again, or stop it (`fuser` on "
                "the .lock files names it)"
            )

    # -- results ---------------------------------------------------------------------------------
    def results(self) -> pd.DataFrame:
        """The finished points' final metrics, one row per run, in grid order. A point whose
        ``metrics.json`` is damaged is left out with a warning (it counts as pending: the next
        :meth:`run` sets the file aside and trains the point again); it blocks no other."""
        rows, damaged = [], []
        for config in self.configs():
            folder = run_dir(config, self.root)
            if not (folder / "metrics.json").is_file():
                continue
            try:  # one read per point: load_metrics checks what is_finished would
                rows.append(load_metrics(folder))
            except DamagedFile:
                damaged.append(f"{config.label()} ({folder / 'metrics.json'})")
        if damaged:
            warnings.warn(
                f"{len(damaged)} point(s) left out, their metrics.json damaged: "
                f"{', '.join(damaged)}; the next run of this sweep trains them again",
                stacklevel=2,
            )
        return pd.DataFrame(rows)

    def results_file(self, folder: str | Path | None = None) -> Path:
        """``<folder>/<name>-<preset>.csv`` (folder: :func:`gwnlib.runtime.results_dir`)."""
        folder = Path(folder) if folder is not None else results_dir()
        return folder / f"{self.name}-{self.preset}.csv"

    def export(self, folder: str | Path | None = None) -> Path:
        """Write :meth:`results` (merged with rows already in the file for other points of the
        whole grid, whatever ``where`` selects) to :meth:`results_file`, atomically; each row
        keeps its preset, hardware and date. Rows whose key is not a point of the grid (runs of
        an older :data:`~gwnlib.experiments.MODEL_REVISION`, or of other settings) are dropped.
        With no finished point and no file yet, nothing is written."""
        path = self.results_file(folder)
        table = self.results()
        if table.empty and not path.is_file():
            return path
        if path.is_file():
            old = read_results(path, self.dataset)
            grid = {c.key for c in dataclasses.replace(self, where={}).configs()}
            keep = old["key"].isin(grid) & ~old["key"].isin(table.get("key", []))
            table = pd.concat([old[keep], table])
        text = table.to_csv(index=False)
        atomic_write(path, lambda f: f.write(text.encode()))
        return path

    def load(self, folder: str | Path | None = None) -> pd.DataFrame | None:
        """The committed results of this sweep's points, in grid order (None when there is no
        results file or it holds none of them)."""
        path = self.results_file(folder)
        if not path.is_file():
            return None
        table = self._in_grid_order(read_results(path, self.dataset))
        return None if table.empty else table

    def _in_grid_order(self, table: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``table`` that are points of this sweep, in grid order."""
        order = {c.key: i for i, c in enumerate(self.configs())}
        table = table[table["key"].isin(order)]
        return table.sort_values("key", key=lambda k: k.map(order)).reset_index(drop=True)

    def load_or_run(self, folder: str | Path | None = None, **run_options) -> pd.DataFrame:
        """Every point's results: the committed ones (see :meth:`load`), and the others from
        :meth:`run` (options as there), in grid order. The ``source`` column says which:
        ``"committed"`` or ``"trained"``."""
        committed = self.load(folder)
        if committed is None:
            return self.run(**run_options).assign(source="trained")
        missing = [c.key for c in self.configs() if c.key not in set(committed["key"])]
        if not missing:
            return committed.assign(source="committed")
        trained = self.select(key=missing).run(**run_options).assign(source="trained")
        return self._in_grid_order(pd.concat([committed.assign(source="committed"), trained]))


def named(name: str, preset: str = "smoke", **options) -> Sweep:
    """A chapter's sweep from :data:`SWEEPS`, e.g. ``named("synthetic", "paper")``."""
    if name not in SWEEPS:
        raise ValueError(f"sweep must be one of {', '.join(SWEEPS)}; got {name!r}")
    dataset, grid = SWEEPS[name]
    return Sweep(dataset, grid, preset=preset, name=name, **options)


@dataclass(frozen=True)
class SweepTime:
    """What a sweep's finished points cost (:func:`sweep_time`): ``points``; ``training_s``, their
    training time summed; ``median_s`` per point; ``wall_s``, the wall time of the stretches of
    work in which they trained; ``stretches``, how many such stretches (a sweep trained in
    parts, on different days, has several: its wall time leaves out the gaps between them)."""

    points: int
    training_s: float
    median_s: float
    wall_s: float
    stretches: int


def sweep_time(results: pd.DataFrame, gap: float = 600.0) -> SweepTime:
    """The cost of the points in ``results`` (rows with ``train_seconds`` and ``date``, the time
    a run finished, as :meth:`Sweep.export` writes them). Each point trained during
    ``[date - train_seconds, date]``. Intervals less than ``gap`` seconds apart belong to one
    stretch of work (the time between them is a point's validation and test, and the next
    point's start, which ``train_seconds`` leaves out); a stretch lasts from its first start to
    its last finish, and ``wall_s`` adds up the stretches."""
    missing = {"train_seconds", "date"} - set(results.columns)
    if missing:
        raise ValueError(
            f"results need the columns train_seconds and date; missing {sorted(missing)}"
        )
    if results.empty:
        raise ValueError("results hold no finished point")
    if not gap >= 0:
        raise ValueError(f"gap must be >= 0 seconds; got {gap!r}")
    finished = pd.to_datetime(results["date"], utc=True)
    started = finished - pd.to_timedelta(results["train_seconds"], unit="s")
    spans: list[list] = []
    for start, stop in sorted(zip(started, finished, strict=True)):
        if spans and (start - spans[-1][1]).total_seconds() < gap:
            spans[-1][1] = max(spans[-1][1], stop)
        else:
            spans.append([start, stop])
    wall = sum((stop - start).total_seconds() for start, stop in spans)
    seconds = results["train_seconds"].astype(float)
    return SweepTime(len(results), float(seconds.sum()), float(seconds.median()), wall, len(spans))


def _as_list(value) -> list:
    """``value`` as a list: a string or any non-iterable is one value."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def _matches(config: RunConfig, where: dict) -> bool:
    values = {**config.to_dict(), "key": config.key}
    for name, wanted in where.items():
        if name not in values:
            raise ValueError(f"cannot select on {name!r}: not a run setting or 'key'")
        if values[name] not in _as_list(wanted):
            return False
    return True
