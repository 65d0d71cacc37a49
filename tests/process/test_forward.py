"""Properties of the forward process q (minidiff.process.forward).

One step q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I) (Ho et al. 2020, eq. 2),
the marginal q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I) (eq. 4) and the
transition between any two steps, over arbitrary valid schedules.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.process import (
    linear_schedule,
    log_alpha_bar_ratio,
    q_mean_var,
    q_mean_var_between,
    q_sample,
    q_step_mean_var,
)
from tests.strategies import (
    arrays,
    schedule_and_batched_t,
    schedule_and_ordered_steps,
    schedule_and_t,
    schedules,
)
from tests.tolerances import ATOL, RTOL


@given(schedule_and_t(low=0, zero_terminal_snr=True), arrays())
def test_marginal_is_composition_of_single_steps(schedule_t, x0):
    """Applying q(x_r | x_{r-1}) for r = 1..t to x_0 gives q(x_t | x_0) (eq. 4 from eq. 2).

    A Gaussian x_{r-1} = m_{r-1} x_0 + sqrt(v_{r-1}) z stepped once is
    x_r = sqrt(alpha_r) m_{r-1} x_0 + sqrt(alpha_r v_{r-1} + beta_r) z', so
    m_t = prod_r sqrt(alpha_r) = sqrt(alpha_bar_t) and v_t = alpha_t v_{t-1} + beta_t
    = 1 - alpha_bar_t. The test steps (m, sqrt(v)) with q_step_mean_var itself."""
    schedule, t = schedule_t
    coef, var = 1.0, 0.0
    for r in range(1, t + 1):
        (coef, scaled_std), step_var = q_step_mean_var(schedule, np.array([coef, np.sqrt(var)]), r)
        var = scaled_std**2 + step_var[0]
    mean_t, var_t = q_mean_var(schedule, x0, t)
    np.testing.assert_allclose(mean_t, coef * x0, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(var_t, np.full_like(x0, var), rtol=RTOL, atol=ATOL)


@given(schedule_and_ordered_steps(n=3, zero_terminal_snr=True), arrays())
def test_chapman_kolmogorov(schedule_steps, xs):
    """q(x_t | x_s) = integral of q(x_t | x_u) q(x_u | x_s) dx_u for s <= u <= t.

    With q(x_u | x_s) = N(a x_s, v) and q(x_t | x_u) = N(b x_u, w), the composition is
    N(b a x_s, b^2 v + w); it equals q(x_t | x_s) = N(sqrt(alpha_bar_t / alpha_bar_s) x_s,
    1 - alpha_bar_t / alpha_bar_s)."""
    schedule, s, u, t = schedule_steps
    mean_us, var_us = q_mean_var_between(schedule, xs, s, u)
    mean_composed, var_tu = q_mean_var_between(schedule, mean_us, u, t)
    scaled_std, _ = q_mean_var_between(schedule, np.sqrt(var_us), u, t)  # b sqrt(v)
    mean_ts, var_ts = q_mean_var_between(schedule, xs, s, t)
    np.testing.assert_allclose(mean_composed, mean_ts, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(scaled_std**2 + var_tu, var_ts, rtol=RTOL, atol=ATOL)


@given(schedule_and_t(low=0, zero_terminal_snr=True), arrays())
def test_transition_from_zero_is_marginal(schedule_t, x0):
    """q(x_t | x_s) with s = 0 is q(x_t | x_0): alpha_bar_0 = 1."""
    schedule, t = schedule_t
    mean, var = q_mean_var_between(schedule, x0, 0, t)
    expected_mean, expected_var = q_mean_var(schedule, x0, t)
    np.testing.assert_allclose(mean, expected_mean, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(var, expected_var, rtol=RTOL, atol=ATOL)


@given(schedule_and_t(low=1, zero_terminal_snr=True), arrays())
def test_transition_over_one_step_is_forward_step(schedule_t, x_prev):
    """q(x_t | x_s) with s = t - 1 is the single step q(x_t | x_{t-1}) = N(sqrt(alpha_t)
    x_{t-1}, beta_t), to relative round-off even for tiny beta_t; with s = t it is the
    identity (mean x_t, variance 0)."""
    schedule, t = schedule_t
    mean, var = q_mean_var_between(schedule, x_prev, t - 1, t)
    expected_mean, expected_var = q_step_mean_var(schedule, x_prev, t)
    np.testing.assert_allclose(mean, expected_mean, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(var, expected_var, rtol=RTOL, atol=0.0)
    same_mean, same_var = q_mean_var_between(schedule, x_prev, t, t)
    np.testing.assert_array_equal(same_mean, x_prev)
    np.testing.assert_array_equal(same_var, 0.0)


@given(schedule_and_ordered_steps(n=3))
def test_log_alpha_bar_ratio_is_additive_difference_of_logs(schedule_steps):
    """log(alpha_bar_t / alpha_bar_s) = log alpha_bar_t - log alpha_bar_s, and it adds up
    along the chain: log(alpha_bar_u / alpha_bar_s) + log(alpha_bar_t / alpha_bar_u) =
    log(alpha_bar_t / alpha_bar_s). The difference of running sums loses digits relative
    to a short range far along the chain, so it is compared with a tolerance relative to
    |log alpha_bar_t|."""
    schedule, s, u, t = schedule_steps
    ratio = log_alpha_bar_ratio(schedule, s, t)
    log_alpha_bar = schedule.log_alpha_bar
    np.testing.assert_allclose(
        ratio,
        log_alpha_bar[t] - log_alpha_bar[s],
        rtol=RTOL,
        atol=ATOL + RTOL * abs(log_alpha_bar[t]),
    )
    np.testing.assert_allclose(
        log_alpha_bar_ratio(schedule, s, u) + log_alpha_bar_ratio(schedule, u, t),
        ratio,
        rtol=RTOL,
        atol=ATOL,
    )
    assert log_alpha_bar_ratio(schedule, t, t) == 0.0


@given(schedule_and_t(low=0, zero_terminal_snr=True), arrays(), arrays())
def test_q_sample_is_reparameterised_marginal(schedule_t, x0, eps):
    """q_sample(x_0, t, eps) = mean_t + sqrt(var_t) eps with (mean_t, var_t) of q(x_t | x_0)
    (Ho et al. 2020, eq. 4 and Algorithm 1), so x_t ~ q(x_t | x_0) when eps ~ N(0, I)."""
    schedule, t = schedule_t
    mean, var = q_mean_var(schedule, x0, t)
    np.testing.assert_allclose(
        q_sample(schedule, x0, t, eps), mean + np.sqrt(var) * eps, rtol=RTOL, atol=ATOL
    )


@given(schedule_and_batched_t(low=0, zero_terminal_snr=True), st.data())
def test_batched_t_equals_per_sample_results(schedule_t, data):
    """A batch of steps t: (B,) broadcasts over x: (B, ...): every forward function gives,
    for each sample b, its result at the scalar step t[b]."""
    schedule, t = schedule_t
    B = t.shape[0]
    x, eps = data.draw(arrays((B, 2, 3))), data.draw(arrays((B, 2, 3)))
    s = np.array([data.draw(st.integers(0, int(tb))) for tb in t])
    t_pos = np.maximum(t, 1)  # one step needs t >= 1
    calls = {  # name: (batched call, per-sample call for sample b)
        "q_mean_var": (
            lambda: q_mean_var(schedule, x, t),
            lambda b: q_mean_var(schedule, x[b], int(t[b])),
        ),
        "q_sample": (
            lambda: (q_sample(schedule, x, t, eps),),
            lambda b: (q_sample(schedule, x[b], int(t[b]), eps[b]),),
        ),
        "q_step_mean_var": (
            lambda: q_step_mean_var(schedule, x, t_pos),
            lambda b: q_step_mean_var(schedule, x[b], int(t_pos[b])),
        ),
        "q_mean_var_between": (
            lambda: q_mean_var_between(schedule, x, s, t),
            lambda b: q_mean_var_between(schedule, x[b], int(s[b]), int(t[b])),
        ),
    }
    for name, (batched, single) in calls.items():
        outputs = batched()
        for b in range(B):
            for output, expected in zip(outputs, single(b), strict=True):
                np.testing.assert_allclose(output[b], expected, rtol=RTOL, atol=ATOL, err_msg=name)


@given(schedules(max_T=50), st.data())
def test_t_out_of_range_raises_value_error(schedule, data):
    """q(x_t | x_0) takes 0 <= t <= T and one step q(x_t | x_{t-1}) 1 <= t <= T; a step
    outside (also inside a batch) raises ValueError naming it; s > t is rejected."""
    T, x = schedule.T, np.zeros((3, 2))
    too_high = data.draw(st.integers(T + 1, T + 100))
    negative = data.draw(st.integers(-100, -1))
    for bad in (too_high, negative, np.array([0, too_high, 1])):
        with pytest.raises(ValueError, match="out of range"):
            q_mean_var(schedule, x, bad)
        with pytest.raises(ValueError, match="out of range"):
            q_sample(schedule, x, bad, x)
    with pytest.raises(ValueError, match="t = 0 is out of range"):
        q_step_mean_var(schedule, x, 0)
    with pytest.raises(ValueError, match="s <= t"):
        q_mean_var_between(schedule, x, T, T - 1)


@pytest.mark.parametrize("bad_t", [1.0, np.float64(2.0), np.array([1.0, 2.0, 1.0]), True, "1"])
def test_non_integer_t_raises_type_error(bad_t):
    """A step that is not an integer (a float, even a whole one; a bool; a string) raises
    TypeError."""
    schedule, x = linear_schedule(10), np.zeros((3, 2))
    with pytest.raises(TypeError):
        q_mean_var(schedule, x, bad_t)
    with pytest.raises(TypeError):
        q_step_mean_var(schedule, x, bad_t)


def test_batch_of_steps_needs_matching_batch():
    """t: (B,) with x whose leading dimension is not B raises ValueError."""
    with pytest.raises(ValueError, match="batch"):
        q_mean_var(linear_schedule(10), np.zeros((4, 2)), np.array([1, 2, 3]))


@pytest.mark.parametrize("name", ["x0", "eps"])
def test_q_sample_refuses_a_complex_input_by_name(name):
    """A complex x0 or eps is refused with a ValueError naming it, instead of losing its
    imaginary part with a warning."""
    schedule = linear_schedule(10)
    values = {"x0": np.ones((2, 3)), "eps": np.ones((2, 3))}
    values[name] = values[name] + 1j
    with pytest.raises(ValueError, match=f"{name} must be real"):
        q_sample(schedule, values["x0"], np.array([1, 2]), values["eps"])
