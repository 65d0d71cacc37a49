"""Tests of `minidiff.training.budget`."""

import pytest

from minidiff.training.budget import Budget


def test_a_spent_budget_stops_and_records_the_step():
    """A zero CPU budget is spent at the first call; no limit never is; the step and
    the times of the last call are kept."""
    spent = Budget(max_cpu_seconds=0.0)
    assert spent(1) and spent.step == 1 and spent.cpu_seconds >= 0
    endless = Budget()
    assert not any(endless(step) for step in range(1, 50)) and endless.step == 49


@pytest.mark.parametrize("bad", [-1.0, float("inf"), True, "5"])
def test_bad_limits_are_refused(bad):
    """Limits are finite numbers >= 0 or None; the message names the argument."""
    with pytest.raises(ValueError, match="max_seconds"):
        Budget(max_seconds=bad)
