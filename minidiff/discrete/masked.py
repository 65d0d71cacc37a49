"""Absorbing ("mask") diffusion in continuous time: MDLM (Sahoo et al. 2024).

Each token is kept with probability alpha(t) and masked otherwise, independently, with
the linear schedule alpha(t) = 1 - t on t in [0, 1]. The denoiser predicts
p~(x_0 | x_t) over the data states only and keeps unmasked tokens (the "SUBS"
parameterization, MDLM sec. 3.2.3). The negative ELBO is then a weighted masked
cross-entropy (MDLM, eq. 10 with alpha' = -1):

    NELBO = E_{t ~ U(0, 1)} E_{x_t ~ q(x_t | x_0)} [ (1 / t) sum_{l: x_t^l = m}
            -log p~(x_0^l | x_t) ].

It is the T -> infinity limit of the discrete absorbing ELBO of `D3PM` with
alpha_bar_t = 1 - t / T, i.e. beta_t = 1 / (T - t + 1) (D3PM sec. 4, the mutual-
information schedule): the discrete bound is sum_{t=1}^T (1/t) f(t / T), a Riemann sum of
the integral of f(s) / s (tested). Sampling unmasks: from t to s < t each masked token is
revealed with probability (alpha(s) - alpha(t)) / (1 - alpha(t)) = (t - s) / t with a
value drawn from p~(x_0 | x_t) (MDLM, eq. 7); kept tokens never change, which makes
infilling the same loop started from a partly masked sequence.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as F

__all__ = [
    "absorbing_linear_beta",
    "mask_tokens",
    "masked_loss_terms",
    "masked_nelbo",
    "sample_masked",
    "stratified_times",
]

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def absorbing_linear_beta(T: int) -> np.ndarray:
    """(T + 1,) betas with alpha_bar_t = 1 - t / T: beta_t = 1 / (T - t + 1), beta_0 = 0."""
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be an int >= 1, got {T!r}")
    t = np.arange(1, T + 1)
    return np.concatenate([[0.0], 1.0 / (T - t + 1.0)])


def mask_tokens(
    x0: torch.Tensor, t: torch.Tensor, mask_id: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """x_t: each token of x0 (B, L) replaced by ``mask_id`` with probability t (B,)."""
    u = torch.rand(x0.shape, generator=generator, dtype=torch.float64).to(x0.device)
    return torch.where(u < t.to(torch.float64)[:, None], mask_id, x0)


def masked_loss_terms(
    logits: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, mask_id: int
) -> torch.Tensor:
    """(B,) the integrand (1 / t) sum_{masked l} -log p~(x_0^l | x_t) in nats (MDLM, eq. 10).

    Args:
        logits: (B, L, V) over the data states. x0, xt: (B, L). t: (B,) in (0, 1].
    """
    if logits.shape[:2] != x0.shape or x0.shape != xt.shape:
        raise ValueError(
            f"logits (B, L, V), x0 and xt (B, L) must agree, got {tuple(logits.shape)}, "
            f"{tuple(x0.shape)}, {tuple(xt.shape)}"
        )
    ce = F.cross_entropy(logits.transpose(1, 2), x0, reduction="none")  # (B, L)
    masked = (xt == mask_id).to(ce.dtype)
    return (ce * masked).sum(-1) / t.to(ce.dtype)


def stratified_times(batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch,) t in (0, 1]: one uniform offset u, t_b = 1 - ((u + b) / batch mod 1).

    The low-discrepancy sampler of Kingma et al. (2021, VDM, app. I.1): every t is
    uniform, so the loss stays unbiased, and the batch covers [0, 1] evenly.
    """
    u = torch.rand((), generator=generator, dtype=torch.float64)
    return 1.0 - torch.remainder(u + torch.arange(batch, dtype=torch.float64) / batch, 1.0)


def masked_nelbo(
    denoiser: Denoiser,
    x0: torch.Tensor,
    mask_id: int,
    *,
    t: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B,) one-sample estimates of the NELBO in nats per token (an upper bound on -log p).

    ``denoiser(x_t, t)`` takes (B, L) int64 and (B,) float32 and returns (B, L, V) logits.
    """
    if t is None:
        t = stratified_times(x0.shape[0], generator).to(x0.device)
    xt = mask_tokens(x0, t, mask_id, generator)
    logits = denoiser(xt, t.to(torch.float32))
    return masked_loss_terms(logits, x0, xt, t, mask_id) / x0.shape[1]


@torch.no_grad()
def sample_masked(
    denoiser: Denoiser,
    xt: torch.Tensor,
    mask_id: int,
    *,
    steps: int = 256,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Ancestral unmasking from t = 1 to 0 in ``steps`` equal steps (MDLM, eq. 7).

    Args:
        xt: (B, L) the start: all ``mask_id`` to generate, or a partly masked sequence to
            infill (its unmasked tokens are kept).
        steps: the number of reverse steps; every mask is gone at t = 0.

    Returns:
        (B, L) int64 with no mask left.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    x = xt.clone()
    grid = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    for t, s in zip(grid[:-1], grid[1:], strict=True):
        masked = x == mask_id
        if not masked.any():
            break
        logits = denoiser(x, torch.full((x.shape[0],), float(t), dtype=torch.float32))
        probs = torch.softmax(logits.float(), dim=-1)  # (B, L, V)
        draw = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator)
        reveal = torch.rand(x.shape, generator=generator, dtype=torch.float64) < (t - s) / t
        x = torch.where(masked & reveal, draw.reshape(x.shape), x)  # 1. unmask (t - s)/t of them
    return x
