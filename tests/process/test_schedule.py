"""Properties of noise schedules (minidiff.process.schedule).

Every property is checked over arbitrary valid schedules (`tests.strategies.schedules`:
random betas in [1e-6, 0.999], any T in 1..1000, plus the presets). With large betas
and long chains alpha_bar_t underflows float64 (below about 1e-308 it loses digits,
below about 5e-324 it is exactly 0); where a property can only hold for representable
values, the test says so and restricts itself to them.
"""

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from minidiff.process import (
    Schedule,
    cosine_schedule,
    linear_schedule,
    rescale_zero_terminal_snr,
    sigmoid_schedule,
)
from tests.strategies import random_betas, schedules
from tests.tolerances import ATOL, RTOL

TINY = np.finfo(np.float64).tiny  # the smallest normal float64, about 2.2e-308


@given(schedules(zero_terminal_snr=True))
def test_alpha_bar_is_running_product_of_alpha(schedule):
    """alpha_bar_0 = 1 and alpha_bar_t = alpha_bar_{t-1} alpha_t with alpha_t = 1 - beta_t
    (Ho et al. 2020, eq. 4); log alpha_bar_t = sum_{s <= t} log(1 - beta_s) agrees with it
    wherever alpha_bar_t is a normal float."""
    alpha_bar, alpha = schedule.alpha_bar, schedule.alpha
    np.testing.assert_allclose(alpha, 1.0 - schedule.beta, rtol=RTOL, atol=ATOL)
    assert alpha_bar[0] == 1.0
    np.testing.assert_allclose(alpha_bar[1:], alpha_bar[:-1] * alpha[1:], rtol=RTOL, atol=0.0)
    normal = alpha_bar >= TINY
    expected_log = np.cumsum([math.log1p(-b) if b < 1 else -math.inf for b in schedule.beta])
    np.testing.assert_allclose(
        schedule.log_alpha_bar[normal], expected_log[normal], rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(
        alpha_bar[normal], np.exp(schedule.log_alpha_bar[normal]), rtol=RTOL, atol=0.0
    )


@given(schedules())
def test_alpha_bar_in_unit_interval_and_strictly_decreasing(schedule):
    """0 < alpha_bar_t <= 1 and alpha_bar_t < alpha_bar_{t-1} for t >= 1.

    log alpha_bar_t is finite and strictly decreasing at every t. alpha_bar_t itself is
    positive wherever log alpha_bar_t is above the log of the smallest float64, and
    strictly decreasing wherever alpha_bar_{t-1} is a normal float (past that the float
    grid is too coarse to resolve a factor 1 - beta_t); it never increases."""
    alpha_bar, log_alpha_bar = schedule.alpha_bar, schedule.log_alpha_bar
    assert np.all(np.isfinite(log_alpha_bar))
    assert np.all(np.diff(log_alpha_bar) < 0)
    assert np.all((alpha_bar >= 0) & (alpha_bar <= 1))
    representable = log_alpha_bar > math.log(TINY)
    assert np.all(alpha_bar[representable] > 0)
    assert np.all(np.diff(alpha_bar) <= 0)
    resolved = alpha_bar[:-1] >= TINY
    assert np.all(alpha_bar[1:][resolved] < alpha_bar[:-1][resolved])


@given(schedules(zero_terminal_snr=True))
def test_one_minus_alpha_bar_keeps_relative_precision(schedule):
    """1 - alpha_bar_t = alpha_t (1 - alpha_bar_{t-1}) + beta_t, to relative round-off.

    The recursion adds positive terms and is accurate to a few units of round-off per
    step, even when 1 - alpha_bar_t is as small as 1e-6, where subtracting 1 - alpha_bar_t
    directly would keep only ten digits. It is 0 at t = 0 and exactly beta_1 at t = 1."""
    one_minus = schedule.one_minus_alpha_bar
    expected = np.zeros(schedule.T + 1)
    for t in range(1, schedule.T + 1):
        expected[t] = schedule.alpha[t] * expected[t - 1] + schedule.beta[t]
    np.testing.assert_allclose(one_minus, expected, rtol=RTOL, atol=0.0)
    assert one_minus[0] == 0.0 and one_minus[1] == schedule.beta[1]
    np.testing.assert_allclose(one_minus + schedule.alpha_bar, 1.0, rtol=RTOL, atol=ATOL)


@given(schedules())
def test_snr_strictly_decreasing(schedule):
    """SNR(t) = alpha_bar_t / (1 - alpha_bar_t) strictly decreases in t (Kingma et al.
    2021): log SNR strictly decreases at every t, and SNR itself wherever alpha_bar_t is
    a normal float. SNR(0) = +inf."""
    snr, log_snr = schedule.snr, schedule.log_snr
    assert snr[0] == np.inf and log_snr[0] == np.inf
    assert np.all(np.diff(log_snr) < 0)
    resolved = schedule.alpha_bar[1:] >= TINY
    assert np.all(np.diff(snr[1:])[resolved[1:]] < 0)


@given(schedules())
def test_log_snr_agrees_with_log_of_snr(schedule):
    """log_snr_t = log(SNR(t)) for t >= 1 wherever SNR(t) is a normal float; it stays
    finite where alpha_bar_t underflows."""
    snr, log_snr = schedule.snr[1:], schedule.log_snr[1:]
    assert np.all(np.isfinite(log_snr))
    normal = snr >= TINY
    np.testing.assert_allclose(log_snr[normal], np.log(snr[normal]), rtol=RTOL, atol=ATOL)


@given(schedules(zero_terminal_snr=True))
def test_beta_alpha_bar_beta_round_trip(schedule):
    """Schedule.from_alpha_bar(alpha_bar) gives back beta: beta_t = 1 - alpha_bar_t /
    alpha_bar_{t-1} inverts the running product.

    alpha_bar stores beta_t only to within round-off of 1 (it is a product of the
    rounded alpha_t), so beta comes back to relative round-off in alpha and to absolute
    round-off (ATOL) in beta. Needs alpha_bar_{T-1} to be a normal float and alpha_bar_T
    either normal or exactly 0 (an underflowed table has lost its betas)."""
    alpha_bar = schedule.alpha_bar
    assume(alpha_bar[-2] >= TINY and (alpha_bar[-1] >= TINY or alpha_bar[-1] == 0.0))
    back = Schedule.from_alpha_bar(alpha_bar)
    assert back.T == schedule.T
    np.testing.assert_allclose(back.alpha, schedule.alpha, rtol=RTOL, atol=0.0)
    np.testing.assert_allclose(back.beta, schedule.beta, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(back.alpha_bar, alpha_bar, rtol=RTOL, atol=0.0)


@given(random_betas(), st.data())
def test_invalid_betas_raise_naming_first_bad_index(betas, data):
    """A beta table with entries outside (0, 1) (or not finite, or beta_0 != 0) raises
    ValueError naming the first bad index; beta_T = 1 alone is valid (zero terminal SNR)."""
    beta = np.concatenate([[0.0], betas])
    T = beta.shape[0] - 1
    bad_values = st.sampled_from([0.0, -0.5, 1.5, math.nan, math.inf, -math.inf])
    indices = data.draw(st.lists(st.integers(0, T), min_size=1, max_size=4, unique=True))
    for index in indices:
        value = data.draw(bad_values)
        if index == 0:
            value = data.draw(st.sampled_from([0.1, math.nan, -1.0]))
        beta[index] = value
    with pytest.raises(ValueError, match=rf"beta\[{min(indices)}\]"):
        Schedule(beta)
    ends_at_one = np.concatenate([[0.0], betas[:-1], [1.0]])
    assert Schedule(ends_at_one).alpha_bar[-1] == 0.0
    if T >= 2:
        interior_one = ends_at_one.copy()
        interior_one[T - 1] = 1.0
        with pytest.raises(ValueError, match=rf"beta\[{T - 1}\]"):
            Schedule(interior_one)


@given(schedules(min_T=2), st.data())
def test_invalid_alpha_bar_raises_naming_first_bad_index(schedule, data):
    """Schedule.from_alpha_bar rejects a table that is not strictly decreasing from 1, or
    that reaches 0 before T, naming the first bad index."""
    alpha_bar = schedule.alpha_bar.copy()
    assume(alpha_bar[-1] >= TINY)
    t = data.draw(st.integers(1, schedule.T))
    kind = data.draw(st.sampled_from(["repeat", "zero", "nan", "negative"]))
    if kind == "repeat":
        alpha_bar[t] = alpha_bar[t - 1]
    elif kind == "zero":
        assume(t < schedule.T)
        alpha_bar[t] = 0.0
    elif kind == "nan":
        alpha_bar[t] = math.nan
    else:
        alpha_bar[t] = -alpha_bar[t]
    with pytest.raises(ValueError, match=rf"alpha_bar\[{t}\]"):
        Schedule.from_alpha_bar(alpha_bar)


def _cosine_closed_form(T: int, s: float) -> np.ndarray:
    """alpha_bar_t = f(t / T) / f(0), f(u) = cos^2(pi/2 (u + s) / (1 + s)), written out."""
    f = [math.cos(math.pi / 2 * (t / T + s) / (1 + s)) ** 2 for t in range(T + 1)]
    return np.array(f) / f[0]


@given(st.integers(1, 1000), st.floats(0.0, 0.1), st.floats(0.5, 0.999))
def test_cosine_schedule_matches_closed_form_where_unclipped(T, s, max_beta):
    """Cosine schedule (Nichol & Dhariwal 2021, eq. 17): alpha_bar_t = f(t/T) / f(0) with
    f(u) = cos^2(pi/2 (u + s) / (1 + s)) at every t before the first step whose beta is
    clipped to max_beta; every beta lies in (0, max_beta]."""
    schedule = cosine_schedule(T, s=s, max_beta=max_beta)
    beta = schedule.beta[1:]
    assert np.all((beta > 0) & (beta <= max_beta))
    clipped = np.flatnonzero(beta == max_beta)
    first_clipped = clipped[0] + 1 if clipped.size else T + 1  # paper index
    expected = _cosine_closed_form(T, s)
    np.testing.assert_allclose(
        schedule.alpha_bar[:first_clipped], expected[:first_clipped], rtol=RTOL, atol=0.0
    )


@given(st.integers(2, 1000))
def test_linear_schedule_endpoints(T):
    """Linear schedule (Ho et al. 2020, sec. 4): beta_1 = 1e-4, beta_T = 0.02, with equal
    increments in between."""
    beta = linear_schedule(T).beta
    assert beta[0] == 0.0
    np.testing.assert_allclose([beta[1], beta[T]], [1e-4, 0.02], rtol=RTOL, atol=0.0)
    increments = np.diff(beta[1:])
    np.testing.assert_allclose(increments, (0.02 - 1e-4) / (T - 1), rtol=RTOL, atol=ATOL)


@given(
    st.integers(1, 1000),
    st.floats(-6.0, 2.0),
    st.floats(0.5, 6.0),
    st.floats(0.05, 2.0),
    st.floats(0.5, 0.999),
)
def test_sigmoid_schedule_valid_and_decreasing(T, start, width, tau, max_beta):
    """Sigmoid schedule (Jabri et al. 2023; Chen 2023): a valid schedule with betas in
    (0, max_beta], decreasing alpha_bar, and alpha_bar_t = f(t/T) / f(0),
    f(u) = sigmoid(end / tau) - sigmoid((u (end - start) + start) / tau), before the first
    clipped beta, also for a small tau, where both sigmoids round to 1.

    alpha_bar strictly decreases at every step whose beta_t exceeds the float64 spacing
    at 1 (about 2.2e-16); a very small tau gives smaller betas in the first steps, and
    there alpha_t = 1 - beta_t rounds to 1."""
    end = start + width
    schedule = sigmoid_schedule(T, start=start, end=end, tau=tau, max_beta=max_beta)
    beta, alpha_bar = schedule.beta[1:], schedule.alpha_bar
    assert np.all((beta > 0) & (beta <= max_beta))
    assert np.all(np.diff(alpha_bar) <= 0)
    resolved = beta > np.finfo(np.float64).eps
    assert np.all(np.diff(alpha_bar)[resolved] < 0)

    def f(u):  # sigmoid(a) - sigmoid(b) = (e^-b - e^-a) / ((1 + e^-a)(1 + e^-b)), a >= b
        a, b = end / tau, (u * (end - start) + start) / tau
        return (math.exp(-b) - math.exp(-a)) / ((1 + math.exp(-a)) * (1 + math.exp(-b)))

    f = np.array([f(t / T) for t in range(T + 1)])
    clipped = np.flatnonzero(beta == max_beta)
    first_clipped = clipped[0] + 1 if clipped.size else T + 1
    np.testing.assert_allclose(
        alpha_bar[:first_clipped], (f / f[0])[:first_clipped], rtol=RTOL, atol=ATOL
    )


@given(schedules(min_T=2))
def test_zero_terminal_snr_rescaling(schedule):
    """rescale_zero_terminal_snr (Lin et al. 2024, Algorithm 1) gives alpha_bar_T = 0
    (SNR(T) = 0, beta_T = 1), keeps alpha_bar_1, stays strictly decreasing, and moves
    sqrt(alpha_bar_t), t >= 1, by one affine map a sqrt(alpha_bar_t) + b."""
    assume(schedule.alpha_bar[-1] >= TINY)
    rescaled = rescale_zero_terminal_snr(schedule)
    assert rescaled.T == schedule.T
    assert rescaled.alpha_bar[-1] == 0.0 and rescaled.snr[-1] == 0.0
    assert rescaled.beta[-1] == 1.0
    np.testing.assert_allclose(rescaled.alpha_bar[1], schedule.alpha_bar[1], rtol=RTOL, atol=0.0)
    assert np.all(np.diff(rescaled.alpha_bar) < 0)
    # With new_root_T = 0 the affine map is new_root = a (root - root_T); compared on the
    # scale of root, whose entries carry round-off of about 1e-16 absolute (relative to
    # root_1 - root_T, which may be as small as 1e-6, that is far from 1e-16).
    root, new_root = schedule.sqrt_alpha_bar[1:], rescaled.sqrt_alpha_bar[1:]
    a = new_root[0] / (root[0] - root[-1])
    np.testing.assert_allclose(new_root / a, root - root[-1], rtol=RTOL, atol=ATOL)


def test_rescale_zero_terminal_snr_rejects_T_one():
    """With T = 1, keeping alpha_bar_1 and setting alpha_bar_T = 0 contradict: ValueError."""
    with pytest.raises(ValueError, match="T >= 2"):
        rescale_zero_terminal_snr(linear_schedule(1))


@given(schedules())
def test_posterior_log_var_clipped_replaces_t1_by_t2(schedule):
    """posterior_log_var_clipped_t = log beta_tilde_t for t >= 2, and at t = 1 (where
    beta_tilde_1 = 0) the t = 2 value, log beta_tilde_2 (Ho et al. 2020's code); for T = 1
    it is log beta_1."""
    clipped, var = schedule.posterior_log_var_clipped, schedule.posterior_var
    np.testing.assert_allclose(clipped[2:], np.log(var[2:]), rtol=RTOL, atol=ATOL)
    expected_t1 = np.log(var[2]) if schedule.T >= 2 else np.log(schedule.beta[1])
    np.testing.assert_allclose(clipped[1], expected_t1, rtol=RTOL, atol=ATOL)
    assert np.all(np.isfinite(clipped))


@pytest.mark.parametrize("T", [float("nan"), float("inf"), "ten", 2.5, 0])
def test_a_bad_number_of_steps_is_refused_naming_T(T):
    """T = nan, inf, a string, a fraction or 0: a ValueError that names T and its value."""
    with pytest.raises(ValueError, match=r"T must be a positive integer, got"):
        linear_schedule(T)


@given(schedules(zero_terminal_snr=True))
def test_fixed_large_var_is_beta_with_beta_tilde_2_at_t1(schedule):
    """fixed_large_var_t = beta_t for t >= 2, beta_tilde_2 at t = 1 (Ho et al. 2020's code;
    beta_1 for T = 1), 0 at t = 0; its log table is log of it for t >= 1, the t = 1 value
    at t = 0, and finite everywhere."""
    var, log_var = schedule.fixed_large_var, schedule.fixed_large_log_var
    np.testing.assert_array_equal(var[2:], schedule.beta[2:])
    assert var[1] == (schedule.posterior_var[2] if schedule.T >= 2 else schedule.beta[1])
    assert var[0] == 0.0
    np.testing.assert_allclose(log_var[1:], np.log(var[1:]), rtol=RTOL, atol=ATOL)
    assert log_var[0] == log_var[1] and np.all(np.isfinite(log_var))
