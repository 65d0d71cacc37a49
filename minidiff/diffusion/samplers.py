"""PyTorch samplers for a `GaussianDiffusion`: ancestral DDPM and DDIM (with its inversion).

- `sample_ancestral`: Ho et al. (2020), Algorithm 2, through
  `GaussianDiffusion.p_mean_variance` (any parameterization and variance choice).
- `sample_ddim`: Song, Meng & Ermon (2021), eq. 12 with sigma(eta) of eq. 16, on the
  grid `minidiff.toy.ddim_timesteps`; `ddim_invert` runs eta = 0 DDIM backwards
  (x_0 -> x_T).

The ODE/SDE samplers and DPM-Solver++ live in `minidiff.diffusion.sde`, annealed Langevin
and predictor-corrector in `minidiff.diffusion.langevin`.

Common interface: ``sampler(denoiser, diffusion, shape_or_x_T, *, generator=None,
progress=False, return_trajectory=False, dtype=None, device=None, ...)``.

- ``shape_or_x_T``: a shape tuple (B, ...), then x_T = ``torch.randn(shape,
  generator=generator, dtype=dtype, device=device)``, or a start tensor (copied, never
  modified; ``dtype``/``device`` cast it if given).
- ``noise``: where the stochastic samplers take their z ~ N(0, I): by default
  ``torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)``; a
  callable ``noise(shape) -> Tensor`` replaces it (used to feed the exact draws of the
  NumPy sampler, ``lambda shape: torch.from_numpy(rng.standard_normal(tuple(shape)))``).
- ``return_trajectory=True`` returns ``(x_0, trajectory)`` where ``trajectory`` has
  shape (N + 1, B, ...) in the order of sampling: ``trajectory[0]`` is x_T,
  ``trajectory[i]`` the state after i steps, ``trajectory[-1]`` is x_0. For the ancestral
  sampler N = T and ``trajectory[T - t]`` is x_t; for grid samplers ``trajectory[i]`` is
  the state at ``grid[i]`` of `ddim_timesteps`.

All samplers run under ``torch.no_grad()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from minidiff.diffusion._sampling import (
    Denoiser,
    NoiseSource,
    as_table,
    check_clip,
    check_diffusion,
    check_start,
    draw,
    finish,
    predict,
    start,
)
from minidiff.diffusion._sampling import (
    steps as _steps,
)
from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.process import Schedule, ddim_sigma
from minidiff.toy.sampling import SPACINGS, ddim_timesteps

__all__ = ["SPACINGS", "Spacing", "sample_ancestral", "sample_ddim", "ddim_invert", "ddim_grid"]

Spacing = Literal["uniform", "quadratic", "trailing"]


def ddim_grid(schedule: Schedule, steps: int | None, spacing: Spacing = "uniform") -> np.ndarray:
    """The strictly decreasing grid T = grid[0] > ... > grid[-1] = 0 of ``steps`` jumps
    (None: all T steps), from `minidiff.toy.ddim_timesteps` (Song et al. 2021, sec. 4.2)."""
    return ddim_timesteps(schedule.T, schedule.T if steps is None else steps, spacing)


@torch.no_grad()
def sample_ancestral(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    shape_or_x_T: Sequence[int] | torch.Tensor,
    *,
    clip_x0: float | None = None,
    generator: torch.Generator | None = None,
    noise: NoiseSource | None = None,
    progress: bool = False,
    return_trajectory: bool = False,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
):
    """Ancestral sampling, Ho et al. (2020), Algorithm 2, from x_T down to x_0.

    For t = T, ..., 1:
        1. output = denoiser(x_t, t); x0_hat from it (eq. 15), clipped to
           [-clip_x0, clip_x0] if asked;
        2. mean, var of p(x_{t-1} | x_t) = `diffusion.p_mean_variance` (eq. 7 at x0_hat;
           the diffusion's variance choice: fixed_small, fixed_large or learned_range);
        3. x_{t-1} = mean + sqrt(var) z for t > 1 with z drawn once per step in the order
           t = T, ..., 2; x_0 = mean (no noise at t = 1).

    Same denoiser and same draws: equal to `minidiff.toy.sample_ancestral` to round-off.

    Args:
        denoiser: ``denoiser(xt: (B, ...), t: (B,) int64) -> output`` in the diffusion's
            parameterization.
        diffusion: the `GaussianDiffusion`.
        shape_or_x_T: the shape (B, ...) of x_T to draw, or x_T itself.
        clip_x0: clip x0_hat (image data in [-1, 1] uses 1), or None.
        generator, noise, progress, return_trajectory, dtype, device: see the module
            docstring.

    Returns:
        x_0: (B, ...); or (x_0, trajectory (T + 1, B, ...)) with ``trajectory[T - t]`` = x_t.
    """
    check_diffusion(diffusion)
    check_clip(clip_x0)
    x = start(shape_or_x_T, generator, dtype, device)
    T = diffusion.T
    check_start(diffusion, T)
    trajectory = [x] if return_trajectory else None
    for t in _steps(range(T, 0, -1), T, progress, "ancestral"):
        step = predict(denoiser, diffusion, x, t, clip_x0)  # 1.-2. eqs. 15 and 7
        if t > 1:  # 3. no noise at the last step
            x = step["mean"] + step["var"].sqrt() * draw(x, generator, noise)
        else:
            x = step["mean"]
        if trajectory is not None:
            trajectory.append(x)
    return finish(x, trajectory)


def _ddim_tables(schedule: Schedule, grid: np.ndarray, eta: float) -> dict[str, np.ndarray]:
    """Per-jump float64 coefficients of DDIM eq. 12 for the jumps grid[i] -> grid[i + 1]:
    sqrt(alpha_bar_{t_prev}), sqrt(1 - alpha_bar_{t_prev} - sigma^2) (clamped at 0
    against round-off) and sigma = sigma_t(eta) of eq. 16."""
    t, t_prev = grid[:-1], grid[1:]
    sigma = np.asarray(ddim_sigma(schedule, t, t_prev, eta), dtype=np.float64)
    direction_var = schedule.one_minus_alpha_bar[t_prev] - sigma**2
    return {
        "signal": schedule.sqrt_alpha_bar[t_prev],
        "direction": np.sqrt(np.maximum(direction_var, 0.0)),
        "sigma": sigma,
    }


@torch.no_grad()
def sample_ddim(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    shape_or_x_T: Sequence[int] | torch.Tensor,
    *,
    steps: int | None = None,
    eta: float = 0.0,
    spacing: Spacing = "uniform",
    clip_x0: float | None = None,
    generator: torch.Generator | None = None,
    noise: NoiseSource | None = None,
    progress: bool = False,
    return_trajectory: bool = False,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
):
    """DDIM sampling (Song, Meng & Ermon 2021, eq. 12) along ``ddim_grid(schedule, steps,
    spacing)``.

    For each jump t -> t_prev of the grid:
        1. x0_hat, eps_hat from denoiser(x_t, t) (x0_hat clipped if asked, eps_hat then
           recomputed from it);
        2. x_{t_prev} = sqrt(alpha_bar_{t_prev}) x0_hat
               + sqrt(1 - alpha_bar_{t_prev} - sigma^2) eps_hat + sigma z     (eq. 12)
           with sigma = sigma_t(eta) of eq. 16 and z drawn only where sigma > 0.

    eta = 0: deterministic (no draws; the Euler step of the probability-flow ODE, see
    `minidiff.diffusion.sde.sample_ode`). eta = 1 on the full grid (steps = T): ancestral
    sampling with the posterior variance, with the same draws in the same order.

    Args:
        denoiser, diffusion, shape_or_x_T, clip_x0: as in `sample_ancestral`.
        steps: the number of denoiser calls, 1..T; None means T.
        eta: >= 0, the stochasticity of eq. 16.
        spacing: ``"uniform"``, ``"quadratic"`` or ``"trailing"`` (see `ddim_timesteps`).
        generator, noise, progress, return_trajectory, dtype, device: see the module
            docstring.

    Returns:
        x_0: (B, ...); or (x_0, trajectory (steps + 1, B, ...)) along the grid.
    """
    check_diffusion(diffusion)
    check_clip(clip_x0)
    x = start(shape_or_x_T, generator, dtype, device)
    grid = ddim_grid(diffusion.schedule, steps, spacing)
    check_start(diffusion, int(grid[0]))
    numpy_tables = _ddim_tables(diffusion.schedule, grid, eta)
    tables = {k: as_table(v, x) for k, v in numpy_tables.items()}
    stochastic = numpy_tables["sigma"] > 0  # eta = 0: no draws at all
    trajectory = [x] if return_trajectory else None
    for i in _steps(range(len(grid) - 1), len(grid) - 1, progress, "ddim"):
        step = predict(denoiser, diffusion, x, int(grid[i]), clip_x0)  # 1.
        x = tables["signal"][i] * step["x0"] + tables["direction"][i] * step["eps"]  # 2.
        if stochastic[i]:
            x = x + tables["sigma"][i] * draw(x, generator, noise)
        if trajectory is not None:
            trajectory.append(x)
    return finish(x, trajectory)


@torch.no_grad()
def ddim_invert(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    x0: torch.Tensor,
    *,
    steps: int | None = None,
    spacing: Spacing = "uniform",
    progress: bool = False,
    return_trajectory: bool = False,
):
    """DDIM inversion: encode x_0 into x_T with the deterministic (eta = 0) update run up
    the grid (Song et al. 2021, sec. 4.3, eq. 13 integrated from 0 to T).

    In y = x / sqrt(alpha_bar), sigma = sqrt((1 - alpha_bar) / alpha_bar) the ODE is
    dy / dsigma = eps(x, t); each jump t_prev -> t of the reversed grid takes one step

        x_t = sqrt(alpha_bar_t / alpha_bar_{t_prev}) x_{t_prev}
              + (sqrt(1 - alpha_bar_t) - sqrt(alpha_bar_t) sigma_{t_prev}) eps_hat,

    with eps_hat = denoiser at (x_{t_prev}, t): the upper step, since the denoiser is not
    defined at t = 0 and the decoder evaluates it at t too. Decoding with `sample_ddim`
    (eta = 0, same grid) returns x_0 up to O(step^2) per step.

    Args:
        denoiser, diffusion: as in `sample_ancestral`.
        x0: (B, ...) the data to encode (not modified).
        steps, spacing: the grid, as in `sample_ddim`.
        progress, return_trajectory: as in the module docstring; the trajectory runs
            from x_0 (``trajectory[0]``) to x_T (``trajectory[-1]``).

    Returns:
        x_T: (B, ...); or (x_T, trajectory (steps + 1, B, ...)).
    """
    check_diffusion(diffusion)
    x = start(x0, None, None, None)
    schedule = diffusion.schedule
    grid = ddim_grid(schedule, steps, spacing)[::-1].copy()  # 0 = grid[0] < ... < T
    t_prev, t = grid[:-1], grid[1:]
    with np.errstate(divide="ignore"):
        scale = np.exp(0.5 * (schedule.log_alpha_bar[t] - schedule.log_alpha_bar[t_prev]))
        sigma_prev = np.sqrt(schedule.one_minus_alpha_bar[t_prev]) / schedule.sqrt_alpha_bar[t_prev]
    direction = schedule.sqrt_one_minus_alpha_bar[t] - schedule.sqrt_alpha_bar[t] * sigma_prev
    scale, direction = as_table(scale, x), as_table(direction, x)
    trajectory = [x] if return_trajectory else None
    for i in _steps(range(len(grid) - 1), len(grid) - 1, progress, "ddim_invert"):
        eps = predict(denoiser, diffusion, x, int(t[i]))["eps"]
        x = scale[i] * x + direction[i] * eps
        if trajectory is not None:
            trajectory.append(x)
    return finish(x, trajectory)
