"""Atomic files: a file written here is, at any moment, either its old or its new whole self.

Run directories (:mod:`gwnlib.train`), sweep results (:mod:`gwnlib.sweep`) and computed caches
(:mod:`gwnlib.data.synthetic`) are written this way, so that a process killed mid-write never
leaves a broken file for the next one to read.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Write ``path`` through ``write(file)`` atomically: into a temporary file in the same
    folder, flushed and synced, then renamed over ``path``. If ``write`` raises (or the process
    dies), ``path`` keeps its old content and the temporary file is removed (or left with a
    ``.tmp`` name that :func:`remove_stale_temporaries` cleans up)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return path


def write_json(path: str | Path, value) -> Path:
    """Atomically write ``value`` as indented JSON."""
    text = json.dumps(value, indent=2, sort_keys=False) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode()))


def save_torch(path: str | Path, value) -> Path:
    """Atomically ``torch.save`` ``value``."""
    return atomic_write(path, lambda f: torch.save(value, f))


def remove_stale_temporaries(folder: str | Path) -> None:
    """Delete temporary files that killed writers left in ``folder``."""
    for tmp in Path(folder).glob(".*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()
