"""The frame every sampler runs in, and the denoiser call.

A sampler opens a `Frame` (`open_frame`): it checks the arguments, draws or copies x_T,
builds the grid of steps, and then carries the noise source, the progress bar, the
trajectory and the result. The loop between opening and `Frame.result` is the sampler's
own, written out in its function with its numbered, cited steps.

Every per-step coefficient is computed in float64 NumPy by `minidiff.process` (or the
`Schedule` tables) and cast once to the sampler's dtype and device (`Frame.table`), so no
coefficient is formed in low precision and none is re-derived in torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import torch

from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.process import DEFAULT_SPACING, Spacing, sampling_timesteps

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
NoiseSource = Callable[[torch.Size], torch.Tensor]


class SamplerOptions(TypedDict, total=False):
    """The keyword options every sampler takes (see `minidiff.diffusion.samplers`)."""

    generator: torch.Generator | None
    noise: NoiseSource | None
    progress: bool
    return_trajectory: bool
    dtype: torch.dtype | None
    device: torch.device | str | None


def start(
    shape_or_x_T: Sequence[int] | torch.Tensor,
    generator: torch.Generator | None,
    dtype: torch.dtype | None,
    device: torch.device | str | None,
) -> torch.Tensor:
    """x_T: a copy of the given tensor, or a standard normal draw of the given shape
    (``torch.randn(shape, generator=generator, dtype=dtype, device=device)``)."""
    if isinstance(shape_or_x_T, torch.Tensor):
        x = shape_or_x_T.detach().clone()
        if dtype is not None or device is not None:
            x = x.to(dtype=dtype or x.dtype, device=device or x.device)
    else:
        shape = tuple(shape_or_x_T)
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
            raise ValueError(
                f"shape_or_x_T must be a tensor or a shape tuple, got {shape_or_x_T!r}"
            )
        x = torch.randn(shape, generator=generator, dtype=dtype, device=device)
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"x_T must have shape (B, ...) with B >= 1, got {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"x_T must be a floating-point tensor, got dtype {x.dtype}")
    return x


def check_start(diffusion: GaussianDiffusion, t: int) -> None:
    """eps-prediction cannot give x0 where alpha_bar_t = 0 (zero terminal SNR at t = T):
    there x_t = eps carries no information on x_0, and x0 = (x_t - eps) / 0."""
    if diffusion.parameterization == "eps" and diffusion.schedule.alpha_bar[t] == 0.0:
        raise ValueError(
            f"alpha_bar_{t} = 0 (zero terminal SNR): an eps-prediction carries no "
            "information on x_0 there and x0 = (x_t - eps) / sqrt(alpha_bar_t) divides by 0; "
            "use parameterization 'v' or 'x0' (Lin et al. 2024, sec. 3.2)"
        )


def draw(
    like: torch.Tensor, generator: torch.Generator | None, noise: NoiseSource | None
) -> torch.Tensor:
    """z ~ N(0, I) shaped like ``like``: ``noise(like.shape)`` when a source is given,
    else ``torch.randn(like.shape, generator=generator)`` in ``like``'s dtype and device."""
    if noise is None:
        return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)
    z = torch.as_tensor(noise(like.shape))
    if z.shape != like.shape:
        raise ValueError(f"noise returned shape {tuple(z.shape)}, expected {tuple(like.shape)}")
    return z.to(dtype=like.dtype, device=like.device)


@dataclass
class Frame:
    """One sampler call: x_T, the grid T = grid[0] > ... > grid[-1] = 0 (reversed for an
    inversion), where z comes from, the progress bar and the trajectory.

    ``trajectory`` holds x_T and every state `record`-ed, in the order of sampling;
    `result` returns x_0, or (x_0, the trajectory stacked (N + 1, B, ...)).
    """

    x_T: torch.Tensor
    grid: np.ndarray
    generator: torch.Generator | None
    noise: NoiseSource | None
    progress: bool
    desc: str
    trajectory: list[torch.Tensor] | None

    def jumps(self) -> Iterator[tuple[int, int, int]]:
        """(i, t, t_prev) for each jump grid[i] -> grid[i + 1], as Python ints."""
        pairs = range(len(self.grid) - 1)
        if self.progress:
            from tqdm.auto import tqdm

            pairs = tqdm(pairs, total=len(self.grid) - 1, desc=self.desc)
        for i in pairs:
            yield i, int(self.grid[i]), int(self.grid[i + 1])

    def table(self, values: np.ndarray) -> torch.Tensor:
        """A float64 NumPy table (one entry per jump) in x_T's dtype and device."""
        values = np.ascontiguousarray(values, dtype=np.float64)
        return torch.from_numpy(values).to(dtype=self.x_T.dtype, device=self.x_T.device)

    def draw(self, like: torch.Tensor) -> torch.Tensor:
        """z ~ N(0, I) shaped like ``like``, from this call's generator or noise (`draw`)."""
        return draw(like, self.generator, self.noise)

    def record(self, x: torch.Tensor) -> None:
        """Keep ``x`` in the trajectory (when one is asked for)."""
        if self.trajectory is not None:
            self.trajectory.append(x)

    def result(self, x: torch.Tensor):
        """x_0; or (x_0, trajectory (N + 1, B, ...)) with ``return_trajectory``."""
        return x if self.trajectory is None else (x, torch.stack(self.trajectory))


def open_frame(
    diffusion: GaussianDiffusion,
    shape_or_x_T: Sequence[int] | torch.Tensor,
    options: SamplerOptions,
    *,
    desc: str,
    steps: int | None = None,
    spacing: Spacing = DEFAULT_SPACING,
    clip_x0: float | None = None,
    stochastic: bool = True,
    upward: bool = False,
) -> Frame:
    """Check a sampler's arguments and open its `Frame`.

    Args:
        diffusion: the `GaussianDiffusion`.
        shape_or_x_T: the shape (B, ...) of x_T to draw, or the start tensor itself.
        options: the sampler's `SamplerOptions`.
        desc: the progress bar's label.
        steps, spacing: the grid,
            `minidiff.process.sampling_timesteps(schedule, steps, spacing)`.
        clip_x0: checked to be None or positive.
        stochastic: False for a deterministic sampler, which refuses a ``noise`` source.
        upward: walk the grid from 0 up to T (an inversion from x_0).
    """
    if not isinstance(diffusion, GaussianDiffusion):
        raise TypeError(f"diffusion must be a GaussianDiffusion, got {type(diffusion).__name__}")
    unknown = set(options) - set(SamplerOptions.__annotations__)
    if unknown or (not stochastic and options.get("noise") is not None):
        bad = sorted(unknown) or ["noise"]
        raise TypeError(f"the {desc} sampler takes no option {bad[0]!r}")
    if clip_x0 is not None and not (np.isfinite(clip_x0) and clip_x0 > 0):
        raise ValueError(f"clip_x0 must be None or a positive number, got {clip_x0!r}")
    generator = options.get("generator")
    x = start(shape_or_x_T, generator, options.get("dtype"), options.get("device"))
    grid = sampling_timesteps(diffusion.schedule, steps, spacing)
    if upward:
        grid = grid[::-1].copy()  # 0 = grid[0] < ... < grid[-1] = T
    else:
        check_start(diffusion, int(grid[0]))
    return Frame(
        x_T=x,
        grid=grid,
        generator=generator,
        noise=options.get("noise"),
        progress=bool(options.get("progress", False)),
        desc=desc,
        trajectory=[x] if options.get("return_trajectory", False) else None,
    )


def denoise(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    x: torch.Tensor,
    t: int,
    clip_x0: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0_hat, eps_hat) from ``denoiser(x_t, t)`` (`GaussianDiffusion.predict_x0_eps`);
    t is one int, broadcast over the batch."""
    t_batch = torch.full((x.shape[0],), t, dtype=torch.int64, device=x.device)
    return diffusion.predict_x0_eps(denoiser(x, t_batch), x, t_batch, clip_x0)
