"""The VP SDE view of a discrete diffusion (Song et al. 2021, "Score-based generative
modeling through SDEs"): probability-flow ODE (Euler, Heun), reverse SDE
(Euler-Maruyama) and DPM-Solver++(2M) (Lu et al. 2022).

The time discretisation. The denoiser is only defined at the integer steps of the
discrete schedule, so every sampler here walks a grid T = t_0 > t_1 > ... > t_N = 0 of
integer steps (`minidiff.process.sampling_timesteps`), and the continuous VP SDE
dx = -beta(s) x / 2 ds + sqrt(beta(s)) dw is the one whose marginals equal the discrete
ones at the grid points: alpha_bar(s) = exp(-int_0^s beta) takes the schedule's value
alpha_bar_t at s = t. The score at a grid point is -eps_hat / sqrt(1 - alpha_bar_t)
(Tweedie), eps_hat from the denoiser.

- Probability-flow ODE (`sample_ode`). In the variables y = x / sqrt(alpha_bar) and
  sigma = sqrt((1 - alpha_bar) / alpha_bar) (Song, Meng & Ermon 2021, eq. 14; Karras et
  al. 2022, the variance-exploding form) the ODE reads dy / dsigma = eps(x, t). Euler from
  sigma_t to sigma_{t_prev} is exactly DDIM with eta = 0:
  x_{t_prev} = sqrt(alpha_bar_{t_prev}) x0_hat + sqrt(1 - alpha_bar_{t_prev}) eps_hat.
  Heun (Karras et al. 2022, Algorithm 1) re-evaluates eps at the Euler proposal and uses
  the mean slope: x_{t_prev} = Euler + c (eps_1 - eps_2) / 2 with
  c = sqrt(alpha_bar_{t_prev}) (sigma_t - sigma_{t_prev}); the last jump (to t = 0, where
  the denoiser is not defined) and a jump from sigma_t = inf (zero terminal SNR) are
  Euler steps. Heun calls the denoiser 2 N - 1 times.
- Reverse SDE (`sample_sde`). Euler-Maruyama for
  dx = [-beta x / 2 - beta score] ds + sqrt(beta) dw_bar, with the integrated rate of a
  jump t -> t_prev taken as h = 1 - alpha_bar_t / alpha_bar_{t_prev} (= beta_t on the
  full grid; equal to the exact integral log(alpha_bar_{t_prev} / alpha_bar_t) to first
  order, and finite when alpha_bar_T = 0): x_{t_prev} = x + h (x / 2 + score) + sqrt(h) z.
  Song et al.'s "reverse diffusion" predictor differs only in its factor
  2 - sqrt(1 - h) for 1 + h / 2, the same to first order. The last jump (to t = 0) adds
  no noise, as in Song et al.'s samplers.
- DPM-Solver++(2M) (`sample_dpm_solver_pp_2m`), Lu et al. (2022), Algorithm 2, in
  lambda = log(sqrt(alpha_bar) / sqrt(1 - alpha_bar)) (half the log SNR) with the data
  prediction x0_hat; DPM-Solver++(3M) (`sample_dpm_solver_pp_3m`), its third-order
  multistep sibling (the quadratic through the last three predictions, integrated exactly).

Every grid sampler here walks the ``"trailing"`` grid unless told otherwise
(`minidiff.process.DEFAULT_SPACING`): at 5 calls Heun on the ``"uniform"`` grid diverges
on the 8-D mixture of benchmarks/samplers_ode.py while on ``"trailing"`` it beats DDIM.

The per-jump coefficients come from `minidiff.process` (`ddim_coefficients`, `ode_sigma`,
`sde_step_variance`, `dpm_solver_pp_2m_coefficients`, `dpm_solver_pp_3m_coefficients`).

Interface as in `minidiff.diffusion.samplers` (shape or x_T, and the `SamplerOptions`
generator, noise, progress, return_trajectory with the same layout along the grid, dtype,
device; the ODE and DPM-Solver++ are deterministic and refuse ``noise``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import torch

from minidiff.diffusion._sampling import Denoiser, SamplerOptions, denoise, open_frame
from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.process import (
    DEFAULT_SPACING,
    Spacing,
    ddim_coefficients,
    dpm_solver_pp_2m_coefficients,
    dpm_solver_pp_3m_coefficients,
    ode_sigma,
    sde_step_variance,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "ODE_METHODS",
    "OdeMethod",
    "sample_ode",
    "sample_sde",
    "sample_dpm_solver_pp_2m",
    "sample_dpm_solver_pp_3m",
]

OdeMethod = Literal["euler", "heun"]
ODE_METHODS: tuple[str, ...] = get_args(OdeMethod)


@torch.no_grad()
def sample_ode(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    shape_or_x_T: Sequence[int] | torch.Tensor,
    *,
    steps: int | None = None,
    method: OdeMethod = "heun",
    spacing: Spacing = DEFAULT_SPACING,
    clip_x0: float | None = None,
    **options: Unpack[SamplerOptions],
):
    """Integrate the probability-flow ODE dy / dsigma = eps(x, t) (module docstring) from
    x_T to x_0 on the grid ``sampling_timesteps(schedule, steps, spacing)``.

    For each jump t -> t_prev:
        1. x0_1, eps_1 from denoiser(x_t, t);
        2. Euler: x' = sqrt(alpha_bar_{t_prev}) x0_1 + sqrt(1 - alpha_bar_{t_prev}) eps_1,
           the DDIM step with eta = 0 (`minidiff.process.ddim_coefficients`);
        3. Heun (t_prev > 0, sigma_t finite): eps_2 from denoiser(x', t_prev), and
           x_{t_prev} = x' + c (eps_1 - eps_2) / 2, c = sqrt(alpha_bar_{t_prev})
           (sigma_t - sigma_{t_prev}); in y that is y + (sigma_{t_prev} - sigma_t)
           (eps_1 + eps_2) / 2, the trapezoidal slope.

    Args:
        denoiser, diffusion, shape_or_x_T, clip_x0: as in `sample_ddim`.
        steps: the number of grid jumps (1..T; None: T). Euler calls the denoiser
            ``steps`` times, Heun ``2 steps - 1`` times.
        method: ``"euler"`` (first order; equals DDIM eta = 0) or ``"heun"`` (second order).
        spacing: the grid, see `minidiff.process.sampling_timesteps`.
        **options: as in `sample_ddim` but ``noise``; the generator only draws x_T.

    Returns:
        x_0: (B, ...); or (x_0, trajectory (steps + 1, B, ...)) along the grid.
    """
    if method not in ODE_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {ODE_METHODS}")
    frame = open_frame(
        diffusion, shape_or_x_T, options, desc=f"ode {method}", steps=steps,
        spacing=spacing, clip_x0=clip_x0, stochastic=False,
    )  # fmt: skip
    schedule = diffusion.schedule
    sigma = ode_sigma(schedule)
    t, t_prev = frame.grid[:-1], frame.grid[1:]
    euler = ddim_coefficients(schedule, t, t_prev, eta=0.0)
    heun = (method == "heun") & (t_prev > 0) & np.isfinite(sigma[t])
    with np.errstate(invalid="ignore"):
        correction = np.where(heun, euler.signal * (sigma[t] - sigma[t_prev]), 0.0)
    signal, noise_scale = frame.table(euler.signal), frame.table(euler.direction)
    correction = frame.table(correction)
    x = frame.x_T
    for i, t_i, t_prev_i in frame.jumps():
        x0_1, eps_1 = denoise(denoiser, diffusion, x, t_i, clip_x0)  # 1.
        x_euler = signal[i] * x0_1 + noise_scale[i] * eps_1  # 2.
        if heun[i]:  # 3.
            _, eps_2 = denoise(denoiser, diffusion, x_euler, t_prev_i, clip_x0)
            x = x_euler + correction[i] * (eps_1 - eps_2) / 2
        else:
            x = x_euler
        frame.record(x)
    return frame.result(x)


@torch.no_grad()
def sample_sde(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    shape_or_x_T: Sequence[int] | torch.Tensor,
    *,
    steps: int | None = None,
    spacing: Spacing = DEFAULT_SPACING,
    clip_x0: float | None = None,
    **options: Unpack[SamplerOptions],
):
    """Euler-Maruyama for the reverse VP SDE (Song et al. 2021, eq. 6 with the VP drift
    and diffusion of eq. 11) on the grid ``sampling_timesteps(schedule, steps, spacing)``.

    For each jump t -> t_prev, with h = 1 - alpha_bar_t / alpha_bar_{t_prev}:
        1. score = -eps_hat / sqrt(1 - alpha_bar_t), eps_hat from denoiser(x_t, t);
        2. x_{t_prev} = x_t + h (x_t / 2 + score) + sqrt(h) z, without z on the last jump.

    Args:
        denoiser, diffusion, shape_or_x_T, clip_x0: as in `sample_ddim`.
        steps: the number of jumps and denoiser calls, 1..T (None: T). First order:
            use several hundred.
        spacing, **options: as in `sample_ddim`.

    Returns:
        x_0: (B, ...); or (x_0, trajectory (steps + 1, B, ...)) along the grid.
    """
    frame = open_frame(
        diffusion, shape_or_x_T, options, desc="sde", steps=steps, spacing=spacing,
        clip_x0=clip_x0,
    )  # fmt: skip
    schedule = diffusion.schedule
    t, t_prev = frame.grid[:-1], frame.grid[1:]
    h = sde_step_variance(schedule, t, t_prev)  # 1 at beta_T = 1
    h_table, root_h = frame.table(h), frame.table(np.sqrt(h))
    score_scale = frame.table(1.0 / schedule.sqrt_one_minus_alpha_bar[t])
    x = frame.x_T
    for i, t_i, t_prev_i in frame.jumps():
        _, eps = denoise(denoiser, diffusion, x, t_i, clip_x0)
        score = -score_scale[i] * eps  # 1. Tweedie
        x = x + h_table[i] * (x / 2 + score)  # 2. drift
        if t_prev_i > 0:
            x = x + root_h[i] * frame.draw(x)
        frame.record(x)
    return frame.result(x)


@torch.no_grad()
def sample_dpm_solver_pp_2m(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    shape_or_x_T: Sequence[int] | torch.Tensor,
    *,
    steps: int = 20,
    spacing: Spacing = DEFAULT_SPACING,
    clip_x0: float | None = None,
    **options: Unpack[SamplerOptions],
):
    """DPM-Solver++(2M), Lu et al. (2022), Algorithm 2: the multistep second-order
    solver of the probability-flow ODE in lambda = half log SNR with the data prediction
    x0_hat (coefficients: `minidiff.process.dpm_solver_pp_2m_coefficients`). One denoiser
    call per jump.

    Args:
        denoiser, diffusion, shape_or_x_T, clip_x0: as in `sample_ddim`.
        steps: the number of jumps and denoiser calls, 1..T (default 20).
        spacing, **options: as in `sample_ode`.

    Returns:
        x_0: (B, ...); or (x_0, trajectory (steps + 1, B, ...)) along the grid.
    """
    return _dpm_solver_pp(denoiser, diffusion, shape_or_x_T, 2, steps, spacing, clip_x0, options)


@torch.no_grad()
def sample_dpm_solver_pp_3m(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    shape_or_x_T: Sequence[int] | torch.Tensor,
    *,
    steps: int = 20,
    spacing: Spacing = DEFAULT_SPACING,
    clip_x0: float | None = None,
    **options: Unpack[SamplerOptions],
):
    """DPM-Solver++(3M): the third-order multistep solver of the probability-flow ODE in
    lambda = half log SNR with the data prediction (Lu et al. 2022b; coefficients:
    `minidiff.process.dpm_solver_pp_3m_coefficients`). One denoiser call per jump; the
    first jump is first order, the second DPM-Solver++(2M)'s, the last x_0 = x0_hat.

    Args and returns: as in `sample_dpm_solver_pp_2m`.
    """
    return _dpm_solver_pp(denoiser, diffusion, shape_or_x_T, 3, steps, spacing, clip_x0, options)


def _dpm_solver_pp(denoiser, diffusion, shape_or_x_T, order, steps, spacing, clip_x0, options):
    """The multistep loop of DPM-Solver++(2M) (``order=2``, d = 0) and (3M):

    For each jump i (t -> t_prev):
        1. x0_hat_i from denoiser(x_t, t);
        2. x_{t_prev} = a_i x_t + b_i x0_hat_i + c_i x0_hat_{i-1} + d_i x0_hat_{i-2}.
    """
    frame = open_frame(
        diffusion, shape_or_x_T, options, desc=f"dpm-solver++({order}M)", steps=steps,
        spacing=spacing, clip_x0=clip_x0, stochastic=False,
    )  # fmt: skip
    if order == 2:
        two = dpm_solver_pp_2m_coefficients(diffusion.schedule, frame.grid)
        tables = (two.a, two.b, two.c, np.zeros_like(two.a))
    else:
        three = dpm_solver_pp_3m_coefficients(diffusion.schedule, frame.grid)
        tables = (three.a, three.b, three.c, three.d)
    a, b, c, d = map(frame.table, tables)
    x = frame.x_T
    older = previous = torch.zeros_like(x)  # x0_hat_{i-2}, x0_hat_{i-1}: weight 0 until known
    for i, t, _ in frame.jumps():
        x0, _ = denoise(denoiser, diffusion, x, t, clip_x0)  # 1.
        x = a[i] * x + b[i] * x0 + c[i] * previous + d[i] * older  # 2.
        older, previous = previous, x0
        frame.record(x)
    return frame.result(x)
