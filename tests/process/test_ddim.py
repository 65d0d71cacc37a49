"""DDIM's non-Markovian forward processes and sigma(eta) (minidiff.process.ddim; Song,
Meng & Ermon 2021, eqs. 7 and 16), over arbitrary valid schedules.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.process import (
    SPACINGS,
    ddim_coefficients,
    ddim_direction,
    ddim_posterior_mean_var,
    ddim_sigma,
    linear_schedule,
    posterior_mean_var,
    q_mean_var,
    sampling_timesteps,
)
from tests.process.helpers import assert_close
from tests.strategies import (
    arrays,
    schedule_and_batched_t,
    schedule_and_ordered_steps,
    schedule_and_t,
    schedules,
)
from tests.tolerances import ATOL, RTOL


@given(schedule_and_t(low=1, zero_terminal_snr=True))
def test_eta_one_on_consecutive_steps_gives_ddpm_posterior_variance(schedule_t):
    """sigma_t(eta = 1)^2 for t_prev = t - 1 is the DDPM posterior variance
    beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t (DDIM, sec. 4.1)."""
    schedule, t = schedule_t
    sigma = ddim_sigma(schedule, t, t - 1, eta=1.0)
    np.testing.assert_allclose(sigma**2, schedule.posterior_var[t], rtol=RTOL, atol=0.0)


@given(schedule_and_t(low=1, zero_terminal_snr=True), arrays(), arrays())
def test_eta_one_on_consecutive_steps_gives_ddpm_posterior_mean(schedule_t, x0, xt):
    """With sigma = sigma_t(1) and t_prev = t - 1, the mean of q_sigma(x_{t-1} | x_t, x_0)
    (DDIM, eq. 7) is the DDPM posterior mean mu_tilde_t(x_t, x_0) (Ho et al. 2020, eq. 7)
    and its variance is beta_tilde_t.

    DDIM's mean scales the noise direction by sqrt(d), d = 1 - alpha_bar_{t-1} - sigma^2
    (here d = (1 - alpha_bar_{t-1})^2 alpha_t / (1 - alpha_bar_t)). The rounding of sigma
    moves d by up to delta = 8 eps_mach (1 - alpha_bar_{t-1}), so sqrt(d) by up to
    sqrt(d + delta) - sqrt(d): about sqrt(delta) when d is near 0 (alpha_t near 0, as at
    beta_T = 1). The bound adds that, times the size of the noise direction, to ATOL."""
    schedule, t = schedule_t
    sigma = ddim_sigma(schedule, t, t - 1, eta=1.0)
    mean, var = ddim_posterior_mean_var(schedule, x0, xt, t, t - 1, sigma)
    ddpm_mean, ddpm_var, _ = posterior_mean_var(schedule, x0, xt, t)
    one_minus = schedule.one_minus_alpha_bar
    d = one_minus[t - 1] ** 2 * schedule.alpha[t] / one_minus[t]
    delta = 8 * np.finfo(np.float64).eps * one_minus[t - 1]
    direction = np.abs(xt - np.sqrt(schedule.alpha_bar[t]) * x0) / np.sqrt(one_minus[t])
    roundoff = (
        ATOL * (1.0 + np.abs(x0) + np.abs(xt)) + (np.sqrt(d + delta) - np.sqrt(d)) * direction
    )
    assert_close(mean, ddpm_mean, rtol=RTOL, atol=roundoff)
    np.testing.assert_allclose(var, ddpm_var, rtol=RTOL, atol=0.0)


@given(
    schedule_and_ordered_steps(n=2, strict=True, zero_terminal_snr=True),
    st.floats(0.0, 1.0),
    arrays(),
)
def test_ddim_keeps_the_marginals(schedule_steps, fraction, x0):
    """For any t_prev < t and any admissible sigma, 0 <= sigma^2 <= 1 - alpha_bar_{t_prev},
    averaging q_sigma(x_{t_prev} | x_t, x_0) over x_t ~ q(x_t | x_0) gives q(x_{t_prev} | x_0)
    (DDIM, Lemma 1). The mean is linear, a x_t + b x_0, so the average is Gaussian with
    mean a sqrt(alpha_bar_t) x_0 + b x_0 = sqrt(alpha_bar_{t_prev}) x_0 and variance
    sigma^2 + a^2 (1 - alpha_bar_t) = 1 - alpha_bar_{t_prev}."""
    schedule, t_prev, t = schedule_steps
    sigma = fraction * np.sqrt(schedule.one_minus_alpha_bar[t_prev])
    zeros, ones = np.zeros_like(x0), np.ones_like(x0)
    a, _ = ddim_posterior_mean_var(schedule, zeros, ones, t, t_prev, sigma)
    mean_t, var_t = q_mean_var(schedule, x0, t)
    total_mean, var = ddim_posterior_mean_var(schedule, x0, mean_t, t, t_prev, sigma)
    expected_mean, expected_var = q_mean_var(schedule, x0, t_prev)
    np.testing.assert_allclose(total_mean, expected_mean, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(var + a**2 * var_t, expected_var, rtol=RTOL, atol=ATOL)


@given(schedule_and_ordered_steps(n=2, strict=True, zero_terminal_snr=True), arrays(), arrays())
def test_eta_zero_gives_sigma_zero_and_a_deterministic_step(schedule_steps, x0, xt):
    """sigma(eta = 0) = 0 for every jump t -> t_prev, so q_sigma has variance 0: the DDIM
    sampler is deterministic given x_t and the prediction of x_0."""
    schedule, t_prev, t = schedule_steps
    sigma = ddim_sigma(schedule, t, t_prev, eta=0.0)
    assert sigma == 0.0
    _, var = ddim_posterior_mean_var(schedule, x0, xt, t, t_prev, sigma)
    np.testing.assert_array_equal(var, 0.0)


@given(schedule_and_ordered_steps(n=2, strict=True, zero_terminal_snr=True), st.floats(0.0, 10.0))
def test_sigma_is_linear_in_eta_and_admissible_up_to_eta_one(schedule_steps, eta):
    """sigma_t(eta) = eta sigma_t(1) (DDIM, eq. 16), and sigma_t(1)^2 <= 1 - alpha_bar_{t_prev}
    (since 1 - alpha_bar_t / alpha_bar_{t_prev} <= 1 - alpha_bar_t), so every eta in
    [0, 1] gives an admissible member of the family."""
    schedule, t_prev, t = schedule_steps
    sigma_one = ddim_sigma(schedule, t, t_prev, eta=1.0)
    np.testing.assert_allclose(
        ddim_sigma(schedule, t, t_prev, eta=eta), eta * sigma_one, rtol=RTOL, atol=0.0
    )
    assert sigma_one**2 <= schedule.one_minus_alpha_bar[t_prev] * (1.0 + RTOL)


@given(schedule_and_batched_t(low=1, zero_terminal_snr=True), st.floats(0.0, 1.0), st.data())
def test_batched_t_equals_per_sample_results(schedule_t, eta, data):
    """Batches of steps t, t_prev: (B,) broadcast over x: (B, ...): ddim_sigma and
    ddim_posterior_mean_var give, for each sample b, their result at t[b], t_prev[b]."""
    schedule, t = schedule_t
    B = t.shape[0]
    t_prev = np.array([data.draw(st.integers(0, int(tb) - 1)) for tb in t])
    x0, xt = data.draw(arrays((B, 2, 3))), data.draw(arrays((B, 2, 3)))
    sigma = ddim_sigma(schedule, t, t_prev, eta)
    mean, var = ddim_posterior_mean_var(schedule, x0, xt, t, t_prev, sigma)
    for b in range(B):
        sigma_b = ddim_sigma(schedule, int(t[b]), int(t_prev[b]), eta)
        np.testing.assert_allclose(sigma[b], sigma_b, rtol=RTOL, atol=ATOL)
        mean_b, var_b = ddim_posterior_mean_var(
            schedule, x0[b], xt[b], int(t[b]), int(t_prev[b]), sigma_b
        )
        np.testing.assert_allclose(mean[b], mean_b, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(var[b], var_b, rtol=RTOL, atol=ATOL)


def test_invalid_steps_sigma_and_eta_raise():
    """t_prev >= t, t outside 1..T, t_prev < 0, sigma < 0, sigma^2 > 1 - alpha_bar_{t_prev}
    and eta < 0 (or not finite) raise ValueError; a float step raises TypeError."""
    schedule, x = linear_schedule(10), np.zeros((2, 3))
    with pytest.raises(ValueError, match="t_prev"):
        ddim_sigma(schedule, 5, 5, 1.0)
    with pytest.raises(ValueError, match="out of range"):
        ddim_sigma(schedule, 11, 5, 1.0)
    with pytest.raises(ValueError, match="out of range"):
        ddim_sigma(schedule, 5, -1, 1.0)
    for eta in (-0.1, np.inf, np.nan):
        with pytest.raises(ValueError, match="eta"):
            ddim_sigma(schedule, 5, 4, eta)
    too_wide = 1.01 * np.sqrt(schedule.one_minus_alpha_bar[4])
    for sigma in (-0.1, too_wide):
        with pytest.raises(ValueError, match="sigma"):
            ddim_posterior_mean_var(schedule, x, x, 5, 4, sigma)
    with pytest.raises(TypeError):
        ddim_sigma(schedule, 5.0, 4, 1.0)


@given(schedule_and_ordered_steps(n=2, strict=True, zero_terminal_snr=True), st.floats(0.0, 1.0))
def test_direction_squared_plus_sigma_squared_is_the_noise_variance(schedule_steps, fraction):
    """ddim_direction(t_prev, sigma)^2 + sigma^2 = 1 - alpha_bar_{t_prev} for every admissible
    sigma (DDIM, eq. 7: the noise of x_{t_prev} is split between the kept direction and the
    fresh draw), and the direction is >= 0: the full sqrt(1 - alpha_bar_{t_prev}) at
    sigma = 0, and 0 at sigma = sqrt(1 - alpha_bar_{t_prev}) up to the round-off of squaring
    sigma, sqrt(4 eps_mach (1 - alpha_bar_{t_prev})) after the square root."""
    schedule, t_prev, _ = schedule_steps
    noise_var = schedule.one_minus_alpha_bar[t_prev]
    sigma = fraction * np.sqrt(noise_var)
    direction = ddim_direction(schedule, t_prev, sigma)
    assert direction >= 0.0
    np.testing.assert_allclose(direction**2 + sigma**2, noise_var, rtol=RTOL, atol=ATOL)
    assert ddim_direction(schedule, t_prev, 0.0) == schedule.sqrt_one_minus_alpha_bar[t_prev]
    roundoff = np.sqrt(4 * np.finfo(np.float64).eps * noise_var)
    assert ddim_direction(schedule, t_prev, np.sqrt(noise_var)) <= roundoff


@given(schedule_and_ordered_steps(n=2, strict=True, zero_terminal_snr=True), arrays(), arrays())
def test_ddim_mean_is_the_coefficients_applied_to_x0_and_eps(schedule_steps, x0, xt):
    """For eta in {0, 0.5, 1}, the mean of q_sigma(x_{t_prev} | x_t, x_0) (DDIM, eq. 7) is
    signal x_0 + direction eps with eps = (x_t - sqrt(alpha_bar_t) x_0) / sqrt(1 - alpha_bar_t)
    and `ddim_coefficients`' factors, whose sigma is `ddim_sigma` (eq. 16): the sampler's
    update of eq. 12 without its sigma z."""
    schedule, t_prev, t = schedule_steps
    eps = (xt - schedule.sqrt_alpha_bar[t] * x0) / schedule.sqrt_one_minus_alpha_bar[t]
    for eta in (0.0, 0.5, 1.0):
        coefficients = ddim_coefficients(schedule, t, t_prev, eta)
        assert coefficients.sigma == ddim_sigma(schedule, t, t_prev, eta)
        assert coefficients.signal == schedule.sqrt_alpha_bar[t_prev]
        mean, var = ddim_posterior_mean_var(schedule, x0, xt, t, t_prev, coefficients.sigma)
        expected = coefficients.signal * x0 + coefficients.direction * eps
        roundoff = ATOL * (1.0 + np.abs(x0) + np.abs(eps))
        assert_close(mean, expected, rtol=RTOL, atol=roundoff)
        np.testing.assert_allclose(var, coefficients.sigma**2, rtol=RTOL, atol=0.0)


@given(schedules(zero_terminal_snr=True), st.sampled_from(SPACINGS), st.floats(0.0, 1.0), st.data())
def test_coefficients_over_a_grid_equal_the_coefficients_of_each_jump(schedule, spacing, eta, data):
    """ddim_coefficients over the jumps grid[:-1] -> grid[1:] of a DDIM grid gives, jump by
    jump, the factors of that single jump; all finite and >= 0 for eta in [0, 1]."""
    grid = sampling_timesteps(schedule, data.draw(st.integers(1, min(schedule.T, 50))), spacing)
    table = ddim_coefficients(schedule, grid[:-1], grid[1:], eta)
    for values in (table.signal, table.direction, table.sigma):
        assert values.shape == (len(grid) - 1,) and np.all(np.isfinite(values) & (values >= 0))
    for i in range(len(grid) - 1):
        one = ddim_coefficients(schedule, int(grid[i]), int(grid[i + 1]), eta)
        assert (one.signal, one.direction, one.sigma) == (
            table.signal[i], table.direction[i], table.sigma[i]
        )


def test_ddim_direction_rejects_an_inadmissible_sigma():
    """sigma < 0, sigma^2 > 1 - alpha_bar_{t_prev} (beyond round-off) and a t_prev outside
    0..T raise ValueError naming the argument."""
    schedule = linear_schedule(10)
    too_wide = 1.01 * np.sqrt(schedule.one_minus_alpha_bar[4])
    for sigma in (-0.1, too_wide, np.nan):
        with pytest.raises(ValueError, match="sigma"):
            ddim_direction(schedule, 4, sigma)
    with pytest.raises(ValueError, match="t_prev"):
        ddim_direction(schedule, 11, 0.0)
