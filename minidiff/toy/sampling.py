"""NumPy samplers for a denoiser that predicts eps: ancestral DDPM and DDIM.

- `sample_ancestral`: Ho et al. (2020), Algorithm 2, with x_0 predicted by eq. 15 and the
  mean of p(x_{t-1} | x_t) set to the posterior mean of eq. 7 at that prediction.
- `sample_ddim`: Song, Meng & Ermon (2021), eq. 12, on a grid of
  `minidiff.process.sampling_timesteps`, with sigma(eta) of eq. 16: eta = 0 is deterministic
  DDIM, eta = 1 on the full grid T, ..., 0 is ancestral sampling again (same noise draws,
  same result to round-off).

A denoiser is any callable ``denoiser(xt: (B, ...), t: (B,) int) -> eps: (B, ...)``: a
trained network, `GaussianMixture.denoiser` or a test double. The noise is drawn with
``rng.standard_normal(x.shape)``, once per step that adds noise, in the order of the steps,
so that another implementation fed the same draws agrees to round-off.

These are the NumPy twins of `minidiff.diffusion.sample_ancestral` and
`minidiff.diffusion.sample_ddim` (for an eps denoiser): the same steps, the same draws in
the same order, and the same trajectory layout. With ``return_trajectory=True`` both
return ``(x_0, trajectory)``, ``trajectory`` of shape (N + 1, B, ...) in the order of
sampling: ``trajectory[0]`` is x_T, ``trajectory[i]`` the state after i steps (at
``grid[i]`` of `minidiff.process.sampling_timesteps`; for the ancestral sampler, whose grid is
T, ..., 0, at step T - i) and ``trajectory[-1]`` is x_0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal, get_args

import numpy as np

from minidiff.process import (
    DEFAULT_SPACING,
    FixedVariance,
    Schedule,
    Spacing,
    ddim_posterior_mean_var,
    ddim_sigma,
    posterior_mean_var,
    reverse_variance,
    sampling_timesteps,
    x0_from_eps,
)

__all__ = ["TOY_SAMPLERS", "ToySampler", "sample_ancestral", "sample_ddim"]

ToySampler = Literal["ancestral", "ddim"]
TOY_SAMPLERS: tuple[str, ...] = get_args(ToySampler)

Denoiser = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _check_inputs(schedule, x_T, rng, clip_x0) -> np.ndarray:
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a Schedule, got {type(schedule).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    x = np.array(x_T, dtype=np.float64)  # a copy: the caller's array is never changed
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"x_T must have shape (B, D) or (B, ...) with B >= 1, got {x.shape}")
    if clip_x0 is not None and not (np.isfinite(clip_x0) and clip_x0 > 0):
        raise ValueError(f"clip_x0 must be None or a positive number, got {clip_x0!r}")
    return x


def _predict_x0(denoiser: Denoiser, schedule: Schedule, x: np.ndarray, t: int, clip_x0):
    """eps = denoiser(x_t, t), then x0-hat by Ho et al. (2020), eq. 15, optionally clipped."""
    t_batch = np.full(x.shape[0], t)
    eps = np.asarray(denoiser(x, t_batch), dtype=np.float64)
    if eps.shape != x.shape:
        raise ValueError(f"the denoiser returned shape {eps.shape} for x_t of shape {x.shape}")
    x0 = x0_from_eps(schedule, x, t_batch, eps)
    if clip_x0 is not None:
        x0 = np.clip(x0, -clip_x0, clip_x0)
    return x0, t_batch


def _steps(iterable: Iterable, total: int, progress: bool, desc: str) -> Iterable:
    if not progress:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc)


def _result(x: np.ndarray, trajectory: list[np.ndarray] | None):
    """x_0, or (x_0, the trajectory stacked along a new first axis)."""
    return x if trajectory is None else (x, np.stack(trajectory))


def sample_ancestral(
    denoiser: Denoiser,
    schedule: Schedule,
    x_T: np.ndarray,
    rng: np.random.Generator,
    *,
    variance: FixedVariance = "fixed_small",
    clip_x0: float | None = None,
    return_trajectory: bool = False,
    progress: bool = False,
):
    """Ancestral sampling of Ho et al. (2020), Algorithm 2, from x_T down to x_0.

    For t = T, ..., 1:
        1. eps = denoiser(x_t, t);  x0-hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)
           (eq. 15), clipped to [-clip_x0, clip_x0] if asked;
        2. mu = mu_tilde_t(x_t, x0-hat), the posterior mean of eq. 7;
        3. x_{t-1} = mu + sigma_t z with z ~ N(0, I) for t > 1, and x_0 = mu at t = 1.

    Without clipping, steps 1-2 equal Algorithm 2's (x_t - beta_t / sqrt(1 - alpha_bar_t) eps)
    / sqrt(alpha_t). sigma_t^2 is given by `reverse_variance`.

    Args:
        denoiser: ``denoiser(xt: (B, ...), t: (B,) int) -> eps: (B, ...)``.
        schedule: the schedule.
        x_T: (B, D) (or (B, ...)) the starting noise; it is not modified.
        rng: draws z, once per step t = T, ..., 2 in that order.
        variance: ``"fixed_small"`` (beta_tilde_t) or ``"fixed_large"`` (beta_t).
        clip_x0: clip x0-hat to [-clip_x0, clip_x0] (image models use 1), or None.
        return_trajectory: also return every state.
        progress: show a tqdm progress bar.

    Returns:
        x_0: (B, D); or (x_0, trajectory) with trajectory (T + 1, B, D) in the order of
        sampling: ``trajectory[T - t]`` is x_t, ``trajectory[0]`` is x_T and
        ``trajectory[-1]`` is x_0 (the module docstring).
    """
    x = _check_inputs(schedule, x_T, rng, clip_x0)
    sigma = np.sqrt(reverse_variance(schedule, variance))
    T = schedule.T
    trajectory = [x] if return_trajectory else None
    for t in _steps(range(T, 0, -1), T, progress, "ancestral"):
        x0, t_batch = _predict_x0(denoiser, schedule, x, t, clip_x0)  # 1. eq. 15
        mean, _, _ = posterior_mean_var(schedule, x0, x, t_batch)  # 2. eq. 7
        if t > 1:  # 3. no noise at the last step
            x = mean + sigma[t] * rng.standard_normal(x.shape)
        else:
            x = mean
        if trajectory is not None:
            trajectory.append(x)
    return _result(x, trajectory)


def sample_ddim(
    denoiser: Denoiser,
    schedule: Schedule,
    x_T: np.ndarray,
    rng: np.random.Generator,
    *,
    steps: int | None = None,
    eta: float = 0.0,
    spacing: Spacing = DEFAULT_SPACING,
    clip_x0: float | None = None,
    return_trajectory: bool = False,
    progress: bool = False,
):
    """DDIM sampling (Song, Meng & Ermon 2021, eq. 12) along the grid
    ``sampling_timesteps(schedule, steps, spacing)`` (default spacing ``"trailing"``).

    For each pair t > t_prev of consecutive grid points:
        1. eps = denoiser(x_t, t);  x0-hat by eq. 15 (eq. 9 of DDIM), clipped if asked;
        2. sigma = sigma_t(eta) of eq. 16;
        3. x_{t_prev} = sqrt(alpha_bar_{t_prev}) x0-hat
               + sqrt(1 - alpha_bar_{t_prev} - sigma^2) eps-hat + sigma z   (eq. 12),
           with eps-hat recomputed from x0-hat and z ~ N(0, I) drawn only when sigma > 0.

    eta = 0: deterministic (the rng is not used). eta = 1 with ``steps = T``: ancestral
    sampling with the ``fixed_small`` variance, the same draws in the same order.

    Args:
        denoiser: ``denoiser(xt: (B, ...), t: (B,) int) -> eps: (B, ...)``.
        schedule: the schedule.
        x_T: (B, D) (or (B, ...)) the starting noise; it is not modified.
        rng: the source of z.
        steps: the number of denoiser calls, 1..T; None means T.
        eta: >= 0, the stochasticity of eq. 16.
        spacing: the grid, see `minidiff.process.sampling_timesteps`.
        clip_x0: clip x0-hat to [-clip_x0, clip_x0], or None.
        return_trajectory: also return the states on the grid.
        progress: show a tqdm progress bar.

    Returns:
        x_0: (B, D); or (x_0, trajectory) with trajectory (steps + 1, B, D) along
        ``grid = sampling_timesteps(schedule, steps, spacing)``: ``trajectory[i]`` is the state at
        step ``grid[i]`` (``trajectory[0]`` is x_T, ``trajectory[-1]`` is x_0).
    """
    x = _check_inputs(schedule, x_T, rng, clip_x0)
    grid = sampling_timesteps(schedule, steps, spacing)
    trajectory = [x] if return_trajectory else None
    pairs = zip(grid[:-1], grid[1:], strict=True)
    for t, t_prev in _steps(pairs, len(grid) - 1, progress, "ddim"):
        x0, _ = _predict_x0(denoiser, schedule, x, int(t), clip_x0)  # 1.
        sigma = float(ddim_sigma(schedule, int(t), int(t_prev), eta))  # 2. eq. 16
        mean, _ = ddim_posterior_mean_var(schedule, x0, x, int(t), int(t_prev), sigma)  # 3.
        if sigma > 0:
            x = mean + sigma * rng.standard_normal(x.shape)
        else:
            x = mean
        if trajectory is not None:
            trajectory.append(x)
    return _result(x, trajectory)
