"""Shared pieces of the `GaussianDiffusion` and variational-bound tests: float64 tensors,
an elementwise closeness check, 8-bit data, the NumPy layer's targets and variances, and
the denoiser that knows x_0."""

from __future__ import annotations

import math

import numpy as np
import torch

from minidiff import process
from minidiff.diffusion import TorchDenoiser
from tests.tolerances import ATOL, RTOL

LOG_2 = math.log(2.0)
BINS = 256


def tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float64))


def close(actual: torch.Tensor, expected, rtol: float = RTOL, atol=ATOL) -> None:
    """|actual - expected| <= atol + rtol |expected| elementwise; atol may be an array."""
    actual = actual.detach().numpy()
    expected = np.broadcast_to(np.asarray(expected, dtype=np.float64), actual.shape)
    if actual.size == 0:
        return
    bound = np.broadcast_to(atol + rtol * np.abs(expected), actual.shape)
    with np.errstate(invalid="ignore"):
        error = np.where(actual == expected, 0.0, np.abs(actual - expected))  # inf == inf
    worst = np.unravel_index(np.argmax(error - bound), actual.shape)
    assert np.all(error <= bound), (
        f"at {worst}: {actual[worst]!r} vs {expected[worst]!r}, error {error[worst]:.3g} "
        f"> bound {bound[worst]:.3g}"
    )


def on_bins(rng: np.random.Generator, shape) -> np.ndarray:
    """8-bit data scaled to [-1, 1], with both end values present."""
    x = rng.integers(0, BINS, size=shape).reshape(-1)
    x[:2] = [0, BINS - 1]
    return (x.reshape(shape) / (BINS - 1)) * 2.0 - 1.0


def numpy_target(schedule, parameterization: str, x0, t, eps) -> np.ndarray:
    """eps, x0 or v from the NumPy layer (Salimans & Ho 2022 for v)."""
    if parameterization == "eps":
        return eps
    if parameterization == "x0":
        return x0
    return process.v_from_x0_eps(schedule, x0, t, eps)


def numpy_x0(schedule, parameterization: str, xt, t, prediction) -> np.ndarray:
    """The x0 implied by a prediction, from the NumPy layer."""
    if parameterization == "eps":
        return process.x0_from_eps(schedule, xt, t, prediction)
    if parameterization == "x0":
        return prediction
    return process.x0_from_v(schedule, xt, t, prediction)


def numpy_log_variance(schedule, variance: str, t, v=None) -> np.ndarray:
    """(B, 1) log Sigma: log beta_tilde_t (clipped), log beta_t (beta_tilde_2 at t = 1) or
    their interpolation with frac = (v + 1) / 2 (Nichol & Dhariwal 2021, eq. 15)."""
    small = schedule.posterior_log_var_clipped[t][:, None]
    first = schedule.posterior_var[2] if schedule.T >= 2 else schedule.beta[1]
    large = np.log(np.where(t == 1, first, schedule.beta[t]))[:, None]
    if variance == "fixed_small":
        return small
    if variance == "fixed_large":
        return large
    frac = (v + 1.0) / 2.0
    return frac * large + (1.0 - frac) * small


def perfect_denoiser(schedule, parameterization: str, x0: np.ndarray) -> TorchDenoiser:
    """The denoiser that knows x0: it returns the exact target for the x0 behind x_t."""

    def fn(xt, t):
        eps = process.eps_from_x0(schedule, xt, t, x0)
        return numpy_target(schedule, parameterization, x0, t, eps)

    return TorchDenoiser(fn)


def fixed_output(output: torch.Tensor):
    """A denoiser returning the same output whatever x_t and t."""
    return lambda xt, t: output
