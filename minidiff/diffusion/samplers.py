"""PyTorch samplers for a `GaussianDiffusion`: ancestral DDPM and DDIM (with its inversion).

- `sample_ancestral`: Ho et al. (2020), Algorithm 2, through
  `GaussianDiffusion.p_mean_variance` (any parameterization and variance choice).
- `sample_ddim`: Song, Meng & Ermon (2021), eq. 12 with sigma(eta) of eq. 16, on the
  grid `minidiff.process.sampling_timesteps`; `ddim_invert` runs eta = 0 DDIM backwards
  (x_0 -> x_T).

The ODE/SDE samplers and DPM-Solver++ live in `minidiff.diffusion.sde`, annealed Langevin
and predictor-corrector in `minidiff.diffusion.langevin`.

Common interface: ``sampler(denoiser, diffusion, shape_or_x_T, *, <the sampler's own
settings>, **options)``, the options (`SamplerOptions`) being ``generator=None,
noise=None, progress=False, return_trajectory=False, dtype=None, device=None``. Each
sampler opens one frame (`minidiff.diffusion._sampling.open_frame`) that checks them,
sets up x_T and the grid, and collects the trajectory; its loop is written out in its
function. The deterministic samplers (ODE, DPM-Solver++, inversion) refuse ``noise``.

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
  the state at ``grid[i]`` of `minidiff.process.sampling_timesteps`. The NumPy samplers of
  `minidiff.toy` return the same layout.

All samplers run under ``torch.no_grad()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from minidiff.diffusion._sampling import Denoiser, SamplerOptions, denoise, open_frame
from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.process import (
    DEFAULT_SPACING,
    Spacing,
    ddim_coefficients,
    ddim_inversion_coefficients,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SamplerOptions", "sample_ancestral", "sample_ddim", "ddim_invert"]


@torch.no_grad()
def sample_ancestral(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    shape_or_x_T: Sequence[int] | torch.Tensor,
    *,
    clip_x0: float | None = None,
    **options: Unpack[SamplerOptions],
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
        **options: generator, noise, progress, return_trajectory, dtype, device (the
            module docstring).

    Returns:
        x_0: (B, ...); or (x_0, trajectory (T + 1, B, ...)) with ``trajectory[T - t]`` = x_t.
    """
    frame = open_frame(diffusion, shape_or_x_T, options, desc="ancestral", clip_x0=clip_x0)
    ### BEGIN SOLUTION
    x = frame.x_T
    for _, t, _ in frame.jumps():  # t = T, ..., 1
        t_batch = torch.full((x.shape[0],), t, dtype=torch.int64, device=x.device)
        step = diffusion.p_mean_variance(denoiser(x, t_batch), x, t_batch, clip_x0)  # 1.-2.
        if t > 1:  # 3. no noise at the last step
            x = step["mean"] + step["var"].sqrt() * frame.draw(x)
        else:
            x = step["mean"]
        frame.record(x)
    return frame.result(x)
    ### END SOLUTION


@torch.no_grad()
def sample_ddim(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    shape_or_x_T: Sequence[int] | torch.Tensor,
    *,
    steps: int | None = None,
    eta: float = 0.0,
    spacing: Spacing = DEFAULT_SPACING,
    clip_x0: float | None = None,
    **options: Unpack[SamplerOptions],
):
    """DDIM sampling (Song, Meng & Ermon 2021, eq. 12) along the grid
    ``minidiff.process.sampling_timesteps(schedule, steps, spacing)``.

    For each jump t -> t_prev of the grid:
        1. x0_hat, eps_hat from denoiser(x_t, t) (x0_hat clipped if asked, eps_hat then
           recomputed from it);
        2. x_{t_prev} = sqrt(alpha_bar_{t_prev}) x0_hat
               + sqrt(1 - alpha_bar_{t_prev} - sigma^2) eps_hat + sigma z     (eq. 12)
           with sigma = sigma_t(eta) of eq. 16 (the factors: `minidiff.process.
           ddim_coefficients`) and z drawn only where sigma > 0.

    eta = 0: deterministic (no draws; the Euler step of the probability-flow ODE, see
    `minidiff.diffusion.sde.sample_ode`). eta = 1 on the full grid (steps = T): ancestral
    sampling with the posterior variance, with the same draws in the same order.

    Args:
        denoiser, diffusion, shape_or_x_T, clip_x0: as in `sample_ancestral`.
        steps: the number of denoiser calls, 1..T; None means T.
        eta: >= 0, the stochasticity of eq. 16.
        spacing: one of `minidiff.process.SPACINGS` (see
            `minidiff.process.sampling_timesteps`); default ``"trailing"``.
        **options: generator, noise, progress, return_trajectory, dtype, device (the
            module docstring).

    Returns:
        x_0: (B, ...); or (x_0, trajectory (steps + 1, B, ...)) along the grid.
    """
    frame = open_frame(
        diffusion, shape_or_x_T, options, desc="ddim", steps=steps, spacing=spacing,
        clip_x0=clip_x0,
    )  # fmt: skip
    ddim = ddim_coefficients(diffusion.schedule, frame.grid[:-1], frame.grid[1:], eta)
    signal, direction, sigma = map(frame.table, (ddim.signal, ddim.direction, ddim.sigma))
    x = frame.x_T
    for i, t, _ in frame.jumps():
        x0, eps = denoise(denoiser, diffusion, x, t, clip_x0)  # 1.
        x = signal[i] * x0 + direction[i] * eps  # 2. eq. 12
        if ddim.sigma[i] > 0:  # eta = 0: no draws at all
            x = x + sigma[i] * frame.draw(x)
        frame.record(x)
    return frame.result(x)


@torch.no_grad()
def ddim_invert(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    x0: torch.Tensor,
    *,
    steps: int | None = None,
    spacing: Spacing = DEFAULT_SPACING,
    **options: Unpack[SamplerOptions],
):
    """DDIM inversion: encode x_0 into x_T with the deterministic (eta = 0) update run up
    the grid (Song et al. 2021, sec. 4.3, eq. 13 integrated from 0 to T).

    In y = x / sqrt(alpha_bar), sigma = sqrt((1 - alpha_bar) / alpha_bar) the ODE is
    dy / dsigma = eps(x, t); each jump t_prev -> t of the reversed grid takes one step
    (the factors: `minidiff.process.ddim_inversion_coefficients`)

        x_t = sqrt(alpha_bar_t / alpha_bar_{t_prev}) x_{t_prev}
              + (sqrt(1 - alpha_bar_t) - sqrt(alpha_bar_t) sigma_{t_prev}) eps_hat,

    with eps_hat = denoiser at (x_{t_prev}, t): the upper step, since the denoiser is not
    defined at t = 0 and the decoder evaluates it at t too. Decoding with `sample_ddim`
    (eta = 0, same grid) returns x_0 up to O(step^2) per step.

    Args:
        denoiser, diffusion: as in `sample_ancestral`.
        x0: (B, ...) the data to encode (not modified).
        steps, spacing: the grid, as in `sample_ddim`.
        **options: progress, return_trajectory, dtype, device (the module docstring);
            the trajectory runs from x_0 (``trajectory[0]``) to x_T (``trajectory[-1]``).

    Returns:
        x_T: (B, ...); or (x_T, trajectory (steps + 1, B, ...)).
    """
    frame = open_frame(
        diffusion, x0, options, desc="ddim_invert", steps=steps, spacing=spacing,
        stochastic=False, upward=True,
    )  # fmt: skip
    upward = ddim_inversion_coefficients(diffusion.schedule, frame.grid[:-1], frame.grid[1:])
    scale, direction = map(frame.table, upward)
    x = frame.x_T
    for i, _, t_up in frame.jumps():
        _, eps = denoise(denoiser, diffusion, x, t_up)
        x = scale[i] * x + direction[i] * eps
        frame.record(x)
    return frame.result(x)
