"""Likelihoods of a diffusion model: the variational bound and the exact probability-flow ODE.

Two numbers measure how much probability a model puts on held-out data, in bits per
dimension (bits/dim = -log_2 p(x) / D):

- The VLB (Ho et al. 2020, eq. 5; `GaussianDiffusion.vlb_terms`): an upper bound on
  -log p(x_0), with the discretised Gaussian decoder L_0 for 8-bit (or other binned) data.
- The probability-flow ODE (Song et al. 2021, "Score-based generative modeling through
  SDEs", app. D): the deterministic flow that carries data to noise with the model's
  marginals gives log p exactly by the instantaneous change of variables (Chen et al.
  2018, thm. 1),

      log p_0(x(0)) = log p_T(x(T)) + int_0^T div f(x(s), s) ds,

  where f is the ODE's velocity. Here the flow is written in y = x / sqrt(alpha_bar) and
  sigma = sqrt((1 - alpha_bar) / alpha_bar) (the variables of `minidiff.diffusion.sde`),
  where it reads dy / dsigma = eps(x, t) and div_y eps = sqrt(alpha_bar_t) div_x eps. The
  integral runs over the schedule's steps t = 1..T (the denoiser is defined at those
  only) by Heun's rule, from y = x_0 at sigma_1: the result is the log density of
  y_1 = x_0 + sigma_1 z, the data smoothed by the smallest noise level the model knows
  (sigma_1 = 0.01 for the linear schedule of T = 1000), a proper density for continuous
  data. At sigma_T, y_T = x_T / sqrt(alpha_bar_T) with x_T ~ N(0, I), so
  log p(y_T) = log N(x_T; 0, I) + (D / 2) log alpha_bar_T.

  The divergence is exact for small D (one backward pass per dimension) or the
  Hutchinson-Skilling estimate v^T (d eps / d x) v with one Rademacher v per trajectory
  (Hutchinson 1989; Skilling 1989; Grathwohl et al. 2018), unbiased for images.
- Discrete data on ``num_bins`` levels in [-1, 1] get uniform dequantization (Uria et al.
  2013; Ho et al. 2019): x + w (u - 1/2), w the bin width, u ~ U(0, 1)^D; then
  -log_2 P(x) <= -(E_u log p(x + w (u - 1/2)) + D log w) / log 2 (Jensen).

`mixture_denoiser` is the Gaussian-mixture oracle of `minidiff.toy.GaussianMixture` as a
differentiable torch denoiser, so the ODE's exact answer can be checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch

from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.diffusion.oracle import noised_mixture_log_joint
from minidiff.process import ode_sigma

__all__ = [
    "DIVERGENCES",
    "Divergence",
    "LikelihoodResult",
    "mixture_denoiser",
    "ode_bits_per_dim",
    "ode_log_likelihood",
    "vlb_bits_per_dim",
]

Divergence = Literal["exact", "hutchinson"]
DIVERGENCES: tuple[str, ...] = get_args(Divergence)
_LOG_2 = math.log(2.0)


@dataclass(frozen=True)
class LikelihoodResult:
    """Bits per dimension: ``mean`` over ``n`` examples and its standard error ``sem``."""

    mean: float
    sem: float
    n: int
    method: str


def _summary(values: torch.Tensor, method: str) -> LikelihoodResult:
    values = values.detach().double().cpu()
    n = len(values)
    sem = float(values.std(unbiased=True) / math.sqrt(n)) if n > 1 else math.nan
    return LikelihoodResult(float(values.mean()), sem, n, method)


def _eps(denoiser, diffusion: GaussianDiffusion, x: torch.Tensor, t: int) -> torch.Tensor:
    t_batch = torch.full((x.shape[0],), t, dtype=torch.int64, device=x.device)
    return diffusion.predict_x0_eps(denoiser(x, t_batch), x, t_batch)[1]


def _eps_and_divergence(
    denoiser, diffusion: GaussianDiffusion, x: torch.Tensor, t: int, probe: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """eps(x, t) (B, ...) and div_x eps (B,): exact (probe None) or v^T J v."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        eps = _eps(denoiser, diffusion, x, t)
        if probe is not None:
            (vjp,) = torch.autograd.grad(eps, x, grad_outputs=probe)
            divergence = (vjp * probe).reshape(len(x), -1).sum(dim=1)
        else:
            flat = eps.reshape(len(x), -1)
            divergence = torch.zeros(len(x), dtype=x.dtype, device=x.device)
            for i in range(flat.shape[1]):
                (grad,) = torch.autograd.grad(flat[:, i].sum(), x, retain_graph=True)
                divergence = divergence + grad.reshape(len(x), -1)[:, i]
    return eps.detach(), divergence.detach()


def _grid(T: int, steps: int | None) -> np.ndarray:
    """Integer steps 1 = t_0 < t_1 < ... < t_N = T (N = steps, default T - 1)."""
    if steps is None:
        return np.arange(1, T + 1)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= T - 1:
        raise ValueError(f"steps must be an integer in 1..T - 1 = {T - 1}, got {steps!r}")
    return np.unique(np.round(np.linspace(1, T, steps + 1)).astype(np.int64))


def ode_log_likelihood(
    denoiser: Callable[..., torch.Tensor],
    diffusion: GaussianDiffusion,
    x0: torch.Tensor,
    *,
    steps: int | None = None,
    divergence: Divergence = "exact",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """log p(x_0) in nats, (B,), by the probability-flow ODE (module docstring): the log
    density of x_0 + sigma_1 z under the model.

    Args:
        denoiser: ``denoiser(xt, t)`` in the diffusion's parameterization, differentiable.
        diffusion: the diffusion (alpha_bar_T > 0).
        x0: (B, ...) data.
        steps: Heun steps from t = 1 to T on a uniform integer grid (None: every step).
        divergence: ``"exact"`` (D backward passes a step) or ``"hutchinson"``.
        generator: for the Rademacher probe of ``"hutchinson"``.
    """
    if not isinstance(diffusion, GaussianDiffusion):
        raise TypeError(f"diffusion must be a GaussianDiffusion, got {type(diffusion).__name__}")
    if divergence not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {DIVERGENCES}, got {divergence!r}")
    schedule = diffusion.schedule
    if not schedule.alpha_bar[-1] > 0:
        raise ValueError("the ODE likelihood needs alpha_bar_T > 0 (a finite sigma_T)")
    grid = _grid(diffusion.T, steps)
    sigma, sqrt_alpha_bar = ode_sigma(schedule), schedule.sqrt_alpha_bar
    probe = None
    if divergence == "hutchinson":
        probe = torch.randint(0, 2, x0.shape, generator=generator, dtype=torch.int64)
        probe = (2 * probe - 1).to(device=x0.device, dtype=x0.dtype)

    def slope(y: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        eps, div_x = _eps_and_divergence(denoiser, diffusion, sqrt_alpha_bar[t] * y, t, probe)
        return eps, sqrt_alpha_bar[t] * div_x  # dy/dsigma and div_y eps

    y = x0.detach().clone()
    integral = torch.zeros(len(x0), dtype=x0.dtype, device=x0.device)
    k1, d1 = slope(y, int(grid[0]))
    for t, t_next in zip(grid[:-1], grid[1:], strict=True):
        h = float(sigma[t_next] - sigma[t])
        k2, d2 = slope(y + h * k1, int(t_next))  # Heun: slope at the Euler proposal
        y = y + h * (k1 + k2) / 2
        integral = integral + h * (d1 + d2) / 2
        k1, d1 = slope(y, int(t_next)) if t_next != grid[-1] else (k2, d2)
    D = y[0].numel()
    x_T = float(sqrt_alpha_bar[grid[-1]]) * y
    log_prior = -0.5 * (x_T.reshape(len(y), -1) ** 2).sum(1) - 0.5 * D * math.log(2 * math.pi)
    return log_prior + 0.5 * D * math.log(schedule.alpha_bar[grid[-1]]) + integral


def ode_bits_per_dim(
    denoiser: Callable[..., torch.Tensor],
    diffusion: GaussianDiffusion,
    x0: torch.Tensor,
    *,
    num_bins: int | None = None,
    steps: int | None = None,
    divergence: Divergence = "hutchinson",
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> LikelihoodResult:
    """Bits per dimension by the ODE, with uniform dequantization when ``num_bins`` is set
    (discrete data on ``num_bins`` levels in [-1, 1]; None: continuous data)."""
    D = x0[0].numel()
    values = []
    for chunk in x0.split(batch_size):
        offset = 0.0
        if num_bins is not None:
            width = 2.0 / (num_bins - 1)
            u = torch.rand(chunk.shape, generator=generator, dtype=chunk.dtype).to(chunk.device)
            chunk = chunk + width * (u - 0.5)
            offset = D * math.log(width)
        log_p = ode_log_likelihood(
            denoiser, diffusion, chunk, steps=steps, divergence=divergence, generator=generator
        )
        values.append(-(log_p + offset) / (D * _LOG_2))
    return _summary(torch.cat(values), f"ode-{divergence}")


def vlb_bits_per_dim(
    denoiser: Callable[..., torch.Tensor],
    diffusion: GaussianDiffusion,
    x0: torch.Tensor,
    *,
    num_bins: int | None = 256,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
    clip_x0: float | None = None,
) -> LikelihoodResult:
    """The VLB in bits per dimension (`GaussianDiffusion.vlb_terms`' ``total``), with the
    discretised decoder of ``num_bins`` levels (None: the Gaussian density)."""
    totals = [
        diffusion.vlb_terms(denoiser, chunk, generator=generator, num_bins=num_bins,
                            clip_x0=clip_x0)["total"]
        for chunk in x0.split(batch_size)
    ]  # fmt: skip
    return _summary(torch.cat(totals), "vlb")


def mixture_denoiser(mixture, diffusion: GaussianDiffusion) -> Callable[..., torch.Tensor]:
    """The exact eps-denoiser of a `GaussianMixture` data law, in torch and differentiable:

    q_t = sum_k w_k N(sqrt(alpha_bar_t) mu_k, alpha_bar_t Sigma_k + (1 - alpha_bar_t) I),
    eps(x, t) = -sqrt(1 - alpha_bar_t) grad log q_t(x)   (Tweedie; eq. of
    `GaussianMixture.denoiser`). Computed in x's dtype; for an eps-parameterized diffusion.
    """
    if diffusion.parameterization != "eps":
        raise ValueError(f"mixture_denoiser needs parameterization 'eps', got "
                         f"{diffusion.parameterization!r}")  # fmt: skip
    alpha_bar_table = torch.tensor(diffusion.schedule.alpha_bar)

    def denoiser(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        alpha_bar = alpha_bar_table[t.cpu()].to(x.device, x.dtype)  # (B,)
        with torch.enable_grad():
            xg = x if x.requires_grad else x.detach().requires_grad_(True)
            log_q = torch.logsumexp(noised_mixture_log_joint(mixture, alpha_bar, xg), dim=1)
            (score,) = torch.autograd.grad(log_q.sum(), xg, create_graph=True)
        return -torch.sqrt(1 - alpha_bar)[:, None] * score

    return denoiser
