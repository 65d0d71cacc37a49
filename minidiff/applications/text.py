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
"""

from __future__ import annotations

import torch
from torch import nn

from minidiff.nn.unet import UNet

__all__ = ["CaptionEncoder", "TextConditionedUNet"]

PAD = 0  # `WordTokenizer.PAD`


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

    def forward(self, x: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        context, mask = self.encoder(tokens)  # (B, L, E), (B, L)
        return self.unet(x, t, context=context, context_mask=mask)
