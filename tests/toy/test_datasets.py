"""Proofs for minidiff.toy.datasets: the 2-D toy datasets, their unit scale and the exact
law of the 8 Gaussians."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.toy.datasets import DATASETS, DEFAULT_NOISE, eight_gaussians_mixture, make_dataset
from tests.tolerances import ATOL, N_STANDARD_ERRORS, RTOL


@pytest.mark.parametrize("name", DATASETS)
@given(n=st.integers(1, 50), seed=st.integers(0, 2**32 - 1))
def test_dataset_has_shape_n_by_2_float64(name, n, seed):
    """make_dataset(name, n, rng) is a finite (n, 2) float64 array."""
    x = make_dataset(name, n, np.random.default_rng(seed))
    assert x.shape == (n, 2) and x.dtype == np.float64 and np.all(np.isfinite(x))


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_is_a_function_of_the_seed(name):
    """The same seed gives the same points; two different seeds give different points."""
    first = make_dataset(name, 100, np.random.default_rng(3))
    again = make_dataset(name, 100, np.random.default_rng(3))
    other = make_dataset(name, 100, np.random.default_rng(4))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("name", DATASETS)
def test_noise_free_dataset_has_mean_zero_and_unit_mean_square(name):
    """Without noise every dataset has E[x] = 0 and E|x|^2 / 2 = 1 by construction (the
    constants are computed from the shape, not from a sample): the sample mean of each
    coordinate and of |x|^2 / 2 lie within 4 standard errors of 0 and 1 (n = 40000)."""
    x = make_dataset(name, 40_000, np.random.default_rng(0), noise=0.0)
    n = len(x)
    mean_se = x.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(x.mean(axis=0)) <= N_STANDARD_ERRORS * mean_se)
    half_square = (x**2).sum(axis=1) / 2
    assert abs(half_square.mean() - 1.0) <= N_STANDARD_ERRORS * half_square.std() / np.sqrt(n)


@pytest.mark.parametrize("name", [name for name in DATASETS if name != "pinwheel"])
def test_noise_adds_its_variance_to_the_mean_square(name):
    """Isotropic noise N(0, noise^2 I) in output units makes E|x|^2 / 2 = 1 + noise^2,
    within 4 standard errors (n = 40000, noise = 0.3)."""
    x = make_dataset(name, 40_000, np.random.default_rng(1), noise=0.3)
    half_square = (x**2).sum(axis=1) / 2
    se = half_square.std() / np.sqrt(len(x))
    assert abs(half_square.mean() - (1.0 + 0.3**2)) <= N_STANDARD_ERRORS * se


def test_pinwheel_noise_is_across_the_arms():
    """The pinwheel's noise is tangential (one direction): E|x|^2 / 2 = 1 + noise^2 / 2,
    within 4 standard errors (n = 40000, noise = 0.3)."""
    x = make_dataset("pinwheel", 40_000, np.random.default_rng(2), noise=0.3)
    half_square = (x**2).sum(axis=1) / 2
    se = half_square.std() / np.sqrt(len(x))
    assert abs(half_square.mean() - (1.0 + 0.3**2 / 2)) <= N_STANDARD_ERRORS * se


def test_eight_gaussians_dataset_follows_its_exact_mixture():
    """make_dataset("8gaussians") follows eight_gaussians_mixture(): the same mean and
    covariance (within 4 standard errors, n = 40000) and a log density under the mixture
    whose sample mean matches that of exact mixture samples (within 4 standard errors of
    the difference)."""
    mixture = eight_gaussians_mixture()
    x = make_dataset("8gaussians", 40_000, np.random.default_rng(5))
    n = len(x)
    assert np.all(
        np.abs(x.mean(axis=0) - mixture.mean) <= N_STANDARD_ERRORS * x.std(axis=0) / np.sqrt(n)
    )
    expected_cov = (1.0 + DEFAULT_NOISE["8gaussians"] ** 2) * np.eye(2)
    np.testing.assert_allclose(mixture.covariance, expected_cov, rtol=RTOL, atol=ATOL)
    log_p = mixture.log_prob(x)
    reference = mixture.log_prob(mixture.sample(n, np.random.default_rng(6)))
    se = np.sqrt(log_p.var() / n + reference.var() / n)
    assert abs(log_p.mean() - reference.mean()) <= N_STANDARD_ERRORS * se


def test_eight_gaussians_mixture_uses_the_given_noise():
    """eight_gaussians_mixture(noise) has 8 equal weights, centres at radius sqrt(2) and
    covariances noise^2 I; a non-positive noise is rejected."""
    mixture = eight_gaussians_mixture(0.25)
    np.testing.assert_allclose(mixture.weights, np.full(8, 1 / 8))
    np.testing.assert_allclose(np.linalg.norm(mixture.means, axis=1), np.sqrt(2.0))
    np.testing.assert_allclose(mixture.covs, np.broadcast_to(0.0625 * np.eye(2), (8, 2, 2)))
    with pytest.raises(ValueError, match="noise"):
        eight_gaussians_mixture(0.0)


def test_unknown_dataset_is_rejected_with_the_list_of_names():
    """An unknown name raises ValueError listing DATASETS."""
    with pytest.raises(ValueError, match="swissroll") as info:
        make_dataset("spiral", 10, np.random.default_rng(0))
    assert all(name in str(info.value) for name in DATASETS)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n": 0}, ValueError, "n must be"),
        ({"n": 2.5}, ValueError, "n must be"),
        ({"noise": -0.1}, ValueError, "noise"),
        ({"noise": float("nan")}, ValueError, "noise"),
        ({"rng": 0}, TypeError, "rng"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, error, match):
    """n must be a positive integer, noise finite and >= 0, rng a numpy Generator."""
    arguments = {"name": "moons", "n": 10, "rng": np.random.default_rng(0)} | kwargs
    with pytest.raises(error, match=match):
        make_dataset(**arguments)
