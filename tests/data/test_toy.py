"""Proofs for `minidiff.data.toy`: the torch toy sets are the NumPy ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidiff.data.toy import toy_dataset
from minidiff.toy import DATASETS, make_dataset


@given(name=st.sampled_from(DATASETS), n=st.integers(1, 50), seed=st.integers(0, 2**32 - 1))
def test_toy_dataset_equals_make_dataset_with_the_same_seed(name, n, seed):
    """toy_dataset(name, n, seed) in float64 is make_dataset(name, n,
    default_rng(seed)) exactly; the default float32 result is its rounding."""
    want = make_dataset(name, n, np.random.default_rng(seed))
    got = toy_dataset(name, n, seed, dtype=torch.float64)
    assert got.shape == (n, 2) and got.dtype == torch.float64
    np.testing.assert_array_equal(got.numpy(), want)
    assert toy_dataset(name, n, np.random.default_rng(seed)).dtype == torch.float32
    np.testing.assert_array_equal(toy_dataset(name, n, seed).numpy(), want.astype(np.float32))


def test_toy_dataset_from_a_torch_generator_is_deterministic():
    """Two torch generators with the same seed give the same points; different seeds
    give different points."""
    a = toy_dataset("moons", 20, torch.Generator().manual_seed(3))
    b = toy_dataset("moons", 20, torch.Generator().manual_seed(3))
    c = toy_dataset("moons", 20, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("bad", [1.5, "seed", None, True])
def test_toy_dataset_rejects_a_bad_generator_or_seed(bad):
    """A seed that is not an int or a generator raises ValueError naming the argument."""
    with pytest.raises(ValueError, match="generator_or_seed"):
        toy_dataset("moons", 5, bad)
