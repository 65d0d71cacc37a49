"""Proofs for minidiff.process.grid: the grids of DDIM and of every grid sampler."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.process import SPACINGS, ddim_timesteps


@given(st.integers(1, 2000), st.data(), st.sampled_from(SPACINGS))
def test_ddim_timesteps_is_a_strictly_decreasing_grid_from_T_to_0(T, data, spacing):
    """ddim_timesteps(T, steps, spacing) has steps + 1 integer entries, strictly decreasing
    (so no duplicates), starting at T and ending at 0."""
    steps = data.draw(st.integers(1, T))
    grid = ddim_timesteps(T, steps, spacing)
    assert grid.shape == (steps + 1,) and np.issubdtype(grid.dtype, np.integer)
    assert grid[0] == T and grid[-1] == 0
    assert np.all(np.diff(grid) < 0)


@given(st.integers(1, 300), st.sampled_from(SPACINGS))
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


@given(st.integers(1, 300), st.sampled_from(SPACINGS))
def test_ddim_timesteps_without_steps_is_the_full_grid(T, spacing):
    """steps = None means steps = T: the full grid T, ..., 0, for every spacing."""
    np.testing.assert_array_equal(ddim_timesteps(T, None, spacing), ddim_timesteps(T, T, spacing))
    np.testing.assert_array_equal(ddim_timesteps(T), np.arange(T, -1, -1))
