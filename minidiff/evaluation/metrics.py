"""Sample-quality metrics computed from features: FID, IS, KID, precision and recall.

Each takes features (N, F) from any network (the FID Inception of
`minidiff.evaluation.inception`, or a judge trained here) and returns a frozen result that
states the sample sizes it was computed from, since every one of them depends on n.

- FID (Heusel et al. 2017, eq. 6): the Fréchet distance between Gaussians fitted to the two
  feature sets (`minidiff.evaluation.frechet`). Biased upwards at finite n: for two samples
  of size n from the same N(0, I_d), E[FID] ~ d (d + 5) / (2 n) (2 d / n from the means,
  (d^2 + d) / (2 n) from the covariances), so FIDs only compare at equal n. With n <= d the
  sample covariance is singular; `frechet_inception_distance` refuses n <= F unless asked.
- IS (Salimans et al. 2016): exp(E_x KL(p(y | x) || p(y))) on each of ``splits`` parts,
  mean and standard deviation over the parts. The images are shuffled (seeded) first:
  split by class, each part holds one class and the score collapses to 1.
- KID (Bińkowski et al. 2018): the unbiased MMD^2 estimator with the cubic polynomial
  kernel k(x, y) = (x . y / F + 1)^3, averaged over random subsets; unbiased at every n.
- Precision and recall (Kynkäänniemi et al. 2019): the real manifold is the union of balls
  around each real feature with radius its distance to its k-th nearest real neighbour
  (k = 3); precision is the share of generated features inside it, recall the share of
  real features inside the generated manifold built the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from minidiff.evaluation.frechet import _as_float64, frechet_distance, gaussian_statistics

__all__ = [
    "FIDResult",
    "ISResult",
    "KIDResult",
    "PRResult",
    "frechet_inception_distance",
    "inception_score",
    "kernel_inception_distance",
    "polynomial_kernel",
    "precision_recall",
    "fid_bias",
]


def _features(name: str, value: Any, min_rows: int = 2) -> np.ndarray:
    array = _as_float64(name, value)
    if array.ndim != 2 or array.shape[0] < min_rows or array.shape[1] < 1:
        raise ValueError(
            f"{name} must have shape (N, F) with N >= {min_rows} and F >= 1, got {array.shape}"
        )
    return array


def _positive_int(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class FIDResult:
    """FID and the sizes it was computed from (``n1``, ``n2`` rows, ``dim`` features)."""

    value: float
    n1: int
    n2: int
    dim: int


def fid_bias(dim: int, n: int) -> float:
    """d (d + 5) / (2 n): the leading bias of FID between two samples of size n from the
    same N(0, I_d) (module docstring)."""
    return dim * (dim + 5) / (2.0 * n)


def frechet_inception_distance(
    features1: Any, features2: Any, *, allow_singular: bool = False
) -> FIDResult:
    """FID between two feature sets: the Fréchet distance of their Gaussian fits.

    Args:
        features1: (N1, F) e.g. generated images' features.
        features2: (N2, F) e.g. reference features.
        allow_singular: accept N <= F (a singular sample covariance: the distance is still
            real and finite, computed from PSD square roots, but dominated by its bias).

    Raises:
        ValueError: bad shapes, or N <= F without ``allow_singular``.
    """
    features1, features2 = _features("features1", features1), _features("features2", features2)
    if features1.shape[1] != features2.shape[1]:
        raise ValueError(
            f"features2 must have {features1.shape[1]} columns like features1, got "
            f"{features2.shape[1]}"
        )
    dim = features1.shape[1]
    n_min = min(len(features1), len(features2))
    if n_min <= dim and not allow_singular:
        raise ValueError(
            f"n = {n_min} samples is too small for FID in {dim} features (need n > {dim}: "
            "the sample covariance is singular); draw more or pass allow_singular=True"
        )
    mean1, cov1 = gaussian_statistics(features1)
    mean2, cov2 = gaussian_statistics(features2)
    value = frechet_distance(mean1, cov1, mean2, cov2)
    return FIDResult(value, len(features1), len(features2), dim)


@dataclass(frozen=True)
class ISResult:
    """Inception Score: ``mean`` and ``std`` over ``splits`` parts of ``n`` images."""

    mean: float
    std: float
    n: int
    splits: int


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def inception_score(
    logits: Any,
    *,
    splits: int = 10,
    shuffle: bool = True,
    seed: int = 2020,
    probabilities: bool = False,
) -> ISResult:
    """IS = exp(E_x KL(p(y | x) || p(y))) per part, p(y) the part's mean prediction
    (Salimans et al. 2016).

    Part i holds rows [i N / splits, (i + 1) N / splits) (integer division) of the rows
    permuted by ``numpy.random.RandomState(seed).permutation(N)`` (torch-fidelity's
    convention, so its published scores reproduce).

    Args:
        logits: (N, K) class logits (the Inception's ``"logits_unbiased"``), or
            probabilities with ``probabilities=True`` (rows summing to 1; zeros allowed).
        splits: the number of parts, 1..N.
        shuffle: permute the rows first. Without it, rows sorted by class give parts of
            one class each, and the score collapses to 1 (a known pitfall).
        seed: the permutation's seed.
        probabilities: ``logits`` holds probabilities.

    Returns:
        `ISResult` (mean, population std over the parts, n, splits).
    """
    values = _features("logits", logits, min_rows=1)
    n = len(values)
    splits = _positive_int("splits", splits)
    if splits > n:
        raise ValueError(f"splits must be at most n = {n}, got {splits}")
    if probabilities:
        if np.any(values < 0) or not np.allclose(values.sum(axis=1), 1.0, rtol=0, atol=1e-6):
            raise ValueError("logits must hold probabilities (rows >= 0 summing to 1)")
        p = values / values.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore"):
            log_p = np.log(p)
    else:
        log_p = _log_softmax(values)
        p = np.exp(log_p)
    if shuffle:
        order = np.random.RandomState(seed).permutation(n)
        p, log_p = p[order], log_p[order]
    scores = []
    for i in range(splits):
        part = slice(i * n // splits, (i + 1) * n // splits)
        p_part, log_p_part = p[part], log_p[part]
        marginal = p_part.mean(axis=0)  # p(y) on this part
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(p_part > 0, p_part * (log_p_part - np.log(marginal)), 0.0)
        scores.append(math.exp(terms.sum(axis=1).mean()))
    return ISResult(float(np.mean(scores)), float(np.std(scores)), n, splits)


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3) -> np.ndarray:
    """k(x, y) = (x . y / F + 1)^degree, (N, M) for x (N, F), y (M, F) (KID's kernel)."""
    return (x @ y.T / x.shape[1] + 1.0) ** degree


def _unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD^2 estimate (Gretton et al. 2012, eq. 3): within-set kernel means
    exclude the diagonal."""
    m, n = len(x), len(y)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * kxy.mean())


@dataclass(frozen=True)
class KIDResult:
    """KID: ``mean`` and ``std`` over ``subsets`` subsets of ``subset_size`` rows of each
    set (``n1``, ``n2`` rows in all)."""

    mean: float
    std: float
    n1: int
    n2: int
    subsets: int
    subset_size: int


def kernel_inception_distance(
    features1: Any, features2: Any, *, subsets: int = 100, subset_size: int = 1000,
    seed: int = 2020,
) -> KIDResult:  # fmt: skip
    """KID: the unbiased MMD^2 with the cubic kernel, averaged over random subsets
    (Bińkowski et al. 2018). Each subset draws ``min(subset_size, N1, N2)`` rows of each
    set without replacement (``numpy.random.RandomState(seed)``).

    Raises:
        ValueError: bad shapes or counts.
    """
    features1, features2 = _features("features1", features1), _features("features2", features2)
    if features1.shape[1] != features2.shape[1]:
        raise ValueError(
            f"features2 must have {features1.shape[1]} columns like features1, got "
            f"{features2.shape[1]}"
        )
    subsets = _positive_int("subsets", subsets)
    size = min(_positive_int("subset_size", subset_size, 2), len(features1), len(features2))
    rng = np.random.RandomState(seed)
    values = []
    for _ in range(subsets):
        x = features1[rng.choice(len(features1), size, replace=False)]
        y = features2[rng.choice(len(features2), size, replace=False)]
        values.append(_unbiased_mmd2(x, y))
    return KIDResult(
        float(np.mean(values)), float(np.std(values)), len(features1), len(features2), subsets,
        size,
    )  # fmt: skip


@dataclass(frozen=True)
class PRResult:
    """Precision (generated inside the real manifold) and recall (real inside the
    generated manifold), with ``n_real``, ``n_fake`` and the neighbourhood ``k``."""

    precision: float
    recall: float
    n_real: int
    n_fake: int
    k: int


def _squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|x_i - y_j|^2, (N, M), clipped at 0 against round-off."""
    d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.maximum(d2, 0.0)


def _kth_neighbour_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Squared distance from each row to its k-th nearest other row, (N,)."""
    d2 = _squared_distances(x, x)
    np.fill_diagonal(d2, np.inf)
    return np.partition(d2, k - 1, axis=1)[:, k - 1]


def _coverage(manifold: np.ndarray, queries: np.ndarray, k: int) -> float:
    """Share of ``queries`` within the k-NN ball of some row of ``manifold``."""
    radii = _kth_neighbour_radii(manifold, k)  # (N,)
    inside = (_squared_distances(queries, manifold) <= radii[None, :]).any(axis=1)
    return float(inside.mean())


def precision_recall(real: Any, fake: Any, *, k: int = 3) -> PRResult:
    """Improved precision and recall (Kynkäänniemi et al. 2019, eqs. 1-3), k = 3 by
    default, with exact Euclidean distances ((N + M)^2 memory: for thousands of rows).

    Raises:
        ValueError: bad shapes, or fewer than k + 1 rows in a set.
    """
    k = _positive_int("k", k)
    real, fake = _features("real", real, k + 1), _features("fake", fake, k + 1)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"fake must have {real.shape[1]} columns like real, got {fake.shape[1]}")
    return PRResult(
        _coverage(real, fake, k), _coverage(fake, real, k), len(real), len(fake), k
    )
