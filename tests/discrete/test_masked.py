"""Tests of `minidiff.discrete.masked`: the continuous-time absorbing ELBO (MDLM) and unmasking."""

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidiff.discrete import (
    D3PM,
    absorbing_linear_beta,
    mask_tokens,
    masked_loss_terms,
    sample_masked,
)
from minidiff.discrete.masked import stratified_times
from tests.tolerances import N_STANDARD_ERRORS, RTOL_LOOSE

V, L = 2, 3  # a tiny known law over the 8 sequences of 3 binary tokens
MASK = V


def _tiny_law(seed: int) -> np.ndarray:
    """(V ** L,) a random law over the sequences, in itertools.product order."""
    return np.random.default_rng(seed).dirichlet(np.full(V**L, 0.7))


SEQUENCES = torch.tensor(list(itertools.product(range(V), repeat=L)))  # (8, L)
STATES = torch.tensor(list(itertools.product(range(V + 1), repeat=L)))  # (27, L), mask = V


def _exact_logits(law: np.ndarray) -> torch.Tensor:
    """(27, L, V) log p(x_0^l = v | x_t) for every x_t: the law conditioned on the kept tokens."""
    consistent = ((STATES[:, None, :] == SEQUENCES[None]) | (STATES[:, None, :] == MASK)).all(-1)
    weight = consistent.double() * torch.as_tensor(law)[None]  # (27, 8)
    marginal = torch.stack(
        [weight @ (SEQUENCES[:, l, None] == torch.arange(V)).double() for l in range(L)], dim=1
    )  # (27, L, V)
    return (marginal / marginal.sum(-1, keepdim=True)).log()


def _state_index(xt: torch.Tensor) -> torch.Tensor:
    return (xt * (V + 1) ** torch.arange(L - 1, -1, -1)).sum(-1)


def _exact_denoiser(law):
    table = _exact_logits(law)
    return lambda xt, t: table[_state_index(xt)]


def _pairs():
    """Every (x_0, x_t) pair reachable by masking: (n, L) each, and the number of masks."""
    x0 = SEQUENCES.repeat_interleave(2**L, dim=0)
    masks = torch.tensor(list(itertools.product([False, True], repeat=L))).repeat(len(SEQUENCES), 1)
    return x0, torch.where(masks, MASK, x0), masks.sum(-1)


def _integrand(law, s: float) -> float:
    """(1/s) E[sum_masked -log p(x_0^l | x_t)] at masking rate s, exactly (library loss terms)."""
    x0, xt, masked = _pairs()
    weight = torch.as_tensor(law)[torch.arange(len(x0)) // 2**L]  # q(x_0), x_0 in blocks of 2^L
    masked = masked.double()  # (a Python float to an int tensor's power would be float32)
    weight = weight * s**masked * (1 - s) ** (L - masked)
    terms = masked_loss_terms(
        _exact_denoiser(law)(xt, None), x0, xt, torch.full((len(x0),), s, dtype=torch.float64), MASK
    )
    return float((weight * terms).sum())


def _continuous_nelbo(law) -> float:
    """int_0^1 of the integrand, a polynomial of degree L - 1: Gauss-Legendre is exact."""
    nodes, weights = np.polynomial.legendre.leggauss(L + 2)
    return sum(w / 2 * _integrand(law, (x + 1) / 2) for x, w in zip(nodes, weights, strict=True))


def _discrete_nelbo(law, T: int) -> float:
    """The exact ELBO of the T-step absorbing D3PM (alpha_bar_t = 1 - t / T) with the same
    denoiser: every t, x_0 and x_t summed through `D3PM.vlb_terms`."""
    d3pm = D3PM("absorbing", absorbing_linear_beta(T), V + 1)
    x0, xt, masked = _pairs()
    p_x0 = torch.as_tensor(law)[torch.arange(len(x0)) // 2**L]
    logits = d3pm.model_logits(_exact_denoiser(law)(xt, None))
    total = float((p_x0[:, None] * d3pm.prior_kl(x0)).sum())
    masked = masked.double()
    for t in range(1, T + 1):
        s = t / T
        weight = p_x0 * s**masked * (1 - s) ** (L - masked)
        terms = d3pm.vlb_terms(logits, x0, xt, torch.full((len(x0),), t)).sum(-1)
        total += float((weight * terms).sum())
    return total


def _entropy(law) -> float:
    return float(-(law * np.log(law)).sum())


@given(st.integers(0, 2**31 - 1))
def test_continuous_elbo_of_exact_denoiser_equals_entropy(seed):
    """int_0^1 (1/t) E[sum_masked -log p(x_0^l | x_t)] dt = H(x_0) with the exact conditionals:
    the MDLM bound is tight (it averages the any-order autoregressive factorizations)."""
    law = _tiny_law(seed)
    assert _continuous_nelbo(law) == pytest.approx(_entropy(law), rel=RTOL_LOOSE)


@given(st.integers(0, 2**31 - 1), st.integers(1, 40))
def test_discrete_absorbing_elbo_is_riemann_sum_of_continuous_integrand(seed, T):
    """The T-step absorbing ELBO equals (1/T) sum_{t=1}^T g(t/T), g the continuous integrand."""
    law = _tiny_law(seed)
    riemann = sum(_integrand(law, t / T) for t in range(1, T + 1)) / T
    assert _discrete_nelbo(law, T) == pytest.approx(riemann, rel=RTOL_LOOSE)


def test_discrete_absorbing_elbo_tends_to_continuous_as_T_grows():
    """|discrete(T) - continuous| -> 0 like 1/T: halves (within 10%) from T = 64 to 128,
    and is at least the entropy (an upper bound on -log p)."""
    law = _tiny_law(3)
    continuous = _continuous_nelbo(law)
    gaps = {T: _discrete_nelbo(law, T) - continuous for T in (8, 64, 128)}
    assert abs(gaps[128]) < abs(gaps[64]) < abs(gaps[8])
    assert 1.8 < gaps[64] / gaps[128] < 2.2
    assert all(continuous + gap >= _entropy(law) - 1e-12 for gap in gaps.values())


def test_mask_tokens_rate():
    """Each token is masked with probability t: the count lies within 4 standard errors."""
    n, t = 50_000, 0.3
    xt = mask_tokens(
        torch.zeros(1, n, dtype=torch.long), torch.tensor([t]), 9, torch.Generator().manual_seed(0)
    )
    count = int((xt == 9).sum())
    assert abs(count - n * t) <= N_STANDARD_ERRORS * np.sqrt(n * t * (1 - t))


def test_stratified_times_cover_the_unit_interval():
    """One time per stratum ((b, b + 1] / B), all in (0, 1]."""
    t = stratified_times(16, torch.Generator().manual_seed(0))
    assert (t > 0).all() and (t <= 1).all()
    assert sorted(torch.floor((1 - t) * 16).long().tolist()) == list(range(16))


def test_unmasking_with_exact_denoiser_reproduces_the_law():
    """With many steps (one token revealed at a time, almost surely) and the exact
    conditionals, samples follow the law: each sequence within 4 standard errors."""
    law, n = _tiny_law(5), 6000
    x = sample_masked(
        _exact_denoiser(law),
        torch.full((n, L), MASK),
        MASK,
        steps=400,
        generator=torch.Generator().manual_seed(0),
    )
    freq = (
        torch.bincount(_state_index(x), minlength=(V + 1) ** L)[_state_index(SEQUENCES)].double()
        / n
    )
    se = np.sqrt(law * (1 - law) / n)
    assert (np.abs(freq.numpy() - law) <= N_STANDARD_ERRORS * se + 1e-3).all()


def test_infilling_keeps_given_tokens_and_follows_the_conditional():
    """Infilling x = (1, mask, mask) keeps the first token and draws the rest from
    p(x^2, x^3 | x^1 = 1): frequencies within 4 standard errors."""
    law, n = _tiny_law(6), 6000
    start = torch.tensor([[1, MASK, MASK]]).expand(n, L)
    x = sample_masked(
        _exact_denoiser(law), start, MASK, steps=400, generator=torch.Generator().manual_seed(1)
    )
    assert (x[:, 0] == 1).all() and (x != MASK).all()
    rows = SEQUENCES[:, 0] == 1
    conditional = law[rows.numpy()] / law[rows.numpy()].sum()
    freq = (
        torch.bincount(_state_index(x), minlength=(V + 1) ** L)[
            _state_index(SEQUENCES[rows])
        ].double()
        / n
    )
    se = np.sqrt(conditional * (1 - conditional) / n)
    assert (np.abs(freq.numpy() - conditional) <= N_STANDARD_ERRORS * se + 1e-3).all()


def test_absorbing_linear_beta_gives_linear_alpha_bar():
    """prod_{s <= t} (1 - beta_s) = 1 - t / T, ending at 0; bad T is rejected."""
    beta = absorbing_linear_beta(7)
    np.testing.assert_allclose(np.cumprod(1 - beta), 1 - np.arange(8) / 7, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="T must be"):
        absorbing_linear_beta(0)
