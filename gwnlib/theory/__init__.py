"""Information theory of the Gray-Wyner network, computed (chapter 1). NumPy, float64, bits.

- :mod:`~gwnlib.theory.entropy`: entropies, (conditional) mutual and interaction information.
- :mod:`~gwnlib.theory.rate_distortion`: Blahut-Arimoto; marginal, conditional and joint R(D).
"""

from gwnlib.theory.entropy import (
    binary_entropy,
    check_pmf,
    conditional_entropy,
    conditional_mutual_information,
    entropy,
    interaction_information,
    mutual_information,
)
from gwnlib.theory.rate_distortion import (
    binary_rate_distortion,
    blahut_arimoto,
    conditional_rate_distortion,
    hamming_distortion,
    joint_rate_distortion,
    rate_distortion,
    rate_distortion_curve,
    squared_error_distortion,
    uniform_rate_distortion,
)

__all__ = [
    "binary_entropy",
    "binary_rate_distortion",
    "blahut_arimoto",
    "check_pmf",
    "conditional_entropy",
    "conditional_mutual_information",
    "conditional_rate_distortion",
    "entropy",
    "hamming_distortion",
    "interaction_information",
    "joint_rate_distortion",
    "mutual_information",
    "rate_distortion",
    "rate_distortion_curve",
    "squared_error_distortion",
    "uniform_rate_distortion",
]
