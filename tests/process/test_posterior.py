"""Properties of the forward-process posterior q(x_{t-1} | x_t, x_0)
(minidiff.process.posterior; Ho et al. 2020, eqs. 6, 7 and 11), over arbitrary valid
schedules and random points.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from minidiff.process import (
    gaussian_log_prob,
    linear_schedule,
    posterior_mean_from_eps,
    posterior_mean_var,
    q_mean_var,
    q_sample,
    q_step_mean_var,
    reverse_variance,
)
from tests.process.helpers import assert_close
from tests.strategies import arrays, schedule_and_batched_t, schedule_and_t, schedules
from tests.tolerances import ATOL, RTOL, RTOL_LOOSE


@given(schedule_and_t(low=2, zero_terminal_snr=True), arrays(), arrays(), arrays())
def test_posterior_satisfies_bayes_rule(schedule_t, x0, x_prev, xt):
    """Bayes' rule, pointwise at arbitrary x_0, x_{t-1}, x_t, for t >= 2:

    log q(x_{t-1} | x_t, x_0) + log q(x_t | x_0) = log q(x_t | x_{t-1}) + log q(x_{t-1} | x_0)

    (both sides are log q(x_{t-1}, x_t | x_0); the Markov property gives
    q(x_t | x_{t-1}, x_0) = q(x_t | x_{t-1})). The four log densities can be large (a
    variance of 1e-7 at a distance of 3 gives 1e8), so the round-off bound is relative to
    the sum of their magnitudes."""
    schedule, t = schedule_t
    post_mean, post_var, _ = posterior_mean_var(schedule, x0, xt, t)
    terms = [
        gaussian_log_prob(x_prev, post_mean, post_var),
        gaussian_log_prob(xt, *q_mean_var(schedule, x0, t)),
        gaussian_log_prob(xt, *q_step_mean_var(schedule, x_prev, t)),
        gaussian_log_prob(x_prev, *q_mean_var(schedule, x0, t - 1)),
    ]
    magnitude = sum(np.abs(term) for term in terms)
    assert_close(terms[0] + terms[1], terms[2] + terms[3], rtol=RTOL, atol=RTOL * magnitude)


@given(schedules(zero_terminal_snr=True), arrays(), arrays())
def test_posterior_at_t1_is_point_mass_at_x0(schedule, x0, x1):
    """At t = 1, x_{t-1} = x_0 is known: q(x_0 | x_1, x_0) has mean exactly x_0 and
    variance exactly 0 (beta_tilde_1 = 0 since alpha_bar_0 = 1)."""
    mean, var, log_var_clipped = posterior_mean_var(schedule, x0, x1, 1)
    np.testing.assert_array_equal(mean, x0)
    np.testing.assert_array_equal(var, 0.0)
    assert np.all(np.isfinite(log_var_clipped))


@given(schedule_and_t(low=1, zero_terminal_snr=True), arrays())
def test_posterior_averaged_over_xt_gives_marginal(schedule_t, x0):
    """Averaging q(x_{t-1} | x_t, x_0) over x_t ~ q(x_t | x_0) gives q(x_{t-1} | x_0).

    The posterior mean is linear, c_0 x_0 + c_t x_t, so by the laws of total expectation
    and total variance the average is Gaussian with
    mean c_0 x_0 + c_t sqrt(alpha_bar_t) x_0 = sqrt(alpha_bar_{t-1}) x_0 and
    variance beta_tilde_t + c_t^2 (1 - alpha_bar_t) = 1 - alpha_bar_{t-1}."""
    schedule, t = schedule_t
    mean_t, var_t = q_mean_var(schedule, x0, t)
    total_mean, post_var, _ = posterior_mean_var(schedule, x0, mean_t, t)
    coef_xt, _, _ = posterior_mean_var(schedule, np.zeros_like(x0), np.ones_like(x0), t)
    expected_mean, expected_var = q_mean_var(schedule, x0, t - 1)
    np.testing.assert_allclose(total_mean, expected_mean, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(post_var + coef_xt**2 * var_t, expected_var, rtol=RTOL, atol=ATOL)


@given(schedules(zero_terminal_snr=True))
def test_posterior_variance_between_zero_and_beta(schedule):
    """0 <= beta_tilde_t <= beta_t for every t, with beta_tilde_1 = 0: the posterior is
    never wider than the forward step (1 - alpha_bar_{t-1} <= 1 - alpha_bar_t)."""
    var, beta = schedule.posterior_var[1:], schedule.beta[1:]
    assert np.all(var >= 0) and np.all(var <= beta)
    assert var[0] == 0.0
    if schedule.T >= 2:
        assert np.all(var[1:] > 0)


@given(schedule_and_t(low=1), arrays(), arrays())
def test_posterior_mean_eps_form_equals_x0_form(schedule_t, x0, eps):
    """With x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, the noise form of the
    posterior mean (Ho et al. 2020, eq. 11),
    (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t),
    equals the x_0 form (eq. 7). The noise form divides a difference of terms of size
    |x_t| + |eps| by sqrt(alpha_t), which bounds its round-off."""
    schedule, t = schedule_t
    xt = q_sample(schedule, x0, t, eps)
    from_x0, _, _ = posterior_mean_var(schedule, x0, xt, t)
    from_eps = posterior_mean_from_eps(schedule, xt, t, eps)
    roundoff = (1.0 + np.abs(xt) + np.abs(eps)) / np.sqrt(schedule.alpha[t])
    assert_close(from_eps, from_x0, rtol=RTOL, atol=ATOL * roundoff)


@given(schedule_and_batched_t(low=1, zero_terminal_snr=True), st.data())
def test_batched_t_equals_per_sample_results(schedule_t, data):
    """A batch of steps t: (B,) broadcasts over x: (B, ...): posterior_mean_var and
    posterior_mean_from_eps give, for each sample b, their result at the scalar t[b]."""
    schedule, t = schedule_t
    B = t.shape[0]
    x0, xt, eps = (data.draw(arrays((B, 2, 3))) for _ in range(3))
    t_eps = np.minimum(t, np.where(schedule.beta[-1] < 1, schedule.T, schedule.T - 1))
    t_eps = np.maximum(t_eps, 1)  # eq. 11 divides by sqrt(alpha_t): not at beta_T = 1
    batched = posterior_mean_var(schedule, x0, xt, t)
    batched_eps = posterior_mean_from_eps(schedule, xt, t_eps, eps)
    for b in range(B):
        single = posterior_mean_var(schedule, x0[b], xt[b], int(t[b]))
        for output, expected in zip(batched, single, strict=True):
            np.testing.assert_allclose(output[b], expected, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(
            batched_eps[b],
            posterior_mean_from_eps(schedule, xt[b], int(t_eps[b]), eps[b]),
            rtol=RTOL,
            atol=ATOL,
        )


@given(schedules(max_T=50), st.data())
def test_t_out_of_range_raises_value_error(schedule, data):
    """The posterior q(x_{t-1} | x_t, x_0) takes 1 <= t <= T: t = 0, t > T or a negative
    t, also inside a batch, raises ValueError."""
    x = np.zeros((3, 2))
    bad = data.draw(st.sampled_from([0, -1, schedule.T + 1, np.array([1, 0, 1])]))
    with pytest.raises(ValueError, match="out of range"):
        posterior_mean_var(schedule, x, x, bad)
    with pytest.raises(ValueError, match="out of range"):
        posterior_mean_from_eps(schedule, x, bad, x)


@pytest.mark.parametrize("bad_t", [1.0, np.float64(2.0), np.array([1.0, 2.0, 1.0]), True])
def test_non_integer_t_raises_type_error(bad_t):
    """A step that is not an integer raises TypeError."""
    schedule, x = linear_schedule(10), np.zeros((3, 2))
    with pytest.raises(TypeError):
        posterior_mean_var(schedule, x, x, bad_t)
    with pytest.raises(TypeError):
        posterior_mean_from_eps(schedule, x, bad_t, x)


@given(schedule_and_t(low=2))
def test_eq12_weight_with_posterior_variance_is_half_snr_ratio_minus_one(schedule_t):
    """With sigma_t^2 = beta_tilde_t, the weight of ||eps - eps_theta||^2 in L_{t-1}
    (Ho et al. 2020, eq. 12), beta_t^2 / (2 sigma_t^2 alpha_t (1 - alpha_bar_t)), equals
    beta_t / (2 alpha_t (1 - alpha_bar_{t-1})) = (SNR(t-1) / SNR(t) - 1) / 2 for t >= 2.
    The SNR form subtracts 1 from a ratio near 1 + beta_t, so it holds to ~eps / beta_t."""
    schedule, t = schedule_t
    assume(schedule.alpha_bar[t] >= 1e-100)
    beta, alpha = schedule.beta[t], schedule.alpha[t]
    weight = beta**2 / (2 * schedule.posterior_var[t] * alpha * schedule.one_minus_alpha_bar[t])
    direct = beta / (2 * alpha * schedule.one_minus_alpha_bar[t - 1])
    np.testing.assert_allclose(weight, direct, rtol=RTOL_LOOSE, atol=0)
    snr_form = 0.5 * (schedule.snr[t - 1] / schedule.snr[t] - 1)
    np.testing.assert_allclose(snr_form, direct, rtol=RTOL_LOOSE + 1e-14 / beta, atol=0)


@given(schedules(max_T=200, zero_terminal_snr=True))
def test_reverse_variance_tables(schedule):
    """fixed_small is beta_tilde_t; fixed_large is beta_t for t >= 2 with beta_tilde_2 at
    t = 1 (Ho et al.'s released code; beta_1 when T = 1); both 0 at t = 0; each is a
    writable copy, so a caller cannot change the schedule."""
    small = reverse_variance(schedule, "fixed_small")
    np.testing.assert_array_equal(small, schedule.posterior_var)
    large = reverse_variance(schedule, "fixed_large")
    np.testing.assert_array_equal(large[2:], schedule.beta[2:])
    first = schedule.posterior_var[2] if schedule.T >= 2 else schedule.beta[1]
    assert large[1] == first and large[0] == 0.0
    small[:] = large[:] = -1.0
    assert schedule.posterior_var.min() >= 0.0 and schedule.fixed_large_var.min() >= 0.0
    with pytest.raises(ValueError, match="variance"):
        reverse_variance(schedule, "learned")
