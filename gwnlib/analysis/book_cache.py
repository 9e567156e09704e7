"""Executed chapters kept between builds, and reused while nothing they depend on has changed.

A chapter's key is the SHA-256 of what its outputs depend on (:func:`chapter_inputs`): the source
of the staged notebook's code cells, in order (as jupyter-cache keys notebooks: prose changes no
output), the parameters papermill injects and the device they resolve to, every file of the
``gwnlib`` package, ``requirements-lock.txt``, every file of the results folder that chapters load
(``book/results``, or ``GWN_RESULTS_DIR``), and the Python and torch versions. The build keeps
each chapter that ran without error in its ``executed/`` folder, beside ``source/``:
``executed/book/NAME.ipynb`` and ``executed/book/NAME.json`` (the key, its inputs and the run), and
while the key is unchanged puts it back instead of executing, with the staged notebook's prose and
cell tags (:func:`merge_prose`).
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from gwnlib.files import atomic_write, write_json
from gwnlib.runtime import PROJECT_ROOT, results_dir

#: Folders under ``gwnlib`` that hold no source.
IGNORED = ("__pycache__", ".ipynb_checkpoints")


def digest_files(folder: Path) -> str:
    """SHA-256 over the relative paths and bytes of every file under ``folder`` (sorted), leaving
    out :data:`IGNORED`; a missing folder digests as empty."""
    digest = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    for path in files:
        rel = path.relative_to(folder)
        if path.suffix == ".pyc" or any(part in IGNORED for part in rel.parts):
            continue
        digest.update(rel.as_posix().encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def digest_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes() if path.is_file() else b"").hexdigest()


def digest_code(notebook: Path) -> str:
    """SHA-256 over the sources of the code cells of ``notebook``, in order; markdown and raw
    cells, cell metadata and outputs leave it unchanged."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    code = [_source(c) for c in cells if c["cell_type"] == "code"]
    return hashlib.sha256(json.dumps(code).encode()).hexdigest()


def _source(cell: dict) -> str:
    """A cell's source as one string (nbformat stores a string or a list of lines)."""
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def merge_prose(executed: dict, staged: dict) -> dict:
    """``staged`` with the outputs of ``executed`` (a papermill run of a notebook with the same
    code cells): its markdown and raw cells and every cell's tags come from ``staged``; its code
    cells, with their outputs and papermill metadata, and the cell papermill injected after the
    parameters cell, from ``executed``. Raises ValueError if the code cells differ."""
    code = [c for c in executed["cells"] if c["cell_type"] == "code"]
    wanted = [c for c in staged["cells"] if c["cell_type"] == "code"]
    injected = [c for c in code if "injected-parameters" in c["metadata"].get("tags", [])]
    ran = [c for c in code if c not in injected]
    if [_source(c) for c in ran] != [_source(c) for c in wanted]:
        raise ValueError("the kept notebook's code cells are not the staged notebook's")
    merged, outputs = [], iter(ran)
    for cell in staged["cells"]:
        if cell["cell_type"] != "code":
            merged.append(cell)
            continue
        out = next(outputs)
        metadata = {k: v for k, v in out["metadata"].items() if k != "tags"}
        tags = cell["metadata"].get("tags", [])
        merged.append({**out, "metadata": {**metadata, **({"tags": tags} if tags else {})}})
        if "parameters" in tags:
            merged += injected
    return {**executed, "cells": merged}


def shared_inputs(root: Path = PROJECT_ROOT, results: Path | None = None) -> dict[str, str]:
    """The inputs every chapter's key shares, computed once per build."""
    return {
        "gwnlib": digest_files(root / "gwnlib"),
        "lock": digest_file(root / "requirements-lock.txt"),
        "results": digest_files(results_dir() if results is None else results),
        "python": platform.python_version(),
        "torch": _version("torch"),
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def chapter_inputs(notebook: Path, parameters: dict, shared: dict[str, str]) -> dict[str, str]:
    """What the outputs of ``notebook`` executed with ``parameters`` (those papermill injects,
    and the resolved device) depend on: its own inputs and the build's ``shared`` ones."""
    return {
        "code": digest_code(notebook),
        "parameters": json.dumps(parameters, sort_keys=True),
        **shared,
    }


def key_of(inputs: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


class ChapterCache:
    """The executed chapters of earlier builds in ``folder``, by path relative to the book."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _paths(self, rel: str) -> tuple[Path, Path]:
        notebook = self.folder / rel
        return notebook, notebook.with_suffix(".json")

    def record(self, rel: str) -> dict | None:
        notebook, record = self._paths(rel)
        if not (notebook.is_file() and record.is_file()):
            return None
        try:
            return json.loads(record.read_text(encoding="utf-8"))
        except ValueError:  # damaged: execute again
            return None

    def stale(self, rel: str, inputs: dict[str, str]) -> list[str]:
        """Why the kept copy of ``rel`` cannot be reused: the names of the inputs that changed,
        ``["new"]`` when there is none; empty when it can."""
        record = self.record(rel)
        if record is None:
            return ["new"]
        if record.get("key") == key_of(inputs):
            return []
        kept = record.get("inputs", {})
        return [name for name in inputs if kept.get(name) != inputs[name]] or ["key"]

    def restore(self, rel: str, target: Path) -> dict:
        """Write the kept notebook of ``rel`` over ``target`` (the staged notebook, whose prose
        and tags it takes: :func:`merge_prose`); returns its record."""
        executed = json.loads(self._paths(rel)[0].read_text(encoding="utf-8"))
        staged = json.loads(target.read_text(encoding="utf-8"))
        text = json.dumps(merge_prose(executed, staged), indent=1, ensure_ascii=False) + "\n"
        atomic_write(target, lambda f: f.write(text.encode("utf-8")))
        return self.record(rel)

    def store(self, rel: str, executed: Path, inputs: dict[str, str], run: dict) -> None:
        """Keep ``executed`` (the notebook of a chapter that ran without error) under its key."""
        notebook, record = self._paths(rel)
        data = executed.read_bytes()
        atomic_write(notebook, lambda f: f.write(data))
        write_json(
            record,
            {
                "key": key_of(inputs),
                "inputs": inputs,
                "executed_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "run": run,
            },
        )


def slowest_cells(notebooks: dict[str, Path], top: int = 5) -> list[tuple[float, str, int, str]]:
    """The ``top`` slowest code cells of the executed ``notebooks`` ({label: path}), slowest first:
    (seconds, label, cell number among the code cells, first line of its source), from the
    durations papermill records in each cell's metadata (``papermill.duration``)."""
    cells = []
    for label, path in notebooks.items():
        if not path.is_file():
            continue
        notebook = json.loads(path.read_text(encoding="utf-8"))
        code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
        for number, cell in enumerate(code, 1):
            seconds = cell.get("metadata", {}).get("papermill", {}).get("duration")
            if isinstance(seconds, (int, float)):
                source = "".join(cell["source"]).strip().splitlines()
                cells.append((float(seconds), label, number, source[0] if source else ""))
    return sorted(cells, key=lambda cell: -cell[0])[:top]
