"""The Gaussian chain x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps and its marginals."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.markov import (
    gaussian_chain_marginals,
    gaussian_chain_step,
    gaussian_chain_step_mean_var,
    sample_gaussian_chain,
)
from minidiff.process import Schedule, q_mean_var
from tests.strategies import arrays, paper_betas, random_betas
from tests.tolerances import ATOL, ATOL_LOOSE, N_STANDARD_ERRORS, RTOL, RTOL_LOOSE

variances = arrays(shape=(3, 2), scale=4.0).map(np.abs)


@given(paper_betas(), arrays(shape=(3, 2)), variances)
def test_closed_form_marginals_equal_the_composition_of_steps(beta, m0, v0):
    """Pushing N(m0, v0) through t steps gives mean sqrt(alpha_bar_t) m0 and variance
    alpha_bar_t v0 + 1 - alpha_bar_t, at every t, for any betas in [0, 1]."""
    mean, var = gaussian_chain_marginals(beta, m0, v0)
    step_means, step_vars = [m0], [v0]
    for t in range(1, beta.shape[0]):
        step_mean, step_var = gaussian_chain_step_mean_var(step_means[-1], step_vars[-1], beta[t])
        step_means.append(step_mean)
        step_vars.append(step_var)
    np.testing.assert_allclose(mean, step_means, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)
    np.testing.assert_allclose(var, step_vars, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)
    np.testing.assert_array_equal(mean[0], m0)
    np.testing.assert_array_equal(var[0], v0)


@given(paper_betas(), arrays(shape=(4,)), st.data())
def test_unrolled_chain_is_signal_plus_noise_of_variance_one_minus_alpha_bar(beta, x0, data):
    """With fixed noises, x_t = sqrt(alpha_bar_t) x_0 + sum_s w_s eps_s, where the weights
    w_s = sqrt(alpha_bar_t / alpha_bar_s) sqrt(beta_s) satisfy sum_s w_s^2 = 1 - alpha_bar_t."""
    T = beta.shape[0] - 1
    eps = data.draw(arrays(shape=(T + 1, 4)))
    alpha = 1.0 - beta
    signal = np.sqrt(np.cumprod(alpha))  # sqrt(alpha_bar_t)
    _, noise_var = gaussian_chain_marginals(beta, 0.0)  # 1 - alpha_bar_t
    x, weights = x0, np.zeros(T + 1)  # weights[s]: coefficient of eps_s in x_t
    unrolled, squared_weights, chain = [x0], [0.0], [x0]
    for t in range(1, T + 1):
        x = gaussian_chain_step(x, beta[t], eps[t])
        weights = np.sqrt(alpha[t]) * weights
        weights[t] = np.sqrt(beta[t])
        chain.append(x)
        unrolled.append(signal[t] * x0 + weights @ eps)
        squared_weights.append(np.sum(weights**2))
    np.testing.assert_allclose(chain, unrolled, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)
    np.testing.assert_allclose(squared_weights, noise_var, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)


@given(paper_betas())
def test_standard_normal_is_invariant(beta):
    """N(0, 1) is the stationary law: started there, every x_t is N(0, 1)."""
    mean, var = gaussian_chain_marginals(beta, 0.0, 1.0)
    np.testing.assert_array_equal(mean, 0.0)
    np.testing.assert_allclose(var, 1.0, rtol=RTOL, atol=ATOL)


@given(random_betas(max_T=300), arrays(shape=(5, 2)))
def test_point_start_marginals_equal_the_forward_process_q(betas, x0):
    """From a point x_0 (v0 = 0) the chain's marginal is q(x_t | x_0) of Ho et al. (2020),
    eq. 4, as computed by layer 1 (`minidiff.process.q_mean_var`)."""
    schedule = Schedule.from_betas(betas)
    mean, var = gaussian_chain_marginals(schedule.beta, x0)  # (T + 1, 5, 2)
    t = np.arange(schedule.T + 1)
    q_mean, q_var = q_mean_var(schedule, np.broadcast_to(x0, mean.shape), t)  # a batch over t
    np.testing.assert_allclose(mean, q_mean, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(np.broadcast_to(var, mean.shape), q_var, rtol=RTOL, atol=ATOL)


@given(st.floats(1e-3, 2.0), st.integers(1, 50), st.floats(-3, 3), st.floats(0, 4))
def test_constant_beta_chain_is_the_ornstein_uhlenbeck_process_sampled_every_h(h, T, m0, v0):
    """With beta_t = 1 - exp(-h), x_t has the law of the OU process dx = -x/2 ds + dW at
    time s = t h: mean exp(-s/2) m0 and variance exp(-s) v0 + 1 - exp(-s)."""
    beta = np.concatenate([[0.0], np.full(T, -np.expm1(-h))])
    mean, var = gaussian_chain_marginals(beta, m0, v0)
    s = h * np.arange(T + 1)
    np.testing.assert_allclose(mean, np.exp(-s / 2) * m0, rtol=RTOL_LOOSE, atol=ATOL)
    np.testing.assert_allclose(var, np.exp(-s) * v0 - np.expm1(-s), rtol=RTOL_LOOSE, atol=ATOL)


def test_simulated_paths_have_the_closed_form_marginals():
    """Mean and variance of B simulated paths match the closed form at every t within 4
    standard errors: sqrt(var_t / B) for the mean, var_t sqrt(2 / (B - 1)) for the sample
    variance of Gaussian draws."""
    rng = np.random.default_rng(7)
    B, T = 20_000, 12
    beta = np.concatenate([[0.0], rng.uniform(0.01, 0.4, size=T)])
    m0, v0 = np.array([2.0, -1.0]), np.array([0.25, 3.0])
    x0 = m0 + np.sqrt(v0) * rng.standard_normal((B, 2))
    path = sample_gaussian_chain(beta, x0, rng)
    assert path.shape == (T + 1, B, 2)
    np.testing.assert_array_equal(path[0], x0)
    mean, var = gaussian_chain_marginals(beta, m0, v0)
    mean_error = np.abs(path.mean(axis=1) - mean)
    var_error = np.abs(path.var(axis=1, ddof=1) - var)
    assert np.all(mean_error <= N_STANDARD_ERRORS * np.sqrt(var / B))
    assert np.all(var_error <= N_STANDARD_ERRORS * var * np.sqrt(2 / (B - 1)))


def test_bad_inputs_raise_errors_that_name_the_argument():
    """Betas not in paper indexing or outside [0, 1], negative variances, mismatched noise."""
    with pytest.raises(ValueError, match=r"beta\[0\] must be 0"):
        gaussian_chain_marginals([0.5, 0.5], 0.0)
    with pytest.raises(ValueError, match=r"beta\[1\] = -0.1 is invalid"):
        gaussian_chain_marginals([0.0, -0.1], 0.0)
    with pytest.raises(ValueError, match="v0 must be >= 0"):
        gaussian_chain_marginals([0.0, 0.1], 0.0, -1.0)
    with pytest.raises(ValueError, match="eps must have the shape of x_prev"):
        gaussian_chain_step(np.zeros((2, 3)), 0.1, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="beta_t must lie in"):
        gaussian_chain_step_mean_var(0.0, 1.0, 1.5)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        sample_gaussian_chain([0.0, 0.1], np.zeros(3), rng=None)
