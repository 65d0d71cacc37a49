"""DDIM's family of non-Markovian forward processes (Song, Meng & Ermon 2021).

For a pair of steps t_prev < t and any sigma with 0 <= sigma^2 <= 1 - alpha_bar_{t_prev},

    q_sigma(x_{t_prev} | x_t, x_0) = N( sqrt(alpha_bar_{t_prev}) x_0
        + sqrt(1 - alpha_bar_{t_prev} - sigma^2) (x_t - sqrt(alpha_bar_t) x_0) / sqrt(1 - alpha_bar_t),
        sigma^2 I )                                                   (DDIM, eq. 7)

keeps the marginals q(x_{t_prev} | x_0) of the DDPM forward process. The choice

    sigma(eta) = eta sqrt((1 - alpha_bar_{t_prev}) / (1 - alpha_bar_t))
                     sqrt(1 - alpha_bar_t / alpha_bar_{t_prev})          (DDIM, eq. 16)

interpolates between the deterministic DDIM sampler (eta = 0) and, for consecutive
steps, the DDPM posterior (eta = 1).
"""

from __future__ import annotations

import numpy as np

from minidiff.process._time import as_float64, check_batch, check_t, gather
from minidiff.process.schedule import Schedule

__all__ = ["ddim_sigma", "ddim_posterior_mean_var"]


def _check_pair(schedule: Schedule, t, t_prev):
    t = check_t(t, schedule.T)
    t_prev = check_t(t_prev, schedule.T, low=0, name="t_prev")
    if np.any(t_prev >= t):
        raise ValueError("t_prev must be smaller than t")
    return t, t_prev


def ddim_sigma(schedule: Schedule, t, t_prev, eta: float) -> np.ndarray:
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
    alpha_bar = schedule.alpha_bar
    ab_t, ab_prev = alpha_bar[t], alpha_bar[t_prev]
    return eta * np.sqrt((1.0 - ab_prev) / (1.0 - ab_t) * (1.0 - ab_t / ab_prev))


def ddim_posterior_mean_var(schedule: Schedule, x0, xt, t, t_prev, sigma):
    """Mean and variance of q_sigma(x_{t_prev} | x_t, x_0) (DDIM, eq. 7).

    Args:
        x0: (B, ...) clean data (or a prediction of it).
        xt: (B, ...) the state at step t.
        t, t_prev: steps with 0 <= t_prev < t <= T (int or (B,)).
        sigma: scalar or (B,) with 0 <= sigma^2 <= 1 - alpha_bar_{t_prev}.

    Returns:
        mean, var: both shaped like ``xt``.
    """
    x0 = as_float64(x0, "x0")
    xt = as_float64(xt, "xt")
    t, t_prev = _check_pair(schedule, t, t_prev)
    check_batch(xt, t, "xt")
    sigma = np.asarray(sigma, dtype=np.float64)
    sigma = sigma.reshape(sigma.shape + (1,) * (xt.ndim - sigma.ndim)) if sigma.ndim else sigma
    ab_prev = gather(schedule.alpha_bar, t_prev, xt.ndim)
    direction_var = 1.0 - ab_prev - sigma**2
    if np.any(sigma < 0) or np.any(direction_var < -1e-12):
        raise ValueError("sigma must satisfy 0 <= sigma^2 <= 1 - alpha_bar_{t_prev}")
    eps = (xt - gather(schedule.sqrt_alpha_bar, t, xt.ndim) * x0) / gather(
        schedule.sqrt_one_minus_alpha_bar, t, xt.ndim
    )
    mean = np.sqrt(ab_prev) * x0 + np.sqrt(np.maximum(direction_var, 0.0)) * eps
    var = np.broadcast_to(sigma**2, mean.shape)
    return mean, np.array(var)
