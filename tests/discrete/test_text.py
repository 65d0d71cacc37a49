"""Tests of `minidiff.discrete.text`: the character pipeline on the bundled tiny text."""

import pytest
import torch

from minidiff.data.text import MASK_ID, TINY_TEXT, VOCAB, encode
from minidiff.discrete import (
    TextDiffusionConfig,
    parse_prompt,
    sample_text,
    text_bits_per_char,
    train_text,
)

SMALL = dict(width=16, depth=2, heads=2, length=32, batch=8, steps=30, lr=3e-3, warmup=5)


@pytest.mark.parametrize(
    "process,network", [("absorbing", "conv"), ("absorbing", "transformer"), ("uniform", "conv")]
)
def test_training_lowers_the_loss_and_samples_are_text(process, network):
    """A few steps on the tiny text: the loss is finite (and falls, for the absorbing
    process, whose NELBO estimate has low variance; the uniform chain's T-weighted one-step
    KL is too noisy for 30 steps), samples have the asked length over the vocabulary, and
    the bound is finite and above 0."""
    config = TextDiffusionConfig(process=process, network=network, T=20, **SMALL)
    model, history = train_text(config, encode(TINY_TEXT), log_every=10)
    assert len(history) == 3 and all(0 < r["loss"] < float("inf") for r in history)
    if process == "absorbing":
        assert history[-1]["loss"] < history[0]["loss"]
    texts = sample_text(model, 2, 40, steps=20, generator=torch.Generator().manual_seed(0))
    assert [len(t) for t in texts] == [40, 40] and set("".join(texts)) <= set(VOCAB)
    bpc, se = text_bits_per_char(model, encode(TINY_TEXT), repeats=1)
    assert 0 < bpc < 50 and se >= 0


def test_infilling_keeps_the_prompt():
    """Characters of the prompt stay; its "_" are filled; no mask is left."""
    model, _ = train_text(TextDiffusionConfig(**{**SMALL, "steps": 2}), encode(TINY_TEXT))
    prompt = "The ____ ran by the ____"
    (text,) = sample_text(
        model, 1, 30, prompt=prompt, steps=10, generator=torch.Generator().manual_seed(0)
    )
    assert (
        all(p == c for p, c in zip(prompt, text[: len(prompt)], strict=True) if p != "_")
        and "_" not in text
        and len(text) == 30
    )


def test_parse_prompt_and_errors():
    """ "_" becomes the mask and the prompt is padded with masks; bad settings are rejected."""
    ids = parse_prompt("a_", 4)
    assert ids.tolist() == [int(encode("a")[0]), MASK_ID, MASK_ID, MASK_ID]
    with pytest.raises(ValueError, match="shorter"):
        parse_prompt("abc", 2)
    with pytest.raises(ValueError, match="process"):
        TextDiffusionConfig(process="gaussian")
    with pytest.raises(ValueError, match="network"):
        TextDiffusionConfig(network="rnn")
    with pytest.raises(ValueError, match="length"):
        TextDiffusionConfig(length=0)
    model, _ = train_text(
        TextDiffusionConfig(process="uniform", T=5, **{**SMALL, "steps": 1}), encode(TINY_TEXT)
    )
    with pytest.raises(ValueError, match="absorbing"):
        sample_text(model, 1, 10, prompt="a_")
