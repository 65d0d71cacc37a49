"""The forward (noising) process q.

- one step, q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I)  (Ho et al. 2020, eq. 2)
- the marginal, q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)  (eq. 4)
- between two steps s < t, q(x_t | x_s) = N(sqrt(alpha_bar_t / alpha_bar_s) x_s,
  (1 - alpha_bar_t / alpha_bar_s) I)  (Kingma et al. 2021, eq. 7 in discrete time)
"""

from __future__ import annotations

import numpy as np

from minidiff.process.indexing import as_float64, check_batch, check_t, gather, over_batch
from minidiff.process.schedule import Schedule

__all__ = [
    "check_x0_eps",
    "q_step_mean_var",
    "q_mean_var",
    "q_mean_var_between",
    "q_sample",
    "log_alpha_bar_ratio",
]


def log_alpha_bar_ratio(schedule: Schedule, s: int | np.ndarray, t: int | np.ndarray) -> np.ndarray:
    """log(alpha_bar_t / alpha_bar_s) = sum of log(1 - beta_r) over s < r <= t.

    Summed over the range itself rather than taken as a difference of running sums, so
    that a short range far along the chain keeps its digits, and computed with log1p, so
    that 1 - ratio = -expm1(log ratio) keeps its relative precision for small betas.
    Finite where alpha_bar_s and alpha_bar_t both underflow; -inf when the range holds
    beta_T = 1.

    Args:
        schedule: the schedule.
        s: int in 0..T or (B,) integers.
        t: int or (B,) integers with s <= t <= T.

    Returns:
        the log ratio, a float64 scalar or (B,).
    """
    s = check_t(s, schedule.T, low=0, name="s")
    t = check_t(t, schedule.T, low=0)
    if np.any(s > t):
        raise ValueError(f"log(alpha_bar_t / alpha_bar_s) needs s <= t, got s = {s} and t = {t}")
    with np.errstate(divide="ignore"):
        log_alpha = np.log1p(-schedule.beta)  # (T + 1,), log_alpha[0] = 0
    r = np.arange(schedule.T + 1)
    s, t = np.broadcast_arrays(s[..., None], t[..., None])
    inside = (r > s) & (r <= t)  # (..., T + 1)
    return np.where(inside, log_alpha, 0.0).sum(axis=-1)


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
    x_prev = as_float64(x_prev)
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
    x0 = as_float64(x0)
    t = check_t(t, schedule.T, low=0)
    check_batch(x0, t, "x0")
    mean = gather(schedule.sqrt_alpha_bar, t, x0.ndim) * x0
    var = np.broadcast_to(gather(schedule.one_minus_alpha_bar, t, x0.ndim), mean.shape)
    return mean, np.array(var)


def q_mean_var_between(
    schedule: Schedule, xs: np.ndarray, s: int | np.ndarray, t: int | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of q(x_t | x_s) for 0 <= s <= t <= T.

    mean = sqrt(alpha_bar_t / alpha_bar_s) x_s,  var = 1 - alpha_bar_t / alpha_bar_s.

    Args:
        schedule: the schedule.
        xs: (B, ...) the state x_s.
        s: int in 0..T, or (B,) integers.
        t: int in s..T, or (B,) integers.

    Returns:
        mean and var, both shaped like ``xs``.
    """
    xs = as_float64(xs)
    s = check_t(s, schedule.T, low=0, name="s")
    t = check_t(t, schedule.T, low=0)
    if np.any(s > t):
        raise ValueError(f"q(x_t | x_s) needs s <= t, got s = {s} and t = {t}")
    check_batch(xs, t, "xs")
    check_batch(xs, s, "xs")
    log_ratio = log_alpha_bar_ratio(schedule, s, t)
    mean = over_batch(np.exp(0.5 * log_ratio), xs.ndim) * xs
    var = np.broadcast_to(over_batch(-np.expm1(log_ratio), xs.ndim), mean.shape)
    return mean, np.array(var)


def _is_complex(x) -> bool:
    is_complex = getattr(x, "is_complex", None)  # a torch tensor's method
    return bool(is_complex()) if callable(is_complex) else np.iscomplexobj(x)


def check_x0_eps(x0, eps) -> None:
    """The input checks of every q_sample, NumPy (`q_sample`) and torch
    (`minidiff.diffusion.GaussianDiffusion.q_sample`) alike, with the same messages:
    x0 and eps real, and eps of x0's shape (torch would broadcast another shape).

    Args:
        x0, eps: NumPy arrays or torch tensors, (B, ...) each.

    Raises:
        ValueError: a complex x0 or eps, or an eps whose shape differs from x0's.
    """
    for name, value in (("x0", x0), ("eps", eps)):
        if _is_complex(value):
            raise ValueError(f"{name} must be real, got a complex array")
    if tuple(eps.shape) != tuple(x0.shape):
        raise ValueError(f"eps must have the shape of x0 {tuple(x0.shape)}, got {tuple(eps.shape)}")


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
    check_x0_eps(np.asarray(x0), np.asarray(eps))
    x0 = as_float64(x0)
    eps = as_float64(eps)
    t = check_t(t, schedule.T, low=0)
    check_batch(x0, t, "x0")
    ### BEGIN SOLUTION
    return (
        gather(schedule.sqrt_alpha_bar, t, x0.ndim) * x0
        + gather(schedule.sqrt_one_minus_alpha_bar, t, x0.ndim) * eps
    )
    ### END SOLUTION
