"""Anomaly scores and baselines (`minidiff.applications.anomaly`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.applications.anomaly import (
    anoddpm_map,
    auroc,
    elbo_bits_per_dim,
    fit_pca,
    fit_zscores,
    knn_scores,
    multi_t_score,
    partial_reconstruction,
    pca_residual,
    reconstruction_errors,
)
from minidiff.diffusion import GaussianDiffusion, sample_ddim
from minidiff.evaluation.likelihood import mixture_denoiser
from minidiff.process import toy_schedule
from minidiff.toy import GaussianMixture
from tests.tolerances import ATOL, N_STANDARD_ERRORS, RTOL, RTOL_LOOSE

scores = st.lists(st.integers(-5, 5), min_size=1, max_size=30)  # small integers: many ties


@settings(max_examples=100)
@given(scores, scores)
def test_auroc_equals_the_pairwise_definition(normal, anomalous):
    """AUROC = mean over all (normal, anomalous) pairs of [s_a > s_n] + [s_a = s_n] / 2,
    ties included (the brute-force definition)."""
    pairs = [(a > n) + 0.5 * (a == n) for a in anomalous for n in normal]
    assert math.isclose(auroc(np.array(normal), np.array(anomalous)), np.mean(pairs),
                        rel_tol=RTOL, abs_tol=ATOL)  # fmt: skip


def test_auroc_of_separated_and_reversed_scores():
    assert auroc(np.zeros(3), np.ones(4)) == 1.0
    assert auroc(np.ones(3), np.zeros(4)) == 0.0
    assert auroc(np.zeros(3), np.zeros(2)) == 0.5
    with pytest.raises(ValueError, match="non-empty"):
        auroc(np.zeros(0), np.ones(2))


@settings(max_examples=30)
@given(st.integers(0, 1000), st.integers(1, 6))
def test_knn_scores_equal_a_brute_force_sort(seed, k):
    """The mean of the k smallest distances of the full distance matrix, sorted in NumPy."""
    rng = np.random.default_rng(seed)
    ref, x = rng.normal(size=(12, 2, 3)), rng.normal(size=(5, 2, 3))
    d = np.linalg.norm(x.reshape(5, 1, -1) - ref.reshape(1, 12, -1), axis=2)
    expected = np.sort(d, axis=1)[:, :k].mean(1)
    got = knn_scores(torch.from_numpy(ref), torch.from_numpy(x), k=k).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_pca_residual_is_zero_in_the_subspace_and_the_full_norm_orthogonal_to_it():
    """Points mean + V^T c have residual 0; mean + u with u orthogonal to the subspace
    have squared residual summing to |u|^2."""
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(50, 6, generator=g, dtype=torch.float64) * torch.tensor(
        [5.0, 4.0, 3.0, 0.1, 0.1, 0.1], dtype=torch.float64
    )
    mean, basis = fit_pca(ref, 3)
    inside = mean + torch.randn(4, 3, generator=g, dtype=torch.float64) @ basis
    torch.testing.assert_close(pca_residual((mean, basis), inside), torch.zeros(4, 6),
                               rtol=0, atol=1e-12, check_dtype=False)  # fmt: skip
    u = torch.randn(4, 6, generator=g, dtype=torch.float64)
    u = u - (u @ basis.T) @ basis
    total = pca_residual((mean, basis), mean + u).sum(1)
    torch.testing.assert_close(total, (u**2).sum(1), rtol=RTOL_LOOSE, atol=1e-12)


def _mixture() -> GaussianMixture:
    return GaussianMixture([0.4, 0.6], [[-1.0, 0.5], [1.0, -0.5]], np.stack([0.2 * np.eye(2)] * 2))


def test_elbo_with_every_term_is_the_bounds_total():
    """num_t = None is `vlb_terms`' total, draw for draw."""
    diffusion = GaussianDiffusion(toy_schedule(30))
    x0 = torch.from_numpy(_mixture().sample(8, np.random.default_rng(0)))
    den = mixture_denoiser(_mixture(), diffusion)
    got = elbo_bits_per_dim(den, diffusion, x0, num_bins=None,
                            generator=torch.Generator().manual_seed(1))  # fmt: skip
    ref = diffusion.vlb_terms(den, x0, num_bins=None, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(got, ref["total"], rtol=RTOL, atol=ATOL)


def test_stratified_elbo_estimate_is_unbiased():
    """The mean of the K-step estimate over 400 independent draws matches the full bound
    (itself averaged over 400 draws) within 4 standard errors of the difference."""
    diffusion = GaussianDiffusion(toy_schedule(40))
    x0 = torch.tensor([[0.3, -0.2]], dtype=torch.float64).expand(400, 2).contiguous()
    den = mixture_denoiser(_mixture(), diffusion)
    g = torch.Generator().manual_seed(2)
    estimate = elbo_bits_per_dim(den, diffusion, x0, num_t=3, num_bins=None, generator=g)
    full = elbo_bits_per_dim(den, diffusion, x0, num_bins=None, generator=g)
    se = math.sqrt(estimate.var() / 400 + full.var() / 400)
    assert abs(float(estimate.mean() - full.mean())) < N_STANDARD_ERRORS * se


def test_partial_reconstruction_from_T_is_ddim_from_the_noised_data():
    """From t = T the reconstruction is `sample_ddim` started at q_sample(x_0, T, eps)
    with the same eps."""
    diffusion = GaussianDiffusion(toy_schedule(24))
    den = mixture_denoiser(_mixture(), diffusion)
    x0 = torch.from_numpy(_mixture().sample(5, np.random.default_rng(1)))
    got = partial_reconstruction(den, diffusion, x0, 24, steps=5,
                                 generator=torch.Generator().manual_seed(3))  # fmt: skip
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(3), dtype=x0.dtype)
    xt = diffusion.q_sample(x0, torch.full((5,), 24), eps)
    torch.testing.assert_close(got, sample_ddim(den, diffusion, xt, steps=5),
                               rtol=RTOL, atol=ATOL)  # fmt: skip


def test_reconstruction_error_grows_with_t_and_is_small_on_a_narrow_law():
    """For a law concentrated near one point (sd 0.01) the exact denoiser reconstructs
    every x_0 to about that point from any t; a point far off the law reconstructs badly
    from large t, and the error at large t exceeds the error at small t."""
    narrow = GaussianMixture([1.0], [[0.5, -0.5]], [1e-4 * np.eye(2)])
    diffusion = GaussianDiffusion(toy_schedule(50))
    den = mixture_denoiser(narrow, diffusion)
    x_in = torch.tensor([[0.5, -0.5]] * 4, dtype=torch.float64)
    x_out = torch.tensor([[2.0, 1.0]] * 4, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    e_in = reconstruction_errors(den, diffusion, x_in, [5, 45], generator=g)
    e_out = reconstruction_errors(den, diffusion, x_out, [5, 45], generator=g)
    assert (e_in < 1e-3).all()
    assert (e_out[:, 1] > 1.0).all() and (e_out[:, 1] > e_out[:, 0]).all()


@settings(max_examples=30)
@given(st.integers(0, 1000))
def test_multi_t_scores_of_the_validation_data_average_zero(seed):
    """z-scored on themselves, the validation errors' scores average exactly 0."""
    errors = torch.rand(9, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    z = multi_t_score(errors, fit_zscores(errors))
    assert abs(float(z.mean())) < 1e-12
    with pytest.raises(ValueError, match="N >= 2"):
        fit_zscores(errors[:1])


def test_anoddpm_map_sums_to_the_reconstruction_error():
    """The map has shape (B, H, W) and mean over pixels C x the reconstruction MSE."""
    diffusion = GaussianDiffusion(toy_schedule(24))

    def den(xt, t):
        return 0.5 * xt

    x0 = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    amap, recon = anoddpm_map(den, diffusion, x0, 8, steps=4,
                              generator=torch.Generator().manual_seed(1))  # fmt: skip
    assert amap.shape == (2, 5, 5)
    torch.testing.assert_close(amap.mean((1, 2)) / 3, ((recon - x0) ** 2).mean((1, 2, 3)))


def test_bad_arguments_are_named():
    diffusion = GaussianDiffusion(toy_schedule(24))
    x = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="k must be"):
        knn_scores(x, x, k=3)
    with pytest.raises(ValueError, match="components"):
        fit_pca(x, 0)
    with pytest.raises(ValueError, match="t must be"):
        partial_reconstruction(lambda xt, t: xt, diffusion, x, 25)
    with pytest.raises(ValueError, match="num_t"):
        elbo_bits_per_dim(lambda xt, t: xt, diffusion, x, num_t=0)
