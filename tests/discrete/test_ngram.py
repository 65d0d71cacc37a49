"""Tests of `minidiff.discrete.ngram`: add-k n-gram baselines against a direct count."""

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.discrete import best_add_k, ngram_bits_per_char
from tests.tolerances import RTOL


def _direct(train, held_out, order, V, k):
    """Bits per character by counting n-grams in Python dictionaries."""
    grams = Counter(tuple(train[i - order + 1 : i + 1]) for i in range(order - 1, len(train)))
    contexts = Counter(tuple(train[i - order + 1 : i]) for i in range(order - 1, len(train)))
    scored = (
        list(train[len(train) - (order - 1) :]) + list(held_out) if order > 1 else list(held_out)
    )
    total = 0.0
    for i in range(order - 1, len(scored)):
        gram = tuple(scored[i - order + 1 : i + 1])
        total += -math.log2((grams[gram] + k) / (contexts[gram[:-1]] + k * V))
    return total / len(held_out)


@given(
    order=st.integers(1, 3),
    V=st.integers(2, 5),
    k=st.sampled_from([0.1, 1.0, 3.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_matches_direct_counting(order, V, k, seed):
    """The vectorised model equals a dictionary count of every n-gram and context."""
    rng = np.random.default_rng(seed)
    train, held_out = rng.integers(0, V, 60), rng.integers(0, V, 25)
    expected = _direct(list(train), list(held_out), order, V, k)
    assert ngram_bits_per_char(train, held_out, order, V, k) == pytest.approx(expected, rel=RTOL)


def test_huge_k_tends_to_uniform_and_context_helps():
    """k -> infinity gives log2 V bits; on a periodic text the bigram beats the unigram."""
    text = np.tile(np.arange(4), 50)
    assert ngram_bits_per_char(text, text[:40], 2, 4, k=1e9) == pytest.approx(2.0, rel=1e-6)
    assert (
        ngram_bits_per_char(text, text[:40], 2, 4, k=0.01)
        < 0.1
        < ngram_bits_per_char(text, text[:40], 1, 4)
    )
    assert best_add_k(text, text[:40], 2, 4) == 0.01


def test_bad_arguments_raise():
    """order 0 and k <= 0 are rejected."""
    with pytest.raises(ValueError, match="order"):
        ngram_bits_per_char(np.zeros(5, int), np.zeros(5, int), 0, 2)
    with pytest.raises(ValueError, match="k must"):
        ngram_bits_per_char(np.zeros(5, int), np.zeros(5, int), 1, 2, k=0.0)
