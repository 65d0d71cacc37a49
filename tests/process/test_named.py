"""Proofs for minidiff.process.named: the schedules by name and the toy's schedule."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.process import (
    SCHEDULES,
    cosine_schedule,
    linear_schedule,
    make_schedule,
    sigmoid_schedule,
    toy_schedule,
)
from tests.tolerances import ATOL, RTOL


@given(st.sampled_from(SCHEDULES), st.integers(1, 1000))
def test_make_schedule_gives_each_named_preset(name, T):
    """make_schedule(name, T) is the preset of that name; an unknown name raises ValueError
    listing the known ones."""
    preset = {"linear": linear_schedule, "cosine": cosine_schedule, "sigmoid": sigmoid_schedule}
    np.testing.assert_array_equal(make_schedule(name, T).beta, preset[name](T).beta)
    with pytest.raises(ValueError, match="linear"):
        make_schedule(name + "_unknown", T)


def test_toy_schedule_reaches_near_pure_noise_with_moderate_last_beta():
    """The toy schedule ends near pure noise (alpha_bar_T < 1e-4) for any T from 40 to
    1000, with beta_T = 20 / T, and rejects T below 21 (where beta_T would reach 1)."""
    for steps in (40, 100, 200, 1000):
        schedule = toy_schedule(steps)
        assert schedule.alpha_bar[-1] < 1e-4
        np.testing.assert_allclose(schedule.beta[-1], 20.0 / steps, rtol=RTOL, atol=ATOL)
    with pytest.raises(ValueError, match="T must be"):
        toy_schedule(20)

