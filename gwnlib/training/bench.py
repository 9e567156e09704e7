"""Benchmarks (not timed tests): ``python -m gwnlib bench synthetic`` and ``... bench train``.

Reports throughput as the median of repeated timed windows after a warm-up, with the hardware,
so that numbers quoted in the book and in notes can be re-measured.

The training benchmark times the full step (forward, Eq. 12 loss, backward, clipping, Adam) of
one codec at a preset's size under one execution :data:`VARIANTS`; :func:`training_suite` runs
every variant for every codec (``python -m gwnlib bench train --codec all --variant all`` from
the shell). Batches are drawn before timing; no step synchronises with the host except the
``authors`` emulation. Reading the rows (speed-ups, the fastest variants, the report):
:mod:`gwnlib.training.bench_report`.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import inspect
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

from gwnlib.files import read_json
from gwnlib.runtime import check_int, hardware
from gwnlib.runtime import device as resolve_device
from gwnlib.training.bench_report import size_label

#: What to do about a damaged benchmark file.
BENCH_REMEDY = "restore it from git, or delete it and measure again (python -m gwnlib bench train)"


def _synchronize(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def synthetic_batches(
    batch_size: int = 100, device: str = "auto", side: int = 64, windows: int = 5, steps: int = 10
) -> dict:
    """Batches per second of :class:`~gwnlib.data.synthetic.SyntheticGrayWyner` (x, z1, z2)."""
    from gwnlib.data.synthetic import SyntheticGrayWyner

    dev = resolve_device(device)
    source = SyntheticGrayWyner(side=side, device=dev)
    source.transforms  # noqa: B018  (built or loaded before timing)
    stream = source.batches(batch_size, seed=0)
    for _ in range(2):  # warm-up
        next(stream)
    _synchronize(dev)
    rates = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(steps):
            next(stream)
        _synchronize(dev)
        rates.append(steps / (time.perf_counter() - start))
    median = statistics.median(rates)
    return {
        "benchmark": "synthetic batches",
        "batch_size": batch_size,
        "side": side,
        "device": str(dev),
        "hardware": hardware(dev),
        "torch_threads": torch.get_num_threads(),
        "batches_per_s": median,
        "samples_per_s": median * batch_size,
        "windows": rates,
    }


#: Execution variants of the training benchmark.
#:
#: - ``authors``: an emulation of the step the authors' Lightning code runs (fp32, eager, and one
#:   host synchronisation per sample and latent to sum its rate), not their code;
#: - ``eager_fp32``: our step (:func:`~gwnlib.training.train.backward_step` and
#:   :func:`~gwnlib.training.train.update_step`) in float32 whatever ``amp`` says: what ``authors``
#:   costs over it is the host synchronisations alone;
#: - ``eager``: our step under ``amp`` (auto: bfloat16 autocast on CUDA, float32 on the CPU; rates
#:   and likelihoods stay float32); this and the variants below use ``amp``, except
#:   ``eager_bf16``;
#: - ``eager_bf16``: our step under bfloat16 autocast whatever ``amp`` says, on any device (on a
#:   CPU, fast only where it has native bf16 instructions: :func:`gwnlib.training.accel.uses_bf16`);
#: - ``channels_last``: ``eager`` with NHWC weights and inputs;
#: - ``compile``: ``eager`` with the codec under ``torch.compile``;
#: - ``cudagraphs``: ``torch.compile(mode="reduce-overhead")``, replaying CUDA graphs (CUDA only);
#: - ``processes``: ``eager`` in one single-thread process per CPU thread of this process, all at
#:   once, throughput summed: what the ``pool`` sweep executor does with a CPU (CPU only);
#: - ``fused``: ``points`` (eta) points trained as one vmapped model (:mod:`gwnlib.training.fused`);
#:   throughput counts every point's samples;
#: - ``fused_compile``: ``fused`` with the batched step under ``torch.compile``.
#:
#: Every variant runs with PyTorch's float32 defaults, which neither the authors' Lightning code
#: nor :func:`gwnlib.training.train.fit` changes: TF32 in cuDNN convolutions, full float32 in matrix
#: products (rows record them as ``tf32``).
VARIANTS = (
    "authors",
    "eager_fp32",
    "eager",
    "eager_bf16",
    "channels_last",
    "compile",
    "cudagraphs",
    "processes",
    "fused",
    "fused_compile",
)
FUSED_VARIANTS = ("fused", "fused_compile")


def training(
    codec: str = "shared",
    dataset: str = "synthetic",
    preset: str = "paper",
    device: str = "auto",
    amp: str = "auto",
    variant: str = "eager",
    points: int = 5,
    windows: int = 3,
    steps: int = 3,
    warmup: int = 2,
    _barrier=None,
    **overrides,
) -> dict:
    """Training throughput of one codec at a preset's size under ``variant`` (:data:`VARIANTS`):
    samples/s (for ``fused``: summed over its ``points`` points) and steps/s, the median of
    ``windows`` timed windows of ``steps`` steps after ``warmup`` steps, and the peak memory of
    the timed windows (CUDA: allocated by PyTorch; CPU: the process's peak resident set, reset
    after the warm-up where Linux allows it, :func:`_reset_peak_memory`, and freed heap handed
    back before it, :func:`_release_freed_memory`)."""
    from gwnlib.experiments import Experiment, resolve
    from gwnlib.training.accel import ChannelsLastInputs, CompiledCodec, autocast_context, uses_bf16
    from gwnlib.training.loop import make_optimizer
    from gwnlib.training.train import backward_step, check_options, update_step

    check_options(amp)
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}; got {variant!r}")
    check_int("points", points)
    dev = resolve_device(device)
    if variant == "cudagraphs" and dev.type != "cuda":
        raise ValueError("variant 'cudagraphs' needs a CUDA device")
    if variant == "processes":
        if dev.type != "cpu":
            raise ValueError("variant 'processes' runs on the CPU only (device='cpu')")
        return _processes(codec, dataset, preset, amp, windows, steps, warmup, overrides)
    config = resolve(dataset, preset, codec=codec, **overrides)
    bf16 = variant == "eager_bf16" or (
        variant not in ("authors", "eager_fp32") and uses_bf16(amp, dev)
    )
    autocast = autocast_context(dev, bf16)
    experiment = Experiment(config, dev)
    x, t1, t2 = next(experiment.batches("train"))
    if variant in FUSED_VARIANTS:
        compiled = variant == "fused_compile"
        step, parameters = _fused_step(config, dev, bf16, points, x, t1, t2, compiled)
    else:
        model = experiment.codec().to(dev).train()
        loss_fn = experiment.loss()
        optimizer = make_optimizer(model, config, dev)
        parameters = sum(p.numel() for p in model.parameters())
        forward = model
        if variant == "channels_last":
            model.to(memory_format=torch.channels_last)
            forward = ChannelsLastInputs(model)
        elif variant == "compile":
            forward = CompiledCodec(model)
        elif variant == "cudagraphs":
            forward = CompiledCodec(model, mode="reduce-overhead")

        def step():
            output, _ = backward_step(forward, loss_fn, x, (t1, t2), autocast)
            if variant == "authors":
                _per_sample_rate_syncs(output)
            update_step(model, optimizer, config.clip)

    _release_freed_memory(dev)
    for _ in range(warmup):
        step()
    _synchronize(dev)
    if _barrier is not None:  # the ``processes`` variant: time the processes together
        _barrier.wait()
    _reset_peak_memory(dev)
    rates = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        _synchronize(dev)
        rates.append(steps / (time.perf_counter() - start))
    median = statistics.median(rates)
    fused_points = points if variant in FUSED_VARIANTS else 1
    return {
        "benchmark": f"training step, {codec} codec, {size_label(dataset, preset, overrides)}",
        "variant": variant,
        "codec": codec,
        "points": fused_points,
        "batch_size": config.batch_size,
        "latent_channels": config.latent_channels,
        "parameters": parameters,
        "device": str(dev),
        "hardware": hardware(dev),
        "amp": "bf16" if bf16 else "fp32",
        "tf32": _tf32_settings(dev),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "steps_per_s": median,
        "samples_per_s": median * config.batch_size * fused_points,
        "peak_memory_gib": _peak_memory_gib(dev),
        "windows": rates,
    }


def _processes(codec, dataset, preset, amp, windows, steps, warmup, overrides) -> dict:
    """The ``processes`` variant: ``eager`` in one single-thread process per thread of this
    process (``torch.get_num_threads()``), timed together (a barrier after the warm-ups);
    samples/s, steps/s and peak memory summed over the processes."""
    import concurrent.futures
    import multiprocessing

    count = torch.get_num_threads()
    context = multiprocessing.get_context("spawn")  # no forked thread pools
    barrier = context.Barrier(count)
    options = dict(dataset=dataset, preset=preset, device="cpu", amp=amp, variant="eager",
                   windows=windows, steps=steps, warmup=warmup, **overrides)  # fmt: skip
    with concurrent.futures.ProcessPoolExecutor(
        count, mp_context=context, initializer=_single_thread_worker, initargs=(barrier,)
    ) as pool:
        rows = list(pool.map(_processes_worker, [codec] * count, [options] * count))
    first = rows[0]
    return {
        **first,
        "variant": "processes",
        "processes": count,
        "torch_threads": 1,
        "steps_per_s": sum(r["steps_per_s"] for r in rows),
        "samples_per_s": sum(r["samples_per_s"] for r in rows),
        "peak_memory_gib": sum(r["peak_memory_gib"] for r in rows),
        "windows": [sum(w) for w in zip(*(r["windows"] for r in rows), strict=True)],
    }


_WORKER_BARRIER = None


#: Seconds a ``processes`` worker waits at the barrier for the others' warm-up before giving up.
BARRIER_TIMEOUT = 600.0


def _single_thread_worker(barrier) -> None:
    global _WORKER_BARRIER
    torch.set_num_threads(1)
    _WORKER_BARRIER = barrier


def _processes_worker(codec: str, options: dict) -> dict:
    """One ``processes`` worker; a failure breaks the barrier, so that the others stop waiting
    and the case is reported as failed instead of hanging."""
    barrier = _WORKER_BARRIER

    class _Timed:
        def wait(self):
            barrier.wait(timeout=BARRIER_TIMEOUT)

    try:
        return training(codec, _barrier=_Timed(), **options)
    except BaseException:
        barrier.abort()
        raise


def training_suite(
    codecs=("shared", "separated", "combined", "joint", "independent"),
    variants=VARIANTS,
    progress: bool | None = None,
    out: str | Path | None = None,
    **options,
) -> list[dict]:
    """:func:`training` for every codec and variant. CUDA graphs on a CPU give a row marked
    ``skipped``; a variant that fails (``torch.compile`` without a C++ compiler) a row with its
    ``error``.

    ``out``: a JSON file of rows, rewritten (atomically) after every case, so that a benchmark
    stopped part-way keeps what it measured. A case the file already holds, measured with the
    same options on the same hardware and torch, of the same models
    (:data:`~gwnlib.experiments.MODEL_REVISION`), is taken from it, not measured again; its other
    rows stay in the file."""
    from tqdm.auto import tqdm

    from gwnlib.experiments.config import MODEL_REVISION
    from gwnlib.files import write_json
    from gwnlib.runtime import show_progress

    dev = resolve_device(options.get("device", "auto"))
    # The defaults of ``training`` are written out, so that the CLI's and the API's calls of one
    # case share its key; the thread count decides the step's speed and the processes' number.
    options = {**_SUITE_DEFAULTS, **options}
    settings = {
        **{name: str(value) for name, value in sorted(options.items()) if name != "device"},
        "torch_threads": str(torch.get_num_threads()),
        "device": str(dev),
        "hardware": hardware(dev),
        "torch": torch.__version__,
        "model_revision": MODEL_REVISION,
    }
    overrides = {k: v for k, v in options.items() if k not in _TRAINING_OPTIONS}
    size = size_label(options["dataset"], options["preset"], overrides)
    saved = {}  # the rows already in ``out``, by case
    if out is not None and Path(out).is_file():
        saved = {_case(r): r for r in read_json(out, BENCH_REMEDY)}
    rows = []
    cases = [(codec, variant) for codec in codecs for variant in variants]
    for codec, variant in tqdm(cases, desc="benchmark", disable=not show_progress(progress)):
        done = saved.get(_case({"codec": codec, "variant": variant, "settings": settings}))
        if done and done.get("settings") == settings and "error" not in done:
            rows.append(done)
            continue
        case = {"benchmark": f"training step, {codec} codec, {size}", "codec": codec,
                "variant": variant}  # fmt: skip
        if variant == "cudagraphs" and dev.type != "cuda":
            row = {**case, "skipped": "needs a CUDA device"}
        elif variant == "processes" and dev.type != "cpu":
            row = {**case, "skipped": "CPU only"}
        else:
            try:
                row = training(codec, variant=variant, **options)
            except Exception as exc:  # noqa: BLE001  (reported in the table)
                row = {**case, "error": f"{type(exc).__name__}: {exc}"}
        rows.append({**row, "settings": settings})
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        if out is not None:
            measured = {_case(r) for r in rows}
            kept = [r for case, r in saved.items() if case not in measured]
            write_json(Path(out), kept + rows)
    return rows


#: :func:`training`'s defaults of the options a suite records in its rows' settings, read from
#: its signature (the codec and variant are the case itself; the device is recorded apart).
_SUITE_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(training).parameters.items()
    if parameter.default is not inspect.Parameter.empty and not name.startswith("_")
    and name not in ("codec", "variant", "device")
}  # fmt: skip
#: The options of :func:`training` that are not run settings (the others override the preset).
_TRAINING_OPTIONS = (*_SUITE_DEFAULTS, "device")
#: Settings of a benchmark row that do not make it another case: a row measured again on other
#: hardware, torch, thread count or models, or with other timing windows, replaces the old one.
_NOT_CASE = ("device", "hardware", "torch", "torch_threads", "model_revision", "windows", "steps",
             "warmup")  # fmt: skip


def _case(row: dict) -> tuple:
    """What a benchmark row measures: its codec and variant and the settings that change the
    step (dataset, preset, amp, points, size overrides such as the batch), so that rows of
    several sizes share one file (``bench-cpu.json`` holds the paper and laptop sizes)."""
    settings = row.get("settings", {})
    rest = tuple(sorted((k, str(v)) for k, v in settings.items() if k not in _NOT_CASE))
    return (row.get("codec"), row.get("variant"), rest)


def _fused_step(config, dev, bf16, points, x, t1, t2, compile=False):
    from gwnlib.training.fused import FusedGroup

    etas = [config.eta * 2.0**k for k in range(points)]  # a curve of distinct points
    configs = [dataclasses.replace(config, eta=eta) for eta in etas]
    amp = "bf16" if bf16 else "fp32"
    group = FusedGroup(configs, configs, {}, None, dev, amp, compile)
    parameters = sum(p.numel() for p in group.params.values())

    def step():
        group.backward_step(x, (t1, t2))
        group.update_step()

    return step, parameters


def _per_sample_rate_syncs(output: dict) -> None:
    """What the authors' step does to log rates: a host round trip per sample and latent."""
    for likelihoods in output["likelihoods"].values():
        for sample in likelihoods.detach():
            float(-torch.log2(sample).sum())


def _tf32_settings(dev: torch.device) -> str:
    if dev.type != "cuda":
        return "n/a"
    allowed = {
        "matmul": torch.backends.cuda.matmul.allow_tf32,
        "conv": torch.backends.cudnn.allow_tf32,
    }
    return ", ".join(f"{name} {'on' if on else 'off'}" for name, on in allowed.items())


def _release_freed_memory(dev: torch.device) -> None:
    """On a CPU, hand the heap that earlier cases freed back to the system (glibc's
    ``malloc_trim``), since the resident set counts what the allocator keeps. Done before the
    warm-up, which allocates again what the timed steps need."""
    if dev.type == "cuda":
        return
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _reset_peak_memory(dev: torch.device) -> None:
    """Start a new peak: CUDA's allocator statistics, or on a CPU the process's resident-set
    high-water mark (Linux: writing 5 to ``/proc/self/clear_refs``; elsewhere the peak stays the
    whole process's, so a suite's later rows may report an earlier case's peak)."""
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        return
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_memory_gib(dev: torch.device) -> float:
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) / 2**30
    try:  # the high-water mark since the last reset (Linux)
        status = Path("/proc/self/status").read_text().splitlines()
        return next(int(s.split()[1]) for s in status if s.startswith("VmHWM:")) / 2**20  # KiB
    except (OSError, StopIteration):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (2**30 if sys.platform == "darwin" else 2**20)  # bytes on macOS, else KiB
