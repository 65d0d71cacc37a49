"""Langevin samplers for a target known through its score: ULA, MALA, annealed Langevin.

- Unadjusted Langevin (ULA; Roberts & Tweedie 1996, Parisi 1981):
  x <- x + h grad log p(x) + sqrt(2h) z, z ~ N(0, I). The Euler-Maruyama step of the
  Langevin diffusion dx = grad log p(x) ds + sqrt(2) dW, whose stationary law is p. The
  chain's own stationary law differs from p by O(h): for p = N(mu, s^2) it is
  N(mu, s^2 / (1 - h / (2 s^2))).
- Metropolis-adjusted Langevin (MALA; Roberts & Tweedie 1996): the ULA step is a
  proposal, accepted with probability min(1, p(y) q(x | y) / (p(x) q(y | x))) with
  q(y | x) = N(y; x + h grad log p(x), 2h I); the chain then leaves p exactly invariant.
- Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1): ULA runs at decreasing
  noise levels sigma_1 > ... > sigma_L on the smoothed scores grad log p_sigma, with step
  alpha_i = eps sigma_i^2 / sigma_L^2 in the paper's convention
  x <- x + alpha_i / 2 score(x, sigma_i) + sqrt(alpha_i) z (that is, ULA with h = alpha_i / 2).

Every sampler runs B independent chains at once on x: (B, D).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from minidiff.markov._checks import check_count, check_positive, check_rng

__all__ = [
    "langevin_step",
    "unadjusted_langevin",
    "mala",
    "annealed_step_sizes",
    "annealed_langevin",
]

Score = Callable[[np.ndarray], np.ndarray]
LogDensity = Callable[[np.ndarray], np.ndarray]


def _check_x(x) -> np.ndarray:
    x = np.array(x, dtype=np.float64)  # a copy: the samplers never change the caller's array
    if x.ndim != 2:
        raise ValueError(
            f"x must have shape (B, D) (B chains in D dimensions), got shape {x.shape}"
        )
    return x


def _call_score(score: Callable, x: np.ndarray, *args) -> np.ndarray:
    g = np.asarray(score(x, *args), dtype=np.float64)
    if g.shape != x.shape:
        raise ValueError(f"score must return an array shaped like x {x.shape}, got {g.shape}")
    return g


def _call_log_density(log_density: LogDensity, x: np.ndarray) -> np.ndarray:
    log_p = np.asarray(log_density(x), dtype=np.float64)
    if log_p.shape != x.shape[:1]:
        raise ValueError(f"log_density must return shape (B,) = {x.shape[:1]}, got {log_p.shape}")
    return log_p


def _steps(n_steps: int, progress: bool, description: str):
    if not progress:
        return range(n_steps)
    from tqdm.auto import tqdm  # optional weight, imported where used

    return tqdm(range(n_steps), desc=description)


def _ula_update(score: Callable, x: np.ndarray, step: float, rng: np.random.Generator, *score_args):
    """x + h score(x) + sqrt(2h) z, with checked inputs."""
    noise = np.sqrt(2.0 * step) * rng.standard_normal(x.shape)
    return x + step * _call_score(score, x, *score_args) + noise


def langevin_step(score: Score, x: ArrayLike, step: float, rng: np.random.Generator) -> np.ndarray:
    """One unadjusted Langevin step x + h score(x) + sqrt(2h) z, z ~ N(0, I).

    Args:
        score: x (B, D) -> grad log p(x) (B, D).
        x: (B, D) current states.
        step: the step size h > 0.
        rng: the random generator.

    Returns:
        (B, D) the next states.
    """
    x = _check_x(x)
    step = check_positive(step, "step")
    rng = check_rng(rng)
    return _ula_update(score, x, step, rng)


def unadjusted_langevin(
    score: Score,
    x: ArrayLike,
    step: float,
    n_steps: int,
    rng: np.random.Generator,
    progress: bool = False,
) -> np.ndarray:
    """Run ``n_steps`` of unadjusted Langevin dynamics (ULA) on B chains.

    The chain's stationary law is within O(h) of p; take a small ``step`` or use `mala`.

    Args:
        score: x (B, D) -> grad log p(x) (B, D).
        x: (B, D) starting states.
        step: the step size h > 0.
        n_steps: number of steps, >= 0.
        rng: the random generator.
        progress: show a tqdm progress bar.

    Returns:
        (B, D) the states after ``n_steps`` steps.
    """
    x = _check_x(x)
    step = check_positive(step, "step")
    n_steps = check_count(n_steps, "n_steps")
    rng = check_rng(rng)
    for _ in _steps(n_steps, progress, "Langevin"):
        x = _ula_update(score, x, step, rng)
    return x


def mala(
    log_density: LogDensity,
    score: Score,
    x: ArrayLike,
    step: float,
    n_steps: int,
    rng: np.random.Generator,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``n_steps`` of the Metropolis-adjusted Langevin algorithm on B chains.

    Proposal y = x + h score(x) + sqrt(2h) z; accept with probability
    min(1, exp(log p(y) - log p(x) + log q(x | y) - log q(y | x))), where
    log q(y | x) = -|y - x - h score(x)|^2 / (4h) + const (Roberts & Tweedie 1996).

    Args:
        log_density: x (B, D) -> log p(x) (B,), up to an additive constant.
        score: x (B, D) -> grad log p(x) (B, D).
        x: (B, D) starting states (where log p is finite).
        step: the step size h > 0.
        n_steps: number of steps, >= 0.
        rng: the random generator.
        progress: show a tqdm progress bar.

    Returns:
        x: (B, D) the states after ``n_steps`` steps, and acceptance_rate: (B,) the
        fraction of accepted proposals per chain (0 when ``n_steps = 0``).
    """
    x = _check_x(x)
    step = check_positive(step, "step")
    n_steps = check_count(n_steps, "n_steps")
    rng = check_rng(rng)
    log_p, g = _call_log_density(log_density, x), _call_score(score, x)
    if not np.all(np.isfinite(log_p)):
        raise ValueError("log_density(x) must be finite at the starting states x")
    accepted = np.zeros(x.shape[0])
    for _ in _steps(n_steps, progress, "MALA"):
        # 1. propose by one Langevin step
        mean_forward = x + step * g
        y = mean_forward + np.sqrt(2.0 * step) * rng.standard_normal(x.shape)
        log_p_y, g_y = _call_log_density(log_density, y), _call_score(score, y)
        # 2. log of the Metropolis-Hastings ratio p(y) q(x | y) / (p(x) q(y | x))
        log_q_forward = -np.sum((y - mean_forward) ** 2, axis=1) / (4.0 * step)
        log_q_backward = -np.sum((x - y - step * g_y) ** 2, axis=1) / (4.0 * step)
        log_ratio = log_p_y - log_p + log_q_backward - log_q_forward
        # 3. accept when log u < log ratio, u ~ U(0, 1]; a NaN ratio rejects
        accept = np.log1p(-rng.random(x.shape[0])) < log_ratio
        x = np.where(accept[:, None], y, x)
        g = np.where(accept[:, None], g_y, g)
        log_p = np.where(accept, log_p_y, log_p)
        accepted += accept
    return x, accepted / max(n_steps, 1)


def annealed_step_sizes(sigmas: ArrayLike, eps: float) -> np.ndarray:
    """Step sizes alpha_i = eps sigma_i^2 / sigma_L^2 (Song & Ermon 2019, Algorithm 1).

    Args:
        sigmas: (L,) noise levels, finite, positive and strictly decreasing.
        eps: the step size at the last (smallest) level, > 0.

    Returns:
        alpha: (L,), with alpha_L = eps.
    """
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if sigmas.ndim != 1 or sigmas.shape[0] < 1:
        raise ValueError(f"sigmas must be a non-empty 1-D array (L,), got shape {sigmas.shape}")
    if not np.all(np.isfinite(sigmas) & (sigmas > 0.0)):
        raise ValueError(f"sigmas must be finite and > 0, got {sigmas.tolist()}")
    if np.any(np.diff(sigmas) >= 0.0):
        i = int(np.argmax(np.diff(sigmas) >= 0.0))
        raise ValueError(
            f"sigmas must be strictly decreasing (sigma_1 > ... > sigma_L), "
            f"but sigmas[{i}] = {float(sigmas[i])!r} <= sigmas[{i + 1}] = {float(sigmas[i + 1])!r}"
        )
    eps = check_positive(eps, "eps")
    return eps * sigmas**2 / sigmas[-1] ** 2


def annealed_langevin(
    score: Callable[[np.ndarray, float], np.ndarray],
    x: ArrayLike,
    sigmas: ArrayLike,
    eps: float,
    n_steps_each: int,
    rng: np.random.Generator,
    progress: bool = False,
) -> np.ndarray:
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).

    For i = 1..L: alpha_i = eps sigma_i^2 / sigma_L^2, then ``n_steps_each`` times
    x <- x + alpha_i / 2 score(x, sigma_i) + sqrt(alpha_i) z, z ~ N(0, I).

    Args:
        score: (x (B, D), sigma) -> grad log p_sigma(x) (B, D), the score of the data
            smoothed by N(0, sigma^2 I).
        x: (B, D) starting states (the paper draws them from a uniform or wide law).
        sigmas: (L,) noise levels sigma_1 > ... > sigma_L > 0.
        eps: the step size alpha_L at the last level, > 0.
        n_steps_each: Langevin steps per level (the paper's T), >= 1.
        rng: the random generator.
        progress: show a tqdm progress bar over the levels.

    Returns:
        (B, D) the final states.
    """
    x = _check_x(x)
    alphas = annealed_step_sizes(sigmas, eps)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    n_steps_each = check_count(n_steps_each, "n_steps_each", low=1)
    rng = check_rng(rng)
    for i in _steps(sigmas.shape[0], progress, "annealed Langevin"):
        for _ in range(n_steps_each):
            # the paper's x + alpha_i / 2 score + sqrt(alpha_i) z is ULA with h = alpha_i / 2
            x = _ula_update(score, x, alphas[i] / 2.0, rng, float(sigmas[i]))
    return x
