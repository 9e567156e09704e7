"""The synthetic Gray-Wyner source reproduces the authors' recipe (REFERENCE.md, paper D.3)."""

import numpy as np
import pytest
import torch

from gwnlib.data.synthetic import (
    AUTHORS_CODE_THEORY,
    SyntheticGrayWyner,
    dependency_map,
    determinant_one_transform,
    pair_pmf,
)
from gwnlib.theory import entropy


def test_pair_pmf_matches_the_authors_numbers():
    p = pair_pmf()
    assert p.shape == (9, 9) and p.sum() == pytest.approx(1.0)
    assert entropy(p) == pytest.approx(2.9838, abs=5e-5)  # pair entropy
    assert entropy(p.sum(axis=1)) == pytest.approx(2.9660, abs=5e-5)  # marginal entropy
    assert 1 - np.trace(p) == pytest.approx(0.0013, abs=1e-4)  # almost always a copy
    assert np.all(p > 0)  # add-one smoothing: full support
    assert np.allclose(p, p.T, atol=2e-4)


def test_pair_pmf_leaves_the_global_generator_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    pair_pmf(samples=1000)
    assert torch.equal(torch.rand(3), expected)


def test_dependency_map_has_the_authors_exact_counts():
    m = dependency_map()
    assert m.counts() == {
        "pairs": 3653, "crossing": 1827, "inside_x1": 914, "inside_x2": 912, "singles": 886,
    }  # fmt: skip
    every = np.concatenate([m.pairs.reshape(-1), m.singles])
    assert np.array_equal(np.sort(every), np.arange(8192)), "each element exactly once"
    kinds = m.kinds()
    assert kinds.shape == (2, 64, 64)
    assert np.bincount(kinds.reshape(-1)).tolist() == [886, 2 * (914 + 912), 2 * 1827]


def test_dependency_map_comparison_direction_matters():
    # Pairing when uniform() > 0.2 (the authors) differs from pairing when random() < 0.8.
    assert dependency_map().counts()["pairs"] != 3629
    assert dependency_map(seed=1).counts() != dependency_map().counts()


def test_theory_matches_the_authors_code():
    theory = SyntheticGrayWyner(side=64, cache=False).theory()
    for key, value in AUTHORS_CODE_THEORY.items():
        assert theory[key] == pytest.approx(value, abs=1e-3), key
    assert theory["mutual_information"] == pytest.approx(
        theory["sum_of_marginal_entropies"] - theory["joint_entropy"]
    )


def test_transform_has_determinant_one_and_matches_the_authors_formula():
    n = 64
    t = determinant_one_transform(n, torch.Generator().manual_seed(3))
    assert torch.linalg.slogdet(t).logabsdet.abs() < 1e-12
    # The authors' form exp(-trace / n) expm(A), from the same draw.
    g = torch.Generator().manual_seed(3)
    a = (0.001 * torch.randn(n, n, generator=g, dtype=torch.float64)).clamp(-0.01, 0.01)
    a.diagonal().copy_(a.abs().sum(dim=1))
    authors = torch.linalg.matrix_exp(a) * torch.exp(-a.trace() / n)
    assert torch.allclose(t, authors, atol=1e-12)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GWN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))  # a private cache
        yield SyntheticGrayWyner(side=16)


def test_batches_are_valid_and_targets_are_the_transforms(small):
    x, z1, z2 = next(small.batches(8, seed=1))
    assert x.shape == (8, 2, 16, 16) and z1.shape == z2.shape == (8, 1, 16, 16)
    assert x.dtype == z1.dtype == torch.float32
    assert set(torch.unique(x).tolist()) <= {(v - 4) / 4 for v in range(9)}
    t1, t2 = small.transforms
    assert torch.allclose(z1.view(8, -1), x[:, 0].reshape(8, -1) @ t1.float().T, atol=1e-5)
    assert torch.allclose(z2.view(8, -1), x[:, 1].reshape(8, -1) @ t2.float().T, atol=1e-5)


def test_the_same_seed_gives_the_same_batches(small):
    a = [b[0] for _, b in zip(range(3), small.batches(4, seed=7), strict=False)]
    b = [b[0] for _, b in zip(range(3), small.batches(4, seed=7), strict=False)]
    c = next(small.batches(4, seed=8))[0]
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not torch.equal(a[0], c) and not torch.equal(a[0], a[1])


def test_transforms_are_cached_atomically_and_reloaded(small):
    path = small._cache_path()
    small.transforms  # noqa: B018  (builds and writes the cache)
    assert path.is_file() and not list(path.parent.glob("*.tmp*"))
    again = SyntheticGrayWyner(side=16)
    assert torch.equal(again.transforms[0], small.transforms[0])


def test_samples_follow_the_pair_pmf_and_the_map(small):
    g = torch.Generator().manual_seed(0)
    values = small.sample_values(4000, g).view(4000, -1)
    pairs = torch.as_tensor(small.map.pairs)
    a, b = values[:, pairs[:, 0]].reshape(-1), values[:, pairs[:, 1]].reshape(-1)
    counts = torch.bincount(a * 9 + b, minlength=81).double()
    empirical = (counts / counts.sum()).view(9, 9).numpy()
    # ~4000 * P draws: every cell within 5 standard errors of its probability.
    se = np.sqrt(small.pmf * (1 - small.pmf) / counts.sum().item())
    assert np.all(np.abs(empirical - small.pmf) < 5 * se + 1e-6)
    singles = values[:, torch.as_tensor(small.map.singles)].reshape(-1)
    marginal = torch.bincount(singles, minlength=9).double()
    assert np.allclose((marginal / marginal.sum()).numpy(), small.pmf.sum(axis=1), atol=0.01)


def test_rate_distortion_bounds_are_ordered(small):
    rd = small.rate_distortion(np.geomspace(0.5, 64, 15))
    assert np.all(np.diff(rd["joint"]) > 0) and np.all(np.diff(rd["joint_rmse_sum"]) < 0)
    # At equal distortion, coding X1 and X2 jointly is cheaper than apart (Gray 1973, Eq. 42);
    # compare on the experiments' axis, interpolating the independent bound.
    lo, hi = rd["independent_rmse_sum"].min(), rd["independent_rmse_sum"].max()
    inside = (rd["joint_rmse_sum"] > lo) & (rd["joint_rmse_sum"] < hi)
    indep_at = np.interp(
        rd["joint_rmse_sum"][inside], rd["independent_rmse_sum"][::-1], rd["independent"][::-1]
    )
    assert inside.sum() >= 8 and np.all(rd["joint"][inside] < indep_at)
    zero = small.rate_distortion([0.0])
    assert zero["joint"][0] == zero["independent"][0] == 0.0
    high = small.rate_distortion([200.0])
    assert high["joint"][0] == pytest.approx(small.theory()["joint_entropy"], abs=0.02)
    assert high["independent"][0] == pytest.approx(
        small.theory()["sum_of_marginal_entropies"], abs=0.02
    )


@pytest.mark.gpu
def test_batches_on_the_last_cuda_device():
    dev = f"cuda:{torch.cuda.device_count() - 1}"
    source = SyntheticGrayWyner(side=16, device=dev, cache=False)
    x, z1, _ = next(source.batches(4, seed=1))
    assert x.device == torch.device(dev) and z1.device == torch.device(dev)
    assert torch.equal(x, next(source.batches(4, seed=1))[0])


def test_bad_arguments():
    with pytest.raises(ValueError, match="samples"):
        pair_pmf(samples=0)
    with pytest.raises(ValueError, match="side"):
        dependency_map(side=0)
    with pytest.raises(ValueError, match="independent_probability"):
        dependency_map(independent_probability=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        SyntheticGrayWyner(side=4, cache=False).sample_values(0, torch.Generator())
