"""The grid of steps a sampler walks: T = tau_0 > tau_1 > ... > tau_N = 0.

DDIM (Song, Meng & Ermon 2021, sec. 4.2 and appendix D.2) samples along a sub-sequence of
the T steps; every grid sampler of `minidiff.diffusion` (DDIM, the ODE and SDE solvers,
DPM-Solver++, the Langevin samplers) and the NumPy `minidiff.toy.sample_ddim` walk a grid
built here. N jumps cost N denoiser calls for a one-call-per-jump sampler.

Five named grids (`SPACINGS`); the first three depend on T alone (`ddim_timesteps`), the
last two on the schedule's noise levels (`sampling_timesteps` takes every one):

- ``"uniform"``: `uniform_timesteps`, T, ..., 1 evenly spaced, then 0;
- ``"trailing"``: `trailing_timesteps`, every jump about T / N long (Lin et al. 2024);
- ``"quadratic"``: `quadratic_timesteps`, finer near the data (Song et al. 2021);
- ``"logsnr"``: `logsnr_timesteps`, uniform in log SNR (Lu et al. 2022a, DPM-Solver);
- ``"karras"``: `karras_timesteps`, sigma^(1/rho) uniform, rho = 7 (Karras et al. 2022).

Every grid has N + 1 distinct int64 entries, strictly decreasing from T to 0; with N = T
each is the full grid T, T - 1, ..., 0.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from minidiff.process.schedule import Schedule

__all__ = [
    "DEFAULT_SPACING",
    "INDEX_SPACINGS",
    "IndexSpacing",
    "SPACINGS",
    "Spacing",
    "ddim_timesteps",
    "karras_timesteps",
    "logsnr_timesteps",
    "quadratic_timesteps",
    "sampling_timesteps",
    "trailing_timesteps",
    "uniform_timesteps",
]

IndexSpacing = Literal["uniform", "quadratic", "trailing"]
INDEX_SPACINGS: tuple[str, ...] = get_args(IndexSpacing)
Spacing = Literal["uniform", "quadratic", "trailing", "logsnr", "karras"]
SPACINGS: tuple[str, ...] = get_args(Spacing)
# The grid of every grid sampler when none is given: at few calls "trailing" spends every
# call at a useful noise level (Lin et al. 2024, sec. 3.3); on the exact 8-D mixture it
# gives DDIM, Heun and DPM-Solver++(2M) their smallest ODE error of the five grids at 5-20
# calls (benchmarks/samplers_ode.py, benchmarks/README.md).
DEFAULT_SPACING: Spacing = "trailing"


def _check_T_steps(T: int, steps: int | None) -> tuple[int, int]:
    """(T, steps) as ints, steps = None meaning T; ValueError naming a bad one."""
    if isinstance(T, bool) or int(T) != T or T < 1:
        raise ValueError(f"T must be a positive integer, got {T!r}")
    steps = T if steps is None else steps
    if isinstance(steps, bool) or int(steps) != steps or not 1 <= steps <= T:
        raise ValueError(f"steps must be an integer in 1..T = {T}, got {steps!r}")
    return int(T), int(steps)


def _round_half_up(numerator: np.ndarray, denominator: int) -> np.ndarray:
    """round(numerator / denominator) with halves rounded up, in exact integer arithmetic."""
    return (2 * numerator + denominator) // (2 * denominator)


def _distinct(grid: np.ndarray, T: int) -> np.ndarray:
    """Make a rounded grid (N + 1,) strictly decreasing from T to 0:
    entry i is clipped to [N - i, T - i] (room for the entries after and before it), then
    raised from the data end where it does not exceed its successor."""
    N = len(grid) - 1
    i = np.arange(N + 1)
    grid = np.clip(grid.astype(np.int64), N - i, T - i)
    grid[0], grid[-1] = T, 0
    for j in range(N - 1, -1, -1):  # raising stays within T - j: grid[j + 1] <= T - j - 1
        grid[j] = max(grid[j], grid[j + 1] + 1)
    return grid


def uniform_timesteps(T: int, steps: int | None = None) -> np.ndarray:
    """T, then ``steps - 1`` steps evenly spaced from T down to 1 (rounded half up), then 0:
    the "linspace" grid of Lin et al. (2024), Table 2. Its last jump, 1 -> 0, is nearly
    free of noise, so one of the ``steps`` calls does almost nothing at few steps.

    Raises:
        ValueError: if ``steps`` is not in 1..T (None means T) or T < 1.
    """
    T, steps = _check_T_steps(T, steps)
    if steps == 1:
        return np.array([T, 0], dtype=np.int64)
    k = np.arange(steps - 1, -1, -1, dtype=np.int64)  # steps - 1, ..., 0
    inner = 1 + _round_half_up((T - 1) * k, steps - 1)  # T, ..., 1
    return np.concatenate([inner, [0]]).astype(np.int64)


def trailing_timesteps(T: int, steps: int | None = None) -> np.ndarray:
    """round(T k / steps) for k = steps, ..., 0 (halves up): every jump, the last one
    included, is about T / steps long; the "trailing" grid of Lin et al. (2024), Table 2.

    Raises:
        ValueError: if ``steps`` is not in 1..T (None means T) or T < 1.
    """
    T, steps = _check_T_steps(T, steps)
    k = np.arange(steps, -1, -1, dtype=np.int64)
    return _round_half_up(T * k, steps)


def quadratic_timesteps(T: int, steps: int | None = None) -> np.ndarray:
    """round(T (k / steps)^2) for k = steps, ..., 0, raised where needed to stay strictly
    decreasing: DDIM's quadratic grid, finer near the data (Song et al. 2021, appendix D.2).

    Raises:
        ValueError: if ``steps`` is not in 1..T (None means T) or T < 1.
    """
    T, steps = _check_T_steps(T, steps)
    k = np.arange(steps, -1, -1, dtype=np.int64)
    return _distinct(_round_half_up(T * k**2, steps**2), T)


def _nearest_steps(schedule: Schedule, log_snr: np.ndarray) -> np.ndarray:
    """The steps t in 1..T whose log SNR is nearest to each target (log SNR decreases in t)."""
    table = -schedule.log_snr[1:]  # increasing in t (ties allowed), -inf excluded below
    right = np.clip(np.searchsorted(table, -log_snr), 1, schedule.T - 1)
    left = right - 1  # the neighbours table[left] <= -target <= table[right]
    nearer_left = np.abs(table[left] + log_snr) <= np.abs(table[right] + log_snr)
    return 1 + np.where(nearer_left, left, right) if schedule.T > 1 else np.ones_like(right)


def _log_snr_range(schedule: Schedule) -> tuple[float, float]:
    """(log SNR at the top, at step 1): the top is step T, or T - 1 where SNR_T = 0
    (zero terminal SNR; a single-step zero-SNR schedule falls back to step 1)."""
    top = schedule.T if np.isfinite(schedule.log_snr[schedule.T]) else max(schedule.T - 1, 1)
    return float(schedule.log_snr[top]), float(schedule.log_snr[1])


def _check_schedule(schedule: Schedule, steps: int | None) -> tuple[int, int]:
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a Schedule, got {type(schedule).__name__}")
    return _check_T_steps(schedule.T, steps)


def logsnr_timesteps(schedule: Schedule, steps: int | None = None) -> np.ndarray:
    """The grid uniform in log SNR of DPM-Solver (Lu et al. 2022a), on the
    schedule's integer steps.

    DPM-Solver spaces lambda = log SNR / 2 evenly from the top (t = T) to the smallest
    noise level (t = 1 for a discrete schedule) over N + 1 points; here the last point is
    the data, t = 0, where the denoising step of the last jump lands:

        target_k = log SNR_T + (k / N) (log SNR_1 - log SNR_T),  k = 0, ..., N - 1,

    each rounded to the step t in 1..T of nearest log SNR, then 0; repeats are moved apart
    to keep the grid strictly decreasing. Where SNR_T = 0 the targets start at T - 1.

    Args:
        schedule: the schedule whose log SNR the grid follows.
        steps: the number of jumps N, 1..T (None: T).

    Returns:
        (N + 1,) int64, strictly decreasing from T to 0.
    """
    T, steps = _check_schedule(schedule, steps)
    top, bottom = _log_snr_range(schedule)
    targets = top + (np.arange(steps) / steps) * (bottom - top)
    return _distinct(np.concatenate([[T], _nearest_steps(schedule, targets)[1:], [0]]), T)


def karras_timesteps(schedule: Schedule, steps: int | None = None, rho: float = 7.0) -> np.ndarray:
    """The grid of Karras et al. (2022), eq. 5, on the schedule's integer steps.

    With sigma = sqrt((1 - alpha_bar) / alpha_bar) = exp(-log SNR / 2), sigma_max = sigma_T
    and sigma_min = sigma_1 (sigma_{T - 1} on top where SNR_T = 0):

        sigma_i = (sigma_max^(1/rho) + i / (N - 1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho,

    for i = 0, ..., N - 1, each rounded to the step of nearest log SNR, then sigma_N = 0 (the
    data). rho = 7 spends most steps at low noise; rho = 1 is uniform in sigma.

    Args:
        schedule: the schedule whose noise levels the grid follows.
        steps: the number of jumps N, 1..T (None: T).
        rho: the exponent, > 0 (7 in Karras et al.).

    Returns:
        (N + 1,) int64, strictly decreasing from T to 0.

    Raises:
        ValueError: if ``rho`` is not a positive finite number or ``steps`` is out of range.
    """
    T, steps = _check_schedule(schedule, steps)
    if isinstance(rho, bool) or not (np.isfinite(rho) and rho > 0):
        raise ValueError(f"rho must be a positive finite number, got {rho!r}")
    top, bottom = _log_snr_range(schedule)
    root_max, root_min = np.exp(-top / (2 * rho)), np.exp(-bottom / (2 * rho))  # sigma^(1/rho)
    fraction = np.arange(steps) / max(steps - 1, 1)
    targets = -2 * rho * np.log(root_max + fraction * (root_min - root_max))  # log SNR
    return _distinct(np.concatenate([[T], _nearest_steps(schedule, targets)[1:], [0]]), T)


def ddim_timesteps(
    T: int, steps: int | None = None, spacing: IndexSpacing = "uniform"
) -> np.ndarray:
    """The grid tau of a DDIM sampler (Song et al. 2021, sec. 4.2 and appendix D.2) for the
    spacings that depend on T alone: `uniform_timesteps`, `trailing_timesteps` or
    `quadratic_timesteps`. A strictly decreasing int64 array of length ``steps + 1`` from T
    to 0; with ``steps = T`` (or None) the full grid T, T - 1, ..., 0.

    Raises:
        ValueError: if ``steps`` is not in 1..T or ``spacing`` is not one of `INDEX_SPACINGS`.
    """
    if spacing == "uniform":
        return uniform_timesteps(T, steps)
    elif spacing == "trailing":
        return trailing_timesteps(T, steps)
    elif spacing == "quadratic":
        return quadratic_timesteps(T, steps)
    else:
        raise ValueError(
            f"unknown spacing {spacing!r}; expected one of {INDEX_SPACINGS} "
            f"(or {SPACINGS} with sampling_timesteps)"
        )


def sampling_timesteps(
    schedule: Schedule, steps: int | None = None, spacing: Spacing = DEFAULT_SPACING
) -> np.ndarray:
    """The grid of a sampler on ``schedule`` for any of the `SPACINGS` (module docstring).

    Args:
        schedule: the schedule (its T, and its noise levels for "logsnr" and "karras").
        steps: the number of jumps, 1..T (None: T).
        spacing: one of `SPACINGS`; by default `DEFAULT_SPACING`, the samplers' default.

    Returns:
        (steps + 1,) int64, strictly decreasing from T to 0.

    Raises:
        ValueError: if ``steps`` is out of range or ``spacing`` is unknown.
    """
    if spacing == "logsnr":
        return logsnr_timesteps(schedule, steps)
    elif spacing == "karras":
        return karras_timesteps(schedule, steps)
    elif spacing in INDEX_SPACINGS:
        _check_schedule(schedule, steps)
        return ddim_timesteps(schedule.T, steps, spacing)
    else:
        raise ValueError(f"unknown spacing {spacing!r}; expected one of {SPACINGS}")
