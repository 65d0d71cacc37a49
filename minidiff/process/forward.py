"""The forward (noising) process q.

- one step, q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I)  (Ho et al. 2020, eq. 2)
- the marginal, q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)  (eq. 4)
- between two steps s < t, q(x_t | x_s) = N(sqrt(alpha_bar_t / alpha_bar_s) x_s,
  (1 - alpha_bar_t / alpha_bar_s) I)  (Kingma et al. 2021, eq. 7 in discrete time)
"""

from __future__ import annotations

import numpy as np

from minidiff.process._time import as_float64, check_batch, check_t, gather
from minidiff.process.schedule import Schedule

__all__ = ["q_step_mean_var", "q_mean_var", "q_mean_var_between", "q_sample"]


def q_step_mean_var(
    schedule: Schedule, x_prev: np.ndarray, t: int | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of one forward step q(x_t | x_{t-1}) (Ho et al. 2020, eq. 2).

    mean = sqrt(alpha_t) x_{t-1},  var = beta_t.

    Args:
        schedule: the schedule.
        x_prev: (B, ...) the state x_{t-1}.
        t: int in 1..T, or (B,) integers.

    Returns:
        mean and var, both shaped like ``x_prev``.
    """
    x_prev = as_float64(x_prev, "x_prev")
    t = check_t(t, schedule.T)
    check_batch(x_prev, t, "x_prev")
    mean = gather(np.sqrt(schedule.alpha), t, x_prev.ndim) * x_prev
    var = np.broadcast_to(gather(schedule.beta, t, x_prev.ndim), mean.shape)
    return mean, np.array(var)


def q_mean_var(
    schedule: Schedule, x0: np.ndarray, t: int | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of q(x_t | x_0) (Ho et al. 2020, eq. 4).

    mean = sqrt(alpha_bar_t) x_0,  var = 1 - alpha_bar_t.

    Args:
        schedule: the schedule.
        x0: (B, ...) clean data.
        t: int in 0..T, or (B,) integers (t = 0 gives x_0 itself, variance 0).

    Returns:
        mean and var, both shaped like ``x0``.
    """
    x0 = as_float64(x0, "x0")
    t = check_t(t, schedule.T, low=0)
    check_batch(x0, t, "x0")
    mean = gather(schedule.sqrt_alpha_bar, t, x0.ndim) * x0
    var = np.broadcast_to(gather(1.0 - schedule.alpha_bar, t, x0.ndim), mean.shape)
    return mean, np.array(var)


def q_mean_var_between(
    schedule: Schedule, xs: np.ndarray, s: int | np.ndarray, t: int | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of q(x_t | x_s) for 0 <= s <= t <= T.

    mean = sqrt(alpha_bar_t / alpha_bar_s) x_s,  var = 1 - alpha_bar_t / alpha_bar_s.
    The ratio is the product of alpha_r over s < r <= t, computed as such so that it
    stays exact when alpha_bar_s is tiny.
    """
    xs = as_float64(xs, "xs")
    s = check_t(s, schedule.T, low=0, name="s")
    t = check_t(t, schedule.T, low=0)
    if np.any(s > t):
        raise ValueError("q(x_t | x_s) needs s <= t")
    check_batch(xs, t, "xs")
    log_alpha_bar = np.concatenate([[0.0], np.cumsum(np.log(schedule.alpha[1:]))])
    with np.errstate(divide="ignore"):
        ratio = np.exp(gather(log_alpha_bar, t, xs.ndim) - gather(log_alpha_bar, s, xs.ndim))
    mean = np.sqrt(ratio) * xs
    var = np.broadcast_to(1.0 - ratio, mean.shape)
    return mean, np.array(var)


def q_sample(
    schedule: Schedule, x0: np.ndarray, t: int | np.ndarray, eps: np.ndarray
) -> np.ndarray:
    """Draw x_t ~ q(x_t | x_0) by reparameterisation (Ho et al. 2020, eq. 4 and Alg. 1):

    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps,  eps ~ N(0, I).

    Args:
        schedule: the schedule.
        x0: (B, ...) clean data.
        t: int in 0..T or (B,) integers.
        eps: (B, ...) standard normal noise, same shape as ``x0``.

    Returns:
        x_t: (B, ...).
    """
    x0 = as_float64(x0, "x0")
    eps = as_float64(eps, "eps")
    if eps.shape != x0.shape:
        raise ValueError(f"eps must have the shape of x0 {x0.shape}, got {eps.shape}")
    t = check_t(t, schedule.T, low=0)
    check_batch(x0, t, "x0")
    return (
        gather(schedule.sqrt_alpha_bar, t, x0.ndim) * x0
        + gather(schedule.sqrt_one_minus_alpha_bar, t, x0.ndim) * eps
    )
