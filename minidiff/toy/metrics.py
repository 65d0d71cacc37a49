"""Distances between two samples x: (n, D) and y: (m, D): how close a sampler's output is to
the data.

- `sliced_wasserstein`: the sliced p-Wasserstein distance (Rabin et al. 2011; Bonneel et
  al. 2015), averaged over random directions.
- `mmd`: the squared maximum mean discrepancy with a sum of Gaussian (RBF) kernels
  (Gretton et al. 2012).
- `energy_distance`: the energy distance of Szekely & Rizzo (2013), the MMD of the kernel
  -|a - b|.

MMD and the energy distance come as the unbiased U-statistic (the default; its mean is the
population value, so it can be slightly negative, and it is a little below 0 for two
identical samples) or the biased V-statistic (>= 0, and exactly 0 for identical samples).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

__all__ = ["ESTIMATORS", "DEFAULT_BANDWIDTHS", "sliced_wasserstein", "mmd", "energy_distance"]

ESTIMATORS = ("unbiased", "biased")

# RBF bandwidths for data at unit scale (see minidiff.toy.datasets): from the width of one
# of the 8 Gaussians (0.1) to the size of the whole dataset (2).
DEFAULT_BANDWIDTHS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


def _check_samples(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    for name, value in (("x", x), ("y", y)):
        if value.ndim != 2 or value.shape[0] < 2 or value.shape[1] < 1:
            raise ValueError(f"{name} must have shape (n, D) with n >= 2, got {value.shape}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name} must be finite")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension D, got {x.shape} and {y.shape}")
    return x, y


def _wasserstein_1d_power(xs: np.ndarray, ys: np.ndarray, p: float) -> np.ndarray:
    """W_p^p between the empirical laws of the columns of xs: (n, P) and ys: (m, P), both
    sorted along axis 0: the integral over u in (0, 1) of |F^{-1}(u) - G^{-1}(u)|^p.

    The empirical quantile functions are step functions, constant between the points
    i / n and j / m, so the integral is an exact finite sum over the merged breakpoints;
    for n = m it is the mean of |xs - ys|^p (the sorted matching).
    """
    n, m = xs.shape[0], ys.shape[0]
    if n == m:
        return np.mean(np.abs(xs - ys) ** p, axis=0)
    edges = np.union1d(np.arange(n + 1) / n, np.arange(m + 1) / m)  # from 0 to 1
    widths = np.diff(edges)
    middles = 0.5 * (edges[:-1] + edges[1:])
    i = np.minimum((middles * n).astype(np.int64), n - 1)  # F^{-1}(u) = xs[floor(u n)]
    j = np.minimum((middles * m).astype(np.int64), m - 1)
    return widths @ (np.abs(xs[i] - ys[j]) ** p)


def sliced_wasserstein(
    x, y, rng: np.random.Generator, n_projections: int = 256, *, p: float = 1.0
) -> float:
    """The sliced p-Wasserstein distance (mean over directions theta of W_p^p) ^ (1/p).

    SW_p(x, y) = ( E_theta W_p^p(<theta, x>, <theta, y>) )^{1/p}, with theta uniform on the
    unit sphere, estimated with ``n_projections`` directions drawn from ``rng``. Each 1-D
    W_p is exact for the two empirical laws: sorted matching for equal sizes, the exact
    integral of the quantile functions (step functions) otherwise. For D = 1 the result
    is the exact W_p whatever the draws; with p = 1, a shift of a sample by c gives |c|.

    Args:
        x: (n, D) and y: (m, D) samples, n, m >= 2.
        rng: draws the directions.
        n_projections: the number of directions.
        p: the order, >= 1 (default 1: W_1, in the units of the data).
    """
    x, y = _check_samples(x, y)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if isinstance(n_projections, bool) or int(n_projections) != n_projections or n_projections < 1:
        raise ValueError(f"n_projections must be a positive integer, got {n_projections!r}")
    if not (np.isfinite(p) and p >= 1):
        raise ValueError(f"p must be a finite number >= 1, got {p!r}")
    theta = rng.standard_normal((int(n_projections), x.shape[1]))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)  # (P, D) uniform on the sphere
    xs = np.sort(x @ theta.T, axis=0)  # (n, P)
    ys = np.sort(y @ theta.T, axis=0)  # (m, P)
    return float(np.mean(_wasserstein_1d_power(xs, ys, p)) ** (1.0 / p))


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) |a_i - b_j|^2 = |a_i|^2 + |b_j|^2 - 2 <a_i, b_j>, clipped at 0 against round-off."""
    squared = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(squared, 0.0)


def _kernel_two_sample(kernel, x: np.ndarray, y: np.ndarray, estimator: str) -> float:
    """E k(x, x') + E k(y, y') - 2 E k(x, y), as a U- or a V-statistic."""
    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    n, m = x.shape[0], y.shape[0]
    if estimator == "unbiased":  # Gretton et al. (2012), eq. 3: leave out i = j
        within_x = (k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
        within_y = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    elif estimator == "biased":  # Gretton et al. (2012), eq. 5
        within_x, within_y = k_xx.mean(), k_yy.mean()
    else:
        raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")
    return float(within_x + within_y - 2.0 * k_xy.mean())


def mmd(
    x,
    y,
    bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS,
    *,
    estimator: Literal["unbiased", "biased"] = "unbiased",
) -> float:
    """MMD^2 with the kernel k(a, b) = sum_h exp(-|a - b|^2 / (2 h^2)) (Gretton et al. 2012).

    MMD^2 = E k(X, X') + E k(Y, Y') - 2 E k(X, Y) >= 0, zero exactly when the laws agree
    (the Gaussian kernel is characteristic).

    Args:
        x: (n, D) and y: (m, D) samples, n, m >= 2.
        bandwidths: the kernel widths h > 0; the default suits data at unit scale.
        estimator: ``"unbiased"`` (U-statistic, eq. 3) or ``"biased"`` (V-statistic, eq. 5).
    """
    x, y = _check_samples(x, y)
    widths = np.asarray(bandwidths, dtype=np.float64)
    if widths.ndim != 1 or widths.size < 1 or not np.all(np.isfinite(widths) & (widths > 0)):
        raise ValueError(
            f"bandwidths must be a non-empty sequence of positive numbers, got {bandwidths!r}"
        )

    def kernel(a, b):
        squared = _squared_distances(a, b)
        total, scratch = np.zeros_like(squared), np.empty_like(squared)
        for h in widths:  # in place: the (n, m) matrices dominate the cost
            np.multiply(squared, -0.5 / (h * h), out=scratch)
            total += np.exp(scratch, out=scratch)
        return total

    return _kernel_two_sample(kernel, x, y, estimator)


def energy_distance(x, y, *, estimator: Literal["unbiased", "biased"] = "unbiased") -> float:
    """The energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| >= 0 (Szekely & Rizzo 2013),
    zero exactly when the laws agree.

    Args:
        x: (n, D) and y: (m, D) samples, n, m >= 2.
        estimator: ``"unbiased"`` (within-sample means over i != j) or ``"biased"``.
    """
    x, y = _check_samples(x, y)

    def kernel(a, b):  # the distance-induced kernel, up to terms that cancel
        return -np.sqrt(_squared_distances(a, b))

    return _kernel_two_sample(kernel, x, y, estimator)
