"""Langevin, MALA and annealed Langevin on Gaussians and Gaussian mixtures.

The ground truth is exact: a Gaussian target makes unadjusted Langevin an AR(1) chain
whose law is known in closed form; for a 1-D mixture the sampler's law after n steps is
computed by running its transition kernel on a fine grid (a finite Markov chain: row i
is the Gaussian N(x_i + h score(x_i), 2h) at the grid points, normalised). The grid is
fine enough that this quadrature is exact to far below the Monte Carlo error (halving
the spacing changes the expectations used here by less than 1e-8).
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.markov import (
    annealed_langevin,
    annealed_step_sizes,
    langevin_step,
    mala,
    stationary_distribution,
    unadjusted_langevin,
)
from tests.tolerances import N_STANDARD_ERRORS, RTOL


def _mixture(weights, means, stds, sigma=0.0):
    """log density and score of sum_k w_k N(mu_k, (s_k^2 + sigma^2) I), for x: (B, D)."""
    weights = np.asarray(weights, dtype=float)
    means = np.asarray(means, dtype=float).reshape(weights.shape[0], -1)  # (K, D)
    var = (np.asarray(stds, dtype=float) ** 2 + sigma**2)[:, None]  # (K, 1)
    log_norm = np.log(weights)[:, None] - 0.5 * means.shape[1] * np.log(2 * np.pi * var)

    def log_terms(x):  # (K, B): log w_k N(x; mu_k, var_k I); components first for fast sums
        squared_distance = sum((x[:, d] - means[:, d : d + 1]) ** 2 for d in range(x.shape[1]))
        return log_norm - squared_distance / (2 * var)

    def log_density(x):
        terms = log_terms(x)
        top = terms.max(axis=0)
        return top + np.log(np.exp(terms - top).sum(axis=0))

    def score(x):  # sum_k r_k(x) (mu_k - x) / var_k with responsibilities r_k
        terms = log_terms(x)
        r = np.exp(terms - terms.max(axis=0))
        r = r / r.sum(axis=0) / var
        return (means.T @ r).T - x * r.sum(axis=0)[:, None]

    return log_density, score


def _normal_cdf(z):
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _grid_kernel(score, h, grid):
    """The unadjusted Langevin kernel x -> N(x + h score(x), 2h) as a chain on the grid."""
    mean = grid + h * score(grid[:, None])[:, 0]
    log_kernel = -((grid[None, :] - mean[:, None]) ** 2) / (4 * h)
    kernel = np.exp(log_kernel - log_kernel.max(axis=1, keepdims=True))
    return kernel / kernel.sum(axis=1, keepdims=True)


def _grid_normal(grid, mean, var):
    p = np.exp(-((grid - mean) ** 2) / (2 * var))
    return p / p.sum()


def _positive_side(grid):
    """Weights of the trapezoid rule for Pr(x > 0) (half the mass of the point 0)."""
    return np.where(grid > 0, 1.0, np.where(grid == 0, 0.5, 0.0))


def _assert_mean_within_standard_errors(samples, expected):
    """|mean(samples) - expected| <= N_STANDARD_ERRORS * std(samples) / sqrt(B), per column."""
    standard_error = samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])
    assert np.all(np.abs(samples.mean(axis=0) - expected) <= N_STANDARD_ERRORS * standard_error)


# Target of the Gaussian tests: N(MU, S^2 I) in 2-D, and a step h = 0.2 S^2 large enough
# that the bias of unadjusted Langevin (a variance S^2 / 0.9) is far outside the errors.
MU, S = np.array([1.0, -2.0]), 0.8
H = 0.2 * S**2


def _gaussian_target():
    return _mixture([1.0], [MU], [S])


def test_langevin_on_a_gaussian_is_an_ar1_chain_with_a_biased_stationary_law():
    """ULA on N(mu, s^2) is x_n = a x_{n-1} + (1 - a) mu + sqrt(2h) z with a = 1 - h / s^2,
    so from N(m0, v0) its law after n steps is N(mu + a^n (m0 - mu), a^{2n} v0 +
    2h (1 - a^{2n}) / (1 - a^2)), tending to N(mu, s^2 / (1 - h / (2 s^2))): an O(h) bias.

    Sample mean and variance of B chains match this law within 4 standard errors
    (sqrt(var / B) and var sqrt(2 / (B - 1)) for Gaussian draws), and the target variance
    s^2 is rejected by more than 4 standard errors.
    """
    rng = np.random.default_rng(11)
    B, n, v0 = 10_000, 60, 9.0
    _, score = _gaussian_target()
    x = unadjusted_langevin(score, np.sqrt(v0) * rng.standard_normal((B, 2)), H, n, rng)
    a = 1.0 - H / S**2
    mean = MU + a**n * (0.0 - MU)
    var = a ** (2 * n) * v0 + 2 * H * (1 - a ** (2 * n)) / (1 - a**2)
    np.testing.assert_allclose(2 * H / (1 - a**2), S**2 / (1 - H / (2 * S**2)), rtol=RTOL)
    var_standard_error = var * np.sqrt(2 / (B - 1))
    assert np.all(np.abs(x.mean(axis=0) - mean) <= N_STANDARD_ERRORS * np.sqrt(var / B))
    assert np.all(np.abs(x.var(axis=0, ddof=1) - var) <= N_STANDARD_ERRORS * var_standard_error)
    assert np.all(x.var(axis=0, ddof=1) - S**2 > N_STANDARD_ERRORS * var_standard_error)


def test_mala_on_a_gaussian_is_unbiased_at_a_step_where_langevin_is_not():
    """MALA with the same step h = 0.2 s^2 samples N(mu, s^2) itself: after 200 steps
    from N(0, 9 I), mean and variance lie within 4 standard errors of mu and s^2."""
    rng = np.random.default_rng(12)
    B = 10_000
    log_density, score = _gaussian_target()
    x, acceptance_rate = mala(log_density, score, 3.0 * rng.standard_normal((B, 2)), H, 200, rng)
    assert acceptance_rate.shape == (B,) and 0.0 < acceptance_rate.mean() < 1.0
    assert np.all(np.abs(x.mean(axis=0) - MU) <= N_STANDARD_ERRORS * S / np.sqrt(B))
    var_standard_error = S**2 * np.sqrt(2 / (B - 1))
    assert np.all(np.abs(x.var(axis=0, ddof=1) - S**2) <= N_STANDARD_ERRORS * var_standard_error)


# A 2-D mixture of two overlapping components, for MALA.
WEIGHTS_2D, MEANS_2D, STDS_2D = [0.35, 0.65], np.array([[-1.5, 0.0], [1.5, 0.5]]), [0.7, 0.8]


def test_mala_samples_a_2d_gaussian_mixture():
    """MALA from a wide start (N(0, 9 I), 500 steps, far past the few hundred its chains
    need to forget the start) reproduces E[x], E[x^2] per coordinate and the weight
    Pr(x_1 > 0) = sum_k w_k Phi(mu_k1 / s_k), each within 4 standard errors estimated
    from the samples."""
    rng = np.random.default_rng(13)
    B = 10_000
    log_density, score = _mixture(WEIGHTS_2D, MEANS_2D, STDS_2D)
    x, acceptance_rate = mala(log_density, score, 3.0 * rng.standard_normal((B, 2)), 0.3, 500, rng)
    w, s = np.array(WEIGHTS_2D), np.array(STDS_2D)
    second_moment = w @ (MEANS_2D**2 + s[:, None] ** 2)
    positive = sum(wk * _normal_cdf(m[0] / sk) for wk, m, sk in zip(w, MEANS_2D, s, strict=True))
    statistics = np.column_stack([x, x**2, x[:, 0] > 0])
    _assert_mean_within_standard_errors(
        statistics, np.concatenate([w @ MEANS_2D, second_moment, [positive]])
    )
    assert 0.5 < acceptance_rate.mean() < 1.0


# A 1-D mixture for unadjusted Langevin, with its grid: [-6, 7] in steps of 0.05, so the
# kernel's standard deviation sqrt(2h) >= 0.3 spans six grid steps.
WEIGHTS_1D, MEANS_1D, STDS_1D = [0.3, 0.7], [-1.0, 1.5], [0.6, 0.8]
GRID_1D = np.linspace(-6.0, 7.0, 261)


def _ula_statistics(p, grid):
    return np.array([p @ grid, p @ grid**2, p @ _positive_side(grid)])


def test_langevin_samples_its_exact_law_on_a_1d_mixture():
    """ULA (h = 0.05, 400 steps from N(0, 1)) on a 1-D mixture: sample E[x], E[x^2] and
    Pr(x > 0) match the sampler's exact law after 400 steps (the grid chain) within 4
    standard errors estimated from the samples."""
    rng = np.random.default_rng(14)
    B, h, n = 20_000, 0.05, 400
    _, score = _mixture(WEIGHTS_1D, MEANS_1D, STDS_1D)
    x = unadjusted_langevin(score, rng.standard_normal((B, 1)), h, n, rng)
    p = _grid_normal(GRID_1D, 0.0, 1.0)
    kernel = _grid_kernel(score, h, GRID_1D)
    for _ in range(n):
        p = p @ kernel
    statistics = np.column_stack([x[:, 0], x[:, 0] ** 2, x[:, 0] > 0])
    _assert_mean_within_standard_errors(statistics, _ula_statistics(p, GRID_1D))


def test_langevin_bias_on_a_1d_mixture_is_first_order_in_the_step():
    """The stationary law pi_h of ULA differs from the mixture by O(h): halving h (0.1 ->
    0.05) halves the error of E[x^2] and Pr(x > 0) under pi_h (ratio in [1.5, 2.5]), and
    the error is below h. pi_h is the stationary law of the grid chain."""
    _, score = _mixture(WEIGHTS_1D, MEANS_1D, STDS_1D)
    w, m, s = (np.array(a) for a in (WEIGHTS_1D, MEANS_1D, STDS_1D))
    target = np.array(
        [
            w @ m,
            w @ (m**2 + s**2),
            sum(w * [_normal_cdf(mk / sk) for mk, sk in zip(m, s, strict=True)]),
        ]
    )
    errors = [
        _ula_statistics(stationary_distribution(_grid_kernel(score, h, GRID_1D)), GRID_1D) - target
        for h in (0.1, 0.05)
    ]
    ratio = errors[0][1:] / errors[1][1:]
    assert np.all((1.5 <= ratio) & (ratio <= 2.5))
    assert np.all(np.abs(errors[1]) < 0.05)


# Annealed Langevin on two well-separated modes (+-3, std 0.5): a barrier that plain
# Langevin at the small noise level cannot cross in the time given.
WEIGHTS_SEP, MEANS_SEP, STDS_SEP = [0.25, 0.75], [-3.0, 3.0], [0.5, 0.5]
SIGMAS = np.geomspace(5.0, 0.5, 8)
EPS, N_STEPS_EACH = 0.05, 50
GRID_SEP = np.arange(-25.5, 25.5 + 0.025, 0.05)  # +-4.5 sigma_1, kernel std >= 4 steps


def _annealed_grid_law(levels):
    """The exact law of annealed Langevin on GRID_SEP, started from N(0, sigma_1^2)."""
    p = _grid_normal(GRID_SEP, 0.0, SIGMAS[0] ** 2)
    for sigma, alpha, n_steps in levels:
        kernel = _grid_kernel(
            _mixture(WEIGHTS_SEP, MEANS_SEP, STDS_SEP, sigma)[1], alpha / 2, GRID_SEP
        )
        for _ in range(n_steps):
            p = p @ kernel
    return p


def test_annealed_langevin_recovers_the_mode_weights():
    """Annealed Langevin (Song & Ermon 2019, Alg. 1; 8 levels from sigma = 5 to 0.5, 50
    steps each) puts weight within 0.03 of w = 0.75 on the right mode, where plain
    Langevin at sigma_L with as many steps stays more than 0.2 away (it keeps the split of
    its start). The sampled fraction on x > 0 matches the sampler's exact law (the grid
    chain) within 4 binomial standard errors sqrt(p (1 - p) / B)."""
    rng = np.random.default_rng(15)
    B = 20_000
    alphas = annealed_step_sizes(SIGMAS, EPS)
    annealed = _annealed_grid_law(zip(SIGMAS, alphas, [N_STEPS_EACH] * len(SIGMAS), strict=True))
    plain = _annealed_grid_law([(SIGMAS[-1], alphas[-1], N_STEPS_EACH * len(SIGMAS))])
    weight, plain_weight = annealed @ _positive_side(GRID_SEP), plain @ _positive_side(GRID_SEP)
    assert abs(weight - WEIGHTS_SEP[1]) < 0.03
    assert abs(plain_weight - WEIGHTS_SEP[1]) > 0.2

    def score(x, sigma):
        return _mixture(WEIGHTS_SEP, MEANS_SEP, STDS_SEP, sigma)[1](x)

    x = annealed_langevin(
        score, SIGMAS[0] * rng.standard_normal((B, 1)), SIGMAS, EPS, N_STEPS_EACH, rng
    )
    fraction = np.mean(x[:, 0] > 0)
    assert abs(fraction - weight) <= N_STANDARD_ERRORS * np.sqrt(weight * (1 - weight) / B)


@given(
    st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=20, unique=True).map(sorted),
    st.floats(1e-6, 1.0),
)
def test_annealed_step_sizes_scale_with_the_noise_variance(sigmas_ascending, eps):
    """alpha_i = eps sigma_i^2 / sigma_L^2: alpha_L = eps and alpha_i / sigma_i^2 is constant."""
    sigmas = np.array(sigmas_ascending[::-1])
    alphas = annealed_step_sizes(sigmas, eps)
    np.testing.assert_allclose(alphas[-1], eps, rtol=RTOL)
    np.testing.assert_allclose(alphas / sigmas**2, eps / sigmas[-1] ** 2, rtol=RTOL)


def test_one_level_of_annealed_langevin_is_langevin_with_half_the_step():
    """Algorithm 1's x + alpha/2 score + sqrt(alpha) z is ULA with h = alpha / 2: with
    the same seed both give the same states."""
    _, score = _gaussian_target()
    x0 = np.random.default_rng(0).standard_normal((5, 2))
    annealed = annealed_langevin(
        lambda x, sigma: score(x), x0, [0.7], 0.1, 9, np.random.default_rng(1)
    )
    plain = unadjusted_langevin(score, x0, 0.05, 9, np.random.default_rng(1))
    np.testing.assert_allclose(annealed, plain, rtol=RTOL, atol=0)


def test_progress_bar_leaves_the_samples_unchanged():
    """With the same seed, progress=True (a tqdm bar) gives the same states as without."""
    log_density, score = _gaussian_target()
    x0 = np.zeros((3, 2))
    for run in (
        lambda rng, progress: unadjusted_langevin(score, x0, 0.1, 5, rng, progress=progress),
        lambda rng, progress: mala(log_density, score, x0, 0.1, 5, rng, progress=progress)[0],
        lambda rng, progress: annealed_langevin(
            lambda x, sigma: score(x), x0, [2.0, 1.0], 0.1, 3, rng, progress=progress
        ),
    ):
        quiet, shown = run(np.random.default_rng(2), False), run(np.random.default_rng(2), True)
        np.testing.assert_array_equal(quiet, shown)


def test_langevin_step_is_drift_plus_scaled_gaussian_noise():
    """One step is x + h score(x) + sqrt(2h) z, with z the generator's next normals."""
    _, score = _gaussian_target()
    x = np.random.default_rng(0).standard_normal((4, 2))
    z = np.random.default_rng(5).standard_normal((4, 2))
    expected = x + 0.3 * score(x) + np.sqrt(0.6) * z
    np.testing.assert_allclose(
        langevin_step(score, x, 0.3, np.random.default_rng(5)), expected, rtol=RTOL, atol=0
    )


def test_bad_inputs_raise_errors_that_name_the_argument():
    """Bad step sizes, shapes, noise levels and callables are rejected with clear messages."""
    log_density, score = _gaussian_target()
    x, rng = np.zeros((3, 2)), np.random.default_rng(0)
    with pytest.raises(ValueError, match="step must be a finite number > 0, got 0.0"):
        unadjusted_langevin(score, x, 0.0, 10, rng)
    with pytest.raises(ValueError, match=r"x must have shape \(B, D\)"):
        unadjusted_langevin(score, np.zeros(3), 0.1, 10, rng)
    with pytest.raises(ValueError, match="score must return an array shaped like x"):
        unadjusted_langevin(lambda x: x[:, :1], x, 0.1, 10, rng)
    with pytest.raises(ValueError, match=r"log_density must return shape \(B,\)"):
        mala(lambda x: x, score, x, 0.1, 10, rng)
    with pytest.raises(ValueError, match=r"sigmas\[1\] = 2.0 <= sigmas\[2\] = 3.0"):
        annealed_step_sizes([4.0, 2.0, 3.0], 0.1)
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        annealed_step_sizes([2.0, 1.0], -1.0)
    with pytest.raises(ValueError, match="n_steps_each must be an integer >= 1, got 0"):
        annealed_langevin(lambda x, s: score(x), x, [2.0, 1.0], 0.1, 0, rng)
    with pytest.raises(TypeError, match="n_steps must be an integer"):
        unadjusted_langevin(score, x, 0.1, 2.5, rng)
