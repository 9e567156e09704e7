"""Where and how a chapter runs: presets, devices, seeds, the data root and the hardware.

Every chapter starts with a papermill ``parameters`` cell (``preset``, ``device``, ``seed``) and
then calls :func:`setup`, which checks the parameters, seeds every random number generator and
says what hardware the numbers below it come from. The book's introduction explains the presets.
"""

from __future__ import annotations

import os
import platform
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

#: The run sizes every chapter understands. ``smoke``: seconds to minutes on a 2-core CPU, used by
#: CI and the default book build; it checks that code runs and is never a reproduction. ``short``:
#: the laptop preset of the synthetic study and coloured MNIST (each sweep about 2 hours on a
#: 2-core CPU), and a few GPU hours for the vision tasks. ``paper``: the paper's own settings (its
#: Table 1).
PRESETS = ("smoke", "short", "paper")

#: Accepted values of a chapter's ``device`` parameter (``cuda:N`` picks one of several GPUs).
DEVICES = ("auto", "cpu", "cuda", "cuda:N")

#: Environment variable that overrides the data root used by every dataset loader.
DATA_DIR_ENV = "GWN_DATA_DIR"
#: Environment variable that overrides where computed artefacts (not datasets) are cached.
CACHE_DIR_ENV = "GWN_CACHE_DIR"
#: Environment variable that turns progress bars off when "0" (the book build sets it).
PROGRESS_ENV = "GWN_PROGRESS"
#: Environment variable that overrides where training runs (run directories) are kept.
RUNS_DIR_ENV = "GWN_RUNS_DIR"
#: Environment variable that overrides where finished sweep results for the book are read from.
RESULTS_DIR_ENV = "GWN_RESULTS_DIR"

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def check_preset(preset: str) -> str:
    """Return ``preset`` if it is one of :data:`PRESETS`, else raise ``ValueError`` naming them."""
    return check_choice("preset", preset, PRESETS)


def check_choice(name: str, value, accepted) -> str:
    """Return ``value`` if it is one of ``accepted``, else raise ``ValueError`` naming the
    parameter ``name`` and the accepted values."""
    if value not in accepted:
        raise ValueError(f"{name} must be one of {', '.join(accepted)}; got {value!r}")
    return value


def check_int(name: str, value, low: int = 1) -> int:
    """Return ``value`` as an ``int`` if it is an integer (a Python or NumPy one, not a bool) of at
    least ``low``, else raise ``ValueError`` naming the parameter ``name`` and what it accepts."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    return int(value)


def check_epoch(epoch) -> int:
    """Return ``epoch`` as an ``int`` if it is an integer >= 0 (:func:`check_int`), else raise
    ``ValueError``: the epoch of a dataset's seeded per-epoch draws."""
    return check_int("epoch", epoch, low=0)


def device(name: str = "auto") -> torch.device:
    """The torch device for a chapter's ``device`` parameter.

    ``"auto"`` picks ``cuda`` when a CUDA GPU is present and ``cpu`` otherwise; ``"cpu"``,
    ``"cuda"`` and ``"cuda:N"`` ask for that device and fail clearly when it is not there.
    """
    if not isinstance(name, str):
        raise TypeError(f"device must be a string, one of {', '.join(DEVICES)}; got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or _is_cuda_index(name):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {name!r} was asked for, but torch sees no CUDA GPU on this machine "
                "(use device='auto' or 'cpu')"
            )
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {name!r} was asked for, but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
        return dev
    raise ValueError(f"device must be one of {', '.join(DEVICES)}; got {name!r}")


_resolve_device = device  # for functions whose ``device`` parameter shadows the name


def _is_cuda_index(name: str) -> bool:
    prefix, _, index = name.partition(":")
    return prefix == "cuda" and index.isdigit()


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device).

    With the same seed, a chapter re-run on the CPU gives the same numbers. Code that needs its own
    stream should take a :func:`torch_generator` instead of relying on global state.
    """
    check_seed(seed)
    seed = int(seed)  # random.seed refuses NumPy integers
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (seeds the legacy global state that libraries still use)
    torch.manual_seed(seed)  # also seeds every CUDA device


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` seeded with ``seed`` on ``device`` (any CUDA index, not just 0)."""
    check_seed(seed)
    return torch.Generator(device=torch.device(device)).manual_seed(int(seed))


def check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer in [0, 2**32 - 1]; got {seed!r}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32 - 1]; got {seed!r}")


def data_dir() -> Path:
    """The data root that every loader reads from and downloads into.

    It is the environment variable ``GWN_DATA_DIR`` when set; otherwise the ``data/`` folder of the
    gwn-book checkout (or ``./data`` when gwnlib is installed outside a checkout). Machines without
    internet access point it at an offline copy of the datasets.
    """
    configured = _env_path(DATA_DIR_ENV)
    if configured is not None:
        return configured
    if (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "data").is_dir():
        return PROJECT_ROOT / "data"
    return Path.cwd() / "data"


def cache_dir() -> Path:
    """Where gwnlib caches what it computes (e.g. the synthetic source's transforms).

    ``GWN_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/gwnlib``, else ``~/.cache/gwnlib``. Kept
    apart from :func:`data_dir`, which may be a read-only copy of the datasets.
    """
    configured = _env_path(CACHE_DIR_ENV)
    if configured is not None:
        return configured
    return (_env_path("XDG_CACHE_HOME") or Path("~/.cache").expanduser().resolve()) / "gwnlib"


def runs_dir() -> Path:
    """Where training runs keep their run directories (:mod:`gwnlib.training.train`).

    ``GWN_RUNS_DIR`` when set, else ``runs`` inside :func:`cache_dir`: a finished run is reused by
    every chapter and sweep that asks for the same config.
    """
    return _env_path(RUNS_DIR_ENV) or cache_dir() / "runs"


def results_dir() -> Path:
    """Where the book's committed sweep results live (``book/results`` of the checkout).

    ``GWN_RESULTS_DIR`` when set; else ``book/results`` of the checkout (or ``./results`` when
    gwnlib is installed outside a checkout). Chapters load a sweep's results from here when
    present and train otherwise (:meth:`gwnlib.training.sweep.Sweep.load_or_run`).
    """
    configured = _env_path(RESULTS_DIR_ENV)
    if configured is not None:
        return configured
    if (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "book").is_dir():
        return PROJECT_ROOT / "book" / "results"
    return Path.cwd() / "results"


def _env_path(name: str) -> Path | None:
    """The folder named by environment variable ``name``, or None when it is unset or blank."""
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else None


def show_progress(progress: bool | None = None) -> bool:
    """Whether to draw progress bars: ``progress`` when given, else on unless the environment
    variable ``GWN_PROGRESS`` is ``"0"`` (the book build sets it, so built pages carry no
    frozen bars)."""
    if progress is not None:
        return bool(progress)
    return os.environ.get(PROGRESS_ENV, "1").strip() != "0"


def hardware(dev: str | torch.device = "cpu") -> str:
    """One line naming the hardware behind ``dev``, for figure captions and the status page."""
    dev = torch.device(dev)
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"{props.name} ({props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda})"
    return f"CPU: {_cpu_name()} ({os.cpu_count()} cores)"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@dataclass(frozen=True)
class Runtime:
    """What :func:`setup` resolved for a chapter: use ``rt.device`` for tensors and models."""

    preset: str
    device: torch.device
    seed: int
    hardware: str

    def __str__(self) -> str:
        return (
            f"preset {self.preset!r} on {self.device} [{self.hardware}], seed {self.seed}, "
            f"torch {torch.__version__}"
        )

    def caption(self) -> str:
        """Short provenance text for figures and tables: preset and hardware."""
        return f"preset: {self.preset}; hardware: {self.hardware}"


def setup(preset: str = "smoke", device: str = "auto", seed: int = 0) -> Runtime:
    """Check a chapter's parameters, seed everything and resolve the device.

    Fails at once, before any work, on an unknown ``preset`` or ``device``.
    """
    check_preset(preset)
    dev = _resolve_device(device)
    seed_everything(seed)
    return Runtime(preset=preset, device=dev, seed=int(seed), hardware=hardware(dev))
