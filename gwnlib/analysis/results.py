"""Small readers of results tables that several chapters share: which hardware made them, how a
preset's column is labelled, a codec's rate-distortion curve, and a table's provenance line.

A results table is what :meth:`gwnlib.training.sweep.Sweep.load_or_run` returns: one row per run,
with its settings, metrics, ``hardware``, ``preset``, ``date`` and ``source`` ("committed" or
"trained"). Every figure and table of the book says where its numbers come from through these.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def hardware_of(tables: pd.DataFrame | Mapping[str, pd.DataFrame]) -> str:
    """The hardware that produced ``tables`` (one table, or several by name), from their rows:
    the distinct ``hardware`` values, sorted, joined by "; "."""
    if isinstance(tables, pd.DataFrame):
        tables = {"": tables}
    return "; ".join(sorted({h for table in tables.values() for h in table.hardware.unique()}))


def source_name(preset: str, current: str) -> str:
    """The column label of ``preset``'s results in a chapter built with preset ``current``:
    "this build (smoke)" for the chapter's own runs, "committed (short)" for committed ones."""
    return f"this build ({preset})" if preset == current else f"committed ({preset})"


def curve(
    table: pd.DataFrame,
    codec: str,
    beta: float | None = None,
    rate: str = "rate_transmit",
    quality: tuple[str, ...] = ("d1", "d2"),
) -> tuple[np.ndarray, np.ndarray]:
    """One codec's curve as (rates, quality) arrays in the table's row order: ``rate`` against
    the sum of the ``quality`` columns (default D1 + D2, the synthetic study's axis, paper Fig.
    3), the rows of ``codec`` (and of ``beta`` when given)."""
    rows = table[table.codec == codec]
    if beta is not None:
        rows = rows[rows.beta == beta]
    return rows[rate].to_numpy(), rows[list(quality)].sum(axis=1).to_numpy()


def provenance(table: pd.DataFrame) -> str:
    """Where ``table``'s rows come from, from their own columns: source, preset, dates (first
    line) and hardware (second line)."""
    dates = f"{table.date.min()[:10]} to {table.date.max()[:10]}"
    return (
        f"{', '.join(sorted(table.source.unique()))} runs, preset "
        f"{', '.join(sorted(table.preset.unique()))}, {dates}\n{hardware_of(table)}"
    )
