"""The caption encoder and the caption-conditioned U-Net."""

from __future__ import annotations

import pytest
import torch

from minidiff.applications import ClassifierFreeGuidance
from minidiff.applications.captions import WordTokenizer
from minidiff.applications.text import CaptionEncoder, CaptionUNetConfig, TextConditionedUNet
from minidiff.nn import UNet
from tests.tolerances import ATOL_LOOSE, RTOL_LOOSE


def _model(seed=0):
    torch.manual_seed(seed)
    tokenizer = WordTokenizer.for_digits()
    encoder = CaptionEncoder(len(tokenizer), dim=32, layers=1, heads=4, max_length=12)
    model = TextConditionedUNet(encoder, UNet.tiny(in_channels=1, context_dim=32)).double()
    with torch.no_grad():  # move the zero-initialised projections away from 0
        for p in model.unet.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return tokenizer, model.eval()


def test_padding_does_not_change_the_encoding():
    """Extra padding leaves the vectors at the caption's positions unchanged."""
    tokenizer, model = _model()
    short = tokenizer.encode(["a thick seven"], 5)
    long = tokenizer.encode(["a thick seven"], 12)
    with torch.no_grad():
        a, mask_a = model.encoder(short)
        b, mask_b = model.encoder(long)
    assert mask_a.sum() == mask_b.sum() == 4
    torch.testing.assert_close(a[:, :4], b[:, :4], rtol=1e-6, atol=1e-6)


def test_guided_caption_model_batched_equals_two_passes_and_depends_on_the_caption():
    tokenizer, model = _model(1)
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([3, 30])
    tokens = tokenizer.encode(["a thick seven", "the digit 1"], 12)
    null = tokenizer.encode(["", ""], 12)
    with torch.no_grad():
        one, two = (ClassifierFreeGuidance(model, tokens, null, 2.0, batched=b)(x, t)
                    for b in (True, False))  # fmt: skip
        other = model(x, t, tokens.flip(0))
        same = model(x, t, tokens)
    torch.testing.assert_close(one, two, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)
    assert (same - other).abs().amax(dim=(1, 2, 3)).min() > 1e-6


def test_mismatched_widths_and_bad_tokens_are_refused():
    encoder = CaptionEncoder(10, dim=32, heads=4, max_length=4)
    with pytest.raises(ValueError, match="context_dim"):
        TextConditionedUNet(encoder, UNet.tiny(in_channels=1, context_dim=16))
    with pytest.raises(ValueError, match="tokens"):
        encoder(torch.zeros(1, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match="heads"):
        CaptionEncoder(10, dim=30, heads=4)


def _config(**changes) -> CaptionUNetConfig:
    settings = dict(in_channels=1, base_channels=32, channel_mults=(1, 2), num_res_blocks=1,
                    attention_resolutions=(4,), dropout=0.0, image_size=8, context_dim=32,
                    text_layers=1, caption_length=6,
                    vocabulary=WordTokenizer.for_digits().words)  # fmt: skip
    return CaptionUNetConfig(**{**settings, **changes})


def test_from_config_builds_the_encoder_and_unet_of_the_config_with_its_vocabulary():
    """The network holds its config; the encoder reads len(vocabulary) + 3 ids (padding,
    start, unknown) over caption_length positions; the U-Net's settings are the config's."""
    config = _config()
    model = TextConditionedUNet.from_config(config)
    assert model.config == config and model.unet.config == config.unet_config()
    assert model.encoder.token_embedding.num_embeddings == len(config.vocabulary) + 3
    assert model.encoder.max_length == config.caption_length
    assert config.tokenizer().vocabulary == WordTokenizer.for_digits().vocabulary


def test_no_tokens_is_the_empty_caption_the_null_condition():
    """``model(x, t)`` equals ``model(x, t, empty captions)``, and the null condition is
    the tokenizer's encoding of the empty caption."""
    torch.manual_seed(0)
    config = _config()
    model = TextConditionedUNet.from_config(config).double().eval()
    with torch.no_grad():
        for p in model.unet.parameters():
            p.add_(0.1 * torch.randn_like(p))
    empty = config.tokenizer().encode(["", ""], config.caption_length)
    assert torch.equal(model.null_condition, empty[0])
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([5, 50])
    with torch.no_grad():
        torch.testing.assert_close(model(x, t), model(x, t, empty), rtol=0, atol=0)


@pytest.mark.parametrize(("changes", "match"), [
    ({"vocabulary": ()}, "vocabulary must be"),
    ({"vocabulary": ("seven", "a")}, "vocabulary must be"),
    ({"vocabulary": ("a", "Seven")}, "vocabulary must be"),
    ({"text_heads": 5}, "context_dim must be divisible by text_heads"),
    ({"caption_length": 0}, "caption_length must be a positive integer"),
    ({"base_channels": 40}, "GroupNorm"),
])  # fmt: skip
def test_caption_config_refuses_bad_settings_by_name(changes, match):
    with pytest.raises(ValueError, match=match):
        _config(**changes).check()
    with pytest.raises(TypeError, match="CaptionUNetConfig"):
        TextConditionedUNet.from_config(_config().unet_config())
