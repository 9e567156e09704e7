"""How a sweep's pending points are trained: one after another, in a pool of processes (one
per core or GPU), on a Slurm cluster through submitit, or as fused groups of one vmapped model
each (:class:`gwnlib.training.sweep.Sweep` chooses; chapter "Training and sweeps").

On Slurm a point that reaches its job's time limit, or is preempted, is requeued and resumes
from its run folder's ``last.pt`` (:class:`SubmittedPoint`).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from pathlib import Path

import submitit
import torch
from tqdm.auto import tqdm

from gwnlib.experiments import RunConfig, from_dict
from gwnlib.runtime import check_int
from gwnlib.training.runs import RunInProgress, warm_start_source
from gwnlib.training.train import fit

#: Where a Slurm sweep runs: a cluster, local processes through submitit, or in this process.
CLUSTERS = ("slurm", "local", "debug")
#: The largest signal delay Slurm takes (``sbatch --signal``: sig_time is at most 65535 s).
MAX_SIGNAL_DELAY_S = 65535


def run_point(config: dict, options: dict) -> dict:
    """Train one point (a config dict) to the end; what every executor calls. A point that
    another process is training is skipped (``{"key": ..., "skipped": "in progress"}``)."""
    resolved = from_dict(config)
    try:
        return fit(
            resolved,
            root=options["root"],
            device=options["device"],
            amp=options["amp"],
            compile=options["compile"],
            channels_last=options.get("channels_last", False),
            progress=options.get("progress", False),
        )
    except RunInProgress:
        return {"key": resolved.key, "skipped": "in progress"}


def _label(config: dict) -> str:
    return from_dict(config).label()


def run_sequential(jobs, progress):
    failures = []
    for config, options in tqdm(jobs, desc="sweep", unit="run", disable=not progress):
        try:
            run_point(config, {**options, "progress": progress})
        except Exception as exc:  # noqa: BLE001  (reported with the others at the end)
            failures.append((_label(config), f"{type(exc).__name__}: {exc}"))
    return failures


def waves(pending: list[RunConfig]) -> list[list[RunConfig]]:
    """``pending`` in two waves: first the points that start from scratch or from a finished
    run, then those that start from a pending one (``init_eta``; see
    :func:`gwnlib.training.train.warm_start`)."""
    keys = {config.key for config in pending}
    later = [c for c in pending if (s := warm_start_source(c)) is not None and s.key in keys]
    first = [c for c in pending if c not in later]
    return [wave for wave in (first, later) if wave]


def run_fused(pending, options, progress):
    from gwnlib.training.fused import fit_fused, groups

    failures = []
    for group in groups(pending):
        try:
            fit_fused(
                group,
                root=options["root"],
                device=options["device"],
                amp=options["amp"],
                compile=options["compile"],
                progress=progress,
            )
        except Exception as exc:  # noqa: BLE001  (reported with the others at the end)
            labels = ", ".join(config.label() for config in group)
            failures.append((labels, f"{type(exc).__name__}: {exc}"))
    return failures


def pool_init(threads: int, counter=None, gpus: int = 0, parent: int | None = None) -> None:
    """A pool worker's set-up: its share of the CPU threads and, when there are several GPUs
    and the points ask for an unnumbered one ("auto", "cuda"), its own GPU, in turn. The worker
    dies with ``parent`` (the sweep's process), even one killed with ``kill -9``."""
    if parent is not None:
        _die_with(parent)
    torch.set_num_threads(threads)
    if gpus > 1:
        with counter.get_lock():
            index, counter.value = counter.value, counter.value + 1
        torch.cuda.set_device(index % gpus)


def _die_with(parent: int) -> None:
    """End this process when ``parent`` dies: at once on Linux (``PR_SET_PDEATHSIG``), else
    within a second (a daemon thread that watches the parent's pid)."""
    import signal
    import sys
    import threading
    import time

    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="gwnlib-parent-watch", daemon=True).start()


def run_pool(jobs, workers, progress):
    cores = os.cpu_count() or 1
    if workers is None:
        workers = max(1, min(4, cores // 2))
    check_int("workers", workers)
    if not jobs:
        return []
    failures = []
    context = multiprocessing.get_context("spawn")  # no forked CUDA or thread pools
    spread = jobs[0][1]["device"] in ("auto", "cuda")  # "cuda:N" and "cpu" stay where they say
    gpus = torch.cuda.device_count() if spread and torch.cuda.is_available() else 0
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=pool_init,
        initargs=(max(1, cores // workers), context.Value("i", 0), gpus, os.getpid()),
    ) as pool:
        futures = {pool.submit(run_point, config, options): config for config, options in jobs}
        done = concurrent.futures.as_completed(futures)
        bar = tqdm(done, total=len(futures), desc="sweep", unit="run", disable=not progress)
        for future in bar:
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001
                failures.append((_label(futures[future]), f"{type(exc).__name__}: {exc}"))
    return failures


class SubmittedPoint(submitit.helpers.Checkpointable):
    """One sweep point as a submitit job that comes back when Slurm stops it.

    Slurm sends the job a signal (USR2) ``slurm_signal_delay_s`` seconds before its time limit
    (default 90), and when a job of higher priority preempts it; submitit then calls
    :meth:`checkpoint`, writes what it returns as the job's new submission and requeues the job.
    A job stopped at its time limit is requeued at most ``slurm_max_num_timeout`` times (default
    3); preemptions do not count. The resume state is not kept in this object but on disk: the
    run folder's ``last.pt``, written at the end of every epoch, from which
    :func:`gwnlib.training.train.fit` resumes. So the checkpoint is the same call again, and a
    requeued job loses only the epoch it was in.
    """

    def __call__(self, config: dict, options: dict) -> dict:
        try:
            return run_point(config, options)
        except Exception as error:
            stop = _signal_stop(error)
            if stop is None:
                raise
            raise stop from None

    def checkpoint(self, config: dict, options: dict) -> submitit.helpers.DelayedSubmission:
        """The same point, to run again when the job is requeued (it resumes from last.pt)."""
        return submitit.helpers.DelayedSubmission(self, config, options)


def _signal_stop(error: BaseException) -> BaseException | None:
    """The exception that submitit's signal handler raised, if ``error`` hides it.

    The handler ends the job where training happens to be: ``SystemExit`` once the job is
    requeued, ``UncompletedJobError`` when no requeue is left. When that is inside a file
    being written (``torch.save``'s zip writer), the writer raises again on its way out and the
    handler's exception survives only as ``__context__``: the job would end as a failure, not
    requeued. (The half-written file is a temporary that the resumed run removes.)"""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, (SystemExit, submitit.core.utils.UncompletedJobError)):
            return error
        seen.add(id(error))
        error = error.__context__
    return None


def check_slurm_parameters(parameters: dict) -> None:
    """Refuse requeue settings that Slurm or submitit cannot take, naming them and what they
    accept: ``slurm_max_num_timeout`` (``--requeues``), a whole number >= 0, and
    ``slurm_signal_delay_s`` (``--signal-delay``), whole seconds from 1 to 65535 that are less
    than the time limit ``timeout_min`` when one is given (else the signal comes at once)."""
    requeues = parameters.get("slurm_max_num_timeout")
    if requeues is not None and (
        isinstance(requeues, bool) or not isinstance(requeues, int) or requeues < 0
    ):
        raise ValueError(
            "slurm_max_num_timeout (--requeues: how many times a job stopped at its time limit "
            f"is requeued) must be an integer >= 0; got {requeues!r}"
        )
    delay = parameters.get("slurm_signal_delay_s")
    if delay is None:
        return
    if (
        isinstance(delay, bool)
        or not isinstance(delay, int)
        or not 1 <= delay <= MAX_SIGNAL_DELAY_S
    ):
        raise ValueError(
            "slurm_signal_delay_s (--signal-delay: seconds between Slurm's signal and the time "
            f"limit) must be an integer from 1 to {MAX_SIGNAL_DELAY_S}; got {delay!r}"
        )
    limit = parameters.get("timeout_min")
    if limit is not None and delay >= limit * 60:
        raise ValueError(
            f"slurm_signal_delay_s (--signal-delay) must be less than the time limit, "
            f"timeout_min (--timeout-min) = {limit} min = {limit * 60} s; got {delay} s"
        )


def run_submitit(jobs, sweep, cluster, array, wait, parameters, progress):
    """Submit ``jobs`` through submitit (:class:`SubmittedPoint` each, so that Slurm requeues
    them) and, when ``wait``, return the failures once all have ended. ``parameters``: submitit's
    (``executor.update_parameters``), and ``slurm_max_num_timeout``, which submitit takes when
    the executor is made (the ``local`` cluster requeues as often)."""
    if cluster is not None and cluster not in CLUSTERS:
        raise ValueError(f"cluster must be one of {', '.join(CLUSTERS)}; got {cluster!r}")
    check_slurm_parameters(parameters)
    if not jobs:
        return []
    parameters = dict(parameters)
    requeues = parameters.pop("slurm_max_num_timeout", None)
    made = {} if requeues is None else {f"{name}_max_num_timeout": requeues
                                        for name in ("slurm", "local")}  # fmt: skip
    folder = Path(sweep.root) / "submitit" / f"{sweep.name}-{sweep.preset}"
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster, **made)
    executor.update_parameters(**{"name": f"gwn-{sweep.name}", **parameters})
    configs = [config for config, _ in jobs]
    options = [options for _, options in jobs]
    point = SubmittedPoint()
    if array:
        submitted = executor.map_array(point, configs, options)
    else:
        submitted = [executor.submit(point, c, o) for c, o in jobs]
    if not wait:
        return []
    failures = []
    labels = {job.job_id: _label(config) for job, config in zip(submitted, configs, strict=True)}
    done = submitit.helpers.as_completed(submitted)
    for job in tqdm(done, total=len(submitted), desc="sweep", unit="job", disable=not progress):
        try:
            job.result()
        except Exception as exc:  # noqa: BLE001
            failures.append((labels[job.job_id], f"{type(exc).__name__}: {exc}"))
    return failures
