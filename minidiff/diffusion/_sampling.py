"""Pieces shared by the samplers: the start x_T, the noise source, the progress bar, the
denoiser call (x0_hat and eps_hat) and coefficient tables over a grid of steps.

Every per-step coefficient is computed in float64 NumPy from the `Schedule` tables (or
`minidiff.process`) and cast once to the sampler's dtype and device, so no coefficient is
formed in low precision and none is re-derived in torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from minidiff.diffusion.gaussian import GaussianDiffusion

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
NoiseSource = Callable[[torch.Size], torch.Tensor]


def check_diffusion(diffusion: GaussianDiffusion) -> None:
    if not isinstance(diffusion, GaussianDiffusion):
        raise TypeError(f"diffusion must be a GaussianDiffusion, got {type(diffusion).__name__}")


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


def steps(iterable: Iterable, total: int, progress: bool, desc: str) -> Iterable:
    if not progress:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc)


def check_clip(clip_x0: float | None) -> None:
    if clip_x0 is not None and not (np.isfinite(clip_x0) and clip_x0 > 0):
        raise ValueError(f"clip_x0 must be None or a positive number, got {clip_x0!r}")


def check_start(diffusion: GaussianDiffusion, t: int) -> None:
    """eps-prediction cannot give x0 where alpha_bar_t = 0 (zero terminal SNR at t = T):
    there x_t = eps carries no information on x_0, and x0 = (x_t - eps) / 0."""
    if diffusion.parameterization == "eps" and diffusion.schedule.alpha_bar[t] == 0.0:
        raise ValueError(
            f"alpha_bar_{t} = 0 (zero terminal SNR): an eps-prediction carries no "
            "information on x_0 there and x0 = (x_t - eps) / sqrt(alpha_bar_t) divides by 0; "
            "use parameterization 'v' or 'x0' (Lin et al. 2024, sec. 3.2)"
        )


def predict(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    x: torch.Tensor,
    t: int,
    clip_x0: float | None = None,
) -> dict[str, torch.Tensor]:
    """The denoiser at (x_t, t) turned into `GaussianDiffusion.p_mean_variance`'s dict
    (x0, eps, mean, var, log_var); t is one int, broadcast over the batch."""
    t_batch = torch.full((x.shape[0],), t, dtype=torch.int64, device=x.device)
    output = denoiser(x, t_batch)
    return diffusion.p_mean_variance(output, x, t_batch, clip_x0=clip_x0)


def as_table(values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """A float64 NumPy table as a tensor in ``like``'s dtype and device."""
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)).to(
        dtype=like.dtype, device=like.device
    )


def finish(x: torch.Tensor, trajectory: list[torch.Tensor] | None):
    if trajectory is None:
        return x
    return x, torch.stack(trajectory)
