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

Interface as in `minidiff.diffusion.samplers` (shape or x_T and the `SamplerOptions`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from minidiff.diffusion._sampling import (
    Denoiser,
    NoiseSource,
    SamplerOptions,
    denoise,
    draw,
    open_frame,
)
from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.process import DEFAULT_SPACING, Spacing, ddim_coefficients

if TYPE_CHECKING:
    from typing_extensions import Unpack

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
        generator, noise: where z comes from, as for the samplers.
    """
    draw_z = functools.partial(draw, generator=generator, noise=noise)
    return _correct(denoiser, diffusion, x, t, snr, alpha, draw_z)


def _correct(denoiser, diffusion, x, t: int, snr: float, alpha, draw_z) -> torch.Tensor:
    """The step of `langevin_corrector`, with z from ``draw_z(x)`` (a sampler's frame)."""
    _, eps = denoise(denoiser, diffusion, x, t)
    t_batch = torch.full((x.shape[0],), t, dtype=torch.int64, device=x.device)
    score = -eps / diffusion.gather(diffusion.schedule.sqrt_one_minus_alpha_bar, t_batch, x)
    z = draw_z(x)
    tiny = torch.finfo(x.dtype).tiny
    step = 2 * alpha * (snr * _batch_norm(z) / _batch_norm(score).clamp_min(tiny)) ** 2
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
    **options: Unpack[SamplerOptions],
):
    """Annealed Langevin dynamics over the diffusion's noise levels (corrector only).

    For each level t of the grid ``sampling_timesteps(schedule, steps, spacing)`` except 0,
    in decreasing order: ``corrector_steps`` steps of `langevin_corrector` at t
    (alpha = alpha_t). Then x_0 = x0_hat(x, t_last) (a denoising step at the last level).

    Args:
        denoiser, diffusion, shape_or_x_T: as in `sample_ancestral`.
        steps: the number of noise levels, 1..T (None: all T).
        corrector_steps: Langevin steps per level (``steps * corrector_steps + 1``
            denoiser calls in all).
        snr: the signal-to-noise ratio r of the step rule (0.16: Song et al. 2021, sec. 4.2).
        spacing: the levels, see `minidiff.process.sampling_timesteps`; the default
            ``"quadratic"`` puts more levels near the data, where the modes take their
            shape (on the 8-Gaussian mixture 100 quadratic levels reproduce the law where
            100 uniform levels do not).
        **options: as in `sample_ddim`; the trajectory holds x_T, the state after each
            level and x_0.

    Returns:
        x_0: (B, ...); or (x_0, trajectory (steps + 2, B, ...)).
    """
    _check_corrector(snr, corrector_steps)
    frame = open_frame(
        diffusion, shape_or_x_T, options, desc="annealed Langevin", steps=steps,
        spacing=spacing,
    )  # fmt: skip
    alpha = frame.table(diffusion.schedule.alpha[frame.grid])
    x = frame.x_T
    for i, t, _ in frame.jumps():  # the levels t = grid[0], ..., grid[-2] >= 1
        for _ in range(corrector_steps):
            x = _correct(denoiser, diffusion, x, t, snr, alpha[i], frame.draw)
        frame.record(x)
    x, _ = denoise(denoiser, diffusion, x, int(frame.grid[-2]))  # denoise: Tweedie
    frame.record(x)
    return frame.result(x)


@torch.no_grad()
def sample_pc(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    shape_or_x_T: Sequence[int] | torch.Tensor,
    *,
    steps: int | None = None,
    corrector_steps: int = 1,
    snr: float = 0.16,
    spacing: Spacing = DEFAULT_SPACING,
    clip_x0: float | None = None,
    **options: Unpack[SamplerOptions],
):
    """Predictor-corrector sampling (Song et al. 2021, sec. 4.2; PC sampling for the VP SDE).

    For each jump t -> t_prev of the grid ``sampling_timesteps(schedule, steps, spacing)``:
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
        spacing, **options: as in `sample_ddim`.

    Returns:
        x_0: (B, ...); or (x_0, trajectory (steps + 1, B, ...)) along the grid.
    """
    _check_corrector(snr, corrector_steps)
    frame = open_frame(
        diffusion, shape_or_x_T, options, desc="predictor-corrector", steps=steps,
        spacing=spacing, clip_x0=clip_x0,
    )  # fmt: skip
    schedule = diffusion.schedule
    ddim = ddim_coefficients(schedule, frame.grid[:-1], frame.grid[1:], eta=1.0)
    signal, direction, sigma = map(frame.table, (ddim.signal, ddim.direction, ddim.sigma))
    alpha = frame.table(schedule.alpha[frame.grid])
    x = frame.x_T
    for i, t, t_prev in frame.jumps():
        x0, eps = denoise(denoiser, diffusion, x, t, clip_x0)  # 1. predictor
        x = signal[i] * x0 + direction[i] * eps
        if ddim.sigma[i] > 0:
            x = x + sigma[i] * frame.draw(x)
        if t_prev >= 1:  # 2. corrector
            for _ in range(corrector_steps):
                x = _correct(denoiser, diffusion, x, t_prev, snr, alpha[i + 1], frame.draw)
        frame.record(x)
    return frame.result(x)
