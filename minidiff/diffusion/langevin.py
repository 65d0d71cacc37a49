"""Langevin samplers over the noise levels of a discrete diffusion: annealed Langevin
dynamics and the predictor-corrector sampler (Song et al. 2021, sec. 4.2 and the
PC algorithms of its appendix for the VP SDE; Song & Ermon 2019, Algorithm 1).

The corrector at level t is one step of unadjusted Langevin dynamics for q_t, with the
score from the denoiser, score = -eps_hat / sqrt(1 - alpha_bar_t), and the step chosen by
the signal-to-noise ratio r (Song et al. 2021, the VP corrector of its appendix):

    epsilon = 2 alpha_t (r ||z|| / ||score||)^2,   x <- x + epsilon score + sqrt(2 epsilon) z.

As in the authors' released code, ||z|| and ||score|| are the norms over all but the batch
axis averaged over the batch, so one step size is shared by the batch (a per-sample step
would make the step depend on the state and bias the stationary law).

- `sample_annealed_langevin`: corrector only ("C" in Song et al. 2021, Table 1): at each
  level of the grid T = t_0 > ... > t_{N-1} >= 1, ``corrector_steps`` Langevin steps for
  q_t, x kept from one level to the next; the result is the denoised x0_hat at the last
  level (Tweedie's formula; Jolicoeur-Martineau et al. 2021).
- `sample_pc`: predictor = the ancestral step (DDIM eta = 1 on the grid: the posterior
  q(x_{t_prev} | x_t, x0_hat), Algorithm 2 of Ho et al. on the full grid), then
  ``corrector_steps`` Langevin steps at the new level when it is t_prev >= 1.

Interface as in `minidiff.diffusion.samplers`.
"""

from __future__ import annotations

from collections.abc import Sequence

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
from minidiff.diffusion.samplers import Spacing, _ddim_tables, ddim_grid

__all__ = ["langevin_corrector", "sample_annealed_langevin", "sample_pc"]


def _check_corrector(snr: float, corrector_steps: int) -> None:
    if not (np.isfinite(snr) and snr > 0):
        raise ValueError(f"snr must be a positive number, got {snr!r}")
    if (
        isinstance(corrector_steps, bool)
        or int(corrector_steps) != corrector_steps
        or corrector_steps < 0
    ):
        raise ValueError(f"corrector_steps must be an integer >= 0, got {corrector_steps!r}")


def _batch_norm(x: torch.Tensor) -> torch.Tensor:
    """The Euclidean norm over all but the batch axis, averaged over the batch."""
    return x.reshape(x.shape[0], -1).norm(dim=1).mean()


@torch.no_grad()
def langevin_corrector(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    x: torch.Tensor,
    t: int,
    *,
    snr: float,
    alpha: float | torch.Tensor,
    generator: torch.Generator | None = None,
    noise: NoiseSource | None = None,
) -> torch.Tensor:
    """One Langevin step for q_t with the SNR step rule (Song et al. 2021, VP corrector):

        score = -eps_hat / sqrt(1 - alpha_bar_t);  z ~ N(0, I);
        epsilon = 2 alpha (r ||z|| / ||score||)^2;  x + epsilon score + sqrt(2 epsilon) z.

    Args:
        x: (B, ...) the state at level t (1..T). alpha: the factor alpha_t of the rule.
    """
    eps = predict(denoiser, diffusion, x, t)["eps"]
    score = -eps / diffusion.gather(
        "sqrt_one_minus_alpha_bar", torch.tensor([t], device=x.device), x
    )
    z = draw(x, generator, noise)
    step = (
        2
        * alpha
        * (snr * _batch_norm(z) / _batch_norm(score).clamp_min(torch.finfo(x.dtype).tiny)) ** 2
    )
    return x + step * score + (2 * step).sqrt() * z


@torch.no_grad()
def sample_annealed_langevin(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    shape_or_x_T: Sequence[int] | torch.Tensor,
    *,
    steps: int | None = None,
    corrector_steps: int = 5,
    snr: float = 0.16,
    spacing: Spacing = "quadratic",
    generator: torch.Generator | None = None,
    noise: NoiseSource | None = None,
    progress: bool = False,
    return_trajectory: bool = False,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
):
    """Annealed Langevin dynamics over the diffusion's noise levels (corrector only).

    For each level t of ``ddim_grid(schedule, steps, spacing)`` except 0, in decreasing
    order: ``corrector_steps`` steps of `langevin_corrector` at t (alpha = alpha_t). Then
    x_0 = x0_hat(x, t_last) (a denoising step at the last level).

    Args:
        denoiser, diffusion, shape_or_x_T: as in `sample_ancestral`.
        steps: the number of noise levels, 1..T (None: all T).
        corrector_steps: Langevin steps per level (``steps * corrector_steps + 1``
            denoiser calls in all).
        snr: the signal-to-noise ratio r of the step rule (0.16: Song et al. 2021, sec. 4.2).
        spacing: the levels, see `ddim_timesteps`; the default ``"quadratic"`` puts
            more levels near the data, where the modes take their shape (on the
            8-Gaussian mixture 100 quadratic levels reproduce the law where 100 uniform
            levels do not).
        generator, noise, progress, return_trajectory, dtype, device: as in
            `sample_ddim`; the trajectory holds x_T, the state after each level and x_0.

    Returns:
        x_0: (B, ...); or (x_0, trajectory (steps + 2, B, ...)).
    """
    check_diffusion(diffusion)
    _check_corrector(snr, corrector_steps)
    x = start(shape_or_x_T, generator, dtype, device)
    grid = ddim_grid(diffusion.schedule, steps, spacing)
    check_start(diffusion, int(grid[0]))
    levels = grid[:-1]  # T, ..., >= 1
    alpha = as_table(diffusion.schedule.alpha[levels], x)
    trajectory = [x] if return_trajectory else None
    for i in _steps(range(len(levels)), len(levels), progress, "annealed Langevin"):
        for _ in range(corrector_steps):
            x = langevin_corrector(
                denoiser, diffusion, x, int(levels[i]), snr=snr, alpha=alpha[i],
                generator=generator, noise=noise,
            )  # fmt: skip
        if trajectory is not None:
            trajectory.append(x)
    x = predict(denoiser, diffusion, x, int(levels[-1]))["x0"]  # denoise: Tweedie
    if trajectory is not None:
        trajectory.append(x)
    return finish(x, trajectory)


@torch.no_grad()
def sample_pc(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    shape_or_x_T: Sequence[int] | torch.Tensor,
    *,
    steps: int | None = None,
    corrector_steps: int = 1,
    snr: float = 0.16,
    spacing: Spacing = "uniform",
    clip_x0: float | None = None,
    generator: torch.Generator | None = None,
    noise: NoiseSource | None = None,
    progress: bool = False,
    return_trajectory: bool = False,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
):
    """Predictor-corrector sampling (Song et al. 2021, sec. 4.2; PC sampling for the VP SDE).

    For each jump t -> t_prev of ``ddim_grid(schedule, steps, spacing)``:
        1. predictor: x_{t_prev} = sqrt(alpha_bar_{t_prev}) x0_hat
               + sqrt(1 - alpha_bar_{t_prev} - sigma^2) eps_hat + sigma z, sigma = sigma_t(1)
           (the ancestral step; exactly Ho et al.'s Algorithm 2 step on the full grid),
           no noise on the last jump;
        2. corrector (t_prev >= 1): ``corrector_steps`` steps of `langevin_corrector`
           at t_prev with alpha = alpha_{t_prev}.

    Args:
        denoiser, diffusion, shape_or_x_T, clip_x0: as in `sample_ddim`.
        steps: the number of predictor jumps, 1..T (None: T); denoiser calls:
            ``steps + (steps - 1) * corrector_steps``.
        corrector_steps: Langevin steps after each predictor step (0: ancestral only).
        snr: the signal-to-noise ratio r of the corrector's step rule.
        spacing, generator, noise, progress, return_trajectory, dtype, device: as in
            `sample_ddim`.

    Returns:
        x_0: (B, ...); or (x_0, trajectory (steps + 1, B, ...)) along the grid.
    """
    check_diffusion(diffusion)
    check_clip(clip_x0)
    _check_corrector(snr, corrector_steps)
    x = start(shape_or_x_T, generator, dtype, device)
    schedule = diffusion.schedule
    grid = ddim_grid(schedule, steps, spacing)
    check_start(diffusion, int(grid[0]))
    numpy_tables = _ddim_tables(schedule, grid, 1.0)
    tables = {k: as_table(v, x) for k, v in numpy_tables.items()}
    alpha = as_table(schedule.alpha[grid], x)
    trajectory = [x] if return_trajectory else None
    for i in _steps(range(len(grid) - 1), len(grid) - 1, progress, "predictor-corrector"):
        step = predict(denoiser, diffusion, x, int(grid[i]), clip_x0)  # 1. predictor
        x = tables["signal"][i] * step["x0"] + tables["direction"][i] * step["eps"]
        if numpy_tables["sigma"][i] > 0:
            x = x + tables["sigma"][i] * draw(x, generator, noise)
        if grid[i + 1] >= 1:  # 2. corrector
            for _ in range(corrector_steps):
                x = langevin_corrector(
                    denoiser, diffusion, x, int(grid[i + 1]), snr=snr, alpha=alpha[i + 1],
                    generator=generator, noise=noise,
                )  # fmt: skip
        if trajectory is not None:
            trajectory.append(x)
    return finish(x, trajectory)
