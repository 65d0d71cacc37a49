"""Tests of `minidiff.discrete.text`: bits per character, sampling and infilling."""

import math

import pytest
import torch

from minidiff.data.text import MASK_ID, TINY_TEXT, VOCAB, encode
from minidiff.discrete import (
    AbsorbingDiffusionConfig,
    UniformDiffusionConfig,
    parse_prompt,
    sample_text,
    text_bits_per_char,
)
from minidiff.nn.sequence import SequenceDenoiserConfig, build_sequence_denoiser

V = len(VOCAB)


def uniform_denoiser(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """p~(x_0 | x_t) uniform over the V characters: equal logits everywhere."""
    return torch.zeros(*xt.shape, V)


def untrained(network: str = "conv") -> torch.nn.Module:
    torch.manual_seed(0)
    config = SequenceDenoiserConfig(vocab_size=V, network=network, width=16, depth=2, heads=2)
    return build_sequence_denoiser(config).eval()


def test_uniform_denoiser_scores_log2_vocabulary_bits():
    """With p~ uniform, each masked token costs log V nats and E[(1 / t) #masked / L] = 1,
    so the absorbing NELBO is log2 V bits per character: the estimate lies within 4
    standard errors of it."""
    ids = encode(TINY_TEXT * 4)
    bpc, se = text_bits_per_char(uniform_denoiser, AbsorbingDiffusionConfig().build(V), ids,
                                 32, repeats=8)  # fmt: skip
    assert abs(bpc - math.log2(V)) < 4 * se and se > 0


def test_samples_have_the_length_and_vocabulary_for_both_processes():
    """Samples of an untrained network are strings of the asked length over the vocabulary,
    from the absorbing and the uniform process."""
    network = untrained()
    for diffusion in (AbsorbingDiffusionConfig(T=8).build(V), UniformDiffusionConfig(T=5).build(V)):
        texts = sample_text(network, diffusion, 2, 24, generator=torch.Generator().manual_seed(0))
        assert [len(t) for t in texts] == [24, 24] and set("".join(texts)) <= set(VOCAB)


@pytest.mark.parametrize("network", ["conv", "transformer"])
def test_infilling_keeps_the_prompt(network):
    """Characters of the prompt stay; its "_" are filled; no mask is left; the prompt is
    padded to the length."""
    prompt = "The ____ ran by the ____"
    (text,) = sample_text(untrained(network), AbsorbingDiffusionConfig(T=10).build(V), 1, 30,
                          prompt=prompt, generator=torch.Generator().manual_seed(0))  # fmt: skip
    kept = [(p, c) for p, c in zip(prompt, text, strict=False) if p != "_"]
    assert all(p == c for p, c in kept) and "_" not in text and len(text) == 30


def test_parse_prompt_and_errors():
    """ "_" becomes the mask and the prompt is padded with masks; a prompt longer than the
    length, a prompt for the uniform process and a bad n are refused."""
    ids = parse_prompt("a_", 4)
    assert ids.tolist() == [int(encode("a")[0]), MASK_ID, MASK_ID, MASK_ID]
    with pytest.raises(ValueError, match="shorter"):
        parse_prompt("abc", 2)
    with pytest.raises(ValueError, match="absorbing"):
        sample_text(untrained(), UniformDiffusionConfig(T=5).build(V), 1, 10, prompt="a_")
    with pytest.raises(ValueError, match="n and length"):
        sample_text(untrained(), AbsorbingDiffusionConfig().build(V), 0, 10)
    with pytest.raises(ValueError, match="window"):
        text_bits_per_char(untrained(), AbsorbingDiffusionConfig().build(V), encode("ab"), 8)
