"""What training costs and what fits a time budget: the work of a step and of a sweep, and
the points of a sweep that one device can finish in a given time (``python -m gwnlib sweep
--budget``), from the throughputs :mod:`gwnlib.training.bench` measures. Chapter "Training and
sweeps" costs the paper's sweep with them.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from gwnlib.runtime import check_int


def step_flops(
    codec: str = "shared", dataset: str = "synthetic", preset: str = "paper", samples: int = 2,
    **overrides,
) -> float:  # fmt: skip
    """Floating-point operations per sample of one training step (forward, Eq. 12 loss and
    backward, as :func:`gwnlib.training.train.backward_step` runs it), counted by
    :class:`torch.utils.flop_counter.FlopCounterMode` on ``samples`` samples on the CPU.

    The counter sees convolutions and matrix products, the work of a GPU's tensor cores; the
    elementwise work and the Adam update, which it leaves out, are memory-bound and small. A
    step's FLOPs grow linearly with the batch, so two samples give the per-sample figure."""
    from torch.utils.flop_counter import FlopCounterMode

    from gwnlib.experiments import Experiment, resolve
    from gwnlib.training.train import backward_step

    check_int("samples", samples)
    config = resolve(dataset, preset, codec=codec, batch_size=samples, **overrides)
    experiment = Experiment(config, torch.device("cpu"))
    x, t1, t2 = next(experiment.batches("train"))
    model = experiment.codec().train()
    with FlopCounterMode(display=False) as counter:
        backward_step(model, experiment.loss(), x, (t1, t2))
    return counter.get_total_flops() / samples


def point_samples(config) -> int:
    """The training samples of one run that goes to its ``max_epochs``: epochs x micro-batches
    per epoch x batch (validation adds about ``val_steps / (3 train_steps)`` of forward work)."""
    from gwnlib.experiments import Experiment

    steps = Experiment(config, torch.device("cpu")).steps("train")
    return config.max_epochs * steps * config.batch_size


def sweep_cost(sweep, samples_per_s: dict[str, float]) -> pd.DataFrame:
    """What a sweep costs when every point trains to its ``max_epochs``: an upper bound, since
    early stopping ends most points sooner. One row per codec: its points, the training samples
    they see (:func:`point_samples`) and the hours at ``samples_per_s[codec]``, a measured or
    assumed throughput."""
    import pandas as pd

    rows = {}
    for config in sweep.configs():
        if config.codec not in samples_per_s:
            known = ", ".join(sorted(samples_per_s))
            raise ValueError(f"samples_per_s has no throughput for codec {config.codec!r}; "
                             f"it has {known}")  # fmt: skip
        row = rows.setdefault(config.codec, {"codec": config.codec, "points": 0, "samples": 0})
        row["points"] += 1
        row["samples"] += point_samples(config)
    table = pd.DataFrame(list(rows.values()))
    table["samples_per_s"] = table.codec.map(samples_per_s)
    table["hours"] = table.samples / table.samples_per_s / 3600
    return table


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to train in a time budget (:func:`plan`): the executor, the points, the predicted
    seconds (every point to its last epoch) and whether they fit the budget."""

    executor: str
    configs: tuple
    seconds: float
    fits: bool

    def __str__(self) -> str:
        codec = self.configs[0].codec
        labels = "; ".join(config.label() for config in self.configs)
        verdict = "fits" if self.fits else "does NOT fit: only early stopping can finish it"
        return (f"{self.executor} {len(self.configs)} {codec} point(s) ({labels}): "
                f"{self.seconds:.0f} s predicted to their last epoch, {verdict}")  # fmt: skip


#: Seconds to finish one run after its last epoch, added to its training time by :func:`plan`:
#: the test split and the real bits of ``real_bits_samples`` samples entropy-coded on the CPU
#: (13-17 s at the synthetic paper size on a 2-core CPU), with a margin.
FINISH_SECONDS = 30.0


def plan(pending: list, rows: list[dict], seconds: float, finish: float = 0.0) -> Plan:
    """The points of ``pending`` (run configs) that one device can finish in ``seconds``, from
    the benchmark ``rows`` measured on it (:func:`training_suite` at the runs' size).

    Every point is costed to its last epoch (:func:`point_samples`), an upper bound, plus
    ``finish`` seconds (e.g. :data:`FINISH_SECONDS`) to evaluate and code it. For each
    codec, two options: one fused group of up to the ``fused`` row's points, at that row's
    samples/s (a smaller group is not assumed faster), or ``eager`` runs one after another, as
    many as fit. The option that finishes the most points wins, then the quicker one. When
    nothing fits, the quickest single point, which only early stopping can finish in time.
    Points are taken in ``pending``'s order; ``fused`` groups never mix codecs."""
    if not pending:
        raise ValueError("pending holds no points: nothing to plan")
    rates: dict[str, dict[str, dict]] = {}
    for row in rows:
        if "samples_per_s" in row and row["variant"] in ("eager", "fused"):
            rates.setdefault(row["codec"], {})[row["variant"]] = row
    by_codec: dict[str, list] = {}
    for config in pending:
        by_codec.setdefault(config.codec, []).append(config)
    missing = sorted(codec for codec in by_codec if "eager" not in rates.get(codec, {}))
    if len(missing) == len(by_codec):
        raise ValueError(f"the benchmark rows have no 'eager' throughput for {', '.join(missing)}: "
                         "run `bench train` for them first")  # fmt: skip
    options = []
    for codec, configs in by_codec.items():
        if codec in missing:
            continue
        work = [point_samples(config) for config in configs]
        eager = rates[codec]["eager"]["samples_per_s"]
        count, used = 0, 0.0
        while count < len(configs) and used + work[count] / eager + finish <= seconds:
            used += work[count] / eager + finish
            count += 1
        if count:
            options.append(Plan("sequential", tuple(configs[:count]), used, True))
        else:  # not even one run fits: only early stopping could finish one
            alone = work[0] / eager + finish
            options.append(Plan("sequential", tuple(configs[:1]), alone, False))
        fused = rates[codec].get("fused")
        if fused is not None and len(configs) > 1:
            size = min(fused["points"], len(configs))
            group = tuple(configs[:size])
            # One point's share of the group's rate, as measured at the row's full size; the
            # points are finished one after another.
            needed = max(work[:size]) * fused["points"] / fused["samples_per_s"] + size * finish
            if needed <= seconds:
                options.append(Plan("fused", group, needed, True))
    return max(options, key=lambda p: (p.fits, p.fits * len(p.configs), -p.seconds))
