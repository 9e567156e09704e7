"""The paper's synthetic Gray-Wyner source (Sec. 4.1, appendix D.3).

Each element of the source takes one of 9 values. Its statistics come from one 9x9 *pair* PMF: the
joint law of two elements that the dependency map pairs up (almost always copies of each other).
Chapter 1 uses the pair PMF on its own, as a concrete two-variable source for the Gray-Wyner
region; the full 2x64x64 source is built on it.
"""

from __future__ import annotations

import numpy as np
import torch

#: Seed of the authors' recipe (their code seeds torch and Python's random with it).
SEED = 110069
#: The correlation of the pair draw: the largest float32 below 1 (rho = 1 is a singular covariance).
RHO = float(np.nextafter(np.float32(1), np.float32(0)))


def pair_pmf(samples: int = 100_000, seed: int = SEED) -> np.ndarray:
    """The 9x9 pair PMF of the synthetic source, exactly as the authors build it (paper D.3).

    Draw ``samples`` pairs from a bivariate normal with variance 4 per coordinate and correlation
    :data:`RHO` (``torch.manual_seed(seed)`` on the CPU first), add 4, round, clamp to 0..8, and
    histogram into a 9x9 table that starts from all ones (add-one smoothing); normalise. With the
    defaults: pair entropy 2.9838 bits, marginal entropy 2.9660 bits, off-diagonal mass 0.13%.
    Indexed ``[v1, v2]`` with values 0..8 (the model sees (v - 4) / 4).
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1; got {samples}")
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        cov = torch.tensor([[4.0, 4.0 * RHO], [4.0 * RHO, 4.0]])
        normal = torch.distributions.MultivariateNormal(torch.zeros(2), covariance_matrix=cov)
        draws = normal.sample((samples,))
    finally:
        torch.random.set_rng_state(generator_state)  # leave the caller's global stream untouched
    values = torch.clamp(torch.round(draws + 4), 0, 8).long()
    table = torch.ones(9, 9, dtype=torch.float64)
    ones = torch.ones(samples, dtype=torch.float64)
    table.index_put_((values[:, 0], values[:, 1]), ones, accumulate=True)
    return (table / table.sum()).numpy()
