"""Tests of `minidiff.diffusion.budget`."""

from dataclasses import dataclass

import pytest

from minidiff.diffusion.budget import TrainingLog, check_counts


def test_log_means_and_last_step():
    """Records every log_every steps hold the mean loss since the last record; the last step
    is always recorded; the callback sees each record."""
    seen = []
    log = TrainingLog(steps=5, log_every=2, log=seen.append)
    spent = [log.update(step, float(step)) for step in range(1, 6)]
    assert [r["step"] for r in log.history] == [2, 4, 5] and not any(spent)
    assert [r["loss"] for r in log.history] == [1.5, 3.5, 5.0] and seen == log.history


def test_budget_spent_stops_and_records():
    """A zero CPU budget is spent at the first step, which is then recorded."""
    log = TrainingLog(steps=100, log_every=50, max_cpu_seconds=0.0)
    assert log.update(1, 2.0) and log.history[-1]["step"] == 1


def test_check_counts():
    """Counts must be ints >= 1 (not bools) and lr > 0."""

    @dataclass
    class Settings:
        steps: object = 3
        lr: float = 1e-3

    check_counts(Settings(), ("steps",))
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="steps"):
            check_counts(Settings(steps=bad), ("steps",))
    with pytest.raises(ValueError, match="lr"):
        check_counts(Settings(lr=0.0), ("steps",))
