"""Replacement and RePaint inpainting (`minidiff.applications.inpainting`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.applications.inpainting import (
    MASK_KINDS,
    inpaint,
    inpainting_mask,
    mask_from_image,
    repaint_nfe,
    repaint_schedule,
)
from minidiff.diffusion import GaussianDiffusion, sample_ddim
from minidiff.evaluation.likelihood import mixture_denoiser
from minidiff.process import linear_schedule, toy_schedule
from minidiff.toy import GaussianMixture
from tests.tolerances import N_STANDARD_ERRORS


def _random_denoiser(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A test double: any output at all, depending on x_t and t."""
    return torch.sin(3.0 * xt + t.reshape(-1, *([1] * (xt.ndim - 1))).to(xt.dtype))


@settings(max_examples=60)
@given(st.integers(1, 60), st.integers(1, 12), st.integers(1, 5))
def test_repaint_schedule_is_a_walk_from_n_to_0_with_the_nfe_of_the_formula(n, j, r):
    """The moves chain (each starts where the last ended), run from level n to 0 within
    [0, n], go down one level or up j, and the down moves number
    n + (r - 1) j (floor((n - j) / j) + 1) (`repaint_nfe`; n when j > n or r = 1)."""
    moves = repaint_schedule(n, j, r)
    level = n
    for start, end in moves:
        assert start == level and 0 <= end <= n
        assert end in (start - 1, start + j)
        level = end
    assert level == 0
    assert sum(end == start - 1 for start, end in moves) == repaint_nfe(n, j, r)
    if r == 1 or j > n:
        assert repaint_nfe(n, j, r) == n


def test_repaint_nfe_of_the_papers_setting():
    """T = 250, j = 10, r = 10 (Lugmayr et al. 2022, sec. 5): the jump levels are 0, 10,
    ..., 240 (25 of them), each adding 9 * 10 calls: 250 + 2250."""
    assert repaint_nfe(250, 10, 10) == 250 + 25 * 9 * 10


@settings(max_examples=20)
@given(st.sampled_from(MASK_KINDS), st.integers(1, 3), st.sampled_from([0.0, 1.0]),
       st.integers(0, 99))  # fmt: skip
def test_known_region_is_returned_exactly(kind, resamplings, eta, seed):
    """Wherever the mask is 1 the result equals the data bit for bit, for any denoiser,
    after the last step too."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(3, 1, 8, 8, generator=g) * 2 - 1
    mask = inpainting_mask(kind, 8, generator=g)
    diffusion = GaussianDiffusion(linear_schedule(20))
    out = inpaint(_random_denoiser, diffusion, x0, mask, steps=10, eta=eta, jump_length=3,
                  resamplings=resamplings, generator=g)  # fmt: skip
    keep = mask.bool().expand_as(x0)
    assert torch.equal(out[keep], x0[keep])
    assert torch.isfinite(out).all()


def test_nothing_known_is_the_ddim_sampler():
    """With an all-zero mask and r = 1, inpainting draws what `sample_ddim` draws and
    returns the same images exactly."""
    diffusion = GaussianDiffusion(linear_schedule(30))
    x0 = torch.zeros(4, 1, 4, 4)
    out = inpaint(_random_denoiser, diffusion, x0, torch.zeros(4, 4), steps=7, eta=0.5,
                  generator=torch.Generator().manual_seed(3))  # fmt: skip
    ref = sample_ddim(_random_denoiser, diffusion, (4, 1, 4, 4), steps=7, eta=0.5,
                      generator=torch.Generator().manual_seed(3))  # fmt: skip
    assert torch.equal(out, ref)


def _independent_mixture() -> GaussianMixture:
    """x = (a, b): a ~ N(0.5, 0.3) in both components, b ~ 0.3 N(-2, 0.1) + 0.7 N(2, 0.1):
    a carries no information on b, so p(b | a) is b's marginal for every a."""
    covs = np.stack([np.diag([0.3, 0.1])] * 2)
    return GaussianMixture([0.3, 0.7], [[0.5, -2.0], [0.5, 2.0]], covs)


@pytest.mark.parametrize("resamplings", [1, 3])
def test_exact_denoiser_fills_in_the_exact_conditional(resamplings):
    """With the exact denoiser of a mixture whose known coordinate is independent of the
    other, replacement and RePaint sample p(b | a) exactly (up to the discretisation of
    T = 200 ancestral steps): P(b > 0) = 0.7 and E[b] = 0.8 within 4 standard errors
    (binomial for the share; the mixture's sd sqrt(0.1 + 4 * 0.21) for the mean)."""
    mixture = _independent_mixture()
    diffusion = GaussianDiffusion(toy_schedule(200))
    n = 3000
    x0 = torch.zeros(n, 2, dtype=torch.float64)
    x0[:, 0] = 1.7  # a value far in a's tail: still uninformative about b
    mask = torch.tensor([1.0, 0.0])
    out = inpaint(mixture_denoiser(mixture, diffusion), diffusion, x0, mask,
                  jump_length=20, resamplings=resamplings,
                  generator=torch.Generator().manual_seed(0))  # fmt: skip
    b = out[:, 1].numpy()
    share_se = math.sqrt(0.7 * 0.3 / n)
    assert abs((b > 0).mean() - 0.7) < N_STANDARD_ERRORS * share_se
    mean_se = math.sqrt(0.1 + 4 * 0.21) / math.sqrt(n)
    assert abs(b.mean() - 0.8) < N_STANDARD_ERRORS * mean_se
    assert torch.equal(out[:, 0], x0[:, 0])


def test_exact_denoiser_without_time_travel_misses_a_correlated_conditional_less_with_it():
    """For a correlated Gaussian, p(b | a) = N(rho a, 1 - rho^2) is not what plain
    replacement gives on a short grid (its unknown half lags behind the known one);
    RePaint's resampling brings the conditional mean closer (Lugmayr et al. 2022, sec. 4.2)."""
    rho = 0.95
    mixture = GaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, rho], [rho, 1.0]]])
    diffusion = GaussianDiffusion(toy_schedule(200))
    x0 = torch.full((2000, 2), 2.0, dtype=torch.float64)
    mask = torch.tensor([1.0, 0.0])
    errors = []
    for r in (1, 5):
        out = inpaint(
            mixture_denoiser(mixture, diffusion),
            diffusion,
            x0,
            mask,
            steps=20,
            jump_length=2,
            resamplings=r,
            generator=torch.Generator().manual_seed(1),
        )
        errors.append(abs(out[:, 1].mean().item() - rho * 2.0))
    se = math.sqrt(1 - rho**2) / math.sqrt(2000)
    assert errors[1] < errors[0] - N_STANDARD_ERRORS * se


def test_masks_miss_the_named_part():
    """Halves miss size // 2 columns or rows on their side, the centre square
    (size // 2)^2 pixels in the middle; a random mask misses about half (4 standard
    errors of a binomial share)."""
    size = 8
    left = inpainting_mask("left", size)
    assert left[:, :4].sum() == 0 and left[:, 4:].all()
    assert inpainting_mask("right", size)[:, 4:].sum() == 0
    assert inpainting_mask("top", size)[:4].sum() == 0 and inpainting_mask("top", size)[4:].all()
    assert inpainting_mask("bottom", size)[4:].sum() == 0
    centre = inpainting_mask("center", size)
    assert centre[2:6, 2:6].sum() == 0 and centre.sum() == size * size - 16
    big = inpainting_mask("random", 64, generator=torch.Generator().manual_seed(0))
    assert abs(big.mean().item() - 0.5) < N_STANDARD_ERRORS * 0.5 / 64


def test_mask_from_image_marks_white_as_missing():
    """White pixels (uint8 >= 128, or floats >= 0.5) are the ones to fill in."""
    image = np.array([[0, 255], [127, 128]], dtype=np.uint8)
    assert mask_from_image(image).tolist() == [[1.0, 0.0], [1.0, 0.0]]
    assert mask_from_image(np.array([[0.2, 0.9]])).tolist() == [[1.0, 0.0]]


def test_bad_arguments_are_named():
    diffusion = GaussianDiffusion(linear_schedule(10))
    x0 = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="only 0"):
        inpaint(_random_denoiser, diffusion, x0, torch.full((4, 4), 0.5))
    with pytest.raises(ValueError, match="does not broadcast"):
        inpaint(_random_denoiser, diffusion, x0, torch.ones(3, 3))
    with pytest.raises(ValueError, match="kind must be one of"):
        inpainting_mask("diagonal", 8)
    with pytest.raises(ValueError, match="jump_length"):
        repaint_schedule(10, 0, 2)
    with pytest.raises(ValueError, match="eta"):
        inpaint(_random_denoiser, diffusion, x0, torch.ones(4, 4), eta=-1.0)
    with pytest.raises(ValueError, match="grey"):
        mask_from_image(np.zeros((2, 2, 3)))
