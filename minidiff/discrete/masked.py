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

`MaskedDiffusion` holds the process for a vocabulary, with the draws and losses that
`minidiff.training.Trainer` asks of any diffusion (`training_draws`, `training_losses`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as F

from minidiff.discrete.d3pm import check_token_inputs

__all__ = [
    "MaskedDiffusion",
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
    return _mask_below(x0, t, u, mask_id)


def _mask_below(x0: torch.Tensor, t: torch.Tensor, u: torch.Tensor, mask_id: int) -> torch.Tensor:
    """x_t: the tokens of x0 (B, L) whose uniform u (B, L) is below t (B,) masked."""
    return torch.where(u.to(x0.device) < t.to(torch.float64).to(x0.device)[:, None], mask_id, x0)


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
    u = torch.rand(x0.shape, generator=generator, dtype=torch.float64)
    return _nelbo_at(denoiser, x0, t, u, mask_id)


def _nelbo_at(denoiser: Denoiser, x0: torch.Tensor, t: torch.Tensor, u: torch.Tensor,
              mask_id: int) -> torch.Tensor:  # fmt: skip
    """(B,) the NELBO estimate at times t (B,) and mask uniforms u (B, L)."""
    t = t.to(x0.device)
    xt = _mask_below(x0, t, u, mask_id)
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


class MaskedDiffusion:
    """The absorbing diffusion of MDLM over ``vocab_size`` data states, the mask being
    state ``vocab_size``; training is in continuous time, sampling takes ``T`` steps.

    Args:
        vocab_size: V, the data states (token ids 0..V-1; the mask is V).
        T: the unmasking steps of `sample` (the continuous-time bound is T -> infinity).
    """

    def __init__(self, vocab_size: int, T: int = 256) -> None:
        for name, value in (("vocab_size", vocab_size), ("T", T)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.vocab_size, self.mask_id, self.T = vocab_size, vocab_size, T

    @property
    def data_states(self) -> int:
        """The states a denoiser predicts: V (as `D3PM.data_states`)."""
        return self.vocab_size

    def training_draws(self, x0: torch.Tensor, generator: torch.Generator | None = None
                       ) -> dict[str, torch.Tensor]:  # fmt: skip
        """The random draws of one training step for x0 (B, L): stratified times t (B,)
        and the uniforms u (B, L) that mask the tokens with u < t (float64)."""
        t = stratified_times(x0.shape[0], generator).to(x0.device)
        return {"t": t, "u": torch.rand(x0.shape, generator=generator, dtype=torch.float64)}

    def training_losses(self, denoiser: Denoiser, x0: torch.Tensor, *, t: torch.Tensor,
                        u: torch.Tensor, y: torch.Tensor | None = None,
                        num_bins: int | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
        """``{"loss", "t"}``: the (B,) NELBO estimates in nats per token (MDLM, eq. 10) at
        the draws of `training_draws`.

        Raises:
            ValueError: labels ``y`` or a ``num_bins`` (Gaussian decoders only) are given.
        """
        check_token_inputs(y, num_bins)
        return {"loss": _nelbo_at(denoiser, x0, t, u, self.mask_id), "t": t}

    def nelbo(self, denoiser: Denoiser, x0: torch.Tensor,
              generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
        """(B,) one-sample NELBO estimates of x0 (B, L) in nats per token."""
        return masked_nelbo(denoiser, x0, self.mask_id, generator=generator)

    def sample(self, denoiser: Denoiser, xt: torch.Tensor, *, steps: int | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
        """`sample_masked` from ``xt`` (B, L) in ``steps`` steps (default ``T``)."""
        steps = self.T if steps is None else steps
        return sample_masked(denoiser, xt, self.mask_id, steps=steps, generator=generator)
