"""Entropies and mutual informations: closed forms, identities and invariants on random tables."""

import numpy as np
import pytest

from gwnlib.theory import (
    binary_entropy,
    check_pmf,
    conditional_entropy,
    conditional_mutual_information,
    entropy,
    interaction_information,
    mutual_information,
)

RNG = np.random.default_rng(20261122)


def random_table(shape, zeros=0.0):
    p = RNG.random(shape) ** 3
    p[RNG.random(shape) < zeros] = 0.0
    p.flat[0] += 1e-3  # never all zero
    return p / p.sum()


TABLES_2D = [random_table(s, z) for s in [(2, 2), (3, 4), (5, 2), (6, 6)] for z in (0.0, 0.3)]
TABLES_3D = [random_table(s, z) for s in [(2, 2, 2), (3, 2, 4), (4, 4, 3)] for z in (0.0, 0.3)]


def test_closed_forms():
    assert entropy([0.5, 0.5]) == pytest.approx(1.0)
    assert entropy(np.ones(8) / 8) == pytest.approx(3.0)
    assert entropy([1.0, 0.0]) == 0.0
    assert entropy([0.5, 0.5], base=np.e) == pytest.approx(np.log(2))
    assert binary_entropy(0.11) == pytest.approx(-0.11 * np.log2(0.11) - 0.89 * np.log2(0.89))
    assert binary_entropy(np.array([0.0, 1.0])).tolist() == [0.0, 0.0]
    # Binary symmetric channel with a uniform input: I = 1 - h(a).
    a = 0.2
    bsc = np.array([[(1 - a) / 2, a / 2], [a / 2, (1 - a) / 2]])
    assert mutual_information(bsc) == pytest.approx(1 - binary_entropy(a))
    assert conditional_entropy(bsc) == pytest.approx(binary_entropy(a))


def test_xor_has_negative_interaction_information():
    p = np.zeros((2, 2, 2))
    for x in range(2):
        for y in range(2):
            p[x, y, x ^ y] = 0.25
    assert mutual_information(p.sum(axis=2)) == pytest.approx(0.0, abs=1e-12)
    assert conditional_mutual_information(p) == pytest.approx(1.0)
    assert interaction_information(p) == pytest.approx(-1.0)


def test_copies_have_positive_interaction_information():
    p = np.zeros((2, 2, 2))
    p[0, 0, 0] = p[1, 1, 1] = 0.5  # X = Y = Z
    assert interaction_information(p) == pytest.approx(1.0)


@pytest.mark.parametrize("p", TABLES_2D)
def test_two_variable_identities(p):
    h_x, h_y, h_xy = entropy(p.sum(1)), entropy(p.sum(0)), entropy(p)
    i = mutual_information(p)
    assert i >= -1e-12
    assert i <= min(h_x, h_y) + 1e-12
    assert conditional_entropy(p) == pytest.approx(h_xy - h_x)  # chain rule
    assert conditional_entropy(p.T) == pytest.approx(h_xy - h_y)
    assert i == pytest.approx(h_y - conditional_entropy(p))
    assert mutual_information(p.T) == pytest.approx(i)
    assert h_xy <= h_x + h_y + 1e-12
    # Independence: the product of the marginals has zero mutual information.
    assert mutual_information(np.outer(p.sum(1), p.sum(0))) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("p", TABLES_3D)
def test_three_variable_identities(p):
    cmi = conditional_mutual_information(p)
    assert cmi >= -1e-12
    # Chain rule (paper Eq. 23): I(X; Y, Z) = I(X; Z) + I(X; Y | Z).
    i_x_yz = mutual_information(p.reshape(p.shape[0], -1))
    assert i_x_yz == pytest.approx(mutual_information(p.sum(axis=1)) + cmi)
    # Interaction information is symmetric in its three variables (Eq. 22).
    ii = interaction_information(p)
    for axes in [(1, 0, 2), (0, 2, 1), (2, 1, 0), (1, 2, 0)]:
        assert interaction_information(p.transpose(axes)) == pytest.approx(ii)
    # Corollary (paper Eq. 24): I(X;Y;Z) = I(X,Y; Z) - I(X; Z | Y) - I(Y; Z | X).
    i_xy_z = mutual_information(p.reshape(-1, p.shape[2]))
    i_xz_given_y = conditional_mutual_information(p.transpose(0, 2, 1))
    i_yz_given_x = conditional_mutual_information(p.transpose(1, 2, 0))
    assert ii == pytest.approx(i_xy_z - i_xz_given_y - i_yz_given_x)


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ([0.5, 0.6], "sum to 1"),
        ([1.2, -0.2], "negative"),
        ([np.nan, 1.0], "non-finite"),
        ([], "empty"),
    ],
)
def test_bad_tables_are_rejected(table, match):
    with pytest.raises(ValueError, match=match):
        entropy(table)


def test_tolerance_is_tight_and_dimensions_are_checked():
    check_pmf([0.5, 0.5 + 5e-10])
    with pytest.raises(ValueError, match="sum to 1"):
        check_pmf([0.5, 0.5 + 2e-9])
    with pytest.raises(ValueError, match="2 axes"):
        mutual_information([0.5, 0.5])
    with pytest.raises(ValueError, match="3 axes"):
        conditional_mutual_information(np.full((2, 2), 0.25))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        binary_entropy(1.5)


def test_a_certain_outcome_has_exactly_zero_entropy():
    assert str(entropy([1.0])) == "0.0"  # not -0.0, which prints as "-0.0000" in tables
