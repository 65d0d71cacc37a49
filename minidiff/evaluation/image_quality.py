"""Full-reference image quality: PSNR and SSIM.

- PSNR = 10 log10(L^2 / MSE), L the data range (2 for images in [-1, 1]).
- SSIM (Wang, Bovik, Sheikh & Simoncelli 2004, eq. 13): with local means mu, variances
  sigma^2 and covariance sigma_xy under a Gaussian window (11 x 11, sigma 1.5, sec. III.C),

      SSIM = (2 mu_x mu_y + C1)(2 sigma_xy + C2)
             / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)),

  C1 = (0.01 L)^2, C2 = (0.03 L)^2, averaged over the window positions that fit inside
  the image ("valid") and over channels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["gaussian_window", "psnr", "ssim", "SSIM_WINDOW", "SSIM_SIGMA"]

SSIM_WINDOW = 11  # Wang et al. (2004), sec. III.C
SSIM_SIGMA = 1.5


def _check_pair(x: torch.Tensor, y: torch.Tensor, data_range: float) -> None:
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError("x and y must be tensors")
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"x and y must both have shape (B, C, H, W), got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")  # fmt: skip
    if not (isinstance(data_range, (int, float)) and 0 < data_range < math.inf):
        raise ValueError(f"data_range must be a positive number, got {data_range!r}")


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio 10 log10(data_range^2 / MSE) in dB per image, (B,);
    +inf where x = y.

    Args:
        x, y: (B, C, H, W) images.
        data_range: max - min of the pixel scale (2 for [-1, 1]).
    """
    _check_pair(x, y, data_range)
    mse = ((x.double() - y.double()) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """The (size, size) Gaussian window exp(-(i^2 + j^2) / (2 sigma^2)) centred on the
    middle pixel, normalised to sum 1 (float64)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"size must be an odd positive integer, got {size!r}")
    if not (isinstance(sigma, (int, float)) and 0 < sigma < math.inf):
        raise ValueError(f"sigma must be a positive number, got {sigma!r}")
    r = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    w = g[:, None] * g[None, :]
    return w / w.sum()


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 2.0,
    *,
    window: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
) -> torch.Tensor:
    """Mean structural similarity per image, (B,) (Wang et al. 2004, eq. 13; the module
    docstring), computed in float64.

    Args:
        x, y: (B, C, H, W) images with H, W >= ``window``.
        data_range: max - min of the pixel scale (2 for [-1, 1]).
        window, sigma: the Gaussian window (11 and 1.5 in the paper).
    """
    _check_pair(x, y, data_range)
    if min(x.shape[-2:]) < window:
        raise ValueError(f"images must be at least {window} x {window} for the SSIM window, "
                         f"got {tuple(x.shape[-2:])}")  # fmt: skip
    B, C = x.shape[:2]
    w = gaussian_window(window, sigma).to(x.device)[None, None]  # (1, 1, k, k)
    a = x.double().reshape(B * C, 1, *x.shape[-2:])
    b = y.double().reshape(B * C, 1, *y.shape[-2:])

    def local(v: torch.Tensor) -> torch.Tensor:  # the Gaussian-weighted local mean
        return F.conv2d(v, w)

    mu_a, mu_b = local(a), local(b)
    var_a = local(a * a) - mu_a**2
    var_b = local(b * b) - mu_b**2
    cov = local(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return index.reshape(B, C, -1).mean(dim=(1, 2))
