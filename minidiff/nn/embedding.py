"""Sinusoidal timestep embedding (Vaswani et al. 2017, sec. 3.5), as used by the DDPM
U-Net (Ho et al. 2020, appendix B: "diffusion time t is specified by adding the
Transformer sinusoidal position embedding into each residual block").

The layout is the one of the DDPM code release (and of diffusers' ``UNet2DModel`` with
``flip_sin_to_cos=False, freq_shift=1``, the configuration of google/ddpm-cifar10-32):
with ``half = dim // 2`` frequencies

    omega_k = max_period ** (-k / (half - 1)),   k = 0, ..., half - 1,
    emb(t)  = [sin(t omega_0), ..., sin(t omega_{half-1}),
               cos(t omega_0), ..., cos(t omega_{half-1})],

plus one zero column when ``dim`` is odd. The highest frequency is 1 and the lowest is
``1 / max_period``, so a period spans 2 pi to 2 pi max_period steps.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["sinusoidal_embedding", "TimeEmbedding"]


def sinusoidal_embedding(
    t: torch.Tensor,
    dim: int,
    *,
    max_period: float = 10000.0,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """The sinusoidal embedding of timesteps (Vaswani et al. 2017, sec. 3.5).

    emb(t)[k] = sin(t omega_k) and emb(t)[half + k] = cos(t omega_k) with
    omega_k = max_period ** (-k / (half - 1)), half = dim // 2 (module docstring).

    Args:
        t: timesteps, shape (B,), integer or floating (fractional t is allowed).
        dim: embedding width, at least 4 (two frequencies per sine/cosine half).
        max_period: the longest period divided by 2 pi.
        dtype: floating dtype of the result; default: ``t.dtype`` if floating, else
            ``torch.get_default_dtype()``. Computed in this dtype throughout.

    Returns:
        The embedding, shape (B, dim), on ``t``'s device.
    """
    if t.ndim != 1:
        raise ValueError(f"t must have shape (B,), got shape {tuple(t.shape)}")
    if dim < 4:
        raise ValueError(f"dim must be at least 4, got {dim}")
    if not max_period > 1:
        raise ValueError(f"max_period must be > 1, got {max_period}")
    if dtype is None:
        dtype = t.dtype if t.is_floating_point() else torch.get_default_dtype()
    half = dim // 2
    k = torch.arange(half, device=t.device, dtype=dtype)
    omega = torch.exp(-math.log(max_period) * k / (half - 1))  # (half,)
    angle = t.to(dtype)[:, None] * omega[None, :]  # (B, half)
    emb = torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)  # (B, 2 half)
    if dim % 2 == 1:
        emb = nn.functional.pad(emb, (0, 1))  # (B, dim)
    return emb


class TimeEmbedding(nn.Module):
    """The U-Net's time embedding: the sinusoidal embedding of t followed by an MLP,
    Linear(dim, hidden) - SiLU - Linear(hidden, hidden), with hidden = 4 x the base width
    (Ho et al. 2020, appendix B; the DDPM code's ``temb`` dense layers).

    Args:
        dim: width of the sinusoidal embedding (the U-Net's base channel count).
        hidden_dim: width of the output (4 x base channels in DDPM).
    """

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        if dim < 4:
            raise ValueError(f"dim must be at least 4, got {dim}")
        if hidden_dim < 1:
            raise ValueError(f"hidden_dim must be positive, got {hidden_dim}")
        self.dim = dim
        self.linear_1 = nn.Linear(dim, hidden_dim)
        self.linear_2 = nn.Linear(hidden_dim, hidden_dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """Embed timesteps t, shape (B,), into shape (B, hidden_dim)."""
        emb = sinusoidal_embedding(t, self.dim, dtype=self.linear_1.weight.dtype)  # (B, dim)
        return self.linear_2(nn.functional.silu(self.linear_1(emb)))  # (B, hidden_dim)
