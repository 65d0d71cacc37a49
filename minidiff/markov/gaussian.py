"""The Gaussian chain x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps_t: the forward process.

This is the forward (noising) chain of a Gaussian diffusion (Sohl-Dickstein et al. 2015,
sec. 2.2; Ho et al. 2020, eq. 2) seen as a plain Markov chain on R^D: an AR(1) process
with coefficient sqrt(1 - beta_t), each coordinate independent. With a constant
beta_t = 1 - exp(-h) it is the exact time-h discretisation of the Ornstein-Uhlenbeck
process dx = -x/2 ds + dW, whose stationary law is N(0, I).

Its marginals stay Gaussian. From x_0 ~ N(m_0, v_0), with
alpha_bar_t = prod_{s <= t} (1 - beta_s),

    mean_t = sqrt(alpha_bar_t) m_0,   var_t = alpha_bar_t v_0 + 1 - alpha_bar_t,

which for a point start (v_0 = 0) is q(x_t | x_0) of Ho et al. (2020), eq. 4. Betas use
paper indexing: ``beta`` has length T + 1 with ``beta[0] = 0`` and ``0 <= beta[t] <= 1``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from minidiff.markov._checks import check_beta, check_beta_t, check_rng

__all__ = [
    "gaussian_chain_step",
    "gaussian_chain_step_mean_var",
    "gaussian_chain_marginals",
    "sample_gaussian_chain",
]


def gaussian_chain_step(x_prev: ArrayLike, beta_t: float, eps: ArrayLike) -> np.ndarray:
    """One step x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps (Ho et al. 2020, eq. 2).

    Args:
        x_prev: (B, D) (any shape) the state x_{t-1}.
        beta_t: the step's variance in [0, 1].
        eps: standard normal noise shaped like ``x_prev``.

    Returns:
        x_t shaped like ``x_prev``.
    """
    x_prev = np.asarray(x_prev, dtype=np.float64)
    eps = np.asarray(eps, dtype=np.float64)
    if eps.shape != x_prev.shape:
        raise ValueError(f"eps must have the shape of x_prev {x_prev.shape}, got {eps.shape}")
    beta_t = check_beta_t(beta_t)
    return np.sqrt(1.0 - beta_t) * x_prev + np.sqrt(beta_t) * eps


def gaussian_chain_step_mean_var(
    mean: ArrayLike, var: ArrayLike, beta_t: float
) -> tuple[np.ndarray, np.ndarray]:
    """The law of x_t given x_{t-1} ~ N(mean, var): N(sqrt(alpha_t) mean, alpha_t var + beta_t).

    x_t is the sum of the independent Gaussians sqrt(alpha_t) x_{t-1} and sqrt(beta_t) eps,
    with alpha_t = 1 - beta_t; composing this map over t = 1..T gives
    `gaussian_chain_marginals`.

    Args:
        mean: the mean of x_{t-1} (any shape).
        var: its per-coordinate variance (>= 0), broadcastable against ``mean``.
        beta_t: the step's variance in [0, 1].

    Returns:
        the mean and variance of x_t, broadcast to a common shape.
    """
    mean, var = np.broadcast_arrays(np.asarray(mean, np.float64), np.asarray(var, np.float64))
    if np.any(~(var >= 0.0)):
        raise ValueError("var must be >= 0 (a variance)")
    beta_t = check_beta_t(beta_t)
    return np.sqrt(1.0 - beta_t) * mean, (1.0 - beta_t) * var + beta_t


def gaussian_chain_marginals(
    beta: ArrayLike, m0: ArrayLike, v0: ArrayLike = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form marginal mean and variance of x_t at every t = 0..T.

    mean_t = sqrt(alpha_bar_t) m_0 and var_t = alpha_bar_t v_0 + 1 - alpha_bar_t, with
    alpha_bar_t = prod_{s <= t} (1 - beta_s) (Ho et al. 2020, eq. 4, for v_0 = 0). A
    standard normal start (m_0 = 0, v_0 = 1) is invariant.

    Args:
        beta: (T + 1,) betas in paper indexing (``beta[0] = 0``).
        m0: the initial mean, any shape S (a point start x_0 when ``v0 = 0``).
        v0: the initial per-coordinate variance (>= 0), broadcastable against ``m0``.

    Returns:
        mean, var: (T + 1, *S); index t is the law of x_t (index 0 is the initial law).
    """
    beta = check_beta(beta)
    m0, v0 = np.broadcast_arrays(np.asarray(m0, np.float64), np.asarray(v0, np.float64))
    if np.any(~(v0 >= 0.0)):
        raise ValueError("v0 must be >= 0 (a variance)")
    alpha_bar = np.cumprod(1.0 - beta).reshape((-1,) + (1,) * m0.ndim)  # (T + 1, 1, ..., 1)
    mean = np.sqrt(alpha_bar) * m0
    var = alpha_bar * v0 + (1.0 - alpha_bar)
    return mean, var


def sample_gaussian_chain(beta: ArrayLike, x0: ArrayLike, rng: np.random.Generator) -> np.ndarray:
    """Simulate the chain x_0, x_1, ..., x_T from the given starting points.

    Args:
        beta: (T + 1,) betas in paper indexing (``beta[0] = 0``).
        x0: (B, D) (any shape S) the starting states; draw them from the initial law first
            for a random start.
        rng: the random generator.

    Returns:
        path: (T + 1, *S) with ``path[t]`` = x_t and ``path[0]`` = x0.
    """
    beta = check_beta(beta)
    rng = check_rng(rng)
    x0 = np.asarray(x0, dtype=np.float64)
    path = np.empty((beta.shape[0],) + x0.shape)
    path[0] = x0
    for t in range(1, beta.shape[0]):  # t = 1..T, as in the paper
        path[t] = gaussian_chain_step(path[t - 1], beta[t], rng.standard_normal(x0.shape))
    return path
