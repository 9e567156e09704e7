"""Reading benchmark rows: the size each was measured at, speed-ups over a baseline variant,
each codec's fastest variant, rows of older models, and the text report of
``python -m gwnlib bench report``. The rows come from :mod:`gwnlib.training.bench` (measured
here or loaded from ``book/results/bench-*.json``); chapter "Training and sweeps" reads them.
"""

from __future__ import annotations

from gwnlib.training.plan import sweep_cost


def size_label(dataset: str, preset: str, overrides: dict | None = None) -> str:
    """A row's size label: ``"synthetic paper size"``, with the settings that override the
    preset's after it (``"synthetic short size, batch_size 256"``)."""
    extra = "".join(f", {name} {value}" for name, value in sorted((overrides or {}).items()))
    return f"{dataset} {preset} size{extra}"


def size_of(row: dict) -> str:
    """The size a benchmark row was measured at (:func:`size_label`), also for a failed or skipped
    case's row, from its settings."""
    if "benchmark" in row:
        return row["benchmark"].split(" codec, ", 1)[-1]
    settings = row.get("settings", {})  # a failed case of an older file: no overrides known
    return size_label(settings.get("dataset", "synthetic"), settings.get("preset", "paper"))


def by_size(rows: list[dict]) -> dict[str, list[dict]]:
    """``rows`` grouped by :func:`size_of`, in order of first appearance: one benchmark file may
    hold several sizes (``bench-cpu.json``: the paper's and the laptop presets')."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(size_of(row), []).append(row)
    return groups


def measured_at(rows: list[dict], dataset: str = "synthetic", preset: str = "paper") -> list[dict]:
    """The rows of :func:`~gwnlib.training.bench.training` runs at exactly ``dataset``'s
    ``preset`` size (no overrides)."""
    return [row for row in rows if size_of(row) == size_label(dataset, preset)]


def speedups(rows: list[dict], baseline: str = "authors") -> dict:
    """Samples/s of each (codec, variant) over the ``baseline`` variant of the same codec, for
    rows of one size (:func:`by_size` splits a file that holds several)."""
    sizes = {size_of(r) for r in rows if "samples_per_s" in r}
    if len(sizes) > 1:
        raise ValueError(
            f"rows of one size expected (split them with by_size); got {sorted(sizes)}"
        )
    base = {
        r["codec"]: r["samples_per_s"]
        for r in rows
        if r.get("variant") == baseline and "samples_per_s" in r
    }
    return {
        (r["codec"], r["variant"]): r["samples_per_s"] / base[r["codec"]]
        for r in rows
        if "samples_per_s" in r and r["codec"] in base
    }


def fastest(rows: list[dict]) -> dict[str, dict]:
    """Each codec's fastest measured row (most samples/s; a fused row counts all its points)."""
    best: dict[str, dict] = {}
    for row in rows:
        if "samples_per_s" not in row:
            continue
        if row["samples_per_s"] > best.get(row["codec"], {}).get("samples_per_s", 0.0):
            best[row["codec"]] = row
    return best


def older_models(rows: list[dict]) -> dict[int, list[str]]:
    """The codecs of measured ``rows`` whose models are older than this code's, by revision
    (:data:`~gwnlib.experiments.MODEL_REVISION`; rows from before the field count as 1): their
    throughput is that of the older layers and is measured again by the next
    :func:`~gwnlib.training.bench.training_suite` run into the same file."""
    from gwnlib.experiments.config import MODEL_REVISION

    older: dict[int, list[str]] = {}
    for row in rows:
        revision = row.get("settings", {}).get("model_revision", 1)
        if "samples_per_s" in row and revision != MODEL_REVISION:
            codecs = older.setdefault(revision, [])
            if row["codec"] not in codecs:
                codecs.append(row["codec"])
    return older


def report(rows: list[dict], sweep=None) -> str:
    """A benchmark's rows as text tables, one per size (:func:`by_size`): samples/s, steps/s,
    peak memory and the speed-ups over the ``authors`` and ``eager_fp32`` variants of the same
    codec, failed and skipped cases with their reason; then the hardware and, given a ``sweep``
    (e.g. ``named("synthetic", "paper")``), what it costs at each codec's fastest variant at the
    sweep's size (:func:`~gwnlib.training.plan.sweep_cost`: every point to its last epoch)."""
    lines = []
    for size, group in by_size(rows).items():
        authors, fp32 = speedups(group), speedups(group, "eager_fp32")
        lines.append(f"-- {size}")
        lines.append(
            f"{'codec':>12} {'variant':>13} {'pts':>3} {'amp':>4} {'batch':>5} {'samples/s':>10} "
            f"{'steps/s':>8} {'peak GiB':>8} {'vs authors':>10} {'vs fp32':>8}"
        )
        for row in group:
            if "samples_per_s" not in row:
                reason = row.get("error", row.get("skipped", "not measured"))
                lines.append(f"{row['codec']:>12} {row['variant']:>13}: {reason}")
                continue
            times = [ratio.get((row["codec"], row["variant"])) for ratio in (authors, fp32)]
            shown = ["" if t is None else f"{t:.2f}x" for t in times]
            lines.append(
                f"{row['codec']:>12} {row['variant']:>13} {row['points']:>3} {row['amp']:>4} "
                f"{row.get('batch_size', ''):>5} {row['samples_per_s']:10.1f} "
                f"{row['steps_per_s']:8.3f} {row['peak_memory_gib']:8.2f} {shown[0]:>10} "
                f"{shown[1]:>8}"
            )
    measured = [row for row in rows if "hardware" in row]
    if measured:
        lines.append(f"hardware: {measured[0]['hardware']}; torch {measured[0]['torch']}")
    for revision, codecs in older_models(rows).items():
        lines.append(f"measured on model revision {revision}, older than this code's: "
                     f"{', '.join(codecs)}")  # fmt: skip
    if sweep is not None:
        best = fastest(measured_at(rows, sweep.dataset, sweep.preset))
        missing = sorted({c.codec for c in sweep.configs()} - set(best))
        if missing:
            lines.append(f"{sweep.name} {sweep.preset} sweep: no throughput yet for "
                         f"{', '.join(missing)}")  # fmt: skip
        else:
            cost = sweep_cost(sweep, {c: r["samples_per_s"] for c, r in best.items()})
            each = ", ".join(
                f"{row.codec} {row.hours:.2f} h ({best[row.codec]['variant']})"
                for row in cost.itertuples()
            )
            lines.append(
                f"{sweep.name} {sweep.preset} sweep at each codec's fastest variant, every point "
                f"to its last epoch (an upper bound): {cost.hours.sum():.2f} h = {each}"
            )
    return "\n".join(lines)
