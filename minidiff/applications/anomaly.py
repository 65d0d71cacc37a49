"""Anomaly detection with a diffusion model trained on normal data, and its baselines.

Diffusion scores (higher = more anomalous):

- `elbo_bits_per_dim`: the variational bound on -log p(x) in bits/dim (Ho et al. 2020,
  eq. 5), all T terms or an unbiased stratified estimate from a few steps.
- `reconstruction_errors` + `fit_zscores` / `multi_t_score`: the multi-t reconstruction
  error of Graham et al. (2023, "Denoising diffusion models for out-of-distribution
  detection", sec. 3): noise x_0 to several t, denoise back (DDIM), take the MSE at each t,
  z-score each t on validation data of the normal class and average.
- `anoddpm_map`: AnoDDPM's partial diffusion (Wyatt et al. 2022, sec. 3): noise to one
  t_lambda < T, reconstruct, and use the per-pixel squared error as an anomaly map (with
  Gaussian noise here, not the paper's simplex noise).

Baselines: `knn_scores` (mean distance to the k = 5 nearest normal examples) and
`fit_pca` / `pca_residual` (reconstruction error from the leading principal components).
`auroc` is the area under the ROC curve, the Mann-Whitney statistic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from minidiff.diffusion._sampling import Denoiser
from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.diffusion.samplers import sample_ddim
from minidiff.process import Schedule

__all__ = [
    "auroc",
    "knn_scores",
    "fit_pca",
    "pca_residual",
    "elbo_bits_per_dim",
    "partial_reconstruction",
    "reconstruction_errors",
    "fit_zscores",
    "multi_t_score",
    "anoddpm_map",
]


def auroc(normal: np.ndarray | torch.Tensor, anomalous: np.ndarray | torch.Tensor) -> float:
    """P(score of an anomaly > score of a normal example) + P(tie) / 2: the area under
    the ROC curve, by the rank-sum (Mann-Whitney U) formula with tied ranks averaged,

        AUROC = (R_anomalous - n_a (n_a + 1) / 2) / (n_a n_n).

    Args:
        normal: (N_n,) scores of normal examples; anomalous: (N_a,) of anomalies.
    """
    a = np.asarray(torch.as_tensor(normal).detach().cpu(), dtype=np.float64).ravel()
    b = np.asarray(torch.as_tensor(anomalous).detach().cpu(), dtype=np.float64).ravel()
    if a.size == 0 or b.size == 0 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("normal and anomalous must be non-empty and finite")
    scores = np.concatenate([a, b])
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)  # rank of the last copy of each distinct value (1-based)
    mid_rank = upper - (counts - 1) / 2.0  # tied values share the mean of their ranks
    rank_sum = mid_rank[inverse[a.size :]].sum()
    return float((rank_sum - b.size * (b.size + 1) / 2) / (a.size * b.size))


def _flat(x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(x).reshape(len(x), -1).double()


def knn_scores(reference: torch.Tensor, x: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Mean Euclidean distance from each row of ``x`` to its k nearest ``reference`` rows
    (flattened), (B,). Score ``x`` that is not in ``reference``: a point is its own nearest
    neighbour."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(reference):
        raise ValueError(f"k must be an integer in [1, {len(reference)}], got {k!r}")
    ref = _flat(reference)
    rows = [torch.cdist(chunk, ref).topk(k, largest=False).values.mean(1)
            for chunk in _flat(x).split(512)]  # fmt: skip
    return torch.cat(rows)


def fit_pca(reference: torch.Tensor, components: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean (D,) and the leading ``components`` principal directions (components, D)
    of the flattened ``reference`` (SVD of the centred data)."""
    ref = _flat(reference)
    if (
        isinstance(components, bool)
        or not isinstance(components, int)
        or not (1 <= components <= min(ref.shape))
    ):
        raise ValueError(f"components must be an integer in [1, {min(ref.shape)}], "
                         f"got {components!r}")  # fmt: skip
    mean = ref.mean(0)
    _, _, vt = torch.linalg.svd(ref - mean, full_matrices=False)
    return mean, vt[:components]


def pca_residual(pca: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Per-pixel squared residual of ``x`` (B, ...) after projection on the principal
    subspace ``pca`` = (mean, basis) of `fit_pca`: (x - mean) - V^T V (x - mean), squared,
    shaped like ``x``. Its sum over pixels is the PCA reconstruction error."""
    mean, basis = pca
    centred = _flat(x) - mean
    residual = centred - (centred @ basis.T) @ basis
    return (residual**2).reshape(x.shape).to(x.dtype)


@torch.no_grad()
def elbo_bits_per_dim(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    x0: torch.Tensor,
    *,
    num_t: int | None = None,
    num_bins: int | None = 256,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The variational bound on -log p(x_0) in bits/dim per example, (B,) (Ho et al. 2020,
    eq. 5): L_T + L_0 + sum_{t=2..T} L_{t-1}.

    ``num_t = None``: every term (`GaussianDiffusion.vlb_terms`' ``total``, T denoiser
    calls). ``num_t = K``: L_T + L_0 + (T - 1) / K * sum_k L_{t_k - 1}, with t_k drawn
    uniformly from the k-th of K equal strata of 2..T for each example: an unbiased
    estimate of the same bound at K + 1 calls.
    """
    if num_t is None:
        return diffusion.vlb_terms(denoiser, x0, generator=generator, num_bins=num_bins)["total"]
    T = diffusion.T
    if isinstance(num_t, bool) or not isinstance(num_t, int) or not 1 <= num_t <= max(T - 1, 1):
        raise ValueError(f"num_t must be None or an integer in [1, {max(T - 1, 1)}], got {num_t!r}")
    B = x0.shape[0]
    edges = torch.linspace(2, T + 1, num_t + 1, dtype=torch.float64)  # strata of 2..T
    u = torch.rand(num_t, B, generator=generator, dtype=torch.float64)  # one t per example
    steps = torch.floor(edges[:-1, None] + u * edges.diff()[:, None]).clamp(max=T).long()
    total = diffusion.prior_bpd(x0)
    draws = [(1.0, torch.ones(B, dtype=torch.int64))] + [((T - 1) / num_t, s) for s in steps]
    for weight, t in draws if T > 1 else draws[:1]:
        t = t.to(x0.device)
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        xt = diffusion.q_sample(x0, t, eps)
        term, _ = diffusion.vlb_term(denoiser(xt, t), x0, xt, t, num_bins=num_bins)
        total = total + weight * term
    return total


def partial_reconstruction(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    x0: torch.Tensor,
    t: int,
    *,
    steps: int | None = None,
    eta: float = 0.0,
    clip_x0: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """x_0 noised to step t by q(x_t | x_0) (Ho et al. 2020, eq. 4) and denoised back by
    DDIM (`sample_ddim`) over ``steps`` jumps of the grid on 0..t, (B, ...).

    The reverse runs on the diffusion cut at t (betas 1..t): its tables on 0..t are the
    full schedule's, so the denoiser is called at the same steps with the same meaning.
    """
    if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= diffusion.T:
        raise ValueError(f"t must be an integer in [1, T = {diffusion.T}], got {t!r}")
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    xt = diffusion.q_sample(x0, torch.full((x0.shape[0],), t, device=x0.device), eps)
    cut = GaussianDiffusion(Schedule(diffusion.schedule.beta[: t + 1]),
                            diffusion.parameterization, diffusion.variance)  # fmt: skip
    steps = t if steps is None else min(steps, t)
    return sample_ddim(denoiser, cut, xt, steps=steps, eta=eta, clip_x0=clip_x0,
                       generator=generator)  # fmt: skip


def reconstruction_errors(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    x0: torch.Tensor,
    ts: Sequence[int],
    *,
    steps: int | None = 10,
    clip_x0: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean squared error between x_0 and its `partial_reconstruction` from each t in
    ``ts`` (deterministic DDIM, ``steps`` jumps), (B, len(ts)) (Graham et al. 2023)."""
    columns = [
        ((partial_reconstruction(denoiser, diffusion, x0, int(t), steps=steps, clip_x0=clip_x0,
                                 generator=generator) - x0) ** 2).flatten(1).mean(1)
        for t in ts
    ]  # fmt: skip
    return torch.stack(columns, dim=1)


def fit_zscores(validation_errors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation (N - 1) of each column of the normal validation
    examples' errors (N, K), N >= 2."""
    e = torch.as_tensor(validation_errors)
    if e.ndim != 2 or e.shape[0] < 2:
        raise ValueError(f"validation_errors must have shape (N >= 2, K), got {tuple(e.shape)}")
    return e.mean(0), e.std(0).clamp_min(torch.finfo(e.dtype).tiny)


def multi_t_score(errors: torch.Tensor, zscores: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The mean over the K steps of (error - mean) / std, (B,), with ``zscores`` from
    `fit_zscores` (Graham et al. 2023, sec. 3.2)."""
    mean, std = zscores
    return ((torch.as_tensor(errors) - mean) / std).mean(1)


def anoddpm_map(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    x0: torch.Tensor,
    t: int,
    *,
    steps: int | None = 10,
    clip_x0: float | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """AnoDDPM's anomaly map (Wyatt et al. 2022, sec. 3): the squared error between x_0
    (B, C, H, W) and its `partial_reconstruction` from t, summed over channels.

    Returns:
        the map (B, H, W) and the reconstruction (B, C, H, W); the map's mean over
        pixels, times 1 / C, is the reconstruction MSE.
    """
    recon = partial_reconstruction(denoiser, diffusion, x0, t, steps=steps, clip_x0=clip_x0,
                                   generator=generator)  # fmt: skip
    return ((recon - x0) ** 2).sum(1), recon
