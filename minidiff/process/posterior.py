"""The forward-process posterior q(x_{t-1} | x_t, x_0).

Ho et al. (2020), eqs. 6-7:

    q(x_{t-1} | x_t, x_0) = N(mu_tilde_t(x_t, x_0), beta_tilde_t I)
    mu_tilde_t = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x_0
               + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t
    beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t

and in terms of the noise (eq. 11):

    mu_tilde_t = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t).

The reverse step p(x_{t-1} | x_t) = N(mu_tilde_t(x_t, x0_hat), sigma_t^2 I) takes this mean
at a predicted x0_hat and one of two fixed variances (Ho et al. 2020, sec. 3.2):
`reverse_variance`.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from minidiff.process.indexing import as_float64, check_batch, check_t, gather
from minidiff.process.schedule import Schedule

__all__ = [
    "FIXED_VARIANCES",
    "FixedVariance",
    "posterior_mean_var",
    "posterior_mean_from_eps",
    "reverse_variance",
]

FixedVariance = Literal["fixed_small", "fixed_large"]
FIXED_VARIANCES: tuple[str, ...] = get_args(FixedVariance)


def posterior_mean_var(
    schedule: Schedule, x0: np.ndarray, xt: np.ndarray, t: int | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, variance and clipped log variance of q(x_{t-1} | x_t, x_0) (Ho et al. 2020, eq. 7).

    Args:
        schedule: the schedule.
        x0: (B, ...) clean data.
        xt: (B, ...) the noisy state at step t.
        t: int in 1..T, or (B,) integers.

    Returns:
        mean: (B, ...) mu_tilde_t(x_t, x_0).
        var: (B, ...) beta_tilde_t (0 at t = 1).
        log_var_clipped: (B, ...) log beta_tilde_t with its t = 1 value replaced by the
            t = 2 value, so that it is finite (see `Schedule.posterior_log_var_clipped`).
    """
    x0 = as_float64(x0)
    xt = as_float64(xt)
    if x0.shape != xt.shape:
        raise ValueError(f"x0 and xt must have the same shape, got {x0.shape} and {xt.shape}")
    t = check_t(t, schedule.T)
    check_batch(xt, t, "xt")
    ### BEGIN SOLUTION
    mean = (
        gather(schedule.posterior_mean_coef_x0, t, x0.ndim) * x0
        + gather(schedule.posterior_mean_coef_xt, t, x0.ndim) * xt
    )
    var = np.broadcast_to(gather(schedule.posterior_var, t, x0.ndim), mean.shape)
    log_var = np.broadcast_to(gather(schedule.posterior_log_var_clipped, t, x0.ndim), mean.shape)
    return mean, np.array(var), np.array(log_var)
    ### END SOLUTION


def posterior_mean_from_eps(
    schedule: Schedule, xt: np.ndarray, t: int | np.ndarray, eps: np.ndarray
) -> np.ndarray:
    """The posterior mean written with the noise (Ho et al. 2020, eq. 11):

    mu_tilde_t = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t).

    Args:
        xt: (B, ...) the noisy state.
        t: int in 1..T or (B,) integers.
        eps: (B, ...) the noise with x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.
    """
    xt = as_float64(xt)
    eps = as_float64(eps)
    t = check_t(t, schedule.T)
    check_batch(xt, t, "xt")
    beta = gather(schedule.beta, t, xt.ndim)
    return (xt - beta / gather(schedule.sqrt_one_minus_alpha_bar, t, xt.ndim) * eps) / np.sqrt(
        gather(schedule.alpha, t, xt.ndim)
    )


def reverse_variance(schedule: Schedule, variance: FixedVariance = "fixed_small") -> np.ndarray:
    """(T + 1,) a fixed variance sigma_t^2 of p(x_{t-1} | x_t) (Ho et al. 2020, sec. 3.2).

    - ``"fixed_small"``: sigma_t^2 = beta_tilde_t, the posterior variance of eq. 7
      (0 at t = 1): `Schedule.posterior_var`.
    - ``"fixed_large"``: sigma_t^2 = beta_t for t >= 2, and beta_tilde_2 at t = 1, as in the
      authors' released code: `Schedule.fixed_large_var`.

    Index 0 is 0. Returns a writable copy of the schedule's table.
    """
    if variance == "fixed_small":
        return schedule.posterior_var.copy()
    elif variance == "fixed_large":
        return schedule.fixed_large_var.copy()
    else:
        raise ValueError(f"unknown variance {variance!r}; expected one of {FIXED_VARIANCES}")
