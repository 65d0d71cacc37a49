"""Tests of the sinusoidal timestep embedding: its formula, its layout against diffusers'
DDPM configuration, and the time-embedding MLP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers.models.embeddings import get_timestep_embedding
from hypothesis import given
from hypothesis import strategies as st

from minidiff.nn.embedding import TimeEmbedding, sinusoidal_embedding
from tests.tolerances import ATOL, RTOL

timesteps = st.lists(st.integers(0, 4000), min_size=1, max_size=16)


@given(t=timesteps, dim=st.integers(4, 80), max_period=st.sampled_from([10.0, 1e4, 1e5]))
def test_embedding_matches_the_sinusoid_formula(t, dim, max_period):
    """emb(t)[k] = sin(t w_k), emb(t)[half + k] = cos(t w_k) with
    w_k = max_period^(-k / (half - 1)), half = dim // 2, and a zero last column when dim
    is odd (Vaswani et al. 2017, sec. 3.5, in the DDPM code's layout); evaluated
    independently in NumPy float64."""
    emb = sinusoidal_embedding(torch.tensor(t), dim, max_period=max_period, dtype=torch.float64)
    half = dim // 2
    w = max_period ** (-np.arange(half) / (half - 1))
    angle = np.asarray(t, dtype=np.float64)[:, None] * w[None, :]
    expected = np.concatenate([np.sin(angle), np.cos(angle)], axis=1)
    if dim % 2:
        expected = np.concatenate([expected, np.zeros((len(t), 1))], axis=1)
    assert emb.shape == (len(t), dim)
    np.testing.assert_allclose(emb.numpy(), expected, rtol=RTOL, atol=ATOL)


@given(t=st.lists(st.floats(0, 1000), min_size=1, max_size=8), dim=st.integers(4, 64))
def test_embedding_rows_lie_on_unit_circles(t, dim):
    """Each frequency contributes a point (sin, cos) on the unit circle:
    emb[k]^2 + emb[half + k]^2 = 1 for every k, for real (fractional) t too."""
    emb = sinusoidal_embedding(torch.tensor(t, dtype=torch.float64), dim)
    half = dim // 2
    radius = emb[:, :half] ** 2 + emb[:, half : 2 * half] ** 2
    np.testing.assert_allclose(radius.numpy(), 1.0, rtol=RTOL, atol=ATOL)


def test_embedding_matches_diffusers_ddpm_layout():
    """minidiff's embedding equals diffusers' ``get_timestep_embedding`` with the
    google/ddpm-cifar10-32 settings (flip_sin_to_cos=False, downscale_freq_shift=1).
    diffusers computes in float32: the argument t w_k carries a relative error of a few
    float32 epsilons, so for t <= 1000 the sines agree to 1000 * 8 eps_32 ~ 1e-3 absolute
    and far better at small t; the bound below is that, not a fitted number."""
    t = torch.arange(0, 1001, 7)
    for dim in (32, 33, 128):
        reference = get_timestep_embedding(
            t, dim, flip_sin_to_cos=False, downscale_freq_shift=1
        ).double()
        ours = sinusoidal_embedding(t, dim, dtype=torch.float64)
        bound = 8 * torch.finfo(torch.float32).eps * (t.double()[:, None] + 1)
        assert ((ours - reference).abs() <= bound).all()


def test_embedding_follows_dtype_and_default():
    """The embedding is computed in the requested dtype, in t's dtype if floating, else in
    the default dtype."""
    assert sinusoidal_embedding(torch.arange(3), 8, dtype=torch.float64).dtype == torch.float64
    assert sinusoidal_embedding(torch.arange(3.0, dtype=torch.float64), 8).dtype == torch.float64
    assert sinusoidal_embedding(torch.arange(3), 8).dtype == torch.get_default_dtype()


@pytest.mark.parametrize(
    ("t", "dim", "match"),
    [(torch.zeros(2, 2), 8, "shape"), (torch.zeros(2), 3, "dim"), (torch.zeros(2), 0, "dim")],
)
def test_embedding_rejects_bad_input(t, dim, match):
    """A t that is not (B,) or a width below 4 raises a ValueError naming it."""
    with pytest.raises(ValueError, match=match):
        sinusoidal_embedding(t, dim)


def test_time_embedding_is_sinusoid_then_mlp():
    """TimeEmbedding(t) = W2 SiLU(W1 emb(t) + b1) + b2 with output width hidden_dim
    (Ho et al. 2020, appendix B)."""
    torch.manual_seed(0)
    module = TimeEmbedding(16, 64).double()
    t = torch.tensor([0, 5, 999])
    emb = sinusoidal_embedding(t, 16, dtype=torch.float64)
    expected = module.linear_2(torch.nn.functional.silu(module.linear_1(emb)))
    out = module(t)
    assert out.shape == (3, 64)
    torch.testing.assert_close(out, expected, rtol=RTOL, atol=ATOL)
