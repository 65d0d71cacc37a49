"""Tests of the EMA of weights: the closed form of the average, warmup, swap and state."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from minidiff.training import EMA
from tests.tolerances import ATOL, RTOL


def _linear(seed: int, dtype=torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(3, 2).to(dtype)


def _set_weights(model: nn.Module, values: dict[str, np.ndarray]) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(values[name]))


def _weights(model_or_shadow) -> dict[str, np.ndarray]:
    items = (
        model_or_shadow.items()
        if isinstance(model_or_shadow, dict)
        else model_or_shadow.named_parameters()
    )
    return {name: t.detach().numpy().copy() for name, t in items}


decays = st.one_of(st.sampled_from([0.0, 0.5, 0.9, 0.9999, 1.0]), st.floats(0.0, 1.0))


@settings(max_examples=30)
@given(decay=decays, k=st.integers(1, 20), warmup=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_ema_of_a_constant_is_the_constant(decay, k, warmup, seed):
    """If the weights never change, the shadow stays equal to them exactly:
    d * w + (1 - d) * w = w for every decay d."""
    model = _linear(seed)
    ema = EMA(model, decay, warmup=warmup)
    before = _weights(model)
    for _ in range(k):
        ema.update(model)
    for name, value in _weights(ema.shadow).items():
        np.testing.assert_array_equal(value, before[name])


@settings(max_examples=40)
@given(decay=decays, k=st.integers(1, 25), seed=st.integers(0, 2**31 - 1))
def test_ema_equals_its_closed_form(decay, k, seed):
    """After k updates with decay d on weights w_1..w_k, starting from w_0,
    shadow_k = d^k w_0 + (1 - d) sum_{i=1..k} d^(k-i) w_i."""
    rng = np.random.default_rng(seed)
    model = _linear(seed)
    w0 = _weights(model)
    ema = EMA(model, decay)
    sequence = [{n: rng.normal(size=v.shape) for n, v in w0.items()} for _ in range(k)]
    for w in sequence:
        _set_weights(model, w)
        ema.update(model)
    for name, value in _weights(ema.shadow).items():
        expected = decay**k * w0[name] + (1 - decay) * sum(
            decay ** (k - i) * w[name] for i, w in enumerate(sequence, start=1)
        )
        np.testing.assert_allclose(value, expected, rtol=RTOL, atol=ATOL)


@settings(max_examples=30)
@given(decay=decays, k=st.integers(1, 25), seed=st.integers(0, 2**31 - 1))
def test_warmup_uses_min_of_decay_and_one_plus_n_over_ten_plus_n(decay, k, seed):
    """With warmup, update n (from 0) uses d_n = min(decay, (1 + n) / (10 + n)), so
    shadow_k = prod_n d_n w_0 + sum_i (1 - d_i) prod_{j > i} d_j w_{i+1}."""
    rng = np.random.default_rng(seed)
    model = _linear(seed)
    shadow = _weights(model)
    ema = EMA(model, decay, warmup=True)
    for n in range(k):
        d = min(decay, (1 + n) / (10 + n))
        assert ema.current_decay() == d
        w = {name: rng.normal(size=v.shape) for name, v in shadow.items()}
        _set_weights(model, w)
        ema.update(model)
        shadow = {name: d * shadow[name] + (1 - d) * w[name] for name in shadow}
    assert ema.num_updates == k
    for name, value in _weights(ema.shadow).items():
        np.testing.assert_allclose(value, shadow[name], rtol=RTOL, atol=ATOL)


def test_swap_evaluates_with_the_average_and_restores_exactly():
    """Inside ``swap`` the model holds the shadow; afterwards (even after an exception)
    it holds its own weights again, bit for bit."""
    model = _linear(0)
    ema = EMA(model, 0.5)
    own = _weights(model)
    _set_weights(model, {n: v + 1.0 for n, v in own.items()})
    ema.update(model)
    trained = _weights(model)
    with ema.swap(model):
        for name, value in _weights(model).items():
            np.testing.assert_array_equal(value, ema.shadow[name].numpy())
    for name, value in _weights(model).items():
        np.testing.assert_array_equal(value, trained[name])
    with pytest.raises(KeyError), ema.average_parameters(model):
        raise KeyError("evaluation failed")
    for name, value in _weights(model).items():
        np.testing.assert_array_equal(value, trained[name])


def test_state_dict_round_trip_restores_shadow_and_counters():
    """Loading a ``state_dict`` into a fresh EMA reproduces the shadow exactly and the
    counters, so further updates continue identically."""
    model = _linear(1)
    ema = EMA(model, 0.9, warmup=True)
    for step in range(3):
        _set_weights(model, {n: v + step for n, v in _weights(model).items()})
        ema.update(model)
    other = EMA(_linear(2), 0.1)
    other.load_state_dict(ema.state_dict())
    assert (other.decay, other.warmup, other.num_updates) == (0.9, True, 3)
    ema.update(model)
    other.update(model)
    for name in ema.shadow:
        torch.testing.assert_close(other.shadow[name], ema.shadow[name], rtol=0, atol=0)


def test_integer_buffers_are_copied_and_float_buffers_averaged():
    """BatchNorm's running mean (float) is averaged; ``num_batches_tracked`` (int) is
    copied as is."""
    model = nn.BatchNorm1d(2).double()
    ema = EMA(model, 0.5)
    model.train()
    model(torch.ones(4, 2, dtype=torch.float64))  # running_mean 0 -> 0.1, batches 0 -> 1
    ema.update(model)
    assert int(ema.shadow["num_batches_tracked"]) == 1
    torch.testing.assert_close(ema.shadow["running_mean"], 0.5 * model.running_mean)


def test_shadow_dtype_can_differ_from_the_model():
    """``dtype=torch.float32`` keeps a float32 shadow of a float64 model; copy_to casts back."""
    model = _linear(3)
    ema = EMA(model, 0.0, dtype=torch.float32)
    assert all(t.dtype == torch.float32 for t in ema.shadow.values())
    ema.copy_to(model)
    assert model.weight.dtype == torch.float64


@pytest.mark.parametrize("decay", [-0.1, 1.5, float("nan")])
def test_decay_outside_unit_interval_is_rejected(decay):
    """A decay outside [0, 1] raises ValueError naming it."""
    with pytest.raises(ValueError, match="decay"):
        EMA(_linear(0), decay)


def test_mismatched_model_or_state_is_rejected():
    """Updating from, or loading the state of, a different architecture raises ValueError
    naming the missing and unexpected keys or the differing shapes."""
    ema = EMA(_linear(0), 0.9)
    with pytest.raises(ValueError, match="missing"):
        ema.update(nn.Sequential(nn.Linear(3, 2)))
    state = EMA(nn.Linear(3, 4).double(), 0.9).state_dict()
    with pytest.raises(ValueError, match="shape"):
        ema.load_state_dict(state)
