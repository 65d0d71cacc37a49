"""Sample grids: images tiled into one picture, written as PNG."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from minidiff import atomic

__all__ = ["image_grid", "save_image_grid"]


def image_grid(images: torch.Tensor | np.ndarray, nrow: int | None = None,
               padding: int = 2) -> np.ndarray:  # fmt: skip
    """Tile images in [-1, 1] into one uint8 picture, row by row, on a grey background.

    Args:
        images: (N, C, H, W) with C = 1 or 3, values in [-1, 1] (clipped).
        nrow: images per row (default: ceil(sqrt(N)), a square-ish grid).
        padding: grey pixels between and around the images.

    Returns:
        (rows * (H + padding) + padding, nrow * (W + padding) + padding, C) uint8, with
        pixel u = round((x + 1) * 127.5).
    """
    x = torch.as_tensor(images).detach().to("cpu", torch.float64)
    if x.ndim != 4 or x.shape[1] not in (1, 3) or x.shape[0] == 0:
        raise ValueError(f"images must have shape (N, C, H, W) with N >= 1 and C in (1, 3), "
                         f"got {tuple(x.shape)}")  # fmt: skip
    n, c, h, w = x.shape
    nrow = math.ceil(math.sqrt(n)) if nrow is None else nrow
    if isinstance(nrow, bool) or not isinstance(nrow, int) or nrow < 1:
        raise ValueError(f"nrow must be an integer >= 1, got {nrow!r}")
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be an integer >= 0, got {padding!r}")
    rows = math.ceil(n / nrow)
    pixels = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    grid = np.full((rows * (h + padding) + padding, nrow * (w + padding) + padding, c), 128,
                   dtype=np.uint8)  # fmt: skip
    for i in range(n):
        top, left = padding + (i // nrow) * (h + padding), padding + (i % nrow) * (w + padding)
        grid[top : top + h, left : left + w] = pixels[i]  # (H, W, C)
    return grid


def save_image_grid(images: torch.Tensor | np.ndarray, path: str | os.PathLike,
                    nrow: int | None = None, *, scale: int = 1) -> Path:  # fmt: skip
    """Write `image_grid` of ``images`` as a PNG at ``path``, atomically.

    ``scale`` enlarges each pixel to scale x scale (small images stay legible). 2-D points
    (N, 2) are drawn as a scatter plot instead.

    Returns:
        The path written.
    """
    import io

    path = Path(path)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale!r}")
    buffer = io.BytesIO()
    x = torch.as_tensor(images).detach().cpu()
    if x.ndim == 2 and x.shape[1] == 2:
        _scatter_png(x.double().numpy(), buffer)
    else:
        from PIL import Image  # installed with matplotlib

        grid = image_grid(x, nrow).repeat(scale, axis=0).repeat(scale, axis=1)
        Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid).save(buffer, format="PNG")
    atomic.write_file(path, buffer.getvalue())
    return path


def _scatter_png(points: np.ndarray, buffer) -> None:
    """Points (N, 2) as a scatter plot, PNG bytes into ``buffer``."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4, 4), layout="constrained")
    ax = figure.add_subplot()
    ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5)
    ax.set_aspect("equal")
    figure.savefig(buffer, format="png", dpi=100)
