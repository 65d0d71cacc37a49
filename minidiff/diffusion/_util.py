"""Small helpers shared by the PyTorch diffusion code: calling a denoiser with optional
conditioning, checking data, and drawing noise with an explicit generator on its own device."""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["call_denoiser", "check_data", "randn_like", "randint"]


def call_denoiser(
    denoiser: Callable[..., torch.Tensor],
    xt: torch.Tensor,
    t: torch.Tensor,
    y: torch.Tensor | None = None,
) -> torch.Tensor:
    """``denoiser(xt, t)``, or ``denoiser(xt, t, y)`` when conditioning ``y`` is given."""
    return denoiser(xt, t) if y is None else denoiser(xt, t, y)


def check_data(x0: torch.Tensor) -> torch.Tensor:
    if not isinstance(x0, torch.Tensor):
        raise TypeError(f"x0 must be a torch.Tensor, got {type(x0).__name__}")
    if x0.ndim < 1 or not x0.dtype.is_floating_point:
        raise ValueError(
            f"x0 must be a floating tensor of shape (B, ...), got {x0.dtype} {tuple(x0.shape)}"
        )
    return x0


def _generator_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return device if generator is None else generator.device


def randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like ``x``, drawn on the generator's device."""
    device = _generator_device(generator, x.device)
    noise = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)
    return noise.to(x.device)


def randint(
    low: int, high: int, batch: int, device: torch.device, generator: torch.Generator | None
) -> torch.Tensor:
    """(batch,) int64 uniform in [low, high), drawn on the generator's device."""
    where = _generator_device(generator, device)
    values = torch.randint(low, high, (batch,), generator=generator, device=where)
    return values.to(device)
