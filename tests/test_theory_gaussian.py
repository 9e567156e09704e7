"""Gaussian closed forms, each checked against an independent numerical computation or a theorem.

Numerical references used here (none reuses the closed forms under test):
* joint RD: the covariance programme min 1/2 log2(det Sigma / det E) over 0 < E <= Sigma,
  E11 <= D1, E22 <= D2, solved by zoomed grid search, plus random feasible E as a lower-bound
  check;
* marginal RD: Blahut-Arimoto on a finely discretised Gaussian;
* mutual information: the discrete MI of a finely discretised bivariate Gaussian
  (``gwnlib.theory.entropy.mutual_information``);
* (lossy) Wyner common information: I(X; W) minimised over scalar Gaussian W that make the pair
  (or the optimal reconstruction) conditionally independent.
"""

from __future__ import annotations

import numpy as np
import pytest

from gwnlib.theory.common_information import gacs_korner
from gwnlib.theory.entropy import mutual_information
from gwnlib.theory.gaussian import (
    gaussian_gacs_korner,
    gaussian_joint_rate_distortion,
    gaussian_lossy_wyner_common_information,
    gaussian_mutual_information,
    gaussian_rate_distortion,
    gaussian_wyner_common_information,
)
from gwnlib.theory.rate_distortion import blahut_arimoto, squared_error_distortion

RNG = np.random.default_rng(20260415)

RHOS = [-0.9, -0.5, 0.0, 0.3, 0.7, 0.95]
VARIANCES = [(1.0, 1.0), (2.0, 0.5)]
FRACTIONS = [0.05, 0.2, 0.5, 0.8, 0.95, 1.2]  # D_i / var_i


# --------------------------------------------------------------------------------------------
# independent numerical references
# --------------------------------------------------------------------------------------------


def sigma(rho, var1, var2):
    s12 = rho * np.sqrt(var1 * var2)
    return np.array([[var1, s12], [s12, var2]])


def numerical_joint_rd(D1, D2, rho, var1, var2, n=61, levels=10):
    """min 1/2 log2(det Sigma / det E) over 0 < E <= Sigma, E11 <= D1, E22 <= D2.

    Grid over the diagonal (e1, e2) of E, zoomed around the best point ``levels`` times. For a
    given diagonal, Sigma - E >= 0 confines the off-diagonal c to the interval
    s12 +- sqrt((var1 - e1)(var2 - e2)), and det E = e1 e2 - c^2 is largest at the point of that
    interval closest to 0. The objective after that inner step is convex in (e1, e2).
    """
    s12 = rho * np.sqrt(var1 * var2)
    det_sigma = var1 * var2 - s12**2
    u1, u2 = min(D1, var1), min(D2, var2)
    box = [u1 * 1e-9, u1, u2 * 1e-9, u2]
    lo1, hi1, lo2, hi2 = box
    best = np.inf
    for _ in range(levels):
        e1 = np.linspace(lo1, hi1, n)[:, None]
        e2 = np.linspace(lo2, hi2, n)[None, :]
        radius = np.sqrt(np.clip((var1 - e1) * (var2 - e2), 0.0, None))
        c = np.clip(0.0, s12 - radius, s12 + radius)
        det = e1 * e2 - c**2
        value = np.full(det.shape, np.inf)
        ok = det > 0
        value[ok] = 0.5 * np.log2(det_sigma / det[ok])
        i, j = np.unravel_index(np.argmin(value), value.shape)
        best = min(best, value[i, j])
        step1, step2 = (hi1 - lo1) / (n - 1), (hi2 - lo2) / (n - 1)
        x1, x2 = e1[i, 0], e2[0, j]
        lo1, hi1 = max(box[0], x1 - 3 * step1), min(box[1], x1 + 3 * step1)
        lo2, hi2 = max(box[2], x2 - 3 * step2), min(box[3], x2 + 3 * step2)
    return best


def random_feasible_rates(D1, D2, rho, var1, var2, n=20000):
    """1/2 log2(det Sigma / det E) for random E with 0 < E <= Sigma, E11 <= D1, E22 <= D2."""
    e1 = RNG.uniform(0, min(D1, var1), n)
    e2 = RNG.uniform(0, min(D2, var2), n)
    c = RNG.uniform(-1, 1, n) * np.sqrt(e1 * e2)
    s12 = rho * np.sqrt(var1 * var2)
    det_e = e1 * e2 - c**2
    psd = (var1 - e1 >= 0) & (var2 - e2 >= 0) & ((var1 - e1) * (var2 - e2) >= (s12 - c) ** 2)
    keep = psd & (det_e > 0)
    return 0.5 * np.log2(np.linalg.det(sigma(rho, var1, var2)) / det_e[keep])


def blahut_arimoto_point(variance, slope, n=241):
    """(D, R) of the library's Blahut-Arimoto on N(0, variance) discretised on n points."""
    x = np.linspace(-6, 6, n) * np.sqrt(variance)
    p = np.exp(-(x**2) / (2 * variance))
    point = blahut_arimoto(p / p.sum(), squared_error_distortion(x), slope, tol=1e-9)
    return point.distortion, point.rate


def discretised_gaussian_table(rho, h=0.02, width=7.0):
    """Bin probabilities (midpoint rule) of a unit-variance bivariate Gaussian on a square grid.

    Unit variances lose nothing: MI and the support graph are unchanged by rescaling X1, X2.
    """
    x = np.arange(-width, width + h / 2, h)
    u, v = np.meshgrid(x, x, indexing="ij")
    p = np.exp(-(u**2 - 2 * rho * u * v + v**2) / (2 * (1 - rho**2)))
    return p / p.sum()


def gaussian_w_common_rate(rho, var1, var2, cap1, cap2, n=4001, levels=6):
    """min I(X1, X2; W) over scalar Gaussian W, with X_i = c_i W + noise_i (noises independent).

    Conditional independence given W forces Cov = c c^T + diag, so c1 c2 = rho s1 s2; the
    variance c_i^2 explained by W is capped at ``cap_i`` (var_i for the lossless problem,
    var_i - D_i when W must make the optimal reconstruction conditionally independent).
    Returns inf when no c satisfies the caps.
    """
    s12 = abs(rho) * np.sqrt(var1 * var2)
    det_sigma = np.linalg.det(sigma(rho, var1, var2))
    lo, hi = s12**2 / cap2, cap1  # range of c1^2
    if lo > hi:
        return np.inf
    best = np.inf
    for _ in range(levels):
        c1sq = np.linspace(lo, hi, n)
        c2sq = s12**2 / c1sq
        with np.errstate(divide="ignore"):
            value = 0.5 * np.log2(det_sigma / ((var1 - c1sq) * (var2 - c2sq)))
        value[(var1 - c1sq <= 0) | (var2 - c2sq <= 0)] = np.inf
        k = int(np.argmin(value))
        best = min(best, value[k])
        step = (hi - lo) / (n - 1)
        lo, hi = max(s12**2 / cap2, c1sq[k] - 3 * step), min(cap1, c1sq[k] + 3 * step)
    return best


def regime(d1, d2, r):
    """Which of the four joint-RD regimes a normalised point is in (for coverage only)."""
    a, b = 1 - d1, 1 - d2
    if d1 >= 1 and d2 >= 1:
        return "zero"
    if (d1 < 1 and d2 >= 1 - r**2 * a) or (d2 < 1 and d1 >= 1 - r**2 * b):
        return "one description"
    if a * b >= r**2:
        return "diagonal error"
    return "rank-one reconstruction"


# --------------------------------------------------------------------------------------------
# marginal RD and mutual information
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variance", [1.0, 3.0])
def test_rate_distortion_matches_blahut_arimoto(variance):
    for fraction in (0.1, 0.3, 0.6):
        D, R = blahut_arimoto_point(variance, slope=1.0 / (2 * fraction * variance))
        assert D == pytest.approx(fraction * variance, rel=1e-3)
        assert gaussian_rate_distortion(D, variance) == pytest.approx(R, abs=1e-2)


def test_rate_distortion_edges_and_vectorisation():
    assert gaussian_rate_distortion(2.0, 2.0) == 0.0
    assert gaussian_rate_distortion(5.0, 2.0) == 0.0
    assert gaussian_rate_distortion(0.25) == pytest.approx(1.0)  # 6.02 dB per bit
    d = np.array([0.01, 0.1, 1.0, 10.0])
    out = gaussian_rate_distortion(d, 1.0)
    assert isinstance(out, np.ndarray) and out.shape == d.shape
    assert np.all(np.diff(out) <= 0)
    assert isinstance(gaussian_rate_distortion(0.5), float)


@pytest.mark.parametrize("rho", [0.0, 0.3, -0.8, 0.95])
def test_mutual_information_matches_discretised_table(rho):
    numeric = mutual_information(discretised_gaussian_table(rho))
    assert gaussian_mutual_information(rho) == pytest.approx(numeric, abs=1e-2)


def test_mutual_information_properties():
    rho = np.linspace(-0.99, 0.99, 41)
    mi = gaussian_mutual_information(rho)
    assert np.allclose(mi, mi[::-1])
    assert gaussian_mutual_information(0.0) == 0.0
    assert np.all(mi >= 0)


# --------------------------------------------------------------------------------------------
# joint rate-distortion
# --------------------------------------------------------------------------------------------


def joint_grid():
    for rho in RHOS:
        for var1, var2 in VARIANCES:
            for f1 in FRACTIONS:
                for f2 in FRACTIONS:
                    yield f1 * var1, f2 * var2, rho, var1, var2


def test_joint_rd_matches_numerical_solution_in_all_regimes():
    seen = {}
    worst = 0.0
    for D1, D2, rho, var1, var2 in joint_grid():
        closed = gaussian_joint_rate_distortion(D1, D2, rho, var1, var2)
        numeric = numerical_joint_rd(D1, D2, rho, var1, var2)
        worst = max(worst, abs(closed - numeric))
        assert closed == pytest.approx(numeric, abs=1e-3), (D1, D2, rho, var1, var2)
        name = regime(D1 / var1, D2 / var2, abs(rho))
        seen[name] = seen.get(name, 0) + 1
    assert set(seen) == {"zero", "one description", "diagonal error", "rank-one reconstruction"}
    assert min(seen.values()) >= 5, seen


@pytest.mark.parametrize(
    "D1, D2, rho, var1, var2",
    [(0.3, 0.4, 0.5, 1.0, 1.0), (0.5, 0.6, 0.9, 1.0, 1.0), (0.1, 0.9, -0.8, 2.0, 1.0)],
)
def test_joint_rd_is_a_lower_bound_on_random_feasible_error_covariances(D1, D2, rho, var1, var2):
    closed = gaussian_joint_rate_distortion(D1, D2, rho, var1, var2)
    rates = random_feasible_rates(D1, D2, rho, var1, var2)
    assert rates.size > 1000
    assert rates.min() >= closed - 1e-12
    assert rates.min() <= closed + 0.05  # random points get close to the optimum


def test_joint_rd_independent_sources_is_the_sum():
    for D1, D2, _, var1, var2 in joint_grid():
        joint = gaussian_joint_rate_distortion(D1, D2, 0.0, var1, var2)
        split = gaussian_rate_distortion(D1, var1) + gaussian_rate_distortion(D2, var2)
        assert joint == pytest.approx(split, abs=1e-12)


def test_joint_rd_with_one_large_distortion_is_the_marginal():
    for rho in RHOS:
        for D1 in (0.05, 0.3, 0.9, 1.5):
            for D2 in (1.0, 1.7, 10.0):  # D2 >= var2 = 1
                joint = gaussian_joint_rate_distortion(D1, D2, rho)
                assert joint == pytest.approx(gaussian_rate_distortion(D1), abs=1e-12)
                joint = gaussian_joint_rate_distortion(D2, D1, rho)
                assert joint == pytest.approx(gaussian_rate_distortion(D1), abs=1e-12)


def test_joint_rd_bounds_symmetry_and_scaling():
    for D1, D2, rho, var1, var2 in joint_grid():
        joint = gaussian_joint_rate_distortion(D1, D2, rho, var1, var2)
        r1 = gaussian_rate_distortion(D1, var1)
        r2 = gaussian_rate_distortion(D2, var2)
        assert max(r1, r2) - 1e-12 <= joint <= r1 + r2 + 1e-12
        assert joint == pytest.approx(gaussian_joint_rate_distortion(D1, D2, -rho, var1, var2))
        assert joint == pytest.approx(gaussian_joint_rate_distortion(D2, D1, rho, var2, var1))
        scaled = gaussian_joint_rate_distortion(9 * D1, 0.25 * D2, rho, 9 * var1, 0.25 * var2)
        assert joint == pytest.approx(scaled, abs=1e-12)


def test_joint_rd_diagonal_regime_is_sum_minus_mutual_information():
    # where diag(D1, D2) <= Sigma the optimum is E = diag(D1, D2): R = R1 + R2 - I
    for rho in (0.3, -0.6, 0.9):
        for d in (0.01, 0.05, 0.1):
            joint = gaussian_joint_rate_distortion(d, 2 * d, rho, 1.0, 2.0)
            expected = 2 * gaussian_rate_distortion(d) - gaussian_mutual_information(rho)
            assert joint == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("rho", [0.2, 0.6, -0.9])
def test_joint_rd_is_continuous_across_regime_boundaries(rho):
    r2 = rho**2
    eps = 1e-9
    for d1 in (0.05, 0.3, 0.6, 0.9):
        a = 1 - d1
        boundaries = [
            1 - r2 / a,  # (1 - d1)(1 - d2) = rho^2: diagonal / rank-one
            1 - r2 * a,  # d2 = 1 - rho^2 (1 - d1): rank-one / one description
            1.0,  # d2 = var2
        ]
        for d2 in boundaries:
            if not 0 < d2 - eps:
                continue
            below = gaussian_joint_rate_distortion(d1, d2 - eps, rho)
            above = gaussian_joint_rate_distortion(d1, d2 + eps, rho)
            assert abs(below - above) < 1e-6, (d1, d2)
    # a fine sweep has no jumps anywhere
    d2 = np.linspace(0.05, 1.5, 20001)  # step 7e-5, slope at most 1/(2 ln2 0.05) = 14.4
    sweep = gaussian_joint_rate_distortion(0.3, d2, rho)
    assert np.max(np.abs(np.diff(sweep))) < 2e-3
    assert np.all(np.diff(sweep) <= 1e-12)  # non-increasing in D2


def test_joint_rd_vectorises_over_broadcast_arguments():
    D1 = np.array([0.1, 0.5, 0.9])[:, None]
    D2 = np.array([0.2, 0.7])[None, :]
    out = gaussian_joint_rate_distortion(D1, D2, 0.6)
    assert out.shape == (3, 2)
    for i in range(3):
        for j in range(2):
            assert out[i, j] == gaussian_joint_rate_distortion(D1[i, 0], D2[0, j], 0.6)
    assert isinstance(gaussian_joint_rate_distortion(0.1, 0.2, 0.3), float)


# --------------------------------------------------------------------------------------------
# Wyner's common information, lossless and lossy
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rho", [0.1, 0.5, -0.7, 0.95])
@pytest.mark.parametrize("variances", VARIANCES)
def test_wyner_common_information_matches_best_gaussian_w(rho, variances):
    var1, var2 = variances
    numeric = gaussian_w_common_rate(rho, var1, var2, cap1=var1, cap2=var2)
    assert gaussian_wyner_common_information(rho) == pytest.approx(numeric, abs=1e-6)


def test_wyner_common_information_properties():
    rho = np.linspace(-0.99, 0.99, 41)
    c = gaussian_wyner_common_information(rho)
    assert np.allclose(c, c[::-1])
    assert gaussian_wyner_common_information(0.0) == 0.0
    mi = gaussian_mutual_information(rho)
    assert np.all(c >= mi - 1e-12)  # Wyner (1975): C >= I
    assert np.all(c[rho != 0] > mi[rho != 0])
    # C <= min(H(X1), H(X2)) has no Gaussian analogue; C grows without bound as |rho| -> 1
    assert gaussian_wyner_common_information(1 - 1e-12) > 19


def plateau_points():
    for rho in (0.0, 0.3, -0.6, 0.9):
        for var1, var2 in VARIANCES:
            top = 1 - abs(rho)
            for f1 in (0.05, 0.5, 1.0):
                for f2 in (0.1, 1.0):
                    yield f1 * top * var1, f2 * top * var2, rho, var1, var2


def test_lossy_wyner_equals_lossless_on_the_plateau():
    for D1, D2, rho, var1, var2 in plateau_points():
        lossy = gaussian_lossy_wyner_common_information(D1, D2, rho, var1, var2)
        assert lossy == pytest.approx(gaussian_wyner_common_information(rho), abs=1e-12)


def test_lossy_wyner_plateau_matches_best_gaussian_w_for_the_reconstruction():
    # W must make the optimal reconstruction (covariance Sigma - diag(D1, D2)) conditionally
    # independent; the best scalar Gaussian W reaches the lossless value exactly on the plateau
    for D1, D2, rho, var1, var2 in plateau_points():
        if rho == 0.0:
            continue
        numeric = gaussian_w_common_rate(rho, var1, var2, cap1=var1 - D1, cap2=var2 - D2)
        lossy = gaussian_lossy_wyner_common_information(D1, D2, rho, var1, var2)
        assert lossy == pytest.approx(numeric, abs=1e-6)
    # ...and only there: past D1 = var1 (1 - |rho|) the same family needs a larger common rate,
    # so the plateau formula must not be extended (the function refuses instead)
    rho, var1, var2 = 0.6, 2.0, 0.5
    D1, D2 = 1.2 * (1 - rho) * var1, 0.1 * var2
    numeric = gaussian_w_common_rate(rho, var1, var2, cap1=var1 - D1, cap2=var2 - D2)
    assert numeric > gaussian_wyner_common_information(rho) + 1e-3
    with pytest.raises(ValueError, match="plateau"):
        gaussian_lossy_wyner_common_information(D1, D2, rho, var1, var2)


def test_lossy_wyner_is_zero_when_a_distortion_reaches_its_variance():
    for rho in (0.0, 0.5, -0.95):
        for D1, D2 in [(1.0, 0.1), (0.2, 1.0), (3.0, 3.0), (0.5, 7.0)]:
            assert gaussian_lossy_wyner_common_information(D1, D2, rho) == 0.0
    assert gaussian_lossy_wyner_common_information(4.0, 0.01, 0.9, var1=4.0) == 0.0


def test_lossy_wyner_gray_wyner_bounds():
    # Pangloss plane R0 + R1 + R2 = R_joint with R0 + R_i >= R_{X_i}(D_i) (Gray & Wyner 1974)
    # gives R_X1(D1) + R_X2(D2) - R_joint <= C_W <= R_joint (W = the reconstruction itself).
    points = list(plateau_points()) + [
        (D1, D2, rho, 1.0, 1.0)
        for rho in (0.2, -0.8)
        for D1, D2 in [(1.0, 0.1), (0.3, 1.5), (2.0, 2.0)]
    ]
    for D1, D2, rho, var1, var2 in points:
        c = gaussian_lossy_wyner_common_information(D1, D2, rho, var1, var2)
        joint = gaussian_joint_rate_distortion(D1, D2, rho, var1, var2)
        r1 = gaussian_rate_distortion(D1, var1)
        r2 = gaussian_rate_distortion(D2, var2)
        assert r1 + r2 - joint - 1e-12 <= c <= joint + 1e-12, (D1, D2, rho)


def test_lossy_wyner_versus_mutual_information():
    # on the plateau C_W = C >= I; in general it is not: C_W = 0 < I once D2 >= var2
    for D1, D2, rho, var1, var2 in plateau_points():
        c = gaussian_lossy_wyner_common_information(D1, D2, rho, var1, var2)
        assert c >= gaussian_mutual_information(rho) - 1e-12
    assert gaussian_lossy_wyner_common_information(0.1, 1.0, 0.8) < gaussian_mutual_information(0.8)


@pytest.mark.parametrize(
    "D1, D2, rho", [(0.5, 0.1, 0.6), (0.1, 0.45, 0.6), (0.95, 0.95, 0.5), (0.2, 0.2, 0.9)]
)
def test_lossy_wyner_refuses_outside_the_confirmed_regimes(D1, D2, rho):
    with pytest.raises(ValueError, match=r"D1 <= var1 \(1 - \|rho\|\)"):
        gaussian_lossy_wyner_common_information(D1, D2, rho)


def test_lossy_wyner_vectorises_and_refuses_if_any_entry_is_outside():
    D = np.array([0.05, 0.1, 0.2])
    out = gaussian_lossy_wyner_common_information(D, D, 0.7)
    assert out.shape == (3,)
    assert np.allclose(out, gaussian_wyner_common_information(0.7))
    with pytest.raises(ValueError, match="1 entry is outside"):
        gaussian_lossy_wyner_common_information(np.array([0.05, 0.5]), 0.05, 0.7)


# --------------------------------------------------------------------------------------------
# Gacs-Korner
# --------------------------------------------------------------------------------------------


def connected_components(table):
    """Number of connected components of the bipartite support graph of a 2-D table."""
    return len(gacs_korner(table / table.sum()).components)


@pytest.mark.parametrize("rho", [0.0, 0.5, -0.9, 0.99])
def test_gacs_korner_is_zero_single_component(rho):
    assert gaussian_gacs_korner(rho) == 0.0
    # the reason: the support is the whole plane, so any discretisation is one component and the
    # only common function of X1 and X2 is a constant
    table = discretised_gaussian_table(rho, h=0.1, width=5.0)
    assert connected_components(table) == 1
    # a control with two blocks is split, so the component count can tell the difference
    block = np.zeros((4, 4))
    block[:2, :2] = block[2:, 2:] = 1 / 8
    assert connected_components(block) == 2


def test_gacs_korner_vectorises():
    out = gaussian_gacs_korner(np.array([-0.5, 0.0, 0.5]))
    assert out.shape == (3,) and np.all(out == 0.0)
    assert isinstance(gaussian_gacs_korner(0.2), float)


# --------------------------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0.0, -0.1, np.nan, np.inf, [0.5, -1.0]])
def test_invalid_distortions_and_variances(bad):
    with pytest.raises(ValueError, match="D must be finite and > 0"):
        gaussian_rate_distortion(bad)
    with pytest.raises(ValueError, match="variance must be finite and > 0"):
        gaussian_rate_distortion(0.5, bad)
    with pytest.raises(ValueError, match="D1 must be finite and > 0"):
        gaussian_joint_rate_distortion(bad, 0.5, 0.3)
    with pytest.raises(ValueError, match="D2 must be finite and > 0"):
        gaussian_lossy_wyner_common_information(0.1, bad, 0.3)
    with pytest.raises(ValueError, match="var1 must be finite and > 0"):
        gaussian_joint_rate_distortion(0.5, 0.5, 0.3, var1=bad)
    with pytest.raises(ValueError, match="var2 must be finite and > 0"):
        gaussian_lossy_wyner_common_information(0.1, 0.1, 0.3, var2=bad)


@pytest.mark.parametrize("bad", [1.0, -1.0, 1.5, np.nan, [0.2, 1.0]])
@pytest.mark.parametrize(
    "call",
    [
        gaussian_mutual_information,
        gaussian_wyner_common_information,
        gaussian_gacs_korner,
        lambda rho: gaussian_joint_rate_distortion(0.5, 0.5, rho),
        lambda rho: gaussian_lossy_wyner_common_information(0.01, 0.01, rho),
    ],
)
def test_invalid_correlation(call, bad):
    with pytest.raises(ValueError, match=r"rho must be a correlation in the open interval"):
        call(bad)


def test_empty_input_is_rejected():
    with pytest.raises(ValueError, match="D is empty"):
        gaussian_rate_distortion([])
