"""Shared pieces of the sampler tests: the exact Gaussian-mixture oracle as a torch
denoiser, the MMD bound of an exact sample, a replayable noise source.

The MMD bound (the design of tests/toy/test_sampling.py): a fixed exact reference sample
Y of N = 800 points of the 8-Gaussian mixture, and R = 20 independent exact samples X_r of
N points; conditionally on Y, an exact sampler's output is exchangeable with the X_r, so
its unbiased MMD^2 to Y (RBF widths 0.05, 0.1, 0.2: the scale of one mode) lies below
mean + 4 sd of the R null values MMD^2(X_r, Y) but for a 4-standard-error excursion.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from minidiff.diffusion import GaussianDiffusion, TorchDenoiser
from minidiff.process import linear_schedule
from minidiff.toy.datasets import eight_gaussians_mixture
from minidiff.toy.metrics import mmd
from tests.tolerances import ATOL_LOOSE, N_STANDARD_ERRORS, RTOL_LOOSE

MIXTURE = eight_gaussians_mixture()  # 8 modes of std 0.1: a demanding multimodal target
SCHEDULE = linear_schedule(1000)
N = 800  # points per sample
R = 20  # null replicates
BANDWIDTHS = (0.05, 0.1, 0.2)


def exact(schedule=SCHEDULE, parameterization="eps", mixture=MIXTURE, **kw):
    """(denoiser, diffusion): the mixture's exact denoiser in ``parameterization`` as a
    torch denoiser, and the matching `GaussianDiffusion`."""
    return (
        TorchDenoiser(mixture.denoiser(schedule, parameterization)),
        GaussianDiffusion(schedule, parameterization, **kw),
    )


@functools.cache
def mmd_reference_and_bound() -> tuple[np.ndarray, float]:
    """The reference sample Y (N, 2) and the bound mean + 4 sd of the R null MMD^2 values."""
    reference = MIXTURE.sample(N, np.random.default_rng(1000))
    null = np.array(
        [
            mmd(MIXTURE.sample(N, np.random.default_rng(2000 + r)), reference, BANDWIDTHS)
            for r in range(R)
        ]
    )
    return reference, float(null.mean() + N_STANDARD_ERRORS * null.std(ddof=1))


def assert_reproduces_mixture(x0: torch.Tensor) -> None:
    """MMD^2(x0, Y) is below the exact-vs-exact bound."""
    reference, bound = mmd_reference_and_bound()
    value = mmd(x0.detach().cpu().numpy(), reference, BANDWIDTHS)
    assert value <= bound, f"MMD^2 {value:.3g} above the null bound {bound:.3g}"


def starting_noise(n: int = N, seed: int = 1) -> torch.Tensor:
    """x_T ~ N(0, I): (n, 2) float64."""
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def numpy_noise(rng: np.random.Generator):
    """A noise source for the torch samplers that draws ``rng.standard_normal(shape)``:
    the NumPy samplers' draws, in the same order."""
    return lambda shape: torch.from_numpy(rng.standard_normal(tuple(shape)))


def assert_parameterizations_agree(sampler, options: dict) -> None:
    """Run ``sampler`` with the exact oracle in each parameterization (eps, x0, v) from the
    same x_T and generator seed (linear schedule, T = 50) and assert the samples agree to
    round-off."""
    schedule = linear_schedule(50)
    results = []
    for parameterization in ("eps", "x0", "v"):
        denoiser, diffusion = exact(schedule, parameterization)
        generator = torch.Generator().manual_seed(9)
        results.append(
            sampler(denoiser, diffusion, starting_noise(64), generator=generator, **options)
        )
    for other in results[1:]:
        torch.testing.assert_close(other, results[0], rtol=RTOL_LOOSE, atol=ATOL_LOOSE)
