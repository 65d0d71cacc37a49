"""The Inception network of FID, written out layer by layer.

FID (Heusel et al. 2017) and the Inception Score (Salimans et al. 2016) are defined in the
features of one particular network: the InceptionV3 of Szegedy et al. (2016), "Rethinking
the Inception architecture", as frozen in TensorFlow's graph of 2015-12-05 (1008 output
classes). Every published FID was computed with it, so a faithful copy matters more than a
better network. This module builds that graph in PyTorch:

- the stem: 3x3 convolutions (stride 2, then 1, then 1 with padding), a 3x3 max-pool, a 1x1
  and a 3x3 convolution and another max-pool (Szegedy et al. 2016, table 1);
- three blocks of type A (the 35 x 35 grid, fig. 5: 1x1, 5x5, two stacked 3x3 and a pooled
  branch), a grid reduction (fig. 10), four blocks of type C (17 x 17, fig. 6: factorised
  1 x 7 / 7 x 1 convolutions), a second reduction, and two blocks of type E (8 x 8, fig. 7:
  expanded 1 x 3 / 3 x 1 filter banks);
- a global average pool to 2048 features and a linear layer to 1008 logits.

Every convolution has no bias and is followed by batch normalisation (epsilon 0.001) and a
ReLU. Details of the 2015 graph that differ from other InceptionV3s, and that the FID
reference keeps:

- the pooled branch of blocks A, C and the first E averages only over the pixels inside
  the image (``count_include_pad=False``); the last E block's pooled branch is a max-pool;
- the input is an 8-bit image, resized to 299 x 299 by TensorFlow 1's bilinear resize
  (`resize_bilinear_tf1`: source pixel = destination pixel x in_size / out_size, no half-
  pixel offset) and scaled by (x - 128) / 128;
- the Inception Score uses the logits without the final bias (``"logits_unbiased"``).

Batch normalisation always uses its stored statistics (`FIDInception.train` keeps the
network in evaluation mode), so a feature never depends on the other images of a batch.

The parameter names equal those of the published PyTorch files of these weights
(``pt_inception-2015-12-05-6726825d.pth`` of pytorch-fid and
``weights-inception-2015-12-05-6726825d.pth`` of torch-fidelity, the same bytes), so either
loads as it is with `minidiff.evaluation.inception_weights.load_inception`. The weights are
never downloaded here: name the file with ``--inception-weights PATH`` or the
``MINIDIFF_INCEPTION_WEIGHTS`` variable.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "FEATURE_NAMES",
    "INCEPTION_SIZE",
    "FIDInception",
    "images_to_uint8",
    "resize_bilinear_tf1",
]

INCEPTION_SIZE = 299  # the network's input side
FEATURE_NAMES = ("64", "192", "768", "2048", "logits_unbiased", "logits")
BN_EPS = 0.001  # TensorFlow's batch-norm epsilon in the 2015 graph


class ConvBN(nn.Module):
    """conv (no bias) -> batch norm (eps 0.001) -> ReLU, the unit of every block."""

    def __init__(self, c_in: int, c_out: int, kernel, stride: int = 1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


@dataclass(frozen=True)
class Branch:
    """One branch of a block: an optional pool, convolutions in sequence, and optionally a
    final pair of convolutions applied side by side and concatenated (fig. 7).

    ``pool``: None, ``"avg"`` (3x3, stride 1, padding not counted), ``"max"`` (3x3,
    stride 1, padded) or ``"reduce"`` (3x3 max-pool, stride 2, the grid reductions)."""

    convs: tuple[str, ...] = ()
    pool: str | None = None
    split: tuple[str, str] | None = None


class MixedBlock(nn.Module):
    """An Inception block: branches computed from the same input, concatenated along the
    channels in the order given. ``layers`` maps each convolution's name (the key in the
    published weight files) to its `ConvBN`."""

    def __init__(self, layers: dict[str, ConvBN], branches: tuple[Branch, ...]) -> None:
        super().__init__()
        for name, layer in layers.items():
            self.add_module(name, layer)
        self.branches = branches

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for branch in self.branches:
            h = x
            if branch.pool == "avg":
                h = F.avg_pool2d(h, 3, stride=1, padding=1, count_include_pad=False)
            elif branch.pool == "max":
                h = F.max_pool2d(h, 3, stride=1, padding=1)
            elif branch.pool == "reduce":
                h = F.max_pool2d(h, 3, stride=2)
            for name in branch.convs:
                h = self.get_submodule(name)(h)
            if branch.split is not None:
                h = torch.cat([self.get_submodule(name)(h) for name in branch.split], dim=1)
            outputs.append(h)
        return torch.cat(outputs, dim=1)


def block_a(c_in: int, pool_channels: int) -> MixedBlock:
    """35 x 35 block (fig. 5): 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg-pool -> 1x1.
    Output channels 64 + 64 + 96 + pool_channels."""
    layers = {
        "branch1x1": ConvBN(c_in, 64, 1),
        "branch5x5_1": ConvBN(c_in, 48, 1),
        "branch5x5_2": ConvBN(48, 64, 5, padding=2),
        "branch3x3dbl_1": ConvBN(c_in, 64, 1),
        "branch3x3dbl_2": ConvBN(64, 96, 3, padding=1),
        "branch3x3dbl_3": ConvBN(96, 96, 3, padding=1),
        "branch_pool": ConvBN(c_in, pool_channels, 1),
    }
    return MixedBlock(layers, (
        Branch(("branch1x1",)),
        Branch(("branch5x5_1", "branch5x5_2")),
        Branch(("branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3")),
        Branch(("branch_pool",), pool="avg"),
    ))  # fmt: skip


def block_b(c_in: int) -> MixedBlock:
    """Grid reduction 35 -> 17 (fig. 10): 3x3 stride 2 | 1x1 -> 3x3 -> 3x3 stride 2 |
    max-pool stride 2. Output channels 384 + 96 + c_in."""
    layers = {
        "branch3x3": ConvBN(c_in, 384, 3, stride=2),
        "branch3x3dbl_1": ConvBN(c_in, 64, 1),
        "branch3x3dbl_2": ConvBN(64, 96, 3, padding=1),
        "branch3x3dbl_3": ConvBN(96, 96, 3, stride=2),
    }
    return MixedBlock(layers, (
        Branch(("branch3x3",)),
        Branch(("branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3")),
        Branch(pool="reduce"),
    ))  # fmt: skip


def block_c(c_in: int, c7: int) -> MixedBlock:
    """17 x 17 block (fig. 6, n = 7): 1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> 7x1 -> 1x7 -> 7x1 ->
    1x7 | avg-pool -> 1x1. Output channels 4 x 192 = 768; ``c7`` is the inner width."""
    row, col = dict(kernel=(1, 7), padding=(0, 3)), dict(kernel=(7, 1), padding=(3, 0))
    layers = {
        "branch1x1": ConvBN(c_in, 192, 1),
        "branch7x7_1": ConvBN(c_in, c7, 1),
        "branch7x7_2": ConvBN(c7, c7, **row),
        "branch7x7_3": ConvBN(c7, 192, **col),
        "branch7x7dbl_1": ConvBN(c_in, c7, 1),
        "branch7x7dbl_2": ConvBN(c7, c7, **col),
        "branch7x7dbl_3": ConvBN(c7, c7, **row),
        "branch7x7dbl_4": ConvBN(c7, c7, **col),
        "branch7x7dbl_5": ConvBN(c7, 192, **row),
        "branch_pool": ConvBN(c_in, 192, 1),
    }
    return MixedBlock(layers, (
        Branch(("branch1x1",)),
        Branch(("branch7x7_1", "branch7x7_2", "branch7x7_3")),
        Branch(tuple(f"branch7x7dbl_{i}" for i in range(1, 6))),
        Branch(("branch_pool",), pool="avg"),
    ))  # fmt: skip


def block_d(c_in: int) -> MixedBlock:
    """Grid reduction 17 -> 8: 1x1 -> 3x3 stride 2 | 1x1 -> 1x7 -> 7x1 -> 3x3 stride 2 |
    max-pool stride 2. Output channels 320 + 192 + c_in."""
    layers = {
        "branch3x3_1": ConvBN(c_in, 192, 1),
        "branch3x3_2": ConvBN(192, 320, 3, stride=2),
        "branch7x7x3_1": ConvBN(c_in, 192, 1),
        "branch7x7x3_2": ConvBN(192, 192, (1, 7), padding=(0, 3)),
        "branch7x7x3_3": ConvBN(192, 192, (7, 1), padding=(3, 0)),
        "branch7x7x3_4": ConvBN(192, 192, 3, stride=2),
    }
    return MixedBlock(layers, (
        Branch(("branch3x3_1", "branch3x3_2")),
        Branch(tuple(f"branch7x7x3_{i}" for i in range(1, 5))),
        Branch(pool="reduce"),
    ))  # fmt: skip


def block_e(c_in: int, pool: str) -> MixedBlock:
    """8 x 8 block (fig. 7): 1x1 | 1x1 -> (1x3, 3x1) | 1x1 -> 3x3 -> (1x3, 3x1) | pool ->
    1x1. Output channels 320 + 768 + 768 + 192 = 2048. ``pool``: ``"avg"`` in the first E
    block of the 2015 graph, ``"max"`` in the last."""
    row, col = dict(kernel=(1, 3), padding=(0, 1)), dict(kernel=(3, 1), padding=(1, 0))
    layers = {
        "branch1x1": ConvBN(c_in, 320, 1),
        "branch3x3_1": ConvBN(c_in, 384, 1),
        "branch3x3_2a": ConvBN(384, 384, **row),
        "branch3x3_2b": ConvBN(384, 384, **col),
        "branch3x3dbl_1": ConvBN(c_in, 448, 1),
        "branch3x3dbl_2": ConvBN(448, 384, 3, padding=1),
        "branch3x3dbl_3a": ConvBN(384, 384, **row),
        "branch3x3dbl_3b": ConvBN(384, 384, **col),
        "branch_pool": ConvBN(c_in, 192, 1),
    }
    return MixedBlock(layers, (
        Branch(("branch1x1",)),
        Branch(("branch3x3_1",), split=("branch3x3_2a", "branch3x3_2b")),
        Branch(("branch3x3dbl_1", "branch3x3dbl_2"), split=("branch3x3dbl_3a", "branch3x3dbl_3b")),
        Branch(("branch_pool",), pool=pool),
    ))  # fmt: skip


def resize_bilinear_tf1(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize as TensorFlow 1's ``tf.image.resize_bilinear`` (align_corners=False).

    Destination pixel i reads source position s = i x (in_size / out_size), with the scale
    and the product in float32 as TensorFlow computes them; with lo = floor(s) and
    hi = min(lo + 1, in_size - 1), the value is x[lo] + (s - lo) (x[hi] - x[lo]), first
    along the width, then along the height. (No half-pixel offset: this is not
    ``torch.nn.functional.interpolate``'s bilinear mode.)

    Args:
        x: (B, C, H, W) floating point.
        size: the output side S.

    Returns:
        (B, C, S, S) in x's dtype.
    """
    if not x.is_floating_point() or x.ndim != 4:
        raise ValueError(
            f"x must be a floating (B, C, H, W) tensor, got {x.dtype} {tuple(x.shape)}"
        )

    def axis(in_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scale = torch.tensor(in_size / size, dtype=torch.float32)
        position = torch.arange(size, dtype=x.dtype, device=x.device) * scale.to(x.dtype)
        low = position.floor().long().clamp(max=in_size - 1)
        high = (low + 1).clamp(max=in_size - 1)
        return low, high, position - low.to(x.dtype)

    low, high, frac = axis(x.shape[3])
    x = x[..., low] + (x[..., high] - x[..., low]) * frac  # (B, C, H, S)
    low, high, frac = axis(x.shape[2])
    frac = frac[:, None]
    return x[..., low, :] + (x[..., high, :] - x[..., low, :]) * frac  # (B, C, S, S)


class FIDInception(nn.Module):
    """The InceptionV3 of FID (module docstring), random weights until loaded.

    Call it on uint8 images (B, 3, H, W) (any H, W); it returns a dict with the features
    ``"64"``, ``"192"``, ``"768"`` (average-pooled activations after the stem's two halves
    and after the 17 x 17 blocks), ``"2048"`` (FID's features), ``"logits_unbiased"`` (IS)
    and ``"logits"``, each (B, F) in float32 (float64 after ``.double()``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)  # 299 -> 149
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)  # -> 147
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)  # -> 147, then max-pool -> 73
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)  # -> 71, then max-pool -> 35
        self.Mixed_5b = block_a(192, 32)  # -> 256
        self.Mixed_5c = block_a(256, 64)  # -> 288
        self.Mixed_5d = block_a(288, 64)  # -> 288
        self.Mixed_6a = block_b(288)  # -> 768 x 17 x 17
        self.Mixed_6b = block_c(768, 128)
        self.Mixed_6c = block_c(768, 160)
        self.Mixed_6d = block_c(768, 160)
        self.Mixed_6e = block_c(768, 192)
        self.Mixed_7a = block_d(768)  # -> 1280 x 8 x 8
        self.Mixed_7b = block_e(1280, "avg")  # -> 2048
        self.Mixed_7c = block_e(2048, "max")
        self.fc = nn.Linear(2048, 1008)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FIDInception:
        """Always evaluation mode: batch norm uses its stored statistics, whatever ``mode``."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                "images must be a uint8 tensor (B, 3, H, W) (see images_to_uint8), got "
                f"{images.dtype} {tuple(images.shape)}"
            )
        dtype = self.fc.weight.dtype
        x = resize_bilinear_tf1(images.to(dtype), INCEPTION_SIZE)
        x = (x - 128) / 128  # (B, 3, 299, 299) in [-1, 1)

        def pooled(h: torch.Tensor) -> torch.Tensor:  # (B, C, h, w) -> (B, C)
            return h.mean(dim=(2, 3))

        features = {}
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)  # (B, 64, 73, 73)
        features["64"] = pooled(x)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)  # (B, 192, 35, 35)
        features["192"] = pooled(x)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c",
                     "Mixed_6d", "Mixed_6e"):  # fmt: skip
            x = self.get_submodule(name)(x)
        features["768"] = pooled(x)  # (B, 768)
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))  # (B, 2048, 8, 8)
        features["2048"] = pooled(x)
        features["logits_unbiased"] = features["2048"] @ self.fc.weight.T  # (B, 1008)
        features["logits"] = features["logits_unbiased"] + self.fc.bias
        return features


def images_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Model-range images as the network's uint8 RGB input.

    u = round(127.5 (x + 1)) clipped to 0..255 (the map of a saved 8-bit image); one
    channel is repeated to three.

    Args:
        images: (B, 1 or 3, H, W) floating point in [-1, 1].

    Returns:
        (B, 3, H, W) uint8.
    """
    if not torch.is_tensor(images) or not images.is_floating_point() or images.ndim != 4 or (
        images.shape[1] not in (1, 3)
    ):
        raise ValueError(
            "images must be a floating tensor (B, 1 or 3, H, W) in [-1, 1], got "
            f"{getattr(images, 'dtype', type(images).__name__)} "
            f"{tuple(getattr(images, 'shape', ()))}"
        )
    pixels = torch.round((images.detach().cpu().double() + 1.0) * 127.5).clamp(0, 255)
    return pixels.to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
