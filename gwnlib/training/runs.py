"""The run-directory protocol: where a run lives, when it is finished, who is training it.

A run lives in its directory ``<root>/<dataset>/<config key>/``:

- ``config.json``: the resolved config (and, under ``"runtime"``, how it was executed);
- ``history.csv``: one row per epoch (train and validation loss, rates, distortions, speed);
- ``best.pt``: the best checkpoint (weights, epoch, validation loss);
- ``last.pt``: the resume state (weights, optimiser, counters, history) while the run is going;
- ``metrics.json``: final test metrics of the best checkpoint. It is written last: a run is
  finished exactly when it exists, readable;
- ``.lock``: held (POSIX ``flock``) by the one process training the run.

Every file is written atomically (:mod:`gwnlib.files`), so a run killed at any moment leaves each
file either old or new, never broken; a damaged one is set aside and its work redone. One run
(:mod:`gwnlib.training.train`) and a fused group of runs (:mod:`gwnlib.training.fused`) follow
this protocol through the functions here, and sweeps read it.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import warnings
from pathlib import Path

from gwnlib.experiments import Experiment, RunConfig, from_dict
from gwnlib.files import (
    DamagedFile,
    atomic_write,
    load_torch,
    read_json,
    remove_stale_temporaries,
    save_torch,
    set_aside,
)
from gwnlib.runtime import device as resolve_device
from gwnlib.runtime import runs_dir


def run_dir(config: RunConfig, root: str | Path | None = None) -> Path:
    """``<root>/<dataset>/<config key>``; ``root`` defaults to :func:`gwnlib.runtime.runs_dir`."""
    return Path(root if root is not None else runs_dir()) / config.dataset / config.key


def retrain(folder: str | Path) -> str:
    """What to do about a damaged file of the run in ``folder``."""
    return f"delete the run folder {folder} to train this point again"


def is_finished(folder: str | Path) -> bool:
    """Whether the run in ``folder`` has written its final ``metrics.json``, readable: a damaged
    one counts as unfinished (the next :func:`fit` sets it aside and trains the point again)."""
    path = Path(folder) / "metrics.json"
    if not path.is_file():
        return False
    try:
        return isinstance(read_json(path, ""), dict)
    except DamagedFile:
        return False


def load_metrics(folder: str | Path) -> dict:
    """The final metrics of a finished run (:class:`~gwnlib.files.DamagedFile` if damaged)."""
    metrics = read_json(Path(folder) / "metrics.json", retrain(folder))
    if not isinstance(metrics, dict):
        error = TypeError(f"a JSON {type(metrics).__name__}, not an object")
        raise DamagedFile(Path(folder) / "metrics.json", error, retrain(folder))
    return metrics


def load_config(folder: str | Path) -> RunConfig:
    """The config a run folder holds (its ``config.json``), checked like any config."""
    path = Path(folder) / "config.json"
    saved = read_json(path, retrain(folder))
    try:
        return from_dict(saved["config"])
    except (KeyError, TypeError) as error:
        raise DamagedFile(path, error, retrain(folder)) from error


def load_codec(folder: str | Path, device: str = "auto"):
    """The best checkpoint's codec of the run in ``folder``, in eval mode on ``device``."""
    folder = Path(folder)
    config = load_config(folder)
    dev = resolve_device(device)
    codec = Experiment(config, dev).codec()
    load_weights(codec, folder / "best.pt", retrain(folder))
    return codec.to(dev).eval()


def load_weights(codec, path: Path, remedy: str) -> None:
    """Load a checkpoint's ``model`` weights into ``codec``; a damaged file names itself."""
    saved = load_torch(path, remedy)
    try:
        codec.load_state_dict(saved["model"])
    except (KeyError, TypeError, RuntimeError) as error:  # not ours, or another architecture
        raise DamagedFile(path, error, remedy) from error


#: What a run folder holds before its first epoch ends.
UNTRAINED = {"config.json", ".lock"}


def remove_if_untrained(folder: Path) -> None:
    remove_stale_temporaries(folder)
    if {path.name for path in folder.iterdir()} <= UNTRAINED:
        for name in UNTRAINED:
            with contextlib.suppress(OSError):
                (folder / name).unlink()
        with contextlib.suppress(OSError):
            folder.rmdir()


class RunInProgress(RuntimeError):
    """Another process is training this run (its directory is locked)."""


@contextlib.contextmanager
def exclusive(folder: Path):
    """Hold an exclusive lock on ``folder`` (POSIX ``flock``; released when the process dies)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process protection
        yield
        return
    with open(folder / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunInProgress(f"another process is training the run in {folder}") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_in_progress(folder: str | Path) -> bool:
    """Whether a live process holds the lock of the run in ``folder`` (it is training it now):
    the probe of :func:`exclusive`, taken and released at once."""
    folder = Path(folder)
    if not (folder / ".lock").is_file():
        return False
    try:
        with exclusive(folder):
            return False
    except RunInProgress:
        return True


def set_aside_damaged(path: Path, then: str) -> None:
    """A damaged ``metrics.json`` is renamed ``metrics.json.damaged``, with a warning."""
    if path.is_file() and not is_finished(path.parent):
        aside = set_aside(path)
        warnings.warn(f"{path} was damaged; set aside as {aside.name}, {then}", stacklevel=3)


def resumable(last: Path) -> dict | None:
    """The checkpoint to resume from, or None; a damaged one is set aside with a warning (the
    run starts again from its first epoch) rather than stopping the sweep."""
    if not last.is_file():
        return None
    try:
        saved = load_torch(last, "")
        if not isinstance(saved, dict) or not {"model", "optimizer", "state"} <= set(saved):
            raise DamagedFile(last, KeyError("model, optimizer or state"), "")
        return saved
    except DamagedFile as error:
        aside = set_aside(last)
        warnings.warn(
            f"{last} is damaged ({error.reason}); set aside as {aside.name}: training restarts "
            "from the first epoch",
            stacklevel=3,
        )
        return None


def warm_start_source(config: RunConfig) -> RunConfig | None:
    """The run whose best weights ``config`` starts from (``init_eta``), or None."""
    if config.init_eta is None:
        return None
    return dataclasses.replace(config, eta=config.init_eta, init_eta=None)


def warm_start(codec, config: RunConfig, root) -> None:
    """Load into ``codec`` the best weights of :func:`warm_start_source` (under ``root``), if
    any; that run must have finished."""
    source = warm_start_source(config)
    if source is None:
        return
    folder = run_dir(source, root)
    if not is_finished(folder):
        raise RuntimeError(
            f"run {config.label()} starts from the weights of {source.label()} (init_eta), "
            f"which has not finished in {folder}; train it first"
        )
    load_weights(
        codec, folder / "best.pt", f"{retrain(folder)} (the warm start of {config.label()})"
    )


def claim(folder: Path, config: RunConfig) -> None:
    """Create ``folder`` or check that it holds this very config."""
    saved = folder / "config.json"
    if saved.is_file():
        existing = read_json(saved, retrain(folder))
        if not isinstance(existing, dict) or "config" not in existing:
            raise DamagedFile(saved, KeyError("config"), retrain(folder))
        if existing["config"] != config.to_dict():
            raise RuntimeError(f"{folder} holds another run's config; refusing to mix them")
    folder.mkdir(parents=True, exist_ok=True)


def export(folder: Path, codec, config: RunConfig, state: dict) -> None:
    """Write history.csv and, when the last committed epoch was the best, best.pt."""
    history = state["history"]
    if history:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(history[-1]))
        writer.writeheader()
        writer.writerows(history)
        atomic_write(folder / "history.csv", lambda f: f.write(buffer.getvalue().encode()))
    if state["best_epoch"] == state["epoch"] and state["epoch"] > 0:
        save_torch(
            folder / "best.pt",
            {
                "model": codec.state_dict(),
                "epoch": state["best_epoch"],
                "val_loss": state["best_loss"],
                "config": config.to_dict(),
            },
        )
