"""The paper's synthetic Gray-Wyner source (Sec. 4.1, appendix D.3).

A sample is ``x`` in {-1, -0.75, ..., 1}^(2 x 64 x 64): channel 0 is X1, channel 1 is X2. Each of
8192 elements takes one of 9 values, and a fixed *dependency map* pairs most elements up: a pair
is drawn from one 9x9 *pair PMF* (almost always two copies), a single element from its marginal.
Pairs inside X1 or inside X2 make each half compressible on its own; pairs that *cross* from X1 to
X2 are the information the two halves share. The tasks are linear regressions: Z_i = T_i vec(X_i)
with T_i a fixed 4096 x 4096 matrix of determinant 1, so the targets carry exactly the
information of their half. Element ``e`` of the map is channel ``e // side**2``, position
``e % side**2``.

Everything follows the authors' recipe (their code, github.com/adeandrade/research), with two
changes said where they happen: their sampler writes one unpaired index into the last element (we
do not), and their transforms come from an undocumented point of a global random stream (ours
from a seeded generator of their own, the same construction).
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gwnlib.files import DamagedFile, load_torch, save_torch

#: Seed of the authors' recipe (their code seeds torch and Python's random with it).
SEED = 110069
#: The correlation of the pair draw: the largest float32 below 1 (rho = 1 is a singular covariance).
RHO = float(np.nextafter(np.float32(1), np.float32(0)))
#: Probability that the walk over the shuffled elements leaves an element single (paper D.3: 1/5).
INDEPENDENT_PROBABILITY = 0.2
#: The paper's per-position information measures (Sec. 4.1), and the authors' code's exact values.
PAPER_THEORY = {"joint_entropy": 3.3, "sum_of_marginal_entropies": 4.62, "mutual_information": 1.32}
AUTHORS_CODE_THEORY = {
    "joint_entropy": 3.3027,
    "sum_of_marginal_entropies": 4.6177,
    "mutual_information": 1.3150,
}


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


@dataclass(frozen=True)
class DependencyMap:
    """Which elements of ``x`` are drawn together: ``pairs`` (P x 2) and ``singles`` (S,).

    Elements are indices into the flattened 2 x side x side sample.
    """

    pairs: np.ndarray
    singles: np.ndarray
    side: int

    @property
    def positions(self) -> int:
        """Elements per channel (side**2)."""
        return self.side * self.side

    def channel(self, elements: np.ndarray) -> np.ndarray:
        """0 for elements of X1, 1 for elements of X2."""
        return np.asarray(elements) // self.positions

    def pair_channels(self) -> tuple[np.ndarray, np.ndarray]:
        """Channels (0 for X1, 1 for X2) of each pair's first and second element; a pair crosses
        X1/X2 where they differ."""
        return self.channel(self.pairs[:, 0]), self.channel(self.pairs[:, 1])

    def counts(self) -> dict[str, int]:
        """Numbers of pairs (all, crossing X1/X2, inside X1, inside X2) and of singles."""
        first, second = self.pair_channels()
        return {
            "pairs": len(self.pairs),
            "crossing": int(np.sum(first != second)),
            "inside_x1": int(np.sum((first == 0) & (second == 0))),
            "inside_x2": int(np.sum((first == 1) & (second == 1))),
            "singles": len(self.singles),
        }

    def kinds(self) -> np.ndarray:
        """A (2, side, side) map for plots: 0 single, 1 pair inside its channel, 2 crossing pair."""
        kind = np.zeros(2 * self.positions, dtype=np.int64)
        first, second = self.pair_channels()
        crossing = first != second
        kind[self.pairs.reshape(-1)] = np.repeat(np.where(crossing, 2, 1), 2)
        return kind.reshape(2, self.side, self.side)


def dependency_map(
    seed: int = SEED, side: int = 64, independent_probability: float = INDEPENDENT_PROBABILITY
) -> DependencyMap:
    """The authors' dependency map (paper D.3), with Python's ``random`` seeded by ``seed``.

    Shuffle the 2 * side**2 element indices with ``random.shuffle``, then walk the list: at
    position i, unless it is the last one, draw ``random.uniform(0, 1)``; if it exceeds
    ``independent_probability`` pair the elements at i and i + 1 and move to i + 2, else leave
    element i single and move to i + 1. With the defaults: 3653 pairs (1827 crossing X1/X2, 914
    inside X1, 912 inside X2) and 886 singles. The comparison direction matters: pairing when
    ``random() < 0.8`` gives another map. A private ``random.Random`` is used, so the global
    stream is untouched.
    """
    if side < 1:
        raise ValueError(f"side must be >= 1; got {side}")
    if not 0 <= independent_probability <= 1:
        raise ValueError(
            f"independent_probability must be in [0, 1]; got {independent_probability}"
        )
    rng = random.Random(seed)
    n = 2 * side * side
    order = list(range(n))
    rng.shuffle(order)
    pairs, singles, i = [], [], 0
    while i < n:
        if i != n - 1 and rng.uniform(0, 1) > independent_probability:
            pairs.append((order[i], order[i + 1]))
            i += 2
        else:
            singles.append(order[i])
            i += 1
    return DependencyMap(
        pairs=np.array(pairs, dtype=np.int64).reshape(-1, 2),
        singles=np.array(singles, dtype=np.int64),
        side=side,
    )


def determinant_one_transform(
    n: int, generator: torch.Generator, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """A dense n x n matrix of determinant 1, by the authors' construction (paper D.3).

    A = clamp(0.001 * randn, -0.01, 0.01) with its diagonal replaced by the row sums of |A|; the
    authors return exp(-trace(A) / n) * expm(A). Since (trace(A) / n) I commutes with A, that is
    exactly expm(A - (trace(A) / n) I), which we compute instead: the exponent is traceless, so
    det = exp(0) = 1 by construction, and its small norm makes the matrix exponential cheaper.
    Float64 on ``device``; ``generator`` must live on the CPU (the draw is then the same anywhere).
    """
    a = (0.001 * torch.randn(n, n, generator=generator, dtype=torch.float64)).clamp(-0.01, 0.01)
    a.diagonal().copy_(a.abs().sum(dim=1))
    a = a.to(device)
    a.diagonal().sub_(a.diagonal().mean())
    return torch.linalg.matrix_exp(a)


class SyntheticGrayWyner:
    """The synthetic source of the paper's Sec. 4.1: pair PMF, dependency map, T1, T2, batches.

    ``side`` (64 in the paper) sets the 2 x side x side sample; smaller values give the same source
    on a smaller grid (their own map and transforms), for tests and smoke runs. ``device`` is where
    batches are generated (any CUDA index). The transforms are computed on first use (float64,
    about 40 s for side 64 on a 2-core CPU, far less on a GPU) and cached in
    :func:`gwnlib.cache_dir` as ``synthetic/transforms-seed{seed}-side{side}.pt`` unless ``cache``
    is false.
    """

    def __init__(
        self,
        seed: int = SEED,
        side: int = 64,
        device: str | torch.device = "cpu",
        cache: bool = True,
    ):
        self.seed = seed
        self.side = side
        self.device = torch.device(device)
        self.cache = cache
        self.pmf = pair_pmf(seed=seed)
        self.map = dependency_map(seed=seed, side=side)
        self._transforms: tuple[torch.Tensor, torch.Tensor] | None = None
        pair_cdf = np.cumsum(self.pmf.reshape(-1))
        marginal_cdf = np.cumsum(self.pmf.sum(axis=1))
        self._pair_cdf = torch.tensor(pair_cdf / pair_cdf[-1], device=self.device)
        self._marginal_cdf = torch.tensor(marginal_cdf / marginal_cdf[-1], device=self.device)
        self._pairs = torch.as_tensor(self.map.pairs, device=self.device)
        self._singles = torch.as_tensor(self.map.singles, device=self.device)

    # -- targets ---------------------------------------------------------------------------
    @property
    def transforms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(T1, T2), float64 on the source's device, determinant 1."""
        if self._transforms is None:
            self._transforms = self._load_or_build_transforms()
        return self._transforms

    def _cache_path(self) -> Path:
        from gwnlib.runtime import cache_dir

        return cache_dir() / "synthetic" / f"transforms-seed{self.seed}-side{self.side}.pt"

    def _load_or_build_transforms(self) -> tuple[torch.Tensor, torch.Tensor]:
        path = self._cache_path()
        if self.cache and path.is_file():
            try:
                t1, t2 = load_torch(path, "", map_location=self.device)
                return t1, t2
            except (DamagedFile, ValueError, TypeError) as error:  # a cache: rebuild it
                warnings.warn(f"{path} is damaged ({error}); rebuilding it", stacklevel=2)
        generator = torch.Generator().manual_seed(self.seed)
        n = self.side * self.side
        t1 = determinant_one_transform(n, generator, self.device)
        t2 = determinant_one_transform(n, generator, self.device)
        if self.cache:
            save_torch(path, (t1.cpu(), t2.cpu()))  # atomic: no half-written cache after a kill
        return t1, t2

    def gains(self) -> tuple[float, float]:
        """RMS gains ||T_i||_F / sqrt(n): a white error of RMSE r in X_i is one of g_i r in Z_i."""
        n = self.side * self.side
        return tuple(float(torch.linalg.matrix_norm(t) / math.sqrt(n)) for t in self.transforms)

    # -- samples ---------------------------------------------------------------------------
    def sample_values(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """Integer values 0..8, shape (batch_size, 2, side, side), drawn with ``generator``.

        Each pair of the map gets one draw of the pair law, each single one of its marginal. The
        authors' sampler also writes an unpaired index (-1) into the last element, overwriting
        one value with a stray draw; here every element is written once, from its own draw.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        n_pairs, n_singles = len(self._pairs), len(self._singles)
        u = torch.rand(batch_size, n_pairs + n_singles, generator=generator, device=self.device)
        pair = torch.searchsorted(self._pair_cdf, u[:, :n_pairs].double(), right=True).clamp_(
            max=80
        )
        single = torch.searchsorted(self._marginal_cdf, u[:, n_pairs:].double(), right=True)
        values = torch.empty(batch_size, 2 * self.side**2, dtype=torch.long, device=self.device)
        values[:, self._pairs[:, 0]] = pair // 9
        values[:, self._pairs[:, 1]] = pair % 9
        values[:, self._singles] = single.clamp_(max=8)
        return values.view(batch_size, 2, self.side, self.side)

    def sample(self, batch_size: int, generator: torch.Generator):
        """One batch ``(x, z1, z2)``: x (B, 2, side, side) in {-1, ..., 1}; z_i (B, 1, side, side).

        float32 on the source's device; z_i = T_i vec(x_i), with T_i applied in float32.
        """
        x = (self.sample_values(batch_size, generator).float() - 4) / 4
        t1, t2 = (t.float() for t in self.transforms)
        flat = x.view(batch_size, 2, -1)
        shape = (batch_size, 1, self.side, self.side)
        z1 = (flat[:, 0] @ t1.T).view(shape)
        z2 = (flat[:, 1] @ t2.T).view(shape)
        return x, z1, z2

    def batches(self, batch_size: int, seed: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
        """An infinite, seeded stream of ``(x, z1, z2)`` batches on the source's device.

        The same ``seed`` gives the same batches (on the CPU, and on one kind of GPU).
        """
        generator = torch.Generator(device=self.device).manual_seed(seed)
        while True:
            yield self.sample(batch_size, generator)

    # -- theory ----------------------------------------------------------------------------
    def theory(self) -> dict[str, float]:
        """Exact per-position information measures (bits per 64x64 position), from PMF and map.

        Singles count the marginal entropy; pairs the pair entropy. For H(X1) and H(X2), a pair
        inside a half counts its pair entropy there, a crossing pair the marginal entropy of its
        coordinate in each half. The paper reports 3.3 / 4.62 / 1.32 (:data:`PAPER_THEORY`).
        """
        from gwnlib.theory import entropy

        h_pair = entropy(self.pmf)
        h_first, h_second = entropy(self.pmf.sum(axis=1)), entropy(self.pmf.sum(axis=0))
        m, n = self.map, self.map.positions
        first, second = m.pair_channels()
        crossing = first != second
        joint = len(m.pairs) * h_pair + len(m.singles) * h_first
        halves = (~crossing).sum() * h_pair + crossing.sum() * (h_first + h_second)
        halves += len(m.singles) * h_first
        return {
            "joint_entropy": joint / n,
            "sum_of_marginal_entropies": halves / n,
            "mutual_information": (halves - joint) / n,
        }

    def rate_distortion(self, slopes) -> dict[str, np.ndarray]:
        """Theoretical rate-distortion bounds of the source, on the experiments' distortion axis.

        For each Blahut-Arimoto slope (nats per unit of squared error in the model's units), the
        pair PMF and its marginals are solved with squared error ((a - x)^2 + (b - y)^2) / 16, and
        the solutions are summed over the dependency map (bits per position, like the paper's
        rates). ``joint`` codes the whole sample at once (the Joint codec's bound, R_{X1,X2});
        ``independent`` codes X1 and X2 apart, so crossing pairs are coded as two marginals (the
        Independent codec's bound, R_{X1} + R_{X2}). ``mse1``/``mse2`` are the per-element mean
        squared errors of X1 and X2 under each, in the model's units.

        The distortion axis: experiments measure RMSE of Z_i = T_i X_i. A reconstruction error e in
        X_i becomes T_i e in Z_i, with E||T_i e||^2 = tr(T_i Cov(e) T_i^T). The optimal test
        channels make the errors of different elements independent with (nearly) equal variance, so
        Cov(e) is close to sigma_i^2 I and RMSE(Z_i) = g_i sigma_i with g_i = ||T_i||_F / sqrt(n)
        (:meth:`gains`; about 1.004 for side 64). ``joint_rmse_sum``/``independent_rmse_sum`` are
        g_1 sqrt(mse1) + g_2 sqrt(mse2): the paper's plotted axis, RMSE1 + RMSE2.
        """
        from gwnlib.theory import blahut_arimoto, squared_error_distortion

        d1 = squared_error_distortion(np.arange(9.0)) / 16  # model units: (v - 4) / 4
        pair_d = (d1[:, None, :, None] + d1[None, :, None, :]).reshape(81, 81)
        m, n = self.map, self.map.positions
        first, second = m.pair_channels()
        crossing = first != second
        g1, g2 = self.gains()
        out = {k: [] for k in ("slope", "joint", "independent", "joint_mse1", "joint_mse2",
                               "independent_mse1", "independent_mse2")}  # fmt: skip

        def count(channels):  # elements per channel (X1, X2)
            return np.bincount(channels, minlength=2).astype(np.float64)

        single = m.channel(m.singles)
        for slope in slopes:
            pair = blahut_arimoto(self.pmf.reshape(-1), pair_d, slope)
            joint_q = (self.pmf.reshape(-1)[:, None] * pair.channel).reshape(9, 9, 9, 9)
            da = float(np.sum(joint_q * d1[:, None, :, None]))  # first coordinate's error
            db = pair.distortion - da  # second coordinate's
            ma, mb = (blahut_arimoto(self.pmf.sum(axis=k), d1, slope) for k in (1, 0))
            # Expected squared error summed over each channel's elements (divided by n below).
            joint_mse = count(first) * da + count(second) * db + count(single) * ma.distortion
            indep_mse = (
                count(first[~crossing]) * da
                + count(second[~crossing]) * db
                + count(first[crossing]) * ma.distortion
                + count(second[crossing]) * mb.distortion
                + count(single) * ma.distortion
            )
            joint_rate = len(m.pairs) * pair.rate + len(m.singles) * ma.rate
            indep_rate = (
                (~crossing).sum() * pair.rate
                + crossing.sum() * (ma.rate + mb.rate)
                + len(m.singles) * ma.rate
            )
            out["slope"].append(slope)
            out["joint"].append(joint_rate / n)
            out["independent"].append(indep_rate / n)
            for name, mse in (("joint", joint_mse), ("independent", indep_mse)):
                out[f"{name}_mse1"].append(mse[0] / n)
                out[f"{name}_mse2"].append(mse[1] / n)
        result = {k: np.array(v) for k, v in out.items()}
        for name in ("joint", "independent"):
            result[f"{name}_rmse_sum"] = g1 * np.sqrt(result[f"{name}_mse1"]) + g2 * np.sqrt(
                result[f"{name}_mse2"]
            )
        return result
