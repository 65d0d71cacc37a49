"""The grid of steps a sampler walks: T = tau_0 > tau_1 > ... > tau_N = 0.

DDIM (Song, Meng & Ermon 2021, sec. 4.2 and appendix D.2) samples along a sub-sequence of
the T steps; every grid sampler of `minidiff.diffusion` (DDIM, the ODE and SDE solvers,
DPM-Solver++, the Langevin samplers) and the NumPy `minidiff.toy.sample_ddim` walk the
grid built here.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

__all__ = ["SPACINGS", "Spacing", "ddim_timesteps"]

Spacing = Literal["uniform", "quadratic", "trailing"]
SPACINGS: tuple[str, ...] = get_args(Spacing)


def _round_half_up(numerator: np.ndarray, denominator: int) -> np.ndarray:
    """round(numerator / denominator) with halves rounded up, in exact integer arithmetic."""
    return (2 * numerator + denominator) // (2 * denominator)


def ddim_timesteps(T: int, steps: int | None = None, spacing: Spacing = "uniform") -> np.ndarray:
    """The grid tau of a DDIM sampler (Song et al. 2021, sec. 4.2 and appendix D.2).

    A strictly decreasing int64 array of length ``steps + 1`` that starts at T (so that
    sampling starts from x_T ~ N(0, I)) and ends at 0 (the data):

    - ``"uniform"``: T, then ``steps - 1`` steps evenly spaced from T down to 1 (rounded),
      then 0: the "linspace" grid of Lin et al. (2024), Table 2.
    - ``"trailing"``: round(T k / steps) for k = steps, ..., 1, then 0: every jump,
      the last one included, has length about T / steps (Lin et al. 2024, Table 2).
    - ``"quadratic"``: round(T (k / steps)^2) for k = steps, ..., 0, raised where needed to
      stay strictly decreasing (DDIM's quadratic grid, finer near the data).

    With ``steps = T`` (or None) every spacing gives the full grid T, T - 1, ..., 0.

    Raises:
        ValueError: if ``steps`` is not in 1..T or ``spacing`` is unknown.
    """
    if isinstance(T, bool) or int(T) != T or T < 1:
        raise ValueError(f"T must be a positive integer, got {T!r}")
    steps = T if steps is None else steps
    if isinstance(steps, bool) or int(steps) != steps or not 1 <= steps <= T:
        raise ValueError(f"steps must be an integer in 1..T = {T}, got {steps!r}")
    T, steps = int(T), int(steps)
    k = np.arange(steps, -1, -1, dtype=np.int64)  # steps, ..., 0
    if spacing == "uniform":
        if steps == 1:
            return np.array([T, 0], dtype=np.int64)
        inner = 1 + _round_half_up((T - 1) * (k[:-1] - 1), steps - 1)  # T, ..., 1
        return np.concatenate([inner, [0]]).astype(np.int64)
    elif spacing == "trailing":
        return _round_half_up(T * k, steps)
    elif spacing == "quadratic":
        grid = _round_half_up(T * k**2, steps**2)
        for i in range(steps - 1, -1, -1):  # lift from the data end: grid[i] > grid[i + 1]
            grid[i] = max(grid[i], grid[i + 1] + 1)
        return grid
    else:
        raise ValueError(f"unknown spacing {spacing!r}; expected one of {SPACINGS}")
