"""A small caption encoder trained with the diffusion model, and a U-Net conditioned on
its output through cross-attention (text-to-image in miniature).

`CaptionEncoder`: token embedding plus a learned position embedding, a few pre-norm
Transformer encoder layers (Vaswani et al. 2017) with padding masked out, a final
LayerNorm: (B, L) ids -> (B, L, E) vectors. Imagen (Saharia et al. 2022) freezes a large
pretrained text encoder; with a vocabulary of a few dozen words a small one trained
jointly with the denoiser suffices here.

`TextConditionedUNet`: ``model(xt, t, tokens)``, the encoder's vectors fed to a
`minidiff.nn.UNet` built with ``context_dim``: cross-attention at the attention
resolutions (the low ones) and the pooled caption added to the time embedding. The
empty caption (the start token alone) is the null condition of classifier-free guidance.

`CaptionUNetConfig`: the settings of both, a `minidiff.nn.UNetConfig` with the encoder's
and the vocabulary's, so that a preset (``digits-caption`` of `minidiff.configs`) and a
checkpoint carry the words a caption is read with: sampling needs no corpus.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

import torch
from torch import nn

from minidiff.applications.captions import WordTokenizer
from minidiff.nn.unet import UNet, UNetConfig

__all__ = ["CaptionEncoder", "CaptionUNetConfig", "TextConditionedUNet"]

PAD, START = WordTokenizer.PAD, WordTokenizer.START


@dataclass(frozen=True)
class CaptionUNetConfig(UNetConfig):
    """A `UNetConfig` whose ``context_dim`` is the width of a `CaptionEncoder`, with the
    encoder's settings and the words it reads (`WordTokenizer.from_vocabulary`)."""

    context_dim: int | None = 64  # the caption encoder's width (cross-attention context)
    text_layers: int = 2  # Transformer encoder layers
    text_heads: int = 4  # attention heads per layer (context_dim divisible by it)
    caption_length: int = 12  # tokens per caption, the start token included
    vocabulary: tuple[str, ...] = ()  # the known words, sorted (ids 3.. in this order)

    def check(self) -> CaptionUNetConfig:
        """`UNetConfig.check`, and the caption settings: raises ValueError naming one."""
        super().check()
        for name in ("context_dim", "text_layers", "text_heads", "caption_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.context_dim % self.text_heads:
            raise ValueError(f"context_dim must be divisible by text_heads, got "
                             f"{self.context_dim} and {self.text_heads}")  # fmt: skip
        words = self.vocabulary
        if (not words or list(words) != sorted(set(words))
                or not all(re.fullmatch(r"[a-z]+|[0-9]", w) for w in words)):  # fmt: skip
            raise ValueError(f"vocabulary must be sorted distinct lower-case words or digits, "
                             f"at least one, got {words!r}")  # fmt: skip
        return self

    def tokenizer(self) -> WordTokenizer:
        """The `WordTokenizer` of ``vocabulary``."""
        return WordTokenizer.from_vocabulary(self.vocabulary)

    def unet_config(self) -> UNetConfig:
        """The U-Net's own settings."""
        return UNetConfig(**{f.name: getattr(self, f.name) for f in fields(UNetConfig)})


class CaptionEncoder(nn.Module):
    """(B, L) token ids -> ((B, L, dim) vectors, (B, L) bool mask of the non-padding ids).

    Args:
        vocabulary_size: number of token ids.
        dim: width of the vectors.
        layers: Transformer encoder layers.
        heads: attention heads per layer (dim must be divisible by it).
        max_length: the longest sequence (positions embedded).
    """

    def __init__(
        self, vocabulary_size: int, dim: int = 64, layers: int = 2, heads: int = 4,
        max_length: int = 16,
    ) -> None:  # fmt: skip
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim must be divisible by heads, got dim={dim}, heads={heads}")
        self.max_length = max_length
        self.token_embedding = nn.Embedding(vocabulary_size, dim)
        self.position_embedding = nn.Parameter(torch.randn(max_length, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True,
            norm_first=True,
        )  # fmt: skip
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if tokens.ndim != 2 or tokens.shape[1] > self.max_length or tokens.is_floating_point():
            raise ValueError(f"tokens must be (B, L) integer ids with L <= {self.max_length}, "
                             f"got {tokens.dtype} of shape {tuple(tokens.shape)}")  # fmt: skip
        mask = tokens != PAD  # (B, L)
        h = self.token_embedding(tokens) + self.position_embedding[: tokens.shape[1]]
        h = self.encoder(h, src_key_padding_mask=~mask)  # (B, L, dim)
        return self.norm(h), mask


class TextConditionedUNet(nn.Module):
    """``model(xt, t, tokens) -> output``: a `CaptionEncoder` feeding a U-Net's
    cross-attention.

    Args:
        encoder: the caption encoder.
        unet: a U-Net with ``context_dim`` equal to the encoder's width.
    """

    def __init__(self, encoder: CaptionEncoder, unet: UNet) -> None:
        super().__init__()
        if unet.config.context_dim != encoder.token_embedding.embedding_dim:
            raise ValueError(f"unet.config.context_dim must be the encoder width "
                             f"{encoder.token_embedding.embedding_dim}, got "
                             f"{unet.config.context_dim}")  # fmt: skip
        self.encoder, self.unet = encoder, unet
        self.config: CaptionUNetConfig | None = None  # set by `from_config`
        # the empty caption: the null condition that training drops captions to
        # (`minidiff.training.conditioning.null_condition_of`)
        null = torch.full((encoder.max_length,), PAD, dtype=torch.int64)
        null[0] = START
        self.register_buffer("null_condition", null, persistent=False)  # (L,)

    @classmethod
    def from_config(cls, config: CaptionUNetConfig) -> TextConditionedUNet:
        """The encoder and the U-Net of ``config`` (the U-Net draws from torch's global
        generator, as `UNet.from_config`)."""
        if not isinstance(config, CaptionUNetConfig):
            raise TypeError(f"config must be a CaptionUNetConfig, got {type(config).__name__}")
        config.check()
        encoder = CaptionEncoder(len(config.tokenizer()), config.context_dim, config.text_layers,
                                 config.text_heads, max_length=config.caption_length)  # fmt: skip
        model = cls(encoder, UNet.from_config(config.unet_config()))
        model.config = config
        return model

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Predict from x_t (B, C, H, W) at steps t (B,) given caption ids (B, L); None:
        the empty caption for every row (the unconditional model)."""
        if tokens is None:
            tokens = self.null_condition[None].expand(x.shape[0], -1)  # (B, L)
        context, mask = self.encoder(tokens)  # (B, L, E), (B, L)
        return self.unet(x, t, context=context, context_mask=mask)
