"""The Fréchet distance between Gaussians: the distance behind FID.

The Wasserstein-2 (Fréchet) distance between N(m1, C1) and N(m2, C2) has a closed form
(Dowson & Landau 1982; Olkin & Pukelsheim 1982):

    d^2 = |m1 - m2|^2 + tr(C1 + C2 - 2 (C1^{1/2} C2 C1^{1/2})^{1/2}).

FID (Heusel et al. 2017, eq. 6) is d^2 between Gaussians fitted to the Inception features
of real and generated images; `minidiff.evaluation.digits` uses it with the features of a
small digits classifier.

How it is computed. Everything runs in float64 on symmetric positive semi-definite
matrices, without the complex matrix square root of ``scipy.linalg.sqrtm(C1 @ C2)``:

1. S1 = C1^{1/2} and S2 = C2^{1/2} from `numpy.linalg.eigh` (eigenvalues that round-off
   made slightly negative are set to 0);
2. A = S1 S2 satisfies A A^T = S1 C2 S1, so the eigenvalues of (S1 C2 S1)^{1/2} are the
   singular values of A, and the trace term is A's nuclear norm (sum of singular values).
   Taking singular values of A, rather than square roots of the eigenvalues of S1 C2 S1,
   avoids a square root of round-off near zero eigenvalues: d^2 of two identical
   Gaussians stays at round-off (about 1e-15 of the traces) even for singular ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["gaussian_statistics", "frechet_distance", "psd_sqrt"]

# A covariance may have eigenvalues down to -PSD_TOLERANCE x its largest |eigenvalue|
# (round-off of an estimate); more negative ones mean the matrix is not a covariance.
PSD_TOLERANCE = 1e-8
# |C - C^T| may reach SYMMETRY_TOLERANCE x max |C| (round-off); more is not a covariance.
SYMMETRY_TOLERANCE = 1e-8


def _as_float64(name: str, value: Any) -> np.ndarray:
    """``value`` (array-like or a CPU torch tensor) as a float64 NumPy array."""
    if hasattr(value, "detach"):  # a torch tensor: no gradient, on the CPU
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a numeric array, got {type(value).__name__}") from error
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got non-finite entries")
    return array


def gaussian_statistics(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """The mean and the unbiased covariance of a sample of feature vectors.

    Args:
        features: (N, D) feature vectors, N >= 2 (array-like or torch tensor).

    Returns:
        mean (D,) and covariance (D, D), float64; the covariance divides by N - 1, as
        `numpy.cov` and the reference FID code do.

    Raises:
        ValueError: `features` is not 2-D, has fewer than 2 rows, or is not finite.
    """
    features = _as_float64("features", features)
    if features.ndim != 2 or features.shape[0] < 2 or features.shape[1] < 1:
        raise ValueError(
            f"features must have shape (N, D) with N >= 2 and D >= 1, got {features.shape}"
        )
    mean = features.mean(axis=0)
    centred = features - mean  # (N, D)
    covariance = centred.T @ centred / (features.shape[0] - 1)  # (D, D)
    return mean, (covariance + covariance.T) / 2


def psd_sqrt(matrix: Any, *, name: str = "matrix") -> np.ndarray:
    """The symmetric square root S of a symmetric PSD matrix C (S S = C, S PSD).

    From the eigendecomposition C = Q diag(lambda) Q^T: S = Q diag(sqrt(lambda)) Q^T,
    with eigenvalues that round-off made slightly negative set to 0.

    Args:
        matrix: (D, D) symmetric positive semi-definite.
        name: the argument's name in error messages.

    Returns:
        (D, D) float64.

    Raises:
        ValueError: not square, not finite, not symmetric, or an eigenvalue below
            -PSD_TOLERANCE x the largest |eigenvalue|.
    """
    matrix = _check_covariance(name, _as_float64(name, matrix))
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    scale = max(float(np.abs(eigenvalues).max(initial=0.0)), np.finfo(np.float64).tiny)
    if eigenvalues.min(initial=0.0) < -PSD_TOLERANCE * scale:
        raise ValueError(
            f"{name} must be positive semi-definite, got smallest eigenvalue "
            f"{eigenvalues.min():.3g} (largest |eigenvalue| {scale:.3g})"
        )
    root = np.sqrt(np.clip(eigenvalues, 0.0, None))
    return (eigenvectors * root) @ eigenvectors.T  # Q diag(sqrt(lambda)) Q^T


def _check_covariance(name: str, matrix: np.ndarray) -> np.ndarray:
    """``matrix`` symmetrised, after checking it is square and symmetric to round-off."""
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 1:
        raise ValueError(f"{name} must be a square (D, D) matrix, got shape {matrix.shape}")
    scale = float(np.abs(matrix).max())
    asymmetry = float(np.abs(matrix - matrix.T).max())
    if asymmetry > SYMMETRY_TOLERANCE * scale:
        raise ValueError(f"{name} must be symmetric, got max |C - C^T| = {asymmetry:.3g}")
    return (matrix + matrix.T) / 2


def frechet_distance(mean1: Any, cov1: Any, mean2: Any, cov2: Any) -> float:
    """The squared Fréchet (Wasserstein-2) distance between N(mean1, cov1) and N(mean2, cov2).

    d^2 = |m1 - m2|^2 + tr(C1) + tr(C2) - 2 tr((C1^{1/2} C2 C1^{1/2})^{1/2})

    (Dowson & Landau 1982; FID is this between Inception-feature Gaussians, Heusel et al.
    2017, eq. 6). The trace term is computed as the nuclear norm of C1^{1/2} C2^{1/2}
    (see the module docstring). Round-off can make d^2 of two (nearly) equal Gaussians a
    tiny negative number; it is returned as 0. The square root d is a metric.

    Args:
        mean1: (D,) mean of the first Gaussian.
        cov1: (D, D) its covariance (symmetric PSD; singular is fine).
        mean2: (D,) mean of the second Gaussian.
        cov2: (D, D) its covariance.

    Returns:
        d^2 >= 0, a Python float.

    Raises:
        ValueError: shapes that do not match (naming the argument), non-finite entries, or
            a covariance that is not symmetric PSD.
    """
    mean1, mean2 = _as_float64("mean1", mean1), _as_float64("mean2", mean2)
    if mean1.ndim != 1 or mean1.shape[0] < 1:
        raise ValueError(f"mean1 must have shape (D,), got {mean1.shape}")
    D = mean1.shape[0]
    if mean2.shape != (D,):
        raise ValueError(f"mean2 must have shape ({D},) like mean1, got {mean2.shape}")
    for name, cov in (("cov1", cov1), ("cov2", cov2)):
        shape = np.shape(cov.detach() if hasattr(cov, "detach") else cov)
        if tuple(shape) != (D, D):
            raise ValueError(f"{name} must have shape ({D}, {D}) to match the means, got {shape}")
    sqrt_cov1 = psd_sqrt(cov1, name="cov1")  # S1, (D, D)
    sqrt_cov2 = psd_sqrt(cov2, name="cov2")  # S2, (D, D)
    # tr((S1 C2 S1)^{1/2}) = sum of the singular values of S1 S2, since (S1 S2)(S1 S2)^T = S1 C2 S1
    trace_sqrt = float(np.linalg.svd(sqrt_cov1 @ sqrt_cov2, compute_uv=False).sum())
    trace1 = float(np.trace(sqrt_cov1 @ sqrt_cov1))  # = tr(C1) for the clipped root
    trace2 = float(np.trace(sqrt_cov2 @ sqrt_cov2))
    mean_term = float(np.sum((mean1 - mean2) ** 2))
    return max(mean_term + trace1 + trace2 - 2.0 * trace_sqrt, 0.0)
