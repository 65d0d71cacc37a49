"""Digit captions: the measured attributes, the templates and the word tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from minidiff.applications.captions import (
    HELD_OUT_TEMPLATES,
    NUMBER_WORDS,
    TRAIN_TEMPLATES,
    AttributeThresholds,
    WordTokenizer,
    caption,
    caption_pairs,
    captions_for,
    ink,
    slant,
)
from tests.strategies import arrays


def _line(direction: int) -> torch.Tensor:
    """An 8x8 image (1, 1, 8, 8) with one line: +1 runs from the bottom left to the top
    right (leans right), -1 is its mirror image, 0 a vertical line."""
    image = -torch.ones(1, 1, 8, 8, dtype=torch.float64)
    for row in range(8):
        image[0, 0, row, 2 + (7 - row) // 2 if direction else 3] = 1.0
    return image.flip(-1) if direction < 0 else image


def test_ink_is_zero_for_a_blank_image_and_one_for_a_full_one():
    images = torch.stack([-torch.ones(1, 8, 8), torch.ones(1, 8, 8)])
    np.testing.assert_allclose(ink(images), [0.0, 1.0])


def test_slant_sign_follows_the_lean():
    """A line leaning right has slant > 0, its mirror image < 0, a vertical line 0."""
    assert slant(_line(+1))[0] > 0 > slant(_line(-1))[0]
    assert slant(_line(0))[0] == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=30)
@given(arrays(shape=(3, 1, 8, 8), scale=1.0))
def test_mirroring_negates_the_slant_and_keeps_the_ink(x):
    """Flipping the columns maps c -> W - 1 - c: cov(r, c) changes sign, var(r) does not."""
    mirrored = x[..., ::-1].copy()
    np.testing.assert_allclose(slant(mirrored), -slant(x), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ink(mirrored), ink(x), rtol=1e-12)


def test_attribute_words_split_each_class_in_thirds():
    """Fitted on the digits train split, each class has at most a third "thin" and at most
    a third "thick" (strictly beyond the terciles of the same data), and, ties of the
    discrete ink values aside, at least a quarter."""
    from minidiff.data import load_digits

    images, labels = load_digits("train", labels=True)
    words = AttributeThresholds.fit(images, labels).words(images, labels)
    for k in range(10):
        rows = [w for w, y in zip(words, labels.tolist(), strict=True) if y == k]
        for value in ("thin", "thick"):
            assert len(rows) / 4 <= sum(w[0] == value for w in rows) <= len(rows) / 3 + 1


def test_caption_fills_slots_and_refuses_missing_attributes():
    assert caption("a {w} {n} {s}", 7, "thick", "right") == "a thick seven leaning right"
    assert caption("the digit {d}, written {a}", 3, "thin") == "the digit 3, written thinly"
    assert caption("a {w} {n}", 7) is None
    assert caption("a handwritten {n}", 0, "thick", "left") == "a handwritten zero"


def _all_captions(templates):
    return [
        text
        for template in templates
        for k in range(10)
        for thickness in ("thin", "thick")
        for lean in ("left", "right")
        if (text := caption(template, k, thickness, lean)) is not None
    ]


def test_held_out_templates_are_new_phrasings_in_known_words():
    """Every held-out caption is new (not a training caption) and has no unknown word."""
    tokenizer = WordTokenizer.for_digits()
    held_out = _all_captions(HELD_OUT_TEMPLATES)
    assert not set(held_out) & set(_all_captions(TRAIN_TEMPLATES))
    assert (tokenizer.encode(held_out, 12) != WordTokenizer.UNKNOWN).all()


def test_tokenizer_round_trip_and_the_empty_caption():
    tokenizer = WordTokenizer.for_digits()
    texts = _all_captions(TRAIN_TEMPLATES)
    decoded = tokenizer.decode(tokenizer.encode(texts, 12))
    assert decoded == [" ".join(t.replace(",", "").split()) for t in texts]
    empty = tokenizer.encode([""], 4)
    assert empty.tolist() == [[WordTokenizer.START, 0, 0, 0]]
    assert tokenizer.encode(["a bright seven"], 4)[0, 2] == WordTokenizer.UNKNOWN
    with pytest.raises(ValueError, match="length"):
        tokenizer.encode(["a"], 0)


def test_a_tokenizer_rebuilt_from_its_words_gives_the_same_ids():
    """`from_vocabulary(words)` (what a checkpoint stores) encodes every training caption
    to the ids of the tokenizer the words came from; unknown words are listed."""
    tokenizer = WordTokenizer.for_digits()
    rebuilt = WordTokenizer.from_vocabulary(tokenizer.words)
    texts = _all_captions(TRAIN_TEMPLATES)
    assert rebuilt.vocabulary == tokenizer.vocabulary
    assert torch.equal(rebuilt.encode(texts, 12), tokenizer.encode(texts, 12))
    assert rebuilt.unknown_words("a Purple seven, glowing") == ["purple", "glowing"]
    assert rebuilt.length_of("a thick seven") == 4 and rebuilt.length_of("") == 1


def test_caption_pairs_repeat_each_image_once_per_fitting_training_template():
    """Each image appears once per training template its attributes fit (at least the
    three that need none), in order, and each caption names its image's digit."""
    images = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (30, 1, 8, 8)))
    labels = torch.arange(30) % 10
    tokenizer = WordTokenizer.for_digits()
    x0, tokens = caption_pairs(images, labels, tokenizer, 12)
    words = AttributeThresholds.fit(images, labels).words(images, labels)
    counts = [len(captions_for(int(k), *w)) for k, w in zip(labels, words, strict=True)]
    assert min(counts) >= 3 and len(x0) == len(tokens) == sum(counts)
    owner = torch.arange(30).repeat_interleave(torch.tensor(counts))  # (M,) image of each pair
    assert torch.equal(x0, images[owner])
    for text, k in zip(tokenizer.decode(tokens), labels[owner].tolist(), strict=True):
        assert NUMBER_WORDS[k] in text.split() or str(k) in text.split()
