"""What a checkpoint must match to be resumed or sampled: its trajectory settings and the
betas of its noise schedule.

A checkpoint's config stores the `TrainConfig` and, under ``"beta"``, the schedule's
beta_0..beta_T (beta_0 = 0, paper indexing). A schedule is rebuilt from its name and T,
so a changed default (other endpoints, another offset) would silently train or sample an
old run with another process; `check_schedule` refuses that instead.

`load_resume_state` loads the checkpoint a resume continues from: the newest one in a
checkpoint directory that loads, after an interrupted clean-up there is finished.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from minidiff.process import Schedule
from minidiff.training.checkpoint import (
    load_checkpoint,
    load_latest_checkpoint,
    repair_checkpoints,
)
from minidiff.training.checkpoint_files import step_name
from minidiff.training.config import TRAJECTORY_KEYS, TrainConfig

__all__ = [
    "BETA_KEY",
    "BETA_RTOL",
    "ScheduleMismatchError",
    "check_schedule",
    "load_resume_state",
    "schedule_record",
    "trajectory_differences",
]

BETA_KEY = "beta"  # the checkpoint config's key for beta_0..beta_T
# Stored and rebuilt betas agree to this relative tolerance: float64 round-off of one
# platform's libm against another's, far below any change of a schedule's settings.
BETA_RTOL = 1e-12


class ScheduleMismatchError(ValueError):
    """A checkpoint's stored betas differ from the schedule its settings build now."""


def _schedule(diffusion: Any) -> Schedule | None:
    schedule = getattr(diffusion, "schedule", None)
    return schedule if isinstance(schedule, Schedule) else None


def schedule_record(diffusion: Any) -> list[float] | None:
    """beta_0..beta_T of the schedule of ``diffusion`` (anything with a ``schedule``
    attribute holding a `minidiff.process.Schedule`) as plain floats, for a checkpoint's
    config; None for a diffusion without one."""
    schedule = _schedule(diffusion)
    if schedule is None:
        return None
    return [float(b) for b in np.asarray(schedule.beta, dtype=np.float64)]


def check_schedule(saved: Any, diffusion: Any, where: str) -> None:
    """Check that the config ``saved`` of a checkpoint stores the betas of the schedule of
    ``diffusion`` (see `schedule_record`).

    A checkpoint written before the betas were stored (no ``"beta"`` key), or a diffusion
    without a schedule, passes: there is nothing to compare.

    Raises:
        ScheduleMismatchError: the stored betas have another length, or differ by more
            than `BETA_RTOL`; the message names ``where``, T and the largest difference.
    """
    stored = saved.get(BETA_KEY) if isinstance(saved, dict) else None
    schedule = _schedule(diffusion)
    if stored is None or schedule is None:
        return
    stored = np.asarray(stored, dtype=np.float64)
    beta = np.asarray(schedule.beta, dtype=np.float64)
    if stored.shape != beta.shape:
        raise ScheduleMismatchError(
            f"{where} was trained with T = {stored.shape[0] - 1} steps, but its settings now "
            f"build a schedule with T = {beta.shape[0] - 1}"
        )
    if not np.allclose(stored, beta, rtol=BETA_RTOL, atol=0.0):
        t = int(np.argmax(np.abs(stored - beta)))
        raise ScheduleMismatchError(
            f"{where} was trained with other betas than its settings build now (at t = {t}: "
            f"stored {stored[t]!r}, rebuilt {beta[t]!r}); a schedule default changed since "
            "it was saved: use the version of minidiff that trained it"
        )


def trajectory_differences(saved: Any, current: dict[str, Any]) -> list[str]:
    """``"key: saved X, given Y"`` for each of `TRAJECTORY_KEYS` whose saved value
    differs from ``current`` (tuples compare equal to the lists read back). A key the
    checkpoint lacks was written before that setting existed, when the run behaved as its
    default does: it is compared as that default."""
    saved = saved if isinstance(saved, dict) else {}
    defaults = TrainConfig().to_dict()
    return [
        f"{key}: saved {saved.get(key, defaults[key])!r}, given {current[key]!r}"
        for key in TRAJECTORY_KEYS
        if _plain(saved.get(key, defaults[key])) != _plain(current[key])
    ]


def _plain(value: Any) -> Any:
    """Tuples as lists, so that a config read back compares equal to the dataclass's."""
    return list(value) if isinstance(value, tuple) else value


def load_resume_state(
    directory: Path, path: str | os.PathLike | None, *, repair: bool, keep_last: int | None,
    **parts: Any,
) -> tuple[dict[str, Any], Path]:  # fmt: skip
    """`load_checkpoint` of the checkpoint ``path``, or (``path`` None) of the newest one
    in ``directory`` that loads (`load_latest_checkpoint`), with the folder it came from.

    Args:
        directory: the run's checkpoint directory.
        path: a checkpoint folder, or None for the latest in ``directory``.
        repair: finish or roll back an interrupted save or clean-up in ``directory``
            first (`repair_checkpoints`, keeping ``keep_last``): the writing rank only.
        keep_last: the checkpoints a repair keeps (None: all).
        parts: the keyword arguments of `load_checkpoint` (``model``, ``ema``, ...).

    Raises:
        CheckpointNotFoundError: no checkpoint.
        CheckpointError: no checkpoint loads.
    """
    if path is not None:
        return load_checkpoint(path, **parts), Path(path)
    if repair:
        repair_checkpoints(directory, keep_last)
    state = load_latest_checkpoint(directory, **parts)
    return state, directory / step_name(state["step"])
