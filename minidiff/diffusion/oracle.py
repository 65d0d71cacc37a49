"""Use a NumPy denoiser (such as the exact Gaussian-mixture oracle of `minidiff.toy`) as a
PyTorch denoiser, so that the torch samplers can be checked against exact answers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["TorchDenoiser"]


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
