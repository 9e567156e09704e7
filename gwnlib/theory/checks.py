"""Argument checks shared by the theory modules: each refuses a bad value with a message that
names the parameter and the accepted values."""

from __future__ import annotations

import numpy as np


def check_crossover(crossover) -> float:
    """A DSBS crossover probability, in [0, 1/2]."""
    a = float(crossover)
    if not 0.0 <= a <= 0.5:
        raise ValueError(f"crossover must be a probability in [0, 1/2]; got {crossover!r}")
    return a


def check_positive(name: str, value) -> float:
    """A finite number > 0."""
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return value


def check_count(name: str, value, minimum: int) -> int:
    """An integer (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)
