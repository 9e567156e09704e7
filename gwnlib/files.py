"""Atomic files: a file written here is, at any moment, either its old or its new whole self.

Run directories (:mod:`gwnlib.training.train`), sweep results (:mod:`gwnlib.training.sweep`) and
computed caches (:mod:`gwnlib.data.synthetic`) are written this way, so that a process killed
mid-write never leaves a broken file for the next one to read. Files damaged some other way (a copy
cut short, an editor, a disk error) are read back through :func:`read_json` and :func:`load_torch`,
which raise :class:`DamagedFile` naming the file and what to do; a full disk is named as such
(:class:`DiskFull`) instead of surfacing as a library's internal error.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import torch


class DamagedFile(ValueError):
    """A file that cannot be read back: its message names the file and what to do."""

    def __init__(self, path: str | Path, error: BaseException, remedy: str):
        self.path = Path(path)
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        text = text if len(text) <= 120 else text[:117] + "..."
        self.reason = f"{type(error).__name__}: {text}" if text else type(error).__name__
        super().__init__(f"{self.path} is damaged ({self.reason}); {remedy}")


class DiskFull(OSError):
    """No space left where a file was being written (``errno.ENOSPC``)."""

    def __init__(self, path: str | Path):
        path = Path(path)
        super().__init__(
            errno.ENOSPC,
            f"no space left on the device holding {path.parent} while writing {path.name}; "
            "free some space and run again (the old file is intact, and a run resumes from its "
            "last checkpoint)",
        )


#: Below this many free bytes, a failed write is taken for a full disk (torch.save reports one
#: as a RuntimeError from its zip writer, not as ENOSPC).
FULL_DISK_BYTES = 1 << 20


def _disk_full(error: BaseException, folder: Path) -> bool:
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    if isinstance(error, RuntimeError):  # PyTorchStreamWriter's "file write failed" and kin
        with contextlib.suppress(OSError):
            return shutil.disk_usage(folder).free < FULL_DISK_BYTES
    return False


def read_json(path: str | Path, remedy: str):
    """``json.loads`` of the file at ``path``; a damaged file raises :class:`DamagedFile`."""
    try:
        return json.loads(Path(path).read_text())
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise DamagedFile(path, error, remedy) from error


def load_torch(path: str | Path, remedy: str, map_location="cpu"):
    """``torch.load(path, weights_only=True)``; a damaged file (empty, cut short, not a torch
    file) raises :class:`DamagedFile` instead of torch's bare ``EOFError`` or zip error."""
    if not Path(path).is_file():
        raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:  # torch's text suggests weights_only=False: no
        raise DamagedFile(path, type(error)("not a PyTorch checkpoint"), remedy) from error
    except Exception as error:  # EOFError, RuntimeError (zip), ...
        raise DamagedFile(path, error, remedy) from error


def set_aside(path: str | Path) -> Path:
    """Rename a damaged file out of the way (``NAME.damaged``), keeping it for inspection."""
    path = Path(path)
    target = path.with_name(path.name + ".damaged")
    os.replace(path, target)
    return target


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
    except BaseException as error:
        full = _disk_full(error, path.parent)  # before the temporary file frees its space
        with contextlib.suppress(OSError):
            tmp.unlink()
        if full:
            raise DiskFull(path) from error
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
