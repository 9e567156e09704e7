"""The synthetic source's pair PMF reproduces the authors' recipe (REFERENCE.md, paper D.3)."""

import numpy as np
import pytest
import torch

from gwnlib.data import pair_pmf
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


def test_pair_pmf_rejects_no_samples():
    with pytest.raises(ValueError, match="samples"):
        pair_pmf(samples=0)
