"""Schedules by name: the paper presets of `make_schedule`, and the schedule of the 2-D toy.

`toy_schedule` lives here, beside the presets, because every layer that runs the toy (the
NumPy laboratory, the PyTorch toy model, the presets of `minidiff.configs`) builds it.
"""

from __future__ import annotations

from typing import Literal, get_args

from minidiff.process.schedule import (
    Schedule,
    cosine_schedule,
    linear_schedule,
    sigmoid_schedule,
)

__all__ = ["SCHEDULES", "ScheduleName", "make_schedule", "toy_schedule"]

ScheduleName = Literal["linear", "cosine", "sigmoid"]
SCHEDULES: tuple[str, ...] = get_args(ScheduleName)


def make_schedule(name: ScheduleName, T: int = 1000) -> Schedule:
    """A named preset schedule with its paper defaults: one of `SCHEDULES`."""
    if name == "linear":
        return linear_schedule(T)
    elif name == "cosine":
        return cosine_schedule(T)
    elif name == "sigmoid":
        return sigmoid_schedule(T)
    else:
        raise ValueError(f"unknown schedule {name!r}; expected one of {SCHEDULES}")


def toy_schedule(T: int = 200) -> Schedule:
    """The schedule the 2-D toy trains with: the linear schedule of Ho et al. (2020) with
    its betas scaled by 1000 / T (beta from 0.1 / T to 20 / T), so that any T covers the
    same range of noise levels as T = 1000 (alpha_bar_T <= 5e-5), the extension to any T
    that Nichol & Dhariwal (2021) use. Needs T >= 21 so that beta_T < 1. The default T is
    the toy's (`minidiff.toy.DEFAULT_T`).

    The cosine schedule clips its last beta at 0.999, and a reverse step with such a beta
    multiplies the network's error at t = T by 1 / sqrt(alpha_T) ~ 30; the linear
    schedule's last beta, 20 / T, barely does (by 1.05 for T = 200).
    """
    if isinstance(T, bool) or int(T) != T or T < 21:
        raise ValueError(f"T must be an integer >= 21 for the toy schedule, got {T!r}")
    return linear_schedule(int(T), beta_start=0.1 / T, beta_end=20.0 / T)
