"""Per-jump coefficients of the samplers that solve the probability-flow ODE or the reverse
SDE on a grid of steps (`minidiff.process.sampling_timesteps`): the noise level of the ODE's
variables, the Euler-Maruyama rate of the reverse SDE, DDIM inversion, DPM-Solver++(2M) and
DPM-Solver++(3M).

Each is a float64 function of the schedule's tables; `minidiff.diffusion.sde` and
`minidiff.diffusion.samplers` cast them once and combine them with the denoiser's output.
A jump runs from t to t_prev < t (t_prev to t for an inversion); alpha = sqrt(alpha_bar)
and sigma = sqrt(1 - alpha_bar) in DPM-Solver's notation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from minidiff.process.schedule import Schedule

__all__ = [
    "DpmSolver3mCoefficients",
    "DpmSolverCoefficients",
    "ddim_inversion_coefficients",
    "dpm_solver_pp_2m_coefficients",
    "dpm_solver_pp_3m_coefficients",
    "ode_sigma",
    "sde_step_variance",
]


def ode_sigma(schedule: Schedule) -> np.ndarray:
    """(T + 1,) sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t) = exp(-log SNR_t / 2), the
    noise level of y = x / sqrt(alpha_bar) (Song, Meng & Ermon 2021, eq. 14): 0 at t = 0,
    inf where alpha_bar_t = 0."""
    with np.errstate(over="ignore"):
        return np.exp(-0.5 * schedule.log_snr)


def sde_step_variance(schedule: Schedule, t: np.ndarray, t_prev: np.ndarray) -> np.ndarray:
    """h = 1 - alpha_bar_t / alpha_bar_{t_prev} for the jumps t -> t_prev: the integrated rate
    of the VP SDE over a jump (Song et al. 2021, eq. 11), to first order in
    log(alpha_bar_{t_prev} / alpha_bar_t); beta_t on consecutive steps, in [0, 1], and 1 where
    alpha_bar_t = 0. Computed from the log ratio, so it is exact for small betas."""
    return -np.expm1(schedule.log_alpha_bar[t] - schedule.log_alpha_bar[t_prev])


def ddim_inversion_coefficients(
    schedule: Schedule, t_prev: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(scale, direction) of DDIM inversion's step up a jump t_prev -> t (Song et al. 2021,
    sec. 4.3, eq. 13): x_t = scale x_{t_prev} + direction eps_hat, with

        scale = sqrt(alpha_bar_t / alpha_bar_{t_prev}),
        direction = sqrt(1 - alpha_bar_t) - sqrt(alpha_bar_t) sigma_{t_prev},

    sigma_{t_prev} = sqrt(1 - alpha_bar_{t_prev}) / sqrt(alpha_bar_{t_prev}) (`ode_sigma`):
    the deterministic DDIM step with eta = 0, solved for the upper state.
    """
    with np.errstate(divide="ignore"):
        scale = np.exp(0.5 * (schedule.log_alpha_bar[t] - schedule.log_alpha_bar[t_prev]))
        sigma_prev = schedule.sqrt_one_minus_alpha_bar[t_prev] / schedule.sqrt_alpha_bar[t_prev]
    direction = schedule.sqrt_one_minus_alpha_bar[t] - schedule.sqrt_alpha_bar[t] * sigma_prev
    return scale, direction


@dataclass(frozen=True)
class DpmSolverCoefficients:
    """Per-jump factors of DPM-Solver++(2M):
    x_{t_i} = a_i x_{t_{i-1}} + b_i x0_hat_{i-1} + c_i x0_hat_{i-2}, each (N,)."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray


def dpm_solver_pp_2m_coefficients(schedule: Schedule, grid: np.ndarray) -> DpmSolverCoefficients:
    """Per-jump float64 coefficients of DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2) on
    a grid T = grid[0] > ... > grid[-1] = 0:

        h_i = lambda_{t_i} - lambda_{t_{i-1}},  a_i = sigma_{t_i} / sigma_{t_{i-1}},
        D_i = (1 + 1 / (2 r_i)) x0_hat_{i-1} - 1 / (2 r_i) x0_hat_{i-2},  r_i = h_{i-1} / h_i,
        x_{t_i} = a_i x_{t_{i-1}} - alpha_{t_i} (exp(-h_i) - 1) D_i,

    with lambda = log(alpha / sigma), half the log SNR. The first jump (no previous
    prediction) and the last one (lambda_0 = inf makes h infinite, r = 0) are first
    order (D = x0_hat_{i-1}); a previous h of +inf (from alpha_bar_T = 0) also gives
    weight 0 to the older prediction.
    """
    half_log_snr = 0.5 * schedule.log_snr  # lambda, -inf at alpha_bar = 0, +inf at t = 0
    t, t_prev = grid[:-1], grid[1:]  # the jump t -> t_prev
    h = half_log_snr[t_prev] - half_log_snr[t]  # > 0, possibly inf
    second_order = (np.arange(len(t)) > 0) & (t_prev > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(second_order, h / (2 * np.roll(h, 1)), 0.0)
    weight = np.where(second_order & np.isfinite(ratio), ratio, 0.0)  # 1 / (2 r_i)
    b = -schedule.sqrt_alpha_bar[t_prev] * np.expm1(-h)  # alpha (1 - e^{-h}) >= 0
    a = schedule.sqrt_one_minus_alpha_bar[t_prev] / schedule.sqrt_one_minus_alpha_bar[t]
    return DpmSolverCoefficients(a=a, b=b * (1 + weight), c=-b * weight)


@dataclass(frozen=True)
class DpmSolver3mCoefficients:
    """Per-jump factors of DPM-Solver++(3M): x_{t_i} = a_i x_{t_{i-1}} + b_i x0_hat_{i-1}
    + c_i x0_hat_{i-2} + d_i x0_hat_{i-3}, each (N,); ``order`` (N,) is the order of each
    jump (1, 2 or 3)."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    d: np.ndarray
    order: np.ndarray


def _exponential_moments(h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """I_k = int_0^h e^(u - h) u^k du for k = 0, 1, 2 and finite h > 0:

        I_0 = 1 - e^-h,  I_1 = h - I_0,  I_2 = h^2 - 2 I_1   (integration by parts),

    I_1 and I_2 from their Taylor series sum_n (-h)^n / n! (n >= 2), -2 sum (-h)^n / n!
    (n >= 3) for h < 0.05, where the closed forms cancel; the series to n = 9 is exact to
    float64 there."""
    i0 = -np.expm1(-h)
    small = h < 0.05
    hs = np.where(small, h, 0.0)
    series1 = sum((-hs) ** n / math.factorial(n) for n in range(2, 10))
    series2 = -2 * sum((-hs) ** n / math.factorial(n) for n in range(3, 10))
    with np.errstate(invalid="ignore"):
        i1 = np.where(small, series1, h - i0)
        i2 = np.where(small, series2, h**2 - 2 * i1)
    return i0, i1, i2


def dpm_solver_pp_3m_coefficients(schedule: Schedule, grid: np.ndarray) -> DpmSolver3mCoefficients:
    """Per-jump float64 coefficients of DPM-Solver++(3M), the third-order multistep
    exponential integrator of Lu et al. (2022b, DPM-Solver++) in lambda = half log SNR with the data
    prediction, on a grid T = grid[0] > ... > grid[-1] = 0.

    The probability-flow ODE's exact solution over a jump s -> t, in the data-prediction
    form of DPM-Solver++ (Lu et al. 2022b), is

        x_t = (sigma_t / sigma_s) x_s
              + sigma_t int_{lambda_s}^{lambda_t} e^lambda x0(lambda) dlambda.

    A third-order jump replaces x0(lambda) by the quadratic through the last three
    predictions (u = lambda - lambda_s = 0, -h_0, -h_0 - h_1, the previous two jumps'
    lengths) and integrates it exactly: with the moments alpha_t I_k of
    `_exponential_moments` (sigma_t e^(lambda_s + u) = alpha_t e^(u - h)), the Lagrange
    basis gives

        b = alpha_t (I_2 + (2 h_0 + h_1) I_1 + h_0 (h_0 + h_1) I_0) / (h_0 (h_0 + h_1)),
        c = -alpha_t (I_2 + (h_0 + h_1) I_1) / (h_0 h_1),
        d = alpha_t (I_2 + h_0 I_1) / ((h_0 + h_1) h_1).

    The first jump is first order and the second is DPM-Solver++(2M)'s
    (`dpm_solver_pp_2m_coefficients`), as is any jump whose history holds an infinite h
    (alpha_bar_T = 0); the last jump (lambda_0 = inf) is first order: x_0 = x0_hat.
    """
    two = dpm_solver_pp_2m_coefficients(schedule, grid)
    half_log_snr = 0.5 * schedule.log_snr
    t, t_prev = grid[:-1], grid[1:]
    n = len(t)
    h = half_log_snr[t_prev] - half_log_snr[t]  # this jump's length, inf on the last
    h0, h1 = np.roll(h, 1), np.roll(h, 2)  # the previous two jumps' lengths
    third = (np.arange(n) >= 2) & (t_prev > 0) & np.isfinite(h0) & np.isfinite(h1)
    h, h0, h1 = (np.where(third, v, 1.0) for v in (h, h0, h1))  # placeholders elsewhere
    i0, i1, i2 = _exponential_moments(h)
    alpha = schedule.sqrt_alpha_bar[t_prev]
    b3 = alpha * (i2 + (2 * h0 + h1) * i1 + h0 * (h0 + h1) * i0) / (h0 * (h0 + h1))
    c3 = -alpha * (i2 + (h0 + h1) * i1) / (h0 * h1)
    d3 = alpha * (i2 + h0 * i1) / ((h0 + h1) * h1)
    order = np.where(third, 3, np.where(two.c != 0, 2, 1))
    return DpmSolver3mCoefficients(
        a=two.a,
        b=np.where(third, b3, two.b),
        c=np.where(third, c3, two.c),
        d=np.where(third, d3, 0.0),
        order=order,
    )
