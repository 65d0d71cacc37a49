"""Restoration and anomaly detection from stored runs, on PNG files: what ``minidiff
inpaint``, ``minidiff upscale`` and ``minidiff anomaly`` run.

Images are grey PNGs; pixel u in 0..255 maps to x = u / 127.5 - 1 and back with
`minidiff.runs.grids.image_grid`'s rounding. Every function reads and checks all of its
inputs and computes everything before anything is written; files are written atomically.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from minidiff import atomic

__all__ = [
    "read_grey_png",
    "png_bytes",
    "quantise",
    "AnomalySettings",
    "inpaint_file",
    "upscale_file",
    "anomaly_scores",
]


def read_grey_png(path: str | os.PathLike, size: int | None = None, name: str = "--image"):
    """A PNG as (1, 1, H, W) float32 in [-1, 1] (converted to grey), checked to be
    size x size when ``size`` is given.

    Raises:
        ValueError: a missing or unreadable file, or the wrong size (naming ``name``).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("L"), dtype=np.float32)
    except (OSError, UnidentifiedImageError) as err:
        raise ValueError(f"{name} {str(path)!r} is not a readable image: {err}") from None
    if size is not None and pixels.shape != (size, size):
        raise ValueError(f"{name} {str(path)!r} is {pixels.shape[1]} x {pixels.shape[0]} pixels; "
                         f"the model expects {size} x {size}")  # fmt: skip
    return torch.from_numpy(pixels / 127.5 - 1.0)[None, None]


def png_bytes(x: torch.Tensor) -> bytes:
    """(H, W) or (1, 1, H, W) values in [-1, 1] (clipped) as grey PNG bytes."""
    from PIL import Image

    pixels = (x.detach().cpu().double().reshape(x.shape[-2:]).clamp(-1, 1) + 1) * 127.5
    buffer = io.BytesIO()
    Image.fromarray(pixels.round().to(torch.uint8).numpy()).save(buffer, format="PNG")
    return buffer.getvalue()


def quantise(x: torch.Tensor, num_bins: int) -> torch.Tensor:
    """x in [-1, 1] moved to the nearest of ``num_bins`` evenly spaced levels (the data
    values of a discretised decoder)."""
    k = num_bins - 1
    return torch.round((x.clamp(-1, 1) + 1) / 2 * k) / k * 2 - 1


def _check_new(path: Path, name: str) -> None:
    if path.exists() or path.is_symlink():
        raise ValueError(f"{name} {str(path)!r} exists; it is never overwritten")
    atomic.check_output_location(path, name, folder=False)


def inpaint_file(run, image: Path, mask: Path | str, out: Path, *, steps: int | None = 50,
                 resamplings: int = 1, jump_length: int = 5, seed: int = 0) -> Path:  # fmt: skip
    """Complete ``image`` where ``mask`` is white (a PNG, or a kind of
    `minidiff.applications.inpainting.MASK_KINDS`) with the run's model; write ``out``."""
    from minidiff.applications.inpainting import (
        MASK_KINDS,
        inpaint,
        inpainting_mask,
        mask_from_image,
    )

    _check_new(out, "--out")
    size = run.preset.sample_shape[-1]
    x = read_grey_png(image, size)
    g = torch.Generator().manual_seed(seed)
    if str(mask) in MASK_KINDS:
        known = inpainting_mask(str(mask), size, generator=g)
    else:
        known = mask_from_image((read_grey_png(mask, size, "--mask")[0, 0] + 1) / 2)
    completed = inpaint(run.model, run.diffusion, x.to(next(run.model.parameters()).device),
                        known, steps=steps, resamplings=resamplings, jump_length=jump_length,
                        clip_x0=1.0, generator=g)  # fmt: skip
    atomic.write_file(out, png_bytes(completed))
    return out


def upscale_file(folder: Path, image: Path, out: Path, *, seed: int = 0) -> Path:
    """Upscale ``image`` with the super-resolution run in ``folder``; write ``out``."""
    from minidiff.applications.superres import load_superres, upscale

    _check_new(out, "--out")
    network, config = load_superres(folder)
    x = read_grey_png(image, config.model.image_size // config.factor)
    high = upscale(network, config.diffusion(), x, config,
                   generator=torch.Generator().manual_seed(seed))  # fmt: skip
    atomic.write_file(out, png_bytes(high))
    return out


@dataclass(frozen=True)
class AnomalySettings:
    """The scores of ``minidiff anomaly``: the ELBO estimated from ``elbo_t`` steps, the
    reconstruction error from each of ``recon_ts`` (given as fractions of T), and the
    AnoDDPM map from ``map_t`` (a fraction of T), with ``recon_steps`` DDIM jumps."""

    elbo_t: int = 50
    recon_ts: tuple[float, ...] = (0.1, 0.25, 0.5)
    map_t: float = 0.25
    recon_steps: int = 10
    seed: int = 0


def anomaly_scores(run, images: list[Path], settings: AnomalySettings = AnomalySettings()):
    """Score each PNG of ``images`` with the run's model.

    Returns:
        the CSV text (one row per file: its name, bits/dim, the AnoDDPM map's mean and the
        reconstruction MSE at each t) and {file stem: the map as PNG bytes}.
    """
    from minidiff.applications import anomaly

    if not images:
        raise ValueError("--images holds no .png files")
    p, T = run.preset, run.diffusion.T
    x = torch.cat([read_grey_png(f, p.sample_shape[-1]) for f in images])
    x = x.to(next(run.model.parameters()).device)
    num_bins = p.training.num_bins
    x = quantise(x, num_bins) if num_bins else x
    g = torch.Generator().manual_seed(settings.seed)
    kw = dict(steps=settings.recon_steps, clip_x0=1.0, generator=g)
    bpd = anomaly.elbo_bits_per_dim(run.model, run.diffusion, x, num_t=min(settings.elbo_t, T - 1),
                                    num_bins=num_bins, generator=g)  # fmt: skip
    ts = [max(1, round(f * T)) for f in settings.recon_ts]
    errors = anomaly.reconstruction_errors(run.model, run.diffusion, x, ts, **kw)
    maps, _ = anomaly.anoddpm_map(run.model, run.diffusion, x, max(1, round(settings.map_t * T)),
                                  **kw)  # fmt: skip
    header = ["file", "bits_per_dim", "anoddpm"] + [f"recon_t{t}" for t in ts]
    rows = [",".join(header)]
    for i, f in enumerate(images):
        values = [bpd[i], maps[i].mean()] + list(errors[i])
        rows.append(",".join([f.name] + [f"{float(v):.6g}" for v in values]))
    peak = float(maps.max()) or 1.0
    pngs = {f.stem: png_bytes(maps[i] / peak * 2 - 1) for i, f in enumerate(images)}
    return "\n".join(rows) + "\n", pngs
