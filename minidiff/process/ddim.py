"""DDIM's family of non-Markovian forward processes (Song, Meng & Ermon 2021).

For a pair of steps t_prev < t and any sigma with 0 <= sigma^2 <= 1 - alpha_bar_{t_prev},

    q_sigma(x_{t_prev} | x_t, x_0) = N( sqrt(alpha_bar_{t_prev}) x_0
        + sqrt(1 - alpha_bar_{t_prev} - sigma^2)
          * (x_t - sqrt(alpha_bar_t) x_0) / sqrt(1 - alpha_bar_t),
        sigma^2 I )                                                   (DDIM, eq. 7)

keeps the marginals q(x_{t_prev} | x_0) of the DDPM forward process. The choice

    sigma(eta) = eta sqrt((1 - alpha_bar_{t_prev}) / (1 - alpha_bar_t))
                     sqrt(1 - alpha_bar_t / alpha_bar_{t_prev})          (DDIM, eq. 16)

interpolates between the deterministic DDIM sampler (eta = 0) and, for consecutive
steps, the DDPM posterior (eta = 1).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from minidiff.process._time import as_float64, check_batch, check_t, gather
from minidiff.process.forward import log_alpha_bar_ratio
from minidiff.process.schedule import Schedule

__all__ = ["ddim_sigma", "ddim_posterior_mean_var"]


def _check_pair(schedule: Schedule, t, t_prev):
    t = check_t(t, schedule.T)
    t_prev = check_t(t_prev, schedule.T, low=0, name="t_prev")
    if np.any(t_prev >= t):
        raise ValueError("t_prev must be smaller than t")
    return t, t_prev


def ddim_sigma(
    schedule: Schedule, t: int | np.ndarray, t_prev: int | np.ndarray, eta: float
) -> np.ndarray:
    """sigma_t(eta) of DDIM, eq. 16, for a jump from t to t_prev < t.

    Args:
        schedule: the schedule.
        t: int in 1..T or (B,) integers.
        t_prev: int in 0..t-1 or (B,) integers.
        eta: >= 0; 0 is deterministic DDIM, 1 the DDPM posterior for t_prev = t - 1.

    Returns:
        sigma with the shape of ``t`` (a float64 scalar array for scalar t).
    """
    if not (np.isfinite(eta) and eta >= 0):
        raise ValueError(f"eta must be a finite number >= 0, got {eta!r}")
    t, t_prev = _check_pair(schedule, t, t_prev)
    one_minus = schedule.one_minus_alpha_bar
    # 1 - alpha_bar_t / alpha_bar_{t_prev} from the log ratio: exact for small betas, and
    # finite where both alpha_bars underflow to 0 (where the plain ratio would be 0 / 0).
    one_minus_ratio = -np.expm1(log_alpha_bar_ratio(schedule, t_prev, t))
    return eta * np.sqrt(one_minus[t_prev] / one_minus[t] * one_minus_ratio)


def ddim_posterior_mean_var(
    schedule: Schedule,
    x0: ArrayLike,
    xt: ArrayLike,
    t: int | np.ndarray,
    t_prev: int | np.ndarray,
    sigma: ArrayLike,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of q_sigma(x_{t_prev} | x_t, x_0) (DDIM, eq. 7).

    Args:
        schedule: the schedule.
        x0: (B, ...) clean data (or a prediction of it).
        xt: (B, ...) the state at step t.
        t: int in 1..T or (B,) integers.
        t_prev: int or (B,) integers with 0 <= t_prev < t.
        sigma: scalar or (B,) with 0 <= sigma^2 <= 1 - alpha_bar_{t_prev}, e.g.
            `ddim_sigma`.

    Returns:
        mean, var: both shaped like ``xt``.
    """
    x0 = as_float64(x0, "x0")
    xt = as_float64(xt, "xt")
    t, t_prev = _check_pair(schedule, t, t_prev)
    check_batch(xt, t, "xt")
    check_batch(xt, t_prev, "xt")
    sigma = np.asarray(sigma, dtype=np.float64)
    sigma = sigma.reshape(sigma.shape + (1,) * (xt.ndim - sigma.ndim)) if sigma.ndim else sigma
    direction_var = gather(schedule.one_minus_alpha_bar, t_prev, xt.ndim) - sigma**2
    if np.any(sigma < 0) or np.any(direction_var < -1e-12):
        raise ValueError(
            f"sigma must satisfy 0 <= sigma^2 <= 1 - alpha_bar_{{t_prev}}, got sigma = {sigma} "
            f"with 1 - alpha_bar_{{t_prev}} = {schedule.one_minus_alpha_bar[t_prev]}"
        )
    # the noise that x_t carries given x_0, then eq. 7: signal at t_prev, the same noise
    # direction scaled to the variance left after sigma^2
    eps = (xt - gather(schedule.sqrt_alpha_bar, t, xt.ndim) * x0) / gather(
        schedule.sqrt_one_minus_alpha_bar, t, xt.ndim
    )
    signal = gather(schedule.sqrt_alpha_bar, t_prev, xt.ndim) * x0
    mean = signal + np.sqrt(np.maximum(direction_var, 0.0)) * eps
    var = np.broadcast_to(sigma**2, mean.shape)
    return mean, np.array(var)
