"""Properties of the Fréchet (Wasserstein-2) distance between Gaussians (`frechet.py`).

Covariances are drawn as Q diag(lambda) Q^T with a random rotation Q and eigenvalues
spread over many decades, including exact zeros (singular covariances) and the zero
matrix, at scales from 1e-3 to 1e3.
"""

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidiff.evaluation.frechet import frechet_distance, gaussian_statistics, psd_sqrt
from tests.tolerances import ATOL, RTOL, RTOL_LOOSE

MAX_D = 6


def random_rotation(rng: np.random.Generator, D: int) -> np.ndarray:
    """A random orthogonal (D, D) matrix (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((D, D)))
    return q * np.sign(np.diag(r))


@st.composite
def spectra(draw, D: int, well_conditioned: bool = False) -> np.ndarray:
    """D eigenvalues >= 0: well conditioned in [0.1, 10], or log-uniform over 1e-8..1e2
    times a scale in 1e-3..1e3 with some set exactly to 0."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if well_conditioned:
        return rng.uniform(0.1, 10.0, size=D)
    scale = 10.0 ** rng.uniform(-3, 3)
    eigenvalues = scale * 10.0 ** rng.uniform(-8, 2, size=D)
    zeros = draw(st.integers(0, D))  # D zeros: the zero matrix
    eigenvalues[rng.permutation(D)[:zeros]] = 0.0
    return eigenvalues


def covariance_from(rotation: np.ndarray, eigenvalues: np.ndarray) -> np.ndarray:
    """Q diag(lambda) Q^T, symmetrised."""
    covariance = (rotation * eigenvalues) @ rotation.T
    return (covariance + covariance.T) / 2


@st.composite
def covariances(draw, D: int, well_conditioned: bool = False) -> np.ndarray:
    """A (D, D) symmetric PSD matrix, possibly singular."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return covariance_from(random_rotation(rng, D), draw(spectra(D, well_conditioned)))


@st.composite
def gaussians(draw, D: int, well_conditioned: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), covariance (D, D)); the mean's scale in 1e-3..1e2 or exactly 0."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mean = rng.standard_normal(D) * draw(st.sampled_from([0.0, 1e-3, 1.0, 1e2]))
    return mean, draw(covariances(D, well_conditioned))


@st.composite
def gaussian_pairs(draw, well_conditioned: bool = False, count: int = 2):
    """``count`` Gaussians of one random dimension D in 1..MAX_D."""
    D = draw(st.integers(1, MAX_D))
    return [draw(gaussians(D, well_conditioned)) for _ in range(count)]


def scale_of(*pairs) -> float:
    """The size of the terms of d^2: |m|^2 + tr(C) summed over the Gaussians (round-off
    in d^2 is relative to this)."""
    return sum(float(m @ m + np.trace(c)) for m, c in pairs)


@given(gaussian_pairs(count=1))
def test_distance_is_zero_for_identical_gaussians(pairs):
    """d^2(N(m, C), N(m, C)) = 0 for every PSD C, singular ones included."""
    ((mean, cov),) = pairs
    assert frechet_distance(mean, cov, mean, cov) <= RTOL * scale_of(*pairs) + ATOL


@given(gaussian_pairs())
def test_distance_is_symmetric(pairs):
    """d^2(N1, N2) = d^2(N2, N1), although the formula treats C1 and C2 differently."""
    (m1, c1), (m2, c2) = pairs
    forward, backward = frechet_distance(m1, c1, m2, c2), frechet_distance(m2, c2, m1, c1)
    assert abs(forward - backward) <= RTOL * scale_of(*pairs) + ATOL


@given(gaussian_pairs())
def test_distance_is_non_negative(pairs):
    """d^2 >= 0 (it is a squared distance; round-off never makes it negative)."""
    (m1, c1), (m2, c2) = pairs
    assert frechet_distance(m1, c1, m2, c2) >= 0.0


@given(
    st.integers(1, MAX_D).flatmap(lambda D: st.tuples(*[spectra(D)] * 2)), st.integers(0, 2**32 - 1)
)
def test_commuting_covariances_give_the_closed_form(spectrum_pair, seed):
    """C1 = Q diag(a) Q^T and C2 = Q diag(b) Q^T commute, and then
    d^2 = |m1 - m2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2."""
    a, b = spectrum_pair
    rng = np.random.default_rng(seed)
    D = len(a)
    rotation = random_rotation(rng, D)
    m1, m2 = rng.standard_normal(D), rng.standard_normal(D)
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    actual = frechet_distance(m1, covariance_from(rotation, a), m2, covariance_from(rotation, b))
    scale = m1 @ m1 + m2 @ m2 + a.sum() + b.sum()
    # Rotating diag(a) rounds an exact zero eigenvalue to ~1e-16 x max(a), whose square
    # root (~1e-8) enters the trace term: hence the loose tolerance.
    np.testing.assert_allclose(actual, expected, rtol=RTOL_LOOSE, atol=RTOL_LOOSE * scale)


@given(st.floats(-1e3, 1e3), st.floats(0, 1e3), st.floats(-1e3, 1e3), st.floats(0, 1e3))
def test_one_dimensional_distance_is_difference_of_means_and_stds(m1, var1, m2, var2):
    """In 1-D, d^2 = (m1 - m2)^2 + (s1 - s2)^2 with s = sqrt(var)."""
    expected = (m1 - m2) ** 2 + (np.sqrt(var1) - np.sqrt(var2)) ** 2
    actual = frechet_distance([m1], [[var1]], [m2], [[var2]])
    scale = m1**2 + m2**2 + var1 + var2
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * scale)


@given(gaussian_pairs(well_conditioned=True))
def test_agrees_with_scipy_sqrtm_formula(pairs):
    """On well-conditioned covariances (eigenvalues in [0.1, 10]) the eigh computation
    equals the usual FID code's |m1 - m2|^2 + tr(C1 + C2 - 2 sqrtm(C1 C2)), with
    `scipy.linalg.sqrtm` as the independent implementation."""
    (m1, c1), (m2, c2) = pairs
    root = scipy.linalg.sqrtm(c1 @ c2)
    expected = np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * np.real(root))
    actual = frechet_distance(m1, c1, m2, c2)
    np.testing.assert_allclose(
        actual, expected, rtol=RTOL_LOOSE, atol=RTOL_LOOSE * scale_of(*pairs)
    )


@given(gaussian_pairs(count=3))
def test_square_root_satisfies_the_triangle_inequality(pairs):
    """d(N1, N3) <= d(N1, N2) + d(N2, N3): the square root is the Wasserstein-2 metric.
    Round-off of order RTOL x scale in d^2 becomes sqrt(RTOL x scale) in d."""
    (m1, c1), (m2, c2), (m3, c3) = pairs
    d12 = np.sqrt(frechet_distance(m1, c1, m2, c2))
    d23 = np.sqrt(frechet_distance(m2, c2, m3, c3))
    d13 = np.sqrt(frechet_distance(m1, c1, m3, c3))
    assert d13 <= d12 + d23 + np.sqrt(RTOL * scale_of(*pairs))


@given(gaussian_pairs(), st.floats(1e-2, 1e2), st.integers(0, 2**32 - 1))
def test_distance_scales_quadratically_and_ignores_translation(pairs, c, seed):
    """d^2(N(c m1 + s, c^2 C1), N(c m2 + s, c^2 C2)) = c^2 d^2(N(m1, C1), N(m2, C2)) for a
    scale c > 0 and a shift s: W2 moves with the space."""
    (m1, c1), (m2, c2) = pairs
    shift = np.random.default_rng(seed).standard_normal(len(m1))
    moved = frechet_distance(c * m1 + shift, c**2 * c1, c * m2 + shift, c**2 * c2)
    original = frechet_distance(m1, c1, m2, c2)
    scale = c**2 * (scale_of(*pairs) + 2 * shift @ shift)
    np.testing.assert_allclose(moved, c**2 * original, rtol=RTOL_LOOSE, atol=RTOL_LOOSE * scale)


@given(st.integers(1, MAX_D).flatmap(covariances))
def test_psd_sqrt_squares_to_the_matrix(cov):
    """S = psd_sqrt(C) is symmetric PSD and S S = C."""
    root = psd_sqrt(cov)
    scale = max(np.abs(cov).max(), ATOL)
    np.testing.assert_allclose(root, root.T, rtol=0, atol=RTOL * np.sqrt(scale))
    assert np.linalg.eigvalsh(root).min() >= -RTOL_LOOSE * np.sqrt(scale)
    np.testing.assert_allclose(root @ root, cov, rtol=0, atol=RTOL_LOOSE * scale)


@given(st.integers(2, 50), st.integers(1, MAX_D), st.integers(0, 2**32 - 1))
def test_gaussian_statistics_match_numpy_mean_and_cov(N, D, seed):
    """The mean and covariance equal `numpy.mean` and `numpy.cov` (divisor N - 1)."""
    features = np.random.default_rng(seed).standard_normal((N, D)) * 10.0
    mean, cov = gaussian_statistics(features)
    np.testing.assert_allclose(mean, features.mean(axis=0), rtol=RTOL, atol=ATOL)
    expected = np.cov(features, rowvar=False).reshape(D, D)
    np.testing.assert_allclose(cov, expected, rtol=RTOL, atol=RTOL * np.abs(expected).max())
    assert np.array_equal(cov, cov.T)


def test_gaussian_statistics_accept_torch_tensors():
    """A CPU torch tensor gives the same statistics as its NumPy array."""
    features = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    for a, b in zip(
        gaussian_statistics(features), gaussian_statistics(features.numpy()), strict=True
    ):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "features", [np.zeros(5), np.zeros((1, 3)), np.zeros((4, 0)), np.zeros((2, 2, 2))]
)
def test_gaussian_statistics_reject_bad_shapes(features):
    """Features that are not (N >= 2, D >= 1) raise ValueError naming `features`."""
    with pytest.raises(ValueError, match="features"):
        gaussian_statistics(features)


def test_gaussian_statistics_reject_non_finite_features():
    """NaN features raise ValueError naming `features`."""
    with pytest.raises(ValueError, match="features"):
        gaussian_statistics(np.array([[0.0], [np.nan]]))


GOOD = (np.zeros(2), np.eye(2), np.ones(2), 2 * np.eye(2))


@pytest.mark.parametrize(
    ("index", "value", "name"),
    [
        (0, np.zeros((2, 1)), "mean1"),
        (0, np.zeros(0), "mean1"),
        (2, np.zeros(3), "mean2"),
        (1, np.eye(3), "cov1"),
        (3, np.zeros((2, 3)), "cov2"),
        (3, np.zeros(2), "cov2"),
        (1, np.array([[1.0, 0.5], [0.0, 1.0]]), "cov1"),  # not symmetric
        (3, np.diag([1.0, -1.0]), "cov2"),  # not PSD
        (0, np.array([np.inf, 0.0]), "mean1"),
    ],
)
def test_frechet_distance_rejects_bad_arguments(index, value, name):
    """A wrong shape, an asymmetric or indefinite covariance or a non-finite entry raises
    ValueError naming the argument."""
    arguments = list(GOOD)
    arguments[index] = value
    with pytest.raises(ValueError, match=name):
        frechet_distance(*arguments)
