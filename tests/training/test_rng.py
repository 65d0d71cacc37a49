"""Tests of RNG capture and restore: replayed draws, and weights_only-safe states."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.training import capture_rng_state, restore_rng_state


def _weights_only_round_trip(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _draw(generators) -> list[np.ndarray]:
    out = [torch.rand(5).numpy()]
    for generator in generators.values():
        if isinstance(generator, torch.Generator):
            out.append(torch.randn(5, generator=generator).numpy())
        else:
            out.append(generator.normal(size=5))
    return out


@settings(max_examples=15)
@given(seed=st.integers(0, 2**31 - 1), burn=st.integers(0, 50))
def test_restore_replays_the_same_draws_after_a_weights_only_round_trip(seed, burn):
    """Capture, draw, restore (from a copy loaded with ``weights_only=True``), draw again:
    the global torch generator, a torch.Generator and NumPy Generators (PCG64, MT19937,
    Philox) give the same numbers both times."""
    generators = {
        "torch": torch.Generator().manual_seed(seed),
        "pcg": np.random.default_rng(seed),
        "mt": np.random.Generator(np.random.MT19937(seed)),
        "philox": np.random.Generator(np.random.Philox(seed)),
    }
    saved_global = torch.get_rng_state()
    try:
        torch.manual_seed(seed)
        for generator in generators.values():  # move every generator away from its seed
            (
                torch.rand(burn, generator=generator)
                if isinstance(generator, torch.Generator)
                else generator.random(burn)
            )
        state = _weights_only_round_trip(capture_rng_state(generators))
        first = _draw(generators)
        _draw(generators)
        restore_rng_state(state, generators)
        second = _draw(generators)
    finally:
        torch.set_rng_state(saved_global)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_restoring_an_unsaved_or_other_kind_generator_is_rejected():
    """Asking for a name that was not captured, or restoring a torch state into a NumPy
    generator, raises ValueError naming the generator."""
    state = capture_rng_state({"g": torch.Generator()})
    with pytest.raises(ValueError, match="'h'"):
        restore_rng_state(state, {"h": torch.Generator()})
    with pytest.raises(ValueError, match="'g'"):
        restore_rng_state(state, {"g": np.random.default_rng(0)})
    with pytest.raises(ValueError, match="capture_rng_state"):
        restore_rng_state({"torch": None}, {})
    with pytest.raises(TypeError, match="generators"):
        capture_rng_state({"g": 3})


@settings(max_examples=20)
@given(seed=st.integers(0, 2**32 - 1), stream=st.integers(0, 3), index=st.integers(0, 10**6))
def test_stream_seeds_are_functions_of_their_arguments_and_differ_between_streams(
    seed, stream, index
):
    """stream_seed is a 63-bit integer determined by (seed, stream, index): the same
    arguments give the same seed, the next index or stream another one."""
    from minidiff.training.rng import stream_seed

    value = stream_seed(seed, stream, index)
    assert 0 <= value < 2**63 and value == stream_seed(seed, stream, index)
    assert value != stream_seed(seed, stream, index + 1)
    assert value != stream_seed(seed, stream + 1, index)


def test_global_rng_from_draws_from_the_generator_and_leaves_the_callers_state():
    """Inside global_rng_from(g), the global generator draws what g would; afterwards g
    has advanced past those draws and the caller's global state is as it was."""
    from minidiff.training.rng import global_rng_from

    g, twin = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    torch.manual_seed(11)
    before = torch.get_rng_state()
    with global_rng_from(g, torch.device("cpu")):
        inside = torch.rand(4)
    assert torch.equal(inside, torch.rand(4, generator=twin))
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=twin))
