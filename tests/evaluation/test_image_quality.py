"""PSNR and SSIM (`minidiff.evaluation.image_quality`)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.evaluation.image_quality import gaussian_window, psnr, ssim
from tests.tolerances import ATOL, RTOL, RTOL_LOOSE


def _images(seed: int, shape=(3, 2, 12, 13)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@settings(max_examples=30)
@given(st.integers(0, 10_000))
def test_ssim_of_an_image_with_itself_is_one_and_symmetric_and_at_most_one(seed):
    """SSIM(x, x) = 1; SSIM(x, y) = SSIM(y, x) <= 1 (Wang et al. 2004, sec. III.B)."""
    x, y = _images(seed), _images(seed + 1)
    torch.testing.assert_close(ssim(x, x), torch.ones(3, dtype=torch.float64), rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(ssim(x, y), ssim(y, x), rtol=RTOL, atol=ATOL)
    assert (ssim(x, y) <= 1 + 1e-12).all()


@settings(max_examples=30)
@given(st.floats(-1, 1), st.floats(-1, 1))
def test_ssim_of_two_constant_images_is_the_luminance_term(a, b):
    """Constant images have zero variance and covariance, so SSIM is
    (2ab + C1) / (a^2 + b^2 + C1) with C1 = (0.01 L)^2."""
    x = torch.full((1, 1, 11, 11), a, dtype=torch.float64)
    y = torch.full((1, 1, 11, 11), b, dtype=torch.float64)
    c1 = (0.01 * 2.0) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert math.isclose(float(ssim(x, y)), expected, rel_tol=RTOL_LOOSE,
                        abs_tol=1e-9)  # fmt: skip


@settings(max_examples=30)
@given(st.integers(0, 10_000), st.floats(1e-3, 1.0))
def test_psnr_is_ten_log10_of_range_squared_over_mse(seed, step):
    """Adding a constant c everywhere gives MSE = c^2: PSNR = 10 log10(L^2 / c^2);
    PSNR(x, x) = +inf."""
    x = _images(seed)
    expected = 10 * math.log10(4.0 / step**2)
    torch.testing.assert_close(psnr(x, x + step), torch.full((3,), expected, dtype=torch.float64),
                               rtol=1e-9, atol=1e-9)  # fmt: skip
    assert torch.isinf(psnr(x, x)).all()


def test_gaussian_window_is_normalised_and_symmetric():
    """The 11 x 11, sigma 1.5 window sums to 1, is symmetric, and its centre-to-neighbour
    ratio is exp(1 / (2 sigma^2))."""
    w = gaussian_window()
    assert w.shape == (11, 11)
    assert math.isclose(float(w.sum()), 1.0, rel_tol=RTOL)
    torch.testing.assert_close(w, w.T, rtol=RTOL, atol=ATOL)
    assert math.isclose(float(w[5, 5] / w[5, 6]), math.exp(1 / (2 * 1.5**2)), rel_tol=RTOL)


def test_ssim_falls_as_noise_grows():
    """More additive noise: lower SSIM and PSNR."""
    x = _images(0, (1, 1, 28, 28))
    g = torch.Generator().manual_seed(1)
    z = torch.randn(x.shape, generator=g, dtype=torch.float64)
    s = [float(ssim(x, x + level * z)) for level in (0.01, 0.1, 0.5)]
    p = [float(psnr(x, x + level * z)) for level in (0.01, 0.1, 0.5)]
    assert s[0] > s[1] > s[2] and p[0] > p[1] > p[2]


def test_bad_arguments_are_named():
    x = _images(0)
    with pytest.raises(ValueError, match="shape"):
        ssim(x, x[:, :1])
    with pytest.raises(ValueError, match="data_range"):
        psnr(x, x, data_range=0)
    with pytest.raises(ValueError, match="at least 11"):
        ssim(x[..., :8, :8], x[..., :8, :8])
    with pytest.raises(ValueError, match="odd"):
        gaussian_window(10)
