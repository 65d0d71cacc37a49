"""Proofs for minidiff.process.grid: the grids of DDIM and of every grid sampler."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from minidiff.process import (
    DEFAULT_SPACING,
    INDEX_SPACINGS,
    SPACINGS,
    ddim_timesteps,
    karras_timesteps,
    linear_schedule,
    logsnr_timesteps,
    rescale_zero_terminal_snr,
    sampling_timesteps,
)
from tests.strategies import schedules


@given(st.integers(1, 2000), st.data(), st.sampled_from(INDEX_SPACINGS))
def test_ddim_timesteps_is_a_strictly_decreasing_grid_from_T_to_0(T, data, spacing):
    """ddim_timesteps(T, steps, spacing) has steps + 1 integer entries, strictly decreasing
    (so no duplicates), starting at T and ending at 0."""
    steps = data.draw(st.integers(1, T))
    grid = ddim_timesteps(T, steps, spacing)
    assert grid.shape == (steps + 1,) and np.issubdtype(grid.dtype, np.integer)
    assert grid[0] == T and grid[-1] == 0
    assert np.all(np.diff(grid) < 0)


@given(st.integers(1, 300), st.sampled_from(INDEX_SPACINGS))
def test_ddim_timesteps_with_T_steps_is_the_full_grid(T, spacing):
    """steps = T gives T, T - 1, ..., 0 for every spacing."""
    np.testing.assert_array_equal(ddim_timesteps(T, T, spacing), np.arange(T, -1, -1))


@given(st.integers(1, 50), st.integers(1, 40))
def test_trailing_grid_has_equal_jumps_when_steps_divides_T(steps, jump):
    """trailing with T = steps * jump: every jump, the last one included, is T / steps."""
    grid = ddim_timesteps(steps * jump, steps, "trailing")
    np.testing.assert_array_equal(np.diff(grid), -jump)


@given(st.integers(2, 50), st.integers(1, 40))
def test_uniform_grid_has_equal_jumps_down_to_1_then_steps_to_0(steps, jump):
    """uniform with T - 1 = (steps - 1) * jump: equal jumps from T down to 1, then 1 -> 0."""
    T = (steps - 1) * jump + 1
    grid = ddim_timesteps(T, steps, "uniform")
    np.testing.assert_array_equal(np.diff(grid[:-1]), -jump)
    assert grid[-2] == 1


@pytest.mark.parametrize(
    "T, steps, spacing, match",
    [
        (10, 0, "uniform", "steps"),
        (10, 11, "uniform", "steps"),
        (10, 5, "cubic", "spacing"),
        (0, 1, "uniform", "T"),
    ],
)
def test_ddim_timesteps_rejects_bad_arguments(T, steps, spacing, match):
    """steps outside 1..T, an unknown spacing or a bad T raise ValueError."""
    with pytest.raises(ValueError, match=match):
        ddim_timesteps(T, steps, spacing)


@given(st.integers(1, 300), st.sampled_from(INDEX_SPACINGS))
def test_ddim_timesteps_without_steps_is_the_full_grid(T, spacing):
    """steps = None means steps = T: the full grid T, ..., 0, for every spacing."""
    np.testing.assert_array_equal(ddim_timesteps(T, None, spacing), ddim_timesteps(T, T, spacing))
    np.testing.assert_array_equal(ddim_timesteps(T), np.arange(T, -1, -1))


# -- every named grid, on any schedule ----------------------------------------------------


@given(schedules(zero_terminal_snr=True), st.data(), st.sampled_from(SPACINGS))
def test_every_grid_is_strictly_decreasing_distinct_integers_from_T_to_0(schedule, data, spacing):
    """sampling_timesteps(schedule, steps, spacing), for any schedule (zero terminal SNR
    included), any budget 1..T and every spacing: steps + 1 distinct int64 entries,
    strictly decreasing, from T to 0; the T-only spacings equal ddim_timesteps."""
    steps = data.draw(st.integers(1, schedule.T))
    grid = sampling_timesteps(schedule, steps, spacing)
    assert grid.shape == (steps + 1,) and grid.dtype == np.int64
    assert grid[0] == schedule.T and grid[-1] == 0
    assert np.all(np.diff(grid) < 0)
    if spacing in INDEX_SPACINGS:
        np.testing.assert_array_equal(grid, ddim_timesteps(schedule.T, steps, spacing))


@given(schedules(max_T=300, zero_terminal_snr=True), st.sampled_from(SPACINGS))
def test_every_grid_with_T_steps_is_the_full_grid(schedule, spacing):
    """steps = T (or None) leaves no choice: T, T - 1, ..., 0 for every spacing."""
    full = np.arange(schedule.T, -1, -1)
    np.testing.assert_array_equal(sampling_timesteps(schedule, schedule.T, spacing), full)
    np.testing.assert_array_equal(sampling_timesteps(schedule, None, spacing), full)


def _nearest_in_log_snr(schedule, targets):
    """Brute force: for each target, the step t in 1..T of nearest log SNR (smallest t on a tie)."""
    distance = np.abs(schedule.log_snr[1:, None] - targets[None, :])
    return 1 + np.argmin(distance, axis=0)


@given(st.integers(2, 40), st.sampled_from([linear_schedule(1000), linear_schedule(4000)]))
def test_logsnr_grid_is_uniform_in_log_snr_to_the_nearest_step(steps, schedule):
    """DPM-Solver (Lu et al. 2022a): the inner points are the steps of nearest log SNR to
    log SNR_T + (k / N)(log SNR_1 - log SNR_T), k = 1..N - 1 (a brute-force search; on a
    long linear schedule the targets rarely share a step; cases where they do, and the
    grid moves one apart, are left out)."""
    log_snr = schedule.log_snr
    targets = log_snr[-1] + np.arange(1, steps) / steps * (log_snr[1] - log_snr[-1])
    expected = _nearest_in_log_snr(schedule, targets)
    assume(np.all(np.diff(expected) < 0) and expected[0] < schedule.T)
    np.testing.assert_array_equal(logsnr_timesteps(schedule, steps)[1:-1], expected)


@given(st.integers(2, 40), st.floats(1.0, 10.0))
def test_karras_grid_is_uniform_in_sigma_to_the_one_over_rho(steps, rho):
    """Karras et al. (2022), eq. 5: sigma_i^(1/rho) evenly spaced from sigma_T^(1/rho) to
    sigma_1^(1/rho), i = 0..N - 1, each at the step of nearest log SNR (brute force), then
    0; the last point before the data is step 1 (sigma_min = sigma_1). Linear schedule,
    T = 4000; budgets whose targets share a step (the grid moves them apart) left out."""
    schedule = linear_schedule(4000)
    sigma = np.exp(-0.5 * schedule.log_snr)
    roots = np.linspace(sigma[-1] ** (1 / rho), sigma[1] ** (1 / rho), steps)
    expected = _nearest_in_log_snr(schedule, -2 * np.log(roots**rho))
    grid = karras_timesteps(schedule, steps, rho)
    assert grid[-2] == 1 and grid[0] == schedule.T
    assume(np.all(np.diff(expected[1:]) < 0) and expected[1] < schedule.T)
    np.testing.assert_array_equal(grid[1:-1], expected[1:])


def test_log_snr_grids_start_below_the_top_at_zero_terminal_snr():
    """Where SNR_T = 0 (log SNR = -inf) the targets run from step T - 1: finite, and the
    grid still starts at T."""
    schedule = rescale_zero_terminal_snr(linear_schedule(1000))
    for grid in (logsnr_timesteps(schedule, 10), karras_timesteps(schedule, 10)):
        assert grid[0] == 1000 and grid[-1] == 0 and np.all(np.diff(grid) < 0)
        assert 900 < grid[1] < 1000  # the first jump is a jump, not a collapse to step 1


@given(st.integers(2, 200), st.data())
def test_default_spacing_is_trailing_and_ends_with_a_full_jump(T, data):
    """The default grid of the samplers is "trailing": its last jump is about T / N long
    (within one step), so no call is spent at step 1 where nothing is left to denoise."""
    steps = data.draw(st.integers(1, T))
    assert DEFAULT_SPACING == "trailing"
    grid = sampling_timesteps(linear_schedule(T), steps, DEFAULT_SPACING)
    assert abs(grid[-2] - T / steps) <= 0.5


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sampling_timesteps(linear_schedule(10), 5, "cubic"), "spacing"),
        (lambda: sampling_timesteps(linear_schedule(10), 11, "logsnr"), "steps"),
        (lambda: karras_timesteps(linear_schedule(10), 5, rho=0.0), "rho"),
        (lambda: logsnr_timesteps(np.ones(10), 5), "schedule"),
        (lambda: ddim_timesteps(10, 5, "logsnr"), "sampling_timesteps"),
    ],
)
def test_sampling_timesteps_rejects_bad_arguments(call, match):
    """An unknown spacing, a budget outside 1..T, rho <= 0, a non-schedule, or a schedule
    grid asked of ddim_timesteps raise ValueError / TypeError naming the argument."""
    with pytest.raises((ValueError, TypeError), match=match):
        call()
