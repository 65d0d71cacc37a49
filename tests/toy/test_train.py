"""Tests of DDPM training on 2-D data (Ho et al. 2020, Algorithm 1) with the NumPy MLP.

The data is a two-component Gaussian mixture, so the Bayes-optimal loss is known through
the exact mixture denoiser, and the moment-matched Gaussian (one blob where the data has
two) is a meaningful baseline for the samples.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.process import q_sample, toy_schedule
from minidiff.toy.metrics import sliced_wasserstein
from minidiff.toy.mixture import GaussianMixture
from minidiff.toy.mlp import MLP
from minidiff.toy.sampling import sample_ancestral
from minidiff.toy.train import (
    DEFAULT_T,
    TrainResult,
    ddpm_loss_and_grads,
    learning_rate,
    train_ddpm,
)
from tests.tolerances import ATOL, N_STANDARD_ERRORS, RTOL

BLOBS = GaussianMixture.isotropic(np.full(2, 0.5), np.array([[-1.5, 0.0], [1.5, 0.0]]), 0.3)
T = 40
# Small and fast: a few hundred steps of a 2 x 64 network train in about a second.
TINY = dict(steps=800, batch_size=64, hidden=(64, 64), lr=5e-3, warmup=50, progress=False)


@cache
def trained(seed: int = 0) -> tuple[np.ndarray, TrainResult]:
    """The blob data and a tiny model trained on it (shared by the tests that need one)."""
    data = BLOBS.sample(1024, np.random.default_rng(seed))
    return data, train_ddpm(data, toy_schedule(T), np.random.default_rng(seed), **TINY)


def test_ddpm_loss_is_l_simple_and_its_gradient_matches_finite_differences():
    """ddpm_loss_and_grads returns mean((eps - eps_theta(x_t, t))^2) with x_t from eq. 4
    and the gradient of exactly that value: central differences in each entry of the
    first and last weight matrices agree to relative error < 1e-6 (float64)."""
    rng = np.random.default_rng(0)
    schedule = toy_schedule(T)
    model = MLP(2, rng, hidden=(6, 5), embed_dim=4)
    x0, eps = BLOBS.sample(7, rng), rng.standard_normal((7, 2))
    t = rng.integers(1, T + 1, size=7)

    def loss() -> float:
        return float(np.mean((eps - model(q_sample(schedule, x0, t, eps), t)) ** 2))

    value, grads = ddpm_loss_and_grads(model, schedule, x0, t, eps)
    np.testing.assert_allclose(value, loss(), rtol=RTOL, atol=ATOL)
    h = 1e-5
    for name in ("W0", "W2"):
        param, numeric = model.params[name], np.zeros_like(model.params[name])
        for index in np.ndindex(param.shape):
            saved = param[index]
            param[index] = saved + h
            plus = loss()
            param[index] = saved - h
            minus = loss()
            param[index] = saved
            numeric[index] = (plus - minus) / (2 * h)
        error = np.linalg.norm(grads[name] - numeric) / np.linalg.norm(numeric)
        assert error < 1e-6, name


def bayes_loss(n: int = 20_000) -> tuple[float, float]:
    """Monte Carlo estimate (and its standard error) of the smallest possible expected
    L_simple for the blob data: E (eps - E[eps | x_t])^2 with the exact mixture denoiser,
    t uniform on 1..T, averaged over the 2 coordinates."""
    rng = np.random.default_rng(123)
    schedule = toy_schedule(T)
    x0, eps = BLOBS.sample(n, rng), rng.standard_normal((n, 2))
    t = rng.integers(1, T + 1, size=n)
    optimal = BLOBS.denoiser(schedule)(q_sample(schedule, x0, t, eps), t)
    per_example = np.mean((eps - optimal) ** 2, axis=1)
    return float(per_example.mean()), float(per_example.std(ddof=1) / np.sqrt(n))


def test_training_reduces_the_loss_toward_the_bayes_optimum():
    """The mean loss of the last 10% of steps is (a) below that of the first 10% by more
    than 4 standard errors of the difference, (b) closer to the Bayes-optimal loss L*
    (exact mixture denoiser) than to 1, the loss of predicting eps = 0, and (c) not below
    L* by more than 4 standard errors: no network beats the optimal denoiser in expectation,
    so a mis-scaled loss or target would show here. Standard errors treat the per-step
    minibatch losses as independent."""
    _, result = trained()
    losses = result.losses
    k = len(losses) // 10
    first, last = losses[:k], losses[-k:]
    se_first, se_last = first.std(ddof=1) / np.sqrt(k), last.std(ddof=1) / np.sqrt(k)
    assert last.mean() + N_STANDARD_ERRORS * np.hypot(se_first, se_last) < first.mean()
    optimum, se_optimum = bayes_loss()
    assert last.mean() < (1.0 + optimum) / 2
    assert last.mean() > optimum - N_STANDARD_ERRORS * np.hypot(se_last, se_optimum)


def test_trained_model_samples_close_to_the_data():
    """1,000 ancestral samples (Ho et al. 2020, Algorithm 2) from the tiny EMA model are
    closer to 1,000 held-out data points in sliced Wasserstein distance than half the
    distance of the moment-matched Gaussian (same mean and covariance as the data), which
    cannot represent the two blobs; the sampler needs the trained denoiser to do this."""
    data, result = trained()
    rng = np.random.default_rng(7)
    samples = sample_ancestral(
        result.denoiser, result.schedule, rng.standard_normal((1000, 2)), rng
    )
    held_out = BLOBS.sample(1000, rng)
    baseline = rng.multivariate_normal(data.mean(axis=0), np.cov(data.T), size=1000)
    model_distance = sliced_wasserstein(samples, held_out, np.random.default_rng(1))
    baseline_distance = sliced_wasserstein(baseline, held_out, np.random.default_rng(1))
    assert model_distance < 0.5 * baseline_distance


def test_training_is_deterministic_given_the_seed():
    """Two runs from generators with the same seed give identical losses and weights; a
    different seed gives different losses."""
    data = BLOBS.sample(256, np.random.default_rng(0))
    settings = dict(steps=30, batch_size=16, hidden=(8,), progress=False)
    a = train_ddpm(data, toy_schedule(T), np.random.default_rng(5), **settings)
    b = train_ddpm(data, toy_schedule(T), np.random.default_rng(5), **settings)
    c = train_ddpm(data, toy_schedule(T), np.random.default_rng(6), **settings)
    np.testing.assert_array_equal(a.losses, b.losses)
    for name in a.model.params:
        np.testing.assert_array_equal(a.model.params[name], b.model.params[name])
        np.testing.assert_array_equal(a.ema_model.params[name], b.ema_model.params[name])
    assert not np.array_equal(a.losses, c.losses)


def test_train_result_records_the_run_and_calls_back_every_step():
    """The result holds `steps` read-only losses, the step count, a positive wall time and
    the schedule; the callback sees steps 0..steps-1 with the recorded losses; with
    ema_decay = 0 the EMA model equals the final model."""
    data = BLOBS.sample(64, np.random.default_rng(0))
    seen = []
    result = train_ddpm(
        data,
        toy_schedule(T),
        np.random.default_rng(0),
        steps=12,
        batch_size=8,
        hidden=(4,),
        ema_decay=0.0,
        progress=False,
        callback=lambda step, loss, model: seen.append((step, loss)),
    )
    assert result.steps == 12 and result.losses.shape == (12,)
    assert not result.losses.flags.writeable
    assert result.train_seconds > 0 and result.schedule.T == T
    assert [s for s, _ in seen] == list(range(12))
    np.testing.assert_array_equal([loss for _, loss in seen], result.losses)
    for name in result.model.params:
        np.testing.assert_array_equal(result.ema_model.params[name], result.model.params[name])


@given(
    steps=st.integers(2, 500),
    warmup=st.integers(0, 100),
    lr=st.floats(1e-5, 1.0),
    min_fraction=st.floats(0.0, 1.0),
)
def test_learning_rate_warms_up_linearly_then_decays_monotonically(steps, warmup, lr, min_fraction):
    """The learning rate grows linearly to lr over the warmup, starts the cosine decay at
    lr, never increases after it, stays within [min_fraction lr, lr], and ends at
    min_fraction * lr when the decay has at least one step."""
    rates = np.array([learning_rate(s, steps, lr, warmup, min_fraction) for s in range(steps)])
    w = min(warmup, steps)
    np.testing.assert_allclose(
        rates[:w], lr * np.arange(1, w + 1) / max(warmup, 1), rtol=RTOL, atol=ATOL
    )
    after = rates[w:]
    assert np.all(np.diff(after) <= 1e-15 * lr)
    assert np.all(rates <= lr * (1 + 1e-12)) and np.all(after >= min_fraction * lr * (1 - 1e-12))
    if steps - warmup >= 2:
        np.testing.assert_allclose(after[0], lr, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(after[-1], min_fraction * lr, rtol=RTOL, atol=ATOL)


def test_bad_arguments_raise_errors_naming_them():
    """Bad data, schedules, generators and settings raise errors naming the argument."""
    schedule, rng = toy_schedule(T), np.random.default_rng(0)
    data = BLOBS.sample(16, rng)
    with pytest.raises(ValueError, match="data"):
        train_ddpm(np.zeros(5), schedule, rng)
    with pytest.raises(ValueError, match="finite"):
        train_ddpm(np.full((4, 2), np.nan), schedule, rng)
    with pytest.raises(TypeError, match="schedule"):
        train_ddpm(data, "linear", rng)
    with pytest.raises(TypeError, match="rng"):
        train_ddpm(data, schedule, 0)
    for kwargs, match in [
        ({"steps": 0}, "steps"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"lr": -1.0}, "lr"),
        ({"warmup": -1}, "warmup"),
        ({"ema_decay": 1.0}, "ema_decay"),
    ]:
        with pytest.raises(ValueError, match=match):
            train_ddpm(data, schedule, rng, progress=False, **kwargs)


def test_toy_schedule_default_is_the_toy_default_T():
    """toy_schedule() has the toy laboratory's T (`minidiff.toy.DEFAULT_T`), so that the
    NumPy toy and the schedule agree when neither is told a T."""
    assert toy_schedule().T == DEFAULT_T
