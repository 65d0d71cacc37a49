"""Gaussian log densities, the Gaussian KL divergence and the discretised Gaussian
likelihood of 8-bit data: the pieces of the variational bound.

Ho et al. (2020), sec. 3.3 (the discrete decoder L_0) and eq. 5 (the ELBO terms as
KL divergences between Gaussians). All values are in nats, elementwise.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "gaussian_log_prob",
    "normal_kl",
    "standard_normal_cdf",
    "discretized_gaussian_log_likelihood",
]

_LOG_2PI = math.log(2.0 * math.pi)
_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def gaussian_log_prob(x: ArrayLike, mean: ArrayLike, var: ArrayLike) -> np.ndarray:
    """log N(x; mean, var), elementwise: -0.5 (log 2 pi var + (x - mean)^2 / var).

    A zero variance gives -inf away from the mean (and is undefined at it).
    """
    x, mean, var = (np.asarray(a, dtype=np.float64) for a in (x, mean, var))
    with np.errstate(divide="ignore", invalid="ignore"):
        return -0.5 * (_LOG_2PI + np.log(var) + (x - mean) ** 2 / var)


def normal_kl(
    mean1: ArrayLike, log_var1: ArrayLike, mean2: ArrayLike, log_var2: ArrayLike
) -> np.ndarray:
    """KL( N(mean1, exp(log_var1)) || N(mean2, exp(log_var2)) ), elementwise, in nats:

    0.5 (log_var2 - log_var1 + exp(log_var1 - log_var2) + (mean1 - mean2)^2 exp(-log_var2) - 1).

    Log variances (not variances) are taken so that tiny variances stay exact, as in
    Ho et al. (2020)'s code for the L_{t-1} terms of eq. 5.
    """
    mean1, log_var1, mean2, log_var2 = (
        np.asarray(a, dtype=np.float64) for a in (mean1, log_var1, mean2, log_var2)
    )
    # expm1(d) - d is the accurate form of exp(d) - 1 - d for small d: it keeps KL >= 0.
    delta = log_var1 - log_var2
    return 0.5 * (np.expm1(delta) - delta + (mean1 - mean2) ** 2 * np.exp(-log_var2))


def standard_normal_cdf(z: ArrayLike) -> np.ndarray:
    """Phi(z) = 0.5 erfc(-z / sqrt 2), exact to float64 round-off."""
    return 0.5 * _erfc(-np.asarray(z, dtype=np.float64) / math.sqrt(2.0))


def _normal_interval_prob(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """P(lower < Z < upper) for a standard normal Z, with lower <= upper (may be +-inf).

    Written with erfc on the side of zero where the interval lies, so that intervals far
    in either tail keep their relative precision.
    """
    sqrt2 = math.sqrt(2.0)
    right = lower > 0  # the whole interval on the right of 0
    left_side = 0.5 * (_erfc(-upper / sqrt2) - _erfc(-lower / sqrt2))
    right_side = 0.5 * (_erfc(lower / sqrt2) - _erfc(upper / sqrt2))
    return np.where(right, right_side, left_side)


def discretized_gaussian_log_likelihood(
    x: ArrayLike, mean: ArrayLike, log_scale: ArrayLike, num_bins: int = 256
) -> np.ndarray:
    """log P(x) of data on ``num_bins`` evenly spaced values in [-1, 1] under a Gaussian
    discretised to those bins (Ho et al. 2020, sec. 3.3, eq. 13).

    Bin i is centred at x_i = -1 + 2 i / (num_bins - 1) and spans the edges
    -1 + (2 i -+ 1) / (num_bins - 1); the outermost bins extend to -inf and +inf, so the
    probabilities of the ``num_bins`` values sum to 1 for any mean and scale. Each edge
    is computed once from its index, so neighbouring bins share it bit for bit and no
    mass is lost or counted twice even for a scale far below the bin width.

    Args:
        x: data in [-1, 1] on the bin centres (e.g. 8-bit pixels scaled to [-1, 1]); a
            value within 1/100 of a bin width of a centre counts as that centre.
        mean: the Gaussian's mean, broadcastable with x.
        log_scale: the log standard deviation (not the variance), broadcastable with x.
        num_bins: number of data values (256 for 8-bit data).

    Returns:
        log probabilities in nats, with the broadcast shape of the inputs.
    """
    if int(num_bins) != num_bins or num_bins < 2:
        raise ValueError(f"num_bins must be an integer >= 2, got {num_bins!r}")
    x, mean, log_scale = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (x, mean, log_scale))
    )
    if np.any(~(np.abs(x) <= 1.0 + 1e-12)):
        raise ValueError("x must lie in [-1, 1]")
    last = num_bins - 1
    index = np.rint((x + 1.0) * last / 2.0)  # the bin of each x, 0..num_bins-1
    if np.any(np.abs(x - (-1.0 + 2.0 * index / last)) > 0.01 / last):
        raise ValueError(f"x must lie on the {num_bins} bin centres -1 + 2 i / {last}")

    def edge(j: np.ndarray) -> np.ndarray:  # the edge between bins j and j + 1
        return -1.0 + (2.0 * j + 1.0) / last

    def standardise(value: np.ndarray) -> np.ndarray:  # (value - mean) / scale
        with np.errstate(over="ignore", invalid="ignore"):
            z = (value - mean) * np.exp(-log_scale)
        return np.where(value == mean, 0.0, z)  # 0 * inf at a vanishing scale

    lower = np.where(index == 0, -np.inf, standardise(edge(index - 1)))
    upper = np.where(index == last, np.inf, standardise(edge(index)))
    prob = _normal_interval_prob(lower, upper)
    with np.errstate(divide="ignore"):
        return np.log(np.maximum(prob, 0.0))
