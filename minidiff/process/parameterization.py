"""Conversions between the quantities a denoiser can predict: eps, x0, v and the score.

With x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (Ho et al. 2020, eq. 4):

- x0  = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)
- eps = (x_t - sqrt(alpha_bar_t) x0) / sqrt(1 - alpha_bar_t)
- v   = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x0   (Salimans & Ho 2022, sec. 4)
- x0  = sqrt(alpha_bar_t) x_t - sqrt(1 - alpha_bar_t) v
- eps = sqrt(1 - alpha_bar_t) x_t + sqrt(alpha_bar_t) v
- score = grad log q(x_t) = -eps / sqrt(1 - alpha_bar_t)   (Song et al. 2021, Vincent 2011)

A denoiser predicts one of `PARAMETERIZATIONS` (eps, x0 or v); the score is a conversion,
not a parameterization a network is trained in here.

Every function takes the noisy state ``xt: (B, ...)``, the step ``t`` (int or (B,)) and a
prediction shaped like ``xt``, and returns an array shaped like ``xt``.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from minidiff.process.indexing import as_float64, check_batch, check_t, gather
from minidiff.process.schedule import Schedule

__all__ = [
    "PARAMETERIZATIONS",
    "Parameterization",
    "x0_from_eps",
    "eps_from_x0",
    "v_from_eps",
    "v_from_x0_eps",
    "x0_from_v",
    "eps_from_v",
    "score_from_eps",
    "eps_from_score",
]

Parameterization = Literal["eps", "x0", "v"]
PARAMETERIZATIONS: tuple[str, ...] = get_args(Parameterization)


def _scales(schedule: Schedule, xt, t, low: int = 1):
    xt = as_float64(xt)
    t = check_t(t, schedule.T, low=low)
    check_batch(xt, t, "xt")
    return (
        xt,
        gather(schedule.sqrt_alpha_bar, t, xt.ndim),
        gather(schedule.sqrt_one_minus_alpha_bar, t, xt.ndim),
    )


def x0_from_eps(schedule: Schedule, xt, t, eps) -> np.ndarray:
    """x0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t) (Ho et al. 2020, eq. 15)."""
    xt, signal, noise = _scales(schedule, xt, t)
    return (xt - noise * as_float64(eps)) / signal


def eps_from_x0(schedule: Schedule, xt, t, x0) -> np.ndarray:
    """eps = (x_t - sqrt(alpha_bar_t) x0) / sqrt(1 - alpha_bar_t)."""
    xt, signal, noise = _scales(schedule, xt, t)
    return (xt - signal * as_float64(x0)) / noise


def v_from_x0_eps(schedule: Schedule, x0, t, eps) -> np.ndarray:
    """The velocity target v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x0
    (Salimans & Ho 2022, sec. 4), from the clean data and the noise."""
    x0, signal, noise = _scales(schedule, x0, t, low=0)
    return signal * as_float64(eps) - noise * x0


def v_from_eps(schedule: Schedule, xt, t, eps) -> np.ndarray:
    """v from x_t and eps: v = (eps - sqrt(1 - alpha_bar_t) x_t) / sqrt(alpha_bar_t)."""
    xt, signal, noise = _scales(schedule, xt, t)
    return (as_float64(eps) - noise * xt) / signal


def x0_from_v(schedule: Schedule, xt, t, v) -> np.ndarray:
    """x0 = sqrt(alpha_bar_t) x_t - sqrt(1 - alpha_bar_t) v (Salimans & Ho 2022)."""
    xt, signal, noise = _scales(schedule, xt, t)
    return signal * xt - noise * as_float64(v)


def eps_from_v(schedule: Schedule, xt, t, v) -> np.ndarray:
    """eps = sqrt(1 - alpha_bar_t) x_t + sqrt(alpha_bar_t) v (Salimans & Ho 2022)."""
    xt, signal, noise = _scales(schedule, xt, t)
    return noise * xt + signal * as_float64(v)


def score_from_eps(schedule: Schedule, xt, t, eps) -> np.ndarray:
    """score = grad_x log q_t(x_t) = -eps / sqrt(1 - alpha_bar_t) (Song et al. 2021, eq. 7;
    Vincent 2011). ``xt`` is only used for validation and broadcasting."""
    xt, _, noise = _scales(schedule, xt, t)
    return -as_float64(eps) / noise


def eps_from_score(schedule: Schedule, xt, t, score) -> np.ndarray:
    """eps = -sqrt(1 - alpha_bar_t) score, the inverse of `score_from_eps`."""
    xt, _, noise = _scales(schedule, xt, t)
    return -noise * as_float64(score)
