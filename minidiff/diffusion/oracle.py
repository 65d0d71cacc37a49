"""Exact answers in PyTorch: a NumPy denoiser (such as the exact Gaussian-mixture oracle of
`minidiff.toy`) used as a torch denoiser, and the noised mixture's log joint in torch,
differentiable in x_t, for the oracles that need gradients (the exact class posterior of
classifier guidance, the exact denoiser of the ODE likelihood)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

__all__ = ["TorchDenoiser", "noised_mixture_log_joint"]


def noised_mixture_log_joint(mixture, alpha_bar: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
    """log w_k + log N(x_t; sqrt(alpha_bar_t) mu_k, S_k) for every component k of a
    `GaussianMixture` data law, with S_k = alpha_bar_t Sigma_k + (1 - alpha_bar_t) I: the
    law of x_t given component k (Ho et al. 2020, eq. 4; `GaussianMixture.noised` in NumPy).
    Its logsumexp over k is log q_t(x_t), its log_softmax the class posterior.

    Args:
        mixture: the data law x_0 ~ sum_k w_k N(mu_k, Sigma_k).
        alpha_bar: (B,) alpha_bar_t of each row.
        xt: (B, D) points; the result has their dtype and is differentiable in them.

    Returns:
        (B, K) log joint of x_t and each component.
    """
    like = dict(dtype=xt.dtype, device=xt.device)
    weights, means, covs = (torch.as_tensor(np.array(a), **like)
                            for a in (mixture.weights, mixture.means, mixture.covs))  # fmt: skip
    alpha_bar = alpha_bar.to(**like)[:, None, None, None]  # (B, 1, 1, 1)
    eye = torch.eye(means.shape[1], **like)
    cov_t = alpha_bar * covs + (1 - alpha_bar) * eye  # (B, K, D, D)
    diff = xt[:, None, :] - alpha_bar[..., 0].sqrt() * means  # (B, K, D)
    chol = torch.linalg.cholesky(cov_t)
    z = torch.linalg.solve_triangular(chol, diff[..., None], upper=False)[..., 0]  # (B, K, D)
    log_det = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)  # (B, K)
    dim = means.shape[1]
    return (
        torch.log(weights)
        - 0.5 * (z * z).sum(-1)
        - 0.5 * log_det
        - 0.5 * dim * math.log(2 * math.pi)
    )


class TorchDenoiser:
    """Wrap ``fn(xt: np.ndarray (B, D), t: np.ndarray (B,)) -> np.ndarray (B, D)`` as
    ``denoiser(xt: Tensor, t: Tensor) -> Tensor``.

    The computation runs in float64 NumPy; the result is returned on ``xt``'s device in
    ``xt``'s dtype. Gradients do not flow through it.

    Args:
        fn: the NumPy denoiser, e.g. ``GaussianMixture.denoiser(schedule)``.
    """

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, xt: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        t = torch.as_tensor(t).to(torch.int64)
        if t.ndim == 0:
            t = t.expand(xt.shape[0])
        x = xt.detach().to("cpu", torch.float64).numpy()
        out = np.asarray(self.fn(x, t.cpu().numpy()), dtype=np.float64)
        return torch.from_numpy(out).to(device=xt.device, dtype=xt.dtype)
