"""Tests of `minidiff.discrete.d3pm`: the posterior by Bayes, the exact bound, sampling."""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidiff.discrete import D3PM, posterior_matrix
from minidiff.discrete.masked import absorbing_linear_beta
from minidiff.markov.corruption import CORRUPTIONS, step_matrix
from tests.strategies import paper_betas, probability_vectors
from tests.tolerances import ATOL, N_STANDARD_ERRORS, RTOL, RTOL_LOOSE


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _path_posterior(kind, beta, t, K) -> np.ndarray:
    """q(x_{t-1} = j | x_t = k, x_0 = i) by summing over every path x_0 .. x_t of one-step
    kernels only (no closed form, no Bayes formula): [i, k, j], NaN where undefined."""
    steps = [step_matrix(kind, float(beta[s]), K) for s in range(1, t + 1)]
    joint = np.zeros((K, K, K))  # [i, k, j]: q(x_{t-1} = j, x_t = k | x_0 = i)
    for path in itertools.product(range(K), repeat=t + 1):
        p = np.prod([steps[s][path[s], path[s + 1]] for s in range(t)])
        joint[path[0], path[t], path[t - 1]] += p
    with np.errstate(invalid="ignore"):
        return joint / joint.sum(axis=2, keepdims=True)


@st.composite
def small_chains(draw, max_K=6, max_T=12):
    kind = draw(st.sampled_from(CORRUPTIONS))
    K = draw(st.integers(2, max_K))
    beta = draw(paper_betas(1, max_T))
    t = draw(st.integers(1, beta.shape[0] - 1))
    return kind, beta, t, K


@given(small_chains())
def test_posterior_rows_sum_to_one(chain):
    """sum_j q(x_{t-1} = j | x_t = k, x_0 = i) = 1 wherever q(x_t = k | x_0 = i) > 0."""
    posterior = posterior_matrix(*chain)
    defined = ~np.isnan(posterior).any(axis=2)
    np.testing.assert_allclose(posterior.sum(axis=2)[defined], 1.0, rtol=RTOL, atol=ATOL)
    assert (posterior[defined] >= 0).all()


@given(small_chains(max_K=4, max_T=5))
def test_posterior_matches_path_enumeration(chain):
    """Bayes with the closed-form kernels equals brute-force enumeration of every path."""
    posterior = posterior_matrix(*chain)
    brute = _path_posterior(*chain)
    # Undefined (q(x_t | x_0) = 0) in one exactly where undefined in the other.
    np.testing.assert_array_equal(np.isnan(posterior), np.isnan(brute))
    defined = ~np.isnan(brute)
    np.testing.assert_allclose(posterior[defined], brute[defined], rtol=RTOL_LOOSE, atol=ATOL)


@given(small_chains())
def test_reverse_probs_of_one_hot_prediction_is_posterior(chain):
    """The torch reverse step with p~ = one-hot(x_0) is q(x_{t-1} | x_t, x_0) of layer 0's
    kernels."""
    kind, beta, t, K = chain
    d3pm = D3PM(kind, beta, K)
    posterior = posterior_matrix(kind, beta, t, K)
    i, k = np.nonzero(~np.isnan(posterior).any(axis=2))
    x0, xt = torch.as_tensor(i)[None], torch.as_tensor(k)[None]  # (1, n) every defined pair
    logits = torch.nn.functional.one_hot(x0, K).double().log()
    probs = d3pm.reverse_probs(logits, xt, torch.tensor([t]))
    np.testing.assert_allclose(probs[0].numpy(), posterior[i, k], rtol=RTOL_LOOSE, atol=ATOL)


def _exact_nelbo_single_token(d3pm: D3PM, p0: np.ndarray) -> float:
    """E_{x_0 ~ p0}[-ELBO] for one token, summing every t and x_t exactly, with the exact
    denoiser p~(x_0 | x_t) = q(x_0 | x_t) (Bayes from q(x_t | x_0) and p0)."""
    K, support = d3pm.K, np.flatnonzero(p0 > 0)
    total = float(
        (p0[support] * d3pm.prior_kl(torch.as_tensor(support)[:, None])[:, 0].numpy()).sum()
    )
    for t in range(1, d3pm.T + 1):
        x0, xt = (torch.as_tensor(a) for a in np.meshgrid(support, np.arange(K), indexing="ij"))
        x0, xt = x0.reshape(-1, 1), xt.reshape(-1, 1)
        weight = p0[x0[:, 0]] * d3pm.Q_bar[t][x0[:, 0], xt[:, 0]]  # q(x_0) q(x_t | x_0)
        keep = weight > 0
        with np.errstate(divide="ignore"):
            logits = torch.as_tensor(np.log(p0[None, :] * d3pm.Q_bar[t][:, xt[keep, 0]].T))
        terms = d3pm.vlb_terms(
            logits[:, None, :], x0[keep], xt[keep], torch.full((int(keep.sum()),), t)
        )
        total += float((torch.as_tensor(weight[keep]) * terms[:, 0]).sum())
    return total


@given(
    kind=st.sampled_from(CORRUPTIONS),
    K=st.integers(2, 6),
    beta=paper_betas(1, 12, endpoints=False),
    data=st.data(),
)
def test_elbo_of_exact_denoiser_equals_entropy(kind, K, beta, data):
    """With p~(x_0 | x_t) = q(x_0 | x_t) and beta_T = 1, -ELBO = H(x_0): the reverse chain is
    the true one, so the bound is tight (one token, every t and x_t summed exactly)."""
    beta = beta.copy()
    beta[-1] = 1.0  # q(x_T | x_0) is the prior
    d3pm = D3PM(kind, beta, K)
    p0 = data.draw(probability_vectors(d3pm.data_states))
    p0 = np.concatenate([p0, [0.0] * (K - d3pm.data_states)])
    assert _exact_nelbo_single_token(d3pm, p0) == pytest.approx(
        _entropy(p0), rel=RTOL_LOOSE, abs=1e-9
    )


@given(K=st.integers(3, 8), T=st.integers(1, 50), seed=st.integers(0, 2**31 - 1))
def test_absorbing_vlb_is_weighted_masked_cross_entropy(K, T, seed):
    """Absorbing chain: L_{t-1} = (alpha_bar_{t-1} - alpha_bar_t) / (1 - alpha_bar_t)
    * (-log p~(x_0 | x_t))
    on masked tokens and 0 on kept ones (the general KL reduces to D3PM's app. A form)."""
    g = torch.Generator().manual_seed(seed)
    d3pm = D3PM("absorbing", absorbing_linear_beta(T), K)
    x0 = torch.randint(0, K - 1, (4, 7), generator=g)
    t = torch.randint(1, T + 1, (4,), generator=g)
    xt = d3pm.q_sample(x0, t, g)
    logits = d3pm.model_logits(torch.randn(4, 7, K - 1, generator=g, dtype=torch.float64))
    ce = -torch.log_softmax(logits, -1).gather(-1, x0[..., None])[..., 0]
    alpha_bar = 1.0 - np.arange(T + 1) / T
    weight = torch.as_tensor((alpha_bar[t - 1] - alpha_bar[t]) / (1 - alpha_bar[t]))[:, None]
    expected = torch.where(xt == K - 1, weight * ce, 0.0)
    torch.testing.assert_close(d3pm.vlb_terms(logits, x0, xt, t), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_q_sample_frequencies_match_cumulative_kernel(kind):
    """Empirical frequencies of x_t ~ q(x_t | x_0) lie within 4 standard errors of Q_bar_t[x_0]."""
    K, T, t, n = 5, 10, 4, 20_000
    d3pm = D3PM(kind, absorbing_linear_beta(T), K)
    x0 = torch.full((1, n), 1)
    xt = d3pm.q_sample(x0, torch.tensor([t]), torch.Generator().manual_seed(0))
    freq = torch.bincount(xt[0], minlength=K).double().numpy() / n
    p = d3pm.Q_bar[t][1]
    assert (np.abs(freq - p) <= N_STANDARD_ERRORS * np.sqrt(p * (1 - p) / n) + 1e-12).all()


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_sampling_with_exact_denoiser_reproduces_the_law(kind):
    """Ancestral sampling with the exact denoiser draws x_0 from the data law (one token):
    each state's frequency within 4 standard errors."""
    K, T, n = 4, 6, 20_000
    beta = absorbing_linear_beta(T)
    d3pm = D3PM(kind, beta, K)
    p0 = np.array([0.5, 0.3, 0.2, 0.0]) if kind == "absorbing" else np.array([0.4, 0.3, 0.2, 0.1])

    def denoiser(xt, t):
        step = torch.round(t * T).long()
        with np.errstate(divide="ignore"):
            table = torch.as_tensor(
                np.log(p0[None, None, :] * d3pm.Q_bar[:, :, :].transpose(0, 2, 1))
            )
        return table[step][torch.arange(xt.shape[0])[:, None], xt][..., : d3pm.data_states]

    x = d3pm.sample(denoiser, (n, 1), generator=torch.Generator().manual_seed(1))
    freq = torch.bincount(x[:, 0], minlength=K).double().numpy() / n
    assert (np.abs(freq - p0) <= N_STANDARD_ERRORS * np.sqrt(p0 * (1 - p0) / n) + 1e-12).all()


def test_hybrid_loss_is_vlb_plus_weighted_cross_entropy():
    """loss="hybrid" = loss="vlb" + lambda * loss="ce" at the same t and x_t (D3PM, sec. 3.4)."""
    K = 6
    d3pm = D3PM("uniform", absorbing_linear_beta(20), K)
    net = torch.nn.Sequential(torch.nn.Embedding(K, K))
    denoiser = lambda xt, t: net(xt).double()  # noqa: E731
    x0 = torch.randint(0, K, (3, 5), generator=torch.Generator().manual_seed(0))
    loss = {
        name: d3pm.losses(
            denoiser, x0, loss=name, ce_weight=0.3, generator=torch.Generator().manual_seed(7)
        )
        for name in ("vlb", "ce", "hybrid")
    }
    torch.testing.assert_close(
        loss["hybrid"], loss["vlb"] + 0.3 * loss["ce"], rtol=1e-12, atol=1e-12
    )
    assert math.isfinite(loss["vlb"].sum().item())


def test_bad_arguments_raise():
    """Unknown corruption or loss, logits of the wrong width and t out of range are rejected."""
    with pytest.raises(ValueError, match="corruption"):
        D3PM("gaussian", absorbing_linear_beta(3), 4)
    d3pm = D3PM("absorbing", absorbing_linear_beta(3), 4)
    with pytest.raises(ValueError, match="logits per token"):
        d3pm.model_logits(torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="t must be"):
        d3pm.reverse_probs(
            torch.zeros(1, 2, 4), torch.zeros(1, 2, dtype=torch.long), torch.tensor([0])
        )
    with pytest.raises(ValueError, match="loss"):
        d3pm.losses(lambda xt, t: None, torch.zeros(1, 2, dtype=torch.long), loss="l2")
