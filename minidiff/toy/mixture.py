"""The Gaussian-mixture oracle: a data law whose density, score and optimal denoiser are
known exactly at every step t of the forward process.

For x_0 ~ p = sum_k w_k N(mu_k, Sigma_k), the forward marginal of Ho et al. (2020), eq. 4,
x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, is again a Gaussian mixture,

    q_t = sum_k w_k N(sqrt(alpha_bar_t) mu_k, S_k),
    S_k = alpha_bar_t Sigma_k + (1 - alpha_bar_t) I,

and, given the component k, (x_0, x_t) is jointly Gaussian, so that (Gaussian conditioning)

    E[x_0 | x_t, k] = mu_k + sqrt(alpha_bar_t) Sigma_k S_k^{-1} (x_t - sqrt(alpha_bar_t) mu_k),
    E[x_0 | x_t]    = sum_k r_k(x_t) E[x_0 | x_t, k],
    r_k(x_t)        = w_k N(x_t; sqrt(alpha_bar_t) mu_k, S_k) / q_t(x_t).

E[x_0 | x_t] is the minimiser of the x0-prediction loss, so it is the exact optimal
denoiser; eps-hat = E[eps | x_t] = (x_t - sqrt(alpha_bar_t) E[x_0 | x_t]) / sqrt(1 - alpha_bar_t)
is the optimal noise prediction, and Tweedie's formula (Efron 2011; Song et al. 2021,
eq. 7) says grad log q_t(x_t) = -eps-hat / sqrt(1 - alpha_bar_t).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from minidiff.process import (
    PARAMETERIZATIONS,
    Parameterization,
    Schedule,
    eps_from_x0,
    score_from_eps,
    v_from_x0_eps,
)
from minidiff.process.indexing import check_batch, check_t

__all__ = ["ORACLE_OUTPUTS", "OracleOutput", "GaussianMixture"]

# What the exact denoiser can return: a network's parameterizations, and the score itself.
OracleOutput = Literal[Parameterization, "score"]
ORACLE_OUTPUTS: tuple[str, ...] = (*PARAMETERIZATIONS, "score")

_LOG_2PI = math.log(2.0 * math.pi)
# Relative tolerance for the checks on the inputs (weights summing to 1, symmetry).
_INPUT_RTOL = 1e-8


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64)
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class _Factors:
    """Per-component factors of N(m_k, C_k) for log densities and C_k^{-1} (x - m_k).

    The batch is kept on the last axis, (K, D, B), so that every product is a matmul of
    the K small matrices with B columns and every sum runs over a leading axis: for the
    small D of toy data this is many times faster than the (B, K, D) layout.
    """

    means: np.ndarray  # (K, D)
    cholesky_inv: np.ndarray  # (K, D, D), L_k^{-1} with C_k = L_k L_k^T
    log_norm: np.ndarray  # (K,), -0.5 (D log 2 pi + log det C_k)

    @classmethod
    def of(cls, means: np.ndarray, covs: np.ndarray) -> _Factors:
        L = np.linalg.cholesky(covs)  # (K, D, D)
        log_det = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
        return cls(means, np.linalg.inv(L), -0.5 * (means.shape[1] * _LOG_2PI + log_det))

    def terms(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """log N(x; m_k, C_k): (K, B) and C_k^{-1} (x - m_k): (K, D, B), for x: (B, D)."""
        diff = x.T[None] - self.means[:, :, None]  # (K, D, B)
        z = self.cholesky_inv @ diff  # L^{-1} (x - m)
        log_density = self.log_norm[:, None] - 0.5 * np.sum(z * z, axis=1)
        precision_diff = self.cholesky_inv.transpose(0, 2, 1) @ z  # L^{-T} L^{-1} (x - m)
        return log_density, precision_diff


def _log_softmax(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logsumexp over the first axis, softmax over it) of a: (K, B), stable for large |a|."""
    top = a.max(axis=0)
    shifted = np.exp(a - top)
    total = shifted.sum(axis=0)
    return top + np.log(total), shifted / total


@dataclass(frozen=True, eq=False)
class GaussianMixture:
    """p(x) = sum_k w_k N(x; mu_k, Sigma_k) in D dimensions, float64, validated on construction.

    Attributes:
        weights: (K,) positive, summing to 1 (renormalised exactly after a check to 1e-8).
        means: (K, D) the component means mu_k.
        covs: (K, D, D) symmetric positive definite covariances Sigma_k.
    """

    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray

    def __post_init__(self) -> None:
        weights = np.asarray(self.weights, dtype=np.float64)
        means = np.asarray(self.means, dtype=np.float64)
        covs = np.asarray(self.covs, dtype=np.float64)
        if weights.ndim != 1 or weights.shape[0] < 1:
            raise ValueError(f"weights must have shape (K,) with K >= 1, got {weights.shape}")
        K = weights.shape[0]
        if means.ndim != 2 or means.shape[0] != K or means.shape[1] < 1:
            raise ValueError(f"means must have shape (K, D) = ({K}, D), got {means.shape}")
        D = means.shape[1]
        if covs.shape != (K, D, D):
            raise ValueError(f"covs must have shape (K, D, D) = {(K, D, D)}, got {covs.shape}")
        for name, value in (("weights", weights), ("means", means), ("covs", covs)):
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{name} must be finite, got {value!r}")
        if np.any(weights <= 0):
            raise ValueError(f"weights must be positive, got {weights!r}")
        if abs(weights.sum() - 1.0) > _INPUT_RTOL:
            raise ValueError(f"weights must sum to 1, got sum {weights.sum()!r}")
        asymmetry = np.abs(covs - covs.transpose(0, 2, 1)).max()
        if asymmetry > _INPUT_RTOL * max(np.abs(covs).max(), 1e-300):
            raise ValueError(f"covs must be symmetric, got an asymmetry of {asymmetry:.3g}")
        covs = 0.5 * (covs + covs.transpose(0, 2, 1))
        if np.any(np.linalg.eigvalsh(covs) <= 0):
            bad = int(np.argmin(np.linalg.eigvalsh(covs).min(axis=1)))
            raise ValueError(f"covs[{bad}] must be positive definite, got {covs[bad]!r}")
        object.__setattr__(self, "weights", _readonly(weights / weights.sum()))
        object.__setattr__(self, "means", _readonly(means))
        object.__setattr__(self, "covs", _readonly(covs))

    @classmethod
    def isotropic(cls, weights, means, std) -> GaussianMixture:
        """sum_k w_k N(mu_k, std_k^2 I), with ``std`` a scalar or (K,) positive numbers."""
        means = np.asarray(means, dtype=np.float64)
        if means.ndim != 2:
            raise ValueError(f"means must have shape (K, D), got {means.shape}")
        K, D = means.shape
        std = np.broadcast_to(np.asarray(std, dtype=np.float64), (K,))
        if not np.all(np.isfinite(std) & (std > 0)):
            raise ValueError(f"std must be positive and finite, got {std!r}")
        return cls(weights, means, std[:, None, None] ** 2 * np.eye(D))

    # -- sizes and moments --------------------------------------------------------------
    @property
    def K(self) -> int:
        """The number of components."""
        return self.weights.shape[0]

    @property
    def D(self) -> int:
        """The dimension of the data."""
        return self.means.shape[1]

    @property
    def mean(self) -> np.ndarray:
        """(D,) E[x] = sum_k w_k mu_k."""
        return self.weights @ self.means

    @property
    def covariance(self) -> np.ndarray:
        """(D, D) Cov[x] = sum_k w_k (Sigma_k + mu_k mu_k^T) - E[x] E[x]^T (total covariance)."""
        second = np.einsum("k,kij->ij", self.weights, self.covs)
        second += np.einsum("k,ki,kj->ij", self.weights, self.means, self.means)
        return second - np.outer(self.mean, self.mean)

    @cached_property
    def _factors(self) -> _Factors:
        return _Factors.of(self.means, self.covs)

    def _check_x(self, x, name: str = "x") -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.D:
            raise ValueError(f"{name} must have shape (B, D) with D = {self.D}, got {x.shape}")
        return x

    # -- density, score, sampling ------------------------------------------------------
    def _log_joint(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """log w_k + log N(x; mu_k, Sigma_k): (K, B), and Sigma_k^{-1} (x - mu_k): (K, D, B)."""
        log_density, precision_diff = self._factors.terms(x)
        return np.log(self.weights)[:, None] + log_density, precision_diff

    def log_prob(self, x) -> np.ndarray:
        """log p(x) = logsumexp_k (log w_k + log N(x; mu_k, Sigma_k)).

        Args:
            x: (B, D) points.

        Returns:
            (B,) log densities.
        """
        log_joint, _ = self._log_joint(self._check_x(x))
        return _log_softmax(log_joint)[0]

    def responsibilities(self, x) -> np.ndarray:
        """(B, K) posterior component probabilities r_k(x) = w_k N(x; mu_k, Sigma_k) / p(x)."""
        log_joint, _ = self._log_joint(self._check_x(x))
        return _log_softmax(log_joint)[1].T

    def score(self, x) -> np.ndarray:
        """grad_x log p(x) = -sum_k r_k(x) Sigma_k^{-1} (x - mu_k).

        Args:
            x: (B, D) points.

        Returns:
            (B, D) the exact score.
        """
        log_joint, precision_diff = self._log_joint(self._check_x(x))
        r = _log_softmax(log_joint)[1]  # (K, B)
        return -np.sum(r[:, None, :] * precision_diff, axis=0).T

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n independent draws: a component k ~ w, then mu_k + L_k z with z ~ N(0, I).

        The labels are drawn first (``rng.choice``), then all the normals at once.

        Returns:
            (n, D) samples.
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        if isinstance(n, bool) or int(n) != n or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        labels = rng.choice(self.K, size=int(n), p=self.weights)
        z = rng.standard_normal((int(n), self.D))
        L = np.linalg.cholesky(self.covs)  # (K, D, D)
        return self.means[labels] + np.einsum("bij,bj->bi", L[labels], z)

    # -- the forward process -----------------------------------------------------------
    def noised(self, schedule: Schedule, t: int) -> GaussianMixture:
        """The law of x_t when x_0 follows this mixture (Ho et al. 2020, eq. 4):

        means sqrt(alpha_bar_t) mu_k, covariances alpha_bar_t Sigma_k + (1 - alpha_bar_t) I.

        Args:
            schedule: the schedule.
            t: an int in 0..T (t = 0 gives this mixture).
        """
        t = int(check_t(t, schedule.T, low=0))
        return GaussianMixture(self.weights, *self._noised_components(schedule, t))

    def _noised_components(self, schedule: Schedule, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(K, D) means sqrt(alpha_bar_t) mu_k and (K, D, D) covariances
        alpha_bar_t Sigma_k + (1 - alpha_bar_t) I of the law of x_t."""
        alpha_bar = schedule.alpha_bar[t]
        covs = alpha_bar * self.covs + (1.0 - alpha_bar) * np.eye(self.D)
        return np.sqrt(alpha_bar) * self.means, covs

    def _posterior_mean_x0_at(self, schedule: Schedule, xt: np.ndarray, t: int) -> np.ndarray:
        """E[x_0 | x_t] for one step t and a batch xt: (B, D)."""
        sqrt_alpha_bar = schedule.sqrt_alpha_bar[t]
        # factors of the noised components, built directly: a GaussianMixture would
        # re-validate them at every step of a sampler
        factors = _Factors.of(*self._noised_components(schedule, t))
        log_density, precision_diff = factors.terms(xt)  # S_k^{-1} (x_t - sqrt(ab) mu_k): (K, D, B)
        r = _log_softmax(np.log(self.weights)[:, None] + log_density)[1]  # (K, B)
        # E[x_0 | x_t, k] = mu_k + sqrt(ab) Sigma_k S_k^{-1} (x_t - sqrt(ab) mu_k): (K, D, B)
        conditional = self.means[:, :, None] + sqrt_alpha_bar * (self.covs @ precision_diff)
        return np.sum(r[:, None, :] * conditional, axis=0).T

    def posterior_mean_x0(self, schedule: Schedule, xt, t) -> np.ndarray:
        """E[x_0 | x_t], exactly: responsibilities of the noised mixture times the Gaussian
        conditional mean of each component (see the module docstring).

        Args:
            schedule: the schedule.
            xt: (B, D) noisy points.
            t: an int in 0..T, or (B,) integers (equal or differing).

        Returns:
            (B, D) the posterior mean of the clean sample.
        """
        xt = self._check_x(xt, "xt")
        t = check_t(t, schedule.T, low=0)
        check_batch(xt, t, "xt")
        if t.ndim == 0:
            return self._posterior_mean_x0_at(schedule, xt, int(t))
        x0 = np.empty_like(xt)
        for step in np.unique(t):  # one vectorised pass per distinct step
            rows = t == step
            x0[rows] = self._posterior_mean_x0_at(schedule, xt[rows], int(step))
        return x0

    def denoiser(
        self, schedule: Schedule, parameterization: OracleOutput = "eps"
    ) -> Callable[[np.ndarray, int | np.ndarray], np.ndarray]:
        """The exact optimal denoiser ``denoiser(xt: (B, D), t) -> (B, D)`` for this data law.

        - ``"x0"``: E[x_0 | x_t];
        - ``"eps"``: E[eps | x_t] = (x_t - sqrt(alpha_bar_t) E[x_0 | x_t]) / sqrt(1 - alpha_bar_t);
        - ``"v"``: E[v | x_t] = sqrt(alpha_bar_t) E[eps | x_t] - sqrt(1 - alpha_bar_t) E[x_0 | x_t]
          (Salimans & Ho 2022);
        - ``"score"``: grad log q_t(x_t) = -E[eps | x_t] / sqrt(1 - alpha_bar_t) (Tweedie).

        ``t`` is an int in 1..T or a (B,) integer array (equal or differing values).
        """
        if parameterization not in ORACLE_OUTPUTS:
            raise ValueError(
                f"unknown parameterization {parameterization!r}; expected one of {ORACLE_OUTPUTS}"
            )

        def denoise(xt, t) -> np.ndarray:
            t = check_t(t, schedule.T)
            x0 = self.posterior_mean_x0(schedule, xt, t)
            if parameterization == "x0":
                return x0
            eps = eps_from_x0(schedule, xt, t, x0)
            if parameterization == "eps":
                return eps
            elif parameterization == "v":
                return v_from_x0_eps(schedule, x0, t, eps)
            elif parameterization == "score":
                return score_from_eps(schedule, xt, t, eps)
            else:
                raise AssertionError(parameterization)  # excluded above

        return denoise

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.K}, D={self.D}, weights={np.round(self.weights, 3)})"
