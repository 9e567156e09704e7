"""gwnlib: the companion library of gwn-book.

A learnable Gray-Wyner network (de Andrade, Harell and Bajic, ICLR 2026) and the information theory
behind it, built chapter by chapter with the book. Its sub-packages are layers whose imports only
point down (tests/test_layers.py):

    runtime, files -> theory, data -> model -> vision -> experiments -> training -> analysis

Each module holds one idea and cites the paper's equations and sections it implements; each
sub-package's docstring names the chapters that explain it, by title.
"""

import warnings

__version__ = "0.1.0"

# CompressAI 1.2.x decorates a few helpers with torch.jit.script at import time, which torch >= 2.10
# reports as a FutureWarning on every import. It says nothing about gwnlib's results; silence that
# one message so it does not clutter every chapter.
warnings.filterwarnings(
    "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
)

from gwnlib.runtime import (  # noqa: E402
    CACHE_DIR_ENV,
    DATA_DIR_ENV,
    DEVICES,
    PRESETS,
    Runtime,
    cache_dir,
    check_preset,
    data_dir,
    device,
    hardware,
    seed_everything,
    setup,
    torch_generator,
)

__all__ = [
    "CACHE_DIR_ENV",
    "DATA_DIR_ENV",
    "DEVICES",
    "PRESETS",
    "Runtime",
    "__version__",
    "cache_dir",
    "check_preset",
    "data_dir",
    "device",
    "hardware",
    "seed_everything",
    "setup",
    "torch_generator",
]
