"""Add-k character n-gram models: the baselines a text model must beat.

An order-n model predicts a character from the n - 1 before it with add-k smoothing
(Lidstone; Jurafsky & Martin, "Speech and Language Processing", 3rd ed., ch. 3.5):

    p(c | h) = (count(h, c) + k) / (count(h) + k V),

fitted on the training tokens and scored in bits per character on held-out tokens; the
first n - 1 held-out characters are predicted from the end of the training text.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ngram_bits_per_char", "best_add_k"]


def _context_codes(ids: np.ndarray, order: int, V: int) -> np.ndarray:
    """(N - order + 1,) integer code of each (order - 1)-character context, base V."""
    codes = np.zeros(ids.shape[0] - order + 1, dtype=np.int64)
    for j in range(order - 1):
        codes = codes * V + ids[j : ids.shape[0] - order + 1 + j]
    return codes


def ngram_bits_per_char(
    train: np.ndarray, held_out: np.ndarray, order: int, V: int, k: float = 1.0
) -> float:
    """Bits per character of ``held_out`` under the add-k order-``order`` model of ``train``.

    Args:
        train, held_out: 1-D integer token arrays in 0..V-1.
        order: n >= 1 (1: unigram, 2: bigram, 3: trigram); V ** (n - 1) must fit memory.
        V: the vocabulary size. k: the pseudo-count, > 0.
    """
    if order < 1 or V ** (order - 1) > 50_000_000:
        raise ValueError(f"order must be >= 1 with V ** (order - 1) <= 5e7, got {order} (V = {V})")
    if not k > 0:
        raise ValueError(f"k must be > 0, got {k!r}")
    train, held_out = np.asarray(train, np.int64), np.asarray(held_out, np.int64)
    contexts = V ** (order - 1)
    table = np.zeros((contexts, V))
    train_context = _context_codes(train, order, V) if order > 1 else np.zeros(len(train), np.int64)
    np.add.at(table, (train_context, train[order - 1 :]), 1.0)
    scored = (
        np.concatenate([train[len(train) - (order - 1) :], held_out]) if order > 1 else held_out
    )
    context = _context_codes(scored, order, V) if order > 1 else np.zeros(len(held_out), np.int64)
    target = scored[order - 1 :]
    probs = (table[context, target] + k) / (table[context].sum(-1) + k * V)
    return float(-np.log(probs).mean() / math.log(2.0))


def best_add_k(
    train: np.ndarray, validation: np.ndarray, order: int, V: int, grid=(0.01, 0.03, 0.1, 0.3, 1.0)
) -> float:
    """The k of ``grid`` with the lowest validation bits per character."""
    return min(grid, key=lambda k: ngram_bits_per_char(train, validation, order, V, k))
