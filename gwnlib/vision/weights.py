"""Task-model weight files: download, safe loading and the state dict inside (paper Sec. 4.3).

The vision experiments' task models start from published weights: VainF's Cityscapes DeepLabV3+
checkpoint (:data:`SEGMENTATION_WEIGHTS_URL`), torchvision's COCO weights, or a checkpoint that
:func:`gwnlib.vision.pretrain.pretrain` wrote (format :data:`CHECKPOINT_FORMAT`).

The VainF checkpoint stores a NumPy scalar (``best_score``) beside the weights, which
``torch.load(weights_only=True)`` refuses since torch 2.6; :func:`load_checkpoint` allows exactly
the NumPy scalar and dtype types it needs (never ``weights_only=False``). Downloads are cached in
``gwnlib.runtime.cache_dir() / "weights"``; a file's SHA-256 is logged on first download
(:data:`SEGMENTATION_WEIGHTS_SHA256` is unknown until then). Chapter "Vision tasks: Cityscapes
and COCO 2017" loads them.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from gwnlib import runtime

__all__ = [
    "CHECKPOINT_FORMAT",
    "PRETRAINED_TASKS",
    "SEGMENTATION_WEIGHTS_SHA256",
    "SEGMENTATION_WEIGHTS_URL",
    "load_checkpoint",
    "load_weights",
    "pretrained_file",
    "pretrained_path",
    "resolve_source",
    "state_dict_of",
]

_LOG = logging.getLogger(__name__)

#: VainF/DeepLabV3Plus-Pytorch's DeepLabV3+ MobileNet Cityscapes checkpoint (README, "Performance
#: on Cityscapes": mIoU 0.721, output stride 16), with ``dl=1`` for a direct download.
SEGMENTATION_WEIGHTS_URL = (
    "https://www.dropbox.com/s/753ojyvsh3vdjol/"
    "best_deeplabv3plus_mobilenet_cityscapes_os16.pth?dl=1"
)
#: SHA-256 of that file: unknown, logged on first download (pin it here once seen).
SEGMENTATION_WEIGHTS_SHA256: str | None = None
#: The ``format`` entry of a checkpoint written by :func:`gwnlib.vision.pretrain.pretrain` (the
#: module path it had when the format was fixed, kept so that older files still load).
CHECKPOINT_FORMAT = "gwnlib.vision.tasks/1"
#: The tasks :func:`gwnlib.vision.pretrain.pretrain` can train (the per-pixel ones).
PRETRAINED_TASKS = ("segmentation", "depth")


def _numpy_safe_globals() -> list:
    """What ``torch.load(weights_only=True)`` must be allowed to rebuild NumPy scalars: the
    ``scalar`` constructor (under its NumPy 1 and 2 module names), ``numpy.dtype`` and the dtype
    classes of NumPy >= 1.25 (``numpy.dtypes.Float64DType`` for VainF's ``best_score``)."""
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # NumPy < 1.26
        from numpy.core.multiarray import scalar
    allowed: list = [
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        np.dtype,
    ]
    dtypes = getattr(np, "dtypes", None)
    for name in ("Float64DType", "Float32DType", "Int64DType", "Int32DType", "BoolDType"):
        if dtypes is not None and hasattr(dtypes, name):
            allowed.append(getattr(dtypes, name))
    return allowed


def load_checkpoint(path: Path):
    """``torch.load`` with ``weights_only=True``, NumPy scalars allowed, onto the CPU."""
    if not hasattr(torch.serialization, "safe_globals"):
        raise RuntimeError("loading task-model checkpoints needs torch >= 2.5")
    with torch.serialization.safe_globals(_numpy_safe_globals()):
        return torch.load(path, map_location="cpu", weights_only=True)


def _fetch(url: str, sha256: str | None = None) -> Path:
    """Download ``url`` into ``cache_dir()/weights`` (once) and log its SHA-256."""
    from gwnlib.download import download_url, file_hash

    name = Path(urllib.parse.urlparse(url).path).name or "weights.pth"
    target = runtime.cache_dir() / "weights" / name
    try:
        path = download_url(url, target, sha256=sha256)
    except OSError as error:
        raise RuntimeError(
            f"could not download {url} ({error}). Put the file at {target} by hand, or train a "
            "replacement with gwnlib.vision.pretrain.pretrain() and pass its path as weights"
        ) from error
    if sha256 is None:
        _LOG.info("sha256 of %s: %s (not pinned)", path, file_hash(path))
    return path


def resolve_source(source, parameter: str) -> Path:
    """The local file of ``source``: an ``http(s)`` URL (downloaded once) or an existing path."""
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        return _fetch(
            source, SEGMENTATION_WEIGHTS_SHA256 if source == SEGMENTATION_WEIGHTS_URL else None
        )
    if isinstance(source, (str, Path)) and Path(source).expanduser().is_file():
        return Path(source).expanduser()
    raise ValueError(
        f"{parameter} must be an http(s) URL or the path of an existing file; got {source!r}"
    )


def state_dict_of(checkpoint, name: str) -> dict:
    """The model weights inside a checkpoint: VainF's (``model_state``), ``pretrain``'s
    (``model``, for task ``name``) or a bare state dict; a ``module.`` prefix (DataParallel) is
    removed."""
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"weights file holds a {type(checkpoint).__name__}, not a state dict")
    if checkpoint.get("format") == CHECKPOINT_FORMAT:
        if checkpoint["task"] != name:
            raise ValueError(
                f"weights file holds a {checkpoint['task']!r} model, not a {name!r} model"
            )
        state = checkpoint["model"]
    elif "model_state" in checkpoint:
        state = checkpoint["model_state"]
    else:
        state = checkpoint
    return {key.removeprefix("module."): value for key, value in state.items()}


def load_weights(network: torch.nn.Module, path: Path, name: str) -> None:
    """Load the weights of task ``name`` in the checkpoint at ``path`` into ``network``."""
    network.load_state_dict(state_dict_of(load_checkpoint(path), name))
    _LOG.info("loaded %s weights from %s", name, path)


def pretrained_file(task: str, preset: str, seed: int = 0, root: str | Path | None = None) -> Path:
    """Where :func:`gwnlib.vision.pretrain.pretrain` writes ``task``'s checkpoint (``root``:
    ``cache_dir()/"weights"``), whether or not it exists."""
    folder = Path(root) if root is not None else runtime.cache_dir() / "weights"
    return folder / f"{task}-{preset}-seed{seed}.pt"


def pretrained_path(
    task: str, preset: str | None = None, seed: int = 0, root: str | Path | None = None
) -> Path:
    """The checkpoint :func:`gwnlib.vision.pretrain.pretrain` wrote for ``task`` (``preset``
    given, else the best there is: ``paper``, then ``short``); ``FileNotFoundError`` saying how
    to make one if none."""
    runtime.check_choice("task", task, PRETRAINED_TASKS)
    if preset is not None:
        runtime.check_preset(preset)
    candidates = [preset] if preset is not None else ["paper", "short"]
    for name in candidates:
        path = pretrained_file(task, name, seed, root)
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"no pretrained {task} model in {path.parent} (looked for "
        f"{', '.join(f'{task}-{name}-seed{seed}.pt' for name in candidates)}). Train one first, "
        f"e.g. gwnlib.vision.pretrain.pretrain({task!r}, <train split of "
        "gwnlib.data.cityscapes.CityscapesTasks>, preset='short', validation=<its val split>), "
        "or pass weights=<path of a checkpoint>"
    )
