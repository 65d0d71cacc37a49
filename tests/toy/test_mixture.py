"""Proofs for minidiff.toy.mixture: the Gaussian-mixture oracle's density, score, forward
marginals and exact denoiser."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.process import (
    eps_from_score,
    eps_from_v,
    eps_from_x0,
    q_sample,
    score_from_eps,
    standard_normal_cdf,
)
from minidiff.toy.mixture import GaussianMixture
from tests.strategies import gaussian_mixtures, rngs, schedule_and_t
from tests.tolerances import ATOL, ATOL_LOOSE, N_STANDARD_ERRORS, RTOL, RTOL_LOOSE

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_log_density(x, mean, cov):
    """log N(x; mean, cov) for x: (B, D), by slogdet and solve (independent of the module)."""
    _, log_det = np.linalg.slogdet(cov)
    diff = x - mean
    mahalanobis = np.sum(diff * np.linalg.solve(cov, diff.T).T, axis=1)
    return -0.5 * (x.shape[1] * LOG_2PI + log_det + mahalanobis)


def points_near(mixture, rng, n=16):
    """Points where the density is not negligible: mixture samples plus a wide spread."""
    return np.concatenate([mixture.sample(n, rng), rng.uniform(-3, 3, size=(n, mixture.D))])


def three_component_mixture():
    """A fixed 2-D mixture with unequal weights and full covariances."""
    covs = [[[0.09, 0.04], [0.04, 0.05]], [[0.01, 0.0], [0.0, 0.04]], [[0.2, -0.1], [-0.1, 0.1]]]
    return GaussianMixture([0.5, 0.2, 0.3], [[-1.0, -0.5], [1.0, -0.5], [0.0, 1.0]], covs)


# -- construction --------------------------------------------------------------------


@pytest.mark.parametrize(
    "weights, means, covs, match",
    [
        ([0.5, 0.6], [[0.0], [1.0]], [[[1.0]], [[1.0]]], "sum to 1"),
        ([1.5, -0.5], [[0.0], [1.0]], [[[1.0]], [[1.0]]], "positive"),
        ([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.0, 1.0]]], "symmetric"),
        ([1.0], [[0.0, 0.0]], [[[1.0, 2.0], [2.0, 1.0]]], "positive definite"),
        ([1.0], [[0.0, 0.0]], [[[1.0]]], "covs must have shape"),
        ([0.5, 0.5], [[0.0, 0.0]], [[[1.0]]], "means must have shape"),
        ([1.0], [[np.nan]], [[[1.0]]], "finite"),
    ],
)
def test_construction_rejects_invalid_mixtures(weights, means, covs, match):
    """Weights must be positive and sum to 1, covariances symmetric positive definite, and
    the shapes (K,), (K, D), (K, D, D) must agree: otherwise a ValueError says which."""
    with pytest.raises(ValueError, match=match):
        GaussianMixture(weights, means, covs)


def test_isotropic_mixture_has_scaled_identity_covariances():
    """GaussianMixture.isotropic(w, mu, std) has Sigma_k = std_k^2 I."""
    mixture = GaussianMixture.isotropic([0.25, 0.75], [[0.0, 1.0], [2.0, 3.0]], [0.5, 2.0])
    np.testing.assert_array_equal(mixture.covs, [0.25 * np.eye(2), 4.0 * np.eye(2)])


def test_methods_reject_points_of_the_wrong_dimension():
    """log_prob, score and the denoiser want x: (B, D) with the mixture's D."""
    mixture = three_component_mixture()
    for method in (mixture.log_prob, mixture.score, mixture.responsibilities):
        with pytest.raises(ValueError, match="shape"):
            method(np.zeros((4, 3)))


# -- density -------------------------------------------------------------------------


@given(gaussian_mixtures(min_K=1, max_K=1), rngs())
def test_log_prob_of_one_component_is_the_gaussian_log_density(mixture, rng):
    """K = 1: log p(x) = -(D log 2 pi + log det Sigma + (x - mu)^T Sigma^{-1} (x - mu)) / 2."""
    x = points_near(mixture, rng)
    expected = gaussian_log_density(x, mixture.means[0], mixture.covs[0])
    np.testing.assert_allclose(mixture.log_prob(x), expected, rtol=RTOL, atol=ATOL)


@given(gaussian_mixtures(), rngs())
def test_log_prob_equals_log_of_weighted_sum_of_densities(mixture, rng):
    """log p(x) = log sum_k w_k N(x; mu_k, Sigma_k), the sum computed directly (no logsumexp),
    at mixture samples (where the direct sum does not underflow)."""
    x = mixture.sample(32, rng)
    density = sum(
        w * np.exp(gaussian_log_density(x, mu, cov))
        for w, mu, cov in zip(mixture.weights, mixture.means, mixture.covs, strict=True)
    )
    np.testing.assert_allclose(mixture.log_prob(x), np.log(density), rtol=RTOL, atol=ATOL)


def test_log_prob_stays_finite_where_every_density_underflows():
    """Far from the data every w_k N(x; mu_k, Sigma_k) underflows to 0; the logsumexp form
    still returns the (finite) log density, which there equals the largest log w_k N_k."""
    mixture = three_component_mixture()
    x = np.array([[300.0, -200.0]])
    per_component = [
        math.log(w) + gaussian_log_density(x, mu, cov)[0]
        for w, mu, cov in zip(mixture.weights, mixture.means, mixture.covs, strict=True)
    ]
    np.testing.assert_allclose(mixture.log_prob(x), [max(per_component)], rtol=RTOL, atol=ATOL)


@given(gaussian_mixtures(min_D=1, max_D=1))
def test_density_integrates_to_one_in_one_dimension(mixture):
    """The integral of exp(log p) over the line is 1: the trapezoid rule on a grid of
    step 1e-3 over the means +- 12 standard deviations, exact to 1e-8 for these widths
    (std >= 0.1), since the trapezoid rule converges geometrically for smooth, fast
    decaying integrands."""
    std = np.sqrt(mixture.covs[:, 0, 0])
    low, high = (mixture.means[:, 0] - 12 * std).min(), (mixture.means[:, 0] + 12 * std).max()
    grid = np.arange(low, high, 1e-3)[:, None]
    total = np.trapezoid(np.exp(mixture.log_prob(grid)), grid[:, 0])
    assert abs(total - 1.0) < 1e-8


@given(gaussian_mixtures(min_D=2, max_D=2))
def test_responsibilities_are_a_probability_vector_per_point(mixture):
    """r_k(x) >= 0 and sum_k r_k(x) = 1 for every x."""
    x = np.random.default_rng(0).uniform(-4, 4, size=(32, 2))
    r = mixture.responsibilities(x)
    assert r.shape == (32, mixture.K) and np.all(r >= 0)
    np.testing.assert_allclose(r.sum(axis=1), 1.0, rtol=RTOL, atol=ATOL)


# -- score ---------------------------------------------------------------------------


@given(gaussian_mixtures(), rngs())
def test_score_equals_finite_difference_gradient_of_log_prob(mixture, rng):
    """score(x) = grad log p(x), checked by central differences with step h = 1e-5: the
    truncation error h^2 / 6 |d^3 log p| and the round-off 1e-16 |log p| / h stay below
    1e-5 (1 + |score|) for these mixtures (std >= 0.1, points within a few units)."""
    x = points_near(mixture, rng, n=8)
    h = 1e-5
    gradient = np.empty_like(x)
    for d in range(mixture.D):
        step = np.zeros(mixture.D)
        step[d] = h
        gradient[:, d] = (mixture.log_prob(x + step) - mixture.log_prob(x - step)) / (2 * h)
    score = mixture.score(x)
    assert np.all(np.abs(score - gradient) <= 1e-5 * (1.0 + np.abs(score)))


@given(gaussian_mixtures(min_K=1, max_K=1), rngs())
def test_score_of_one_component_is_linear(mixture, rng):
    """K = 1: grad log N(x; mu, Sigma) = -Sigma^{-1} (x - mu)."""
    x = points_near(mixture, rng)
    expected = -np.linalg.solve(mixture.covs[0], (x - mixture.means[0]).T).T
    np.testing.assert_allclose(mixture.score(x), expected, rtol=RTOL, atol=ATOL * 1e3)


# -- sampling and the forward process ------------------------------------------------


def assert_moments_match(samples, mean, cov):
    """Sample mean and covariance within N_STANDARD_ERRORS standard errors of (mean, cov):
    SE of a mean entry sqrt(Var x_i / n); of a covariance entry
    sqrt(Var[(x_i - m_i)(x_j - m_j)] / n)."""
    n = samples.shape[0]
    centred = samples - mean
    mean_se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(samples.mean(axis=0) - mean) <= N_STANDARD_ERRORS * mean_se)
    products = centred[:, :, None] * centred[:, None, :]  # (n, D, D)
    cov_se = products.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(products.mean(axis=0) - cov) <= N_STANDARD_ERRORS * cov_se)


def mixture_cdf_1d(mixture, points):
    """P(X <= x) of a 1-D mixture: sum_k w_k Phi((x - mu_k) / sigma_k)."""
    std = np.sqrt(mixture.covs[:, 0, 0])
    return standard_normal_cdf((points[:, None] - mixture.means[:, 0]) / std) @ mixture.weights


def assert_cdf_matches(samples, mixture, points):
    """The empirical CDF at each point within N_STANDARD_ERRORS binomial standard errors
    sqrt(F (1 - F) / n) of the exact mixture CDF F."""
    n = samples.shape[0]
    exact = mixture_cdf_1d(mixture, points)
    empirical = (samples[:, 0][:, None] <= points).mean(axis=0)
    se = np.sqrt(exact * (1 - exact) / n)
    assert np.all(np.abs(empirical - exact) <= N_STANDARD_ERRORS * se + 1.0 / n)


@pytest.mark.parametrize("seed", [0, 1])
def test_sample_has_the_mixture_mean_and_covariance(seed):
    """Samples of a 2-D mixture have mean sum_k w_k mu_k and covariance
    sum_k w_k (Sigma_k + mu_k mu_k^T) - mean mean^T, within 4 standard errors (n = 20000)."""
    mixture = three_component_mixture()
    samples = mixture.sample(20_000, np.random.default_rng(seed))
    assert samples.shape == (20_000, 2) and samples.dtype == np.float64
    assert_moments_match(samples, mixture.mean, mixture.covariance)


def test_sample_follows_the_mixture_cdf_in_one_dimension():
    """1-D mixture samples: the empirical CDF at 9 points is within 4 binomial standard
    errors of sum_k w_k Phi((x - mu_k) / sigma_k) (n = 20000)."""
    mixture = GaussianMixture([0.2, 0.5, 0.3], [[-2.0], [0.0], [1.5]], [[[0.04]], [[0.5]], [[0.1]]])
    samples = mixture.sample(20_000, np.random.default_rng(0))
    assert_cdf_matches(samples, mixture, np.linspace(-2.5, 2.5, 9))


@given(schedule_and_t(low=0, max_T=200), gaussian_mixtures())
def test_noised_mixture_has_the_closed_form_components_and_moments(schedule_t, mixture):
    """noised(schedule, t) = sum_k w_k N(sqrt(alpha_bar_t) mu_k, alpha_bar_t Sigma_k
    + (1 - alpha_bar_t) I), so its mean is sqrt(alpha_bar_t) E[x_0] and its covariance
    alpha_bar_t Cov[x_0] + (1 - alpha_bar_t) I."""
    schedule, t = schedule_t
    alpha_bar = schedule.alpha_bar[t]
    noised = mixture.noised(schedule, t)
    eye = np.eye(mixture.D)
    np.testing.assert_allclose(noised.weights, mixture.weights, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        noised.means, np.sqrt(alpha_bar) * mixture.means, rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(
        noised.covs, alpha_bar * mixture.covs + (1 - alpha_bar) * eye, rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(noised.mean, np.sqrt(alpha_bar) * mixture.mean, rtol=RTOL, atol=ATOL)
    expected_cov = alpha_bar * mixture.covariance + (1 - alpha_bar) * eye
    np.testing.assert_allclose(noised.covariance, expected_cov, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)


def test_noised_at_t_zero_is_the_mixture_itself():
    """alpha_bar_0 = 1: noised(schedule, 0) has the same components."""
    from minidiff.process import linear_schedule

    mixture = three_component_mixture()
    noised = mixture.noised(linear_schedule(10), 0)
    np.testing.assert_array_equal(noised.means, mixture.means)
    np.testing.assert_array_equal(noised.covs, mixture.covs)


@pytest.mark.parametrize("t", [1, 100, 300, 1000])
def test_noised_mixture_matches_monte_carlo_of_q_sample(t):
    """x_t = q_sample(x_0, eps) with x_0 from a 1-D mixture follows noised(schedule, t):
    the empirical CDF at 9 points is within 4 binomial standard errors (n = 20000)."""
    from minidiff.process import linear_schedule

    schedule = linear_schedule(1000)
    mixture = GaussianMixture([0.2, 0.5, 0.3], [[-2.0], [0.0], [1.5]], [[[0.04]], [[0.5]], [[0.1]]])
    rng = np.random.default_rng(t)
    x0 = mixture.sample(20_000, rng)
    xt = q_sample(schedule, x0, t, rng.standard_normal(x0.shape))
    assert_cdf_matches(xt, mixture.noised(schedule, t), np.linspace(-2.5, 2.5, 9))


@pytest.mark.parametrize("t", [1, 50, 200, 1000])
def test_noised_mixture_matches_q_sample_moments_in_two_dimensions(t):
    """The same in 2-D by moments: q_sample of mixture samples has the mean and covariance
    of noised(schedule, t) within 4 standard errors (n = 20000)."""
    from minidiff.process import linear_schedule

    schedule = linear_schedule(1000)
    mixture = three_component_mixture()
    rng = np.random.default_rng(t)
    x0 = mixture.sample(20_000, rng)
    xt = q_sample(schedule, x0, t, rng.standard_normal(x0.shape))
    noised = mixture.noised(schedule, t)
    assert_moments_match(xt, noised.mean, noised.covariance)


# -- the exact denoiser --------------------------------------------------------------


@given(schedule_and_t(max_T=200), gaussian_mixtures(min_K=1, max_K=1), rngs())
def test_denoiser_of_one_gaussian_is_linear_in_xt(schedule_t, mixture, rng):
    """K = 1, with a = sqrt(alpha_bar_t), s = sqrt(1 - alpha_bar_t), S = a^2 Sigma + s^2 I:
    E[x_0 | x_t] = mu + a Sigma S^{-1} (x_t - a mu) and E[eps | x_t] = s S^{-1} (x_t - a mu),
    the Gaussian conditioning formulas."""
    schedule, t = schedule_t
    a, s = schedule.sqrt_alpha_bar[t], schedule.sqrt_one_minus_alpha_bar[t]
    mu, sigma = mixture.means[0], mixture.covs[0]
    xt = a * points_near(mixture, rng) + s * rng.standard_normal((32, mixture.D))
    S = a**2 * sigma + s**2 * np.eye(mixture.D)
    solved = np.linalg.solve(S, (xt - a * mu).T).T
    x0 = mixture.denoiser(schedule, "x0")(xt, t)
    eps = mixture.denoiser(schedule, "eps")(xt, t)
    np.testing.assert_allclose(x0, mu + a * solved @ sigma, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)
    # eps = (x_t - a x0) / s: the round-off of x0 is multiplied by a / s
    np.testing.assert_allclose(eps, s * solved, rtol=RTOL_LOOSE, atol=ATOL_LOOSE * (1 + a / s))


@given(schedule_and_t(max_T=200), gaussian_mixtures(), rngs())
def test_tweedie_noised_score_equals_score_from_eps_denoiser(schedule_t, mixture, rng):
    """Tweedie: grad log q_t(x_t) = -E[eps | x_t] / sqrt(1 - alpha_bar_t), the score of the
    noised mixture against score_from_eps of the exact eps denoiser. An exact identity;
    round-off: eps = (x_t - a E[x_0 | x_t]) / s loses |x_t| 1e-16 / s, so the score
    |x_t| 1e-16 / s^2, which the absolute tolerance allows."""
    schedule, t = schedule_t
    a, s = schedule.sqrt_alpha_bar[t], schedule.sqrt_one_minus_alpha_bar[t]
    xt = a * points_near(mixture, rng) + s * rng.standard_normal((32, mixture.D))
    eps = mixture.denoiser(schedule, "eps")(xt, t)
    expected = mixture.noised(schedule, t).score(xt)
    atol = ATOL_LOOSE * (1 + np.abs(xt).max()) / s**2
    np.testing.assert_allclose(
        score_from_eps(schedule, xt, t, eps), expected, rtol=RTOL_LOOSE, atol=atol
    )


@given(schedule_and_t(max_T=200), gaussian_mixtures(), rngs())
def test_parameterizations_agree_through_the_conversions(schedule_t, mixture, rng):
    """The x0, v and score denoisers, converted to eps by eps_from_x0, eps_from_v and
    eps_from_score, give the eps denoiser (to round-off of the size of |x_t|)."""
    schedule, t = schedule_t
    a, s = schedule.sqrt_alpha_bar[t], schedule.sqrt_one_minus_alpha_bar[t]
    xt = a * points_near(mixture, rng) + s * rng.standard_normal((32, mixture.D))
    eps = mixture.denoiser(schedule, "eps")(xt, t)
    atol = ATOL_LOOSE * (1 + np.abs(xt).max()) * (1 + a / s)
    for parameterization, to_eps in (
        ("x0", eps_from_x0),
        ("v", eps_from_v),
        ("score", eps_from_score),
    ):
        prediction = mixture.denoiser(schedule, parameterization)(xt, t)
        np.testing.assert_allclose(
            to_eps(schedule, xt, t, prediction), eps, rtol=RTOL_LOOSE, atol=atol
        )


@given(schedule_and_t(max_T=100), gaussian_mixtures(max_D=2), st.data())
def test_denoiser_accepts_an_array_of_differing_steps(schedule_t, mixture, data):
    """denoiser(x_t, t) with t: (B,) of differing values equals, row by row, the calls with
    each row's scalar t."""
    schedule, _ = schedule_t
    B = 6
    t = np.array(data.draw(st.lists(st.integers(1, schedule.T), min_size=B, max_size=B)))
    xt = np.random.default_rng(0).standard_normal((B, mixture.D))
    denoiser = mixture.denoiser(schedule, "eps")
    batched = denoiser(xt, t)
    rows = np.concatenate([denoiser(xt[i : i + 1], int(t[i])) for i in range(B)])
    np.testing.assert_allclose(batched, rows, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("t", [5, 100, 400])
def test_posterior_mean_residual_is_orthogonal_to_functions_of_xt(t):
    """E[x_0 | x_t] is the conditional mean: the residual x_0 - E[x_0 | x_t] has mean 0 and
    is uncorrelated with x_t and with tanh(x_t), each average within 4 standard errors
    (n = 20000 joint draws of (x_0, x_t))."""
    from minidiff.process import linear_schedule

    schedule = linear_schedule(1000)
    mixture = three_component_mixture()
    rng = np.random.default_rng(t)
    x0 = mixture.sample(20_000, rng)
    xt = q_sample(schedule, x0, t, rng.standard_normal(x0.shape))
    residual = x0 - mixture.posterior_mean_x0(schedule, xt, t)
    for g in (np.ones_like(xt[:, :1]), xt, np.tanh(xt)):
        products = (residual[:, :, None] * g[:, None, :]).reshape(len(xt), -1)
        se = products.std(axis=0) / np.sqrt(len(xt))
        assert np.all(np.abs(products.mean(axis=0)) <= N_STANDARD_ERRORS * se)


def test_denoiser_rejects_unknown_parameterization_and_bad_steps():
    """An unknown parameterization and t outside 1..T raise ValueError."""
    from minidiff.process import linear_schedule

    schedule = linear_schedule(10)
    mixture = three_component_mixture()
    with pytest.raises(ValueError, match="parameterization"):
        mixture.denoiser(schedule, "mu")
    with pytest.raises(ValueError, match="out of range"):
        mixture.denoiser(schedule)(np.zeros((2, 2)), 0)
    with pytest.raises(ValueError, match="out of range"):
        mixture.denoiser(schedule)(np.zeros((2, 2)), 11)
