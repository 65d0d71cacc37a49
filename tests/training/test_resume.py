"""Tests of `minidiff.training.resume`: stored betas are checked against the schedule a
run's settings build now, and trajectory settings against the saved ones."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.process import cosine_schedule, linear_schedule
from minidiff.training.config import TRAJECTORY_KEYS, TrainConfig
from minidiff.training.resume import (
    BETA_KEY,
    ScheduleMismatchError,
    check_schedule,
    schedule_record,
    trajectory_differences,
)


class Diffusion:
    """Anything with a ``schedule``, as `GaussianDiffusion`."""

    def __init__(self, schedule) -> None:
        self.schedule = schedule


@settings(max_examples=20, deadline=None)
@given(T=st.integers(1, 300))
def test_the_betas_a_run_stores_pass_their_own_check(T):
    """schedule_record gives beta_0..beta_T (beta_0 = 0) as floats, and a config holding
    them passes check_schedule against the same schedule."""
    diffusion = Diffusion(cosine_schedule(T))
    record = schedule_record(diffusion)
    assert len(record) == T + 1 and record[0] == 0.0 and all(type(b) is float for b in record)
    check_schedule({BETA_KEY: record}, diffusion, "here")


def test_other_betas_or_another_T_are_refused_naming_the_step():
    """Betas of another beta_T, or of another T, raise ScheduleMismatchError naming where,
    the step of the largest difference or both T."""
    saved = {BETA_KEY: schedule_record(Diffusion(linear_schedule(10)))}
    with pytest.raises(ScheduleMismatchError, match="here was trained with other betas.*t = 10"):
        check_schedule(saved, Diffusion(linear_schedule(10, beta_end=0.03)), "here")
    with pytest.raises(ScheduleMismatchError, match="T = 10 steps.*T = 11"):
        check_schedule(saved, Diffusion(linear_schedule(11)), "here")


def test_checkpoints_without_betas_and_diffusions_without_a_schedule_pass():
    """A checkpoint written before the betas were stored, or a trainer without a schedule
    (schedule_record None), has nothing to compare."""
    check_schedule({"lr": 1e-3}, Diffusion(linear_schedule(10)), "here")
    check_schedule({BETA_KEY: [0.0, 0.5]}, None, "here")
    assert schedule_record(None) is None


def test_trajectory_differences_name_each_changed_trajectory_setting():
    """Only TRAJECTORY_KEYS count; tuples equal the lists read back from a checkpoint."""
    saved = {**TrainConfig().to_dict(), "betas": [0.9, 0.999]}
    assert trajectory_differences(saved, TrainConfig(steps=5, log_every=1).to_dict()) == []
    changed = trajectory_differences(saved, TrainConfig(lr=0.5, seed=2).to_dict())
    assert changed == ["lr: saved 0.0002, given 0.5", "seed: saved 0, given 2"]
    assert set(TRAJECTORY_KEYS) == {
        "lr",
        "betas",
        "weight_decay",
        "warmup_steps",
        "grad_clip",
        "ema_decay",
        "batch_size",
        "seed",
        "precision",
        "num_bins",
        "p_uncond",
    }


@pytest.mark.parametrize("key", TRAJECTORY_KEYS)
def test_a_setting_a_checkpoint_predates_compares_as_its_default(key):
    """A checkpoint written before a trajectory setting existed (its key absent) ran as
    that setting's default does: it resumes a run at the default and refuses any other
    value, naming the setting."""
    defaults = TrainConfig().to_dict()
    saved = {k: v for k, v in defaults.items() if k != key}
    assert trajectory_differences(saved, defaults) == []
    other = {**defaults, key: "another value"}
    assert trajectory_differences(saved, other) == [
        f"{key}: saved {defaults[key]!r}, given 'another value'"
    ]
