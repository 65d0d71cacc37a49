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
steps, the DDPM posterior (eta = 1). The sampler's update (DDIM, eq. 12) is eq. 7's mean at
the predicted x0_hat plus sigma z; `ddim_coefficients` gives its three per-jump factors,
which the NumPy and the PyTorch samplers both use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from minidiff.process.forward import log_alpha_bar_ratio
from minidiff.process.indexing import as_float64, check_batch, check_t, gather, over_batch
from minidiff.process.parameterization import eps_from_x0
from minidiff.process.schedule import Schedule

__all__ = [
    "DdimCoefficients",
    "ddim_coefficients",
    "ddim_direction",
    "ddim_posterior_mean_var",
    "ddim_sigma",
]


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
    x0 = as_float64(x0)
    xt = as_float64(xt)
    t, t_prev = _check_pair(schedule, t, t_prev)
    check_batch(xt, t, "xt")
    check_batch(xt, t_prev, "xt")
    sigma = np.asarray(sigma, dtype=np.float64)
    ### BEGIN SOLUTION
    direction = over_batch(ddim_direction(schedule, t_prev, sigma), xt.ndim)
    # the noise that x_t carries given x_0, then eq. 7: signal at t_prev, the same noise
    # direction scaled to the variance left after sigma^2
    eps = eps_from_x0(schedule, xt, t, x0)
    mean = gather(schedule.sqrt_alpha_bar, t_prev, xt.ndim) * x0 + direction * eps
    var = np.broadcast_to(over_batch(sigma, xt.ndim) ** 2, mean.shape)
    return mean, np.array(var)
    ### END SOLUTION


def ddim_direction(schedule: Schedule, t_prev: int | np.ndarray, sigma: ArrayLike) -> np.ndarray:
    """The factor sqrt(1 - alpha_bar_{t_prev} - sigma^2) of the noise direction in DDIM,
    eq. 7 and eq. 12: the part of x_{t_prev}'s noise level not drawn afresh.

    Args:
        schedule: the schedule.
        t_prev: int in 0..T-1 or (B,) integers.
        sigma: scalar or (B,) with 0 <= sigma^2 <= 1 - alpha_bar_{t_prev} (to 1e-12, the
            round-off of `ddim_sigma`), e.g. `ddim_sigma`.

    Returns:
        the factor, shaped like ``t_prev`` and ``sigma`` broadcast together; 0 where sigma^2
        equals 1 - alpha_bar_{t_prev} (up to round-off, clamped at 0).
    """
    t_prev = check_t(t_prev, schedule.T, low=0, name="t_prev")
    sigma = np.asarray(sigma, dtype=np.float64)
    direction_var = schedule.one_minus_alpha_bar[t_prev] - sigma**2
    if np.any(~(sigma >= 0)) or np.any(direction_var < -1e-12):
        raise ValueError(
            f"sigma must satisfy 0 <= sigma^2 <= 1 - alpha_bar_{{t_prev}}, got sigma = {sigma} "
            f"with 1 - alpha_bar_{{t_prev}} = {schedule.one_minus_alpha_bar[t_prev]}"
        )
    return np.sqrt(np.maximum(direction_var, 0.0))


@dataclass(frozen=True)
class DdimCoefficients:
    """The per-jump factors of DDIM's update (Song et al. 2021, eq. 12),

        x_{t_prev} = signal x0_hat + direction eps_hat + sigma z,

    each an array over the jumps t -> t_prev (or a scalar array for one jump).

    Attributes:
        signal: sqrt(alpha_bar_{t_prev}).
        direction: sqrt(1 - alpha_bar_{t_prev} - sigma^2) (`ddim_direction`).
        sigma: sigma_t(eta) of eq. 16 (`ddim_sigma`).
    """

    signal: np.ndarray
    direction: np.ndarray
    sigma: np.ndarray


def ddim_coefficients(
    schedule: Schedule, t: int | np.ndarray, t_prev: int | np.ndarray, eta: float
) -> DdimCoefficients:
    """The factors of DDIM's eq. 12 for the jumps t -> t_prev (e.g. ``grid[:-1]`` and
    ``grid[1:]`` of `minidiff.process.sampling_timesteps`) at stochasticity ``eta``.

    Args:
        schedule: the schedule.
        t: int in 1..T or (N,) integers.
        t_prev: int or (N,) integers with 0 <= t_prev < t.
        eta: >= 0; 0 is deterministic DDIM, 1 the DDPM posterior on consecutive steps.
    """
    sigma = ddim_sigma(schedule, t, t_prev, eta)
    t_prev = check_t(t_prev, schedule.T, low=0, name="t_prev")
    return DdimCoefficients(
        signal=schedule.sqrt_alpha_bar[t_prev],
        direction=ddim_direction(schedule, t_prev, sigma),
        sigma=sigma,
    )
