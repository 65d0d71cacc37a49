"""Proofs for minidiff.process.indexing: the validation of time steps and the gathering of
per-step tables over a batch, shared by every process function and the toy layer."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.process.indexing import check_batch, check_t, gather, over_batch
from tests.strategies import schedules


@given(schedules(max_T=100), st.data())
def test_gather_is_the_table_entry_shaped_to_broadcast_over_the_batch(schedule, data):
    """check_t keeps valid steps (an int or a (B,) array) as int64, and gather(table, t,
    ndim) is table[t]: a scalar for a scalar t, shape (B, 1, ..., 1) for t of shape (B,),
    so that it multiplies x: (B, ...) sample by sample."""
    B, ndim = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 4))
    steps = data.draw(st.lists(st.integers(0, schedule.T), min_size=B, max_size=B))
    t = check_t(np.array(steps), schedule.T, low=0)
    assert t.dtype == np.int64 and t.shape == (B,)
    values = gather(schedule.alpha_bar, t, ndim)
    assert values.shape == (B,) + (1,) * (ndim - 1)
    np.testing.assert_array_equal(values.reshape(B), schedule.alpha_bar[steps])
    scalar = check_t(steps[0], schedule.T, low=0)
    assert gather(schedule.alpha_bar, scalar, ndim) == schedule.alpha_bar[steps[0]]
    assert over_batch(np.float64(2.0), ndim) == 2.0


@given(schedules(max_T=100), st.integers(1, 5))
def test_steps_outside_the_range_or_the_batch_are_refused(schedule, B):
    """A step below low or above T raises ValueError naming it; a float or bool step
    raises TypeError; a batch of steps whose length differs from x's batch raises
    ValueError."""
    for bad in (-1, schedule.T + 1):
        with pytest.raises(ValueError, match="out of range"):
            check_t(bad, schedule.T, low=0)
    with pytest.raises(ValueError, match="t = 0"):
        check_t(np.zeros(B, dtype=np.int64), schedule.T)
    for bad in (1.0, True, np.ones(B)):
        with pytest.raises(TypeError, match="integer"):
            check_t(bad, schedule.T)
    with pytest.raises(ValueError, match="batch"):
        check_batch(np.zeros((B + 1, 2)), np.ones(B, dtype=np.int64))
