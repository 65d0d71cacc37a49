"""``minidiff inpaint``, ``minidiff upscale`` and ``minidiff anomaly``: restoration and
anomaly detection with a trained run, on PNG files.

    minidiff inpaint --checkpoint runs/digits --image x.png --mask m.png --out y.png
    minidiff inpaint --checkpoint runs/digits --image x.png --mask left --out y.png
    minidiff upscale --checkpoint runs/fashion-sr2 --image small.png --out big.png
    minidiff anomaly --checkpoint runs/digits --images folder/ --out scores.csv

``--mask`` is a PNG whose white pixels are filled in, or one of left, right, top, bottom,
center, random (the missing part). ``upscale`` takes a super-resolution run
(`minidiff.applications.superres.save_superres`); without --out it writes
``NAME_upscaled.png`` beside the image. ``anomaly`` writes one CSV row per PNG of
--images (bits/dim, the AnoDDPM map's mean, the reconstruction error at several t) and
each map as a PNG in --maps (default: the CSV's name without suffix, plus ``_maps``).
Existing outputs are never overwritten; on any error nothing is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from minidiff.cli._common import add_device_option, fail, int_at_least

__all__ = ["add_parser", "run", "run_parser"]


def run_parser(commands, name: str, text: str, image: bool = True) -> argparse.ArgumentParser:
    """A subcommand ``name`` of ``commands`` (its help: the first sentence of ``text``)
    with ``--checkpoint RUN`` and, if ``image``, ``--image``."""
    sub = commands.add_parser(name, help=text.split(".")[0], description=text,
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)  # fmt: skip
    sub.add_argument("--checkpoint", required=True, type=Path, metavar="RUN")
    if image:
        sub.add_argument("--image", required=True, type=Path)
    return sub


def add_parser(commands) -> argparse.ArgumentParser:
    """Add ``inpaint`` to the subcommands ``commands``."""
    text = ("Fill in the masked part of an image with a trained run. The white part of "
            "--mask is completed by replacement (Song et al. 2021) or, with --resamplings "
            "> 1, RePaint (Lugmayr et al. 2022).")  # fmt: skip
    sub = run_parser(commands, "inpaint", text)
    sub.add_argument("--mask", required=True, help="a PNG (white = fill in) or a mask kind")
    sub.add_argument("--out", required=True, type=Path, help="the PNG file to write")
    sub.add_argument("--steps", type=int_at_least(1), default=None,
                     help="DDIM grid steps (default: min(50, T))")  # fmt: skip
    sub.add_argument("--resamplings", type=int_at_least(1), default=1, help="RePaint's r")
    sub.add_argument("--jump", type=int_at_least(1), default=5, help="RePaint's jump length j")
    sub.add_argument("--seed", type=int_at_least(0), default=0)
    add_device_option(sub)
    return sub


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``minidiff inpaint``; returns the exit status."""
    from minidiff import runs
    from minidiff.runs.restoration import inpaint_file
    from minidiff.training.checkpoint import CheckpointError

    try:
        loaded = runs.load_run(args.checkpoint, device=runs.resolve_device(args.device))
        T = loaded.diffusion.T
        if args.steps is not None and args.steps > T:
            raise ValueError(f"--steps must be <= T = {T}, got {args.steps}")
        steps = min(50, T) if args.steps is None else args.steps
        out = inpaint_file(loaded, args.image, args.mask, args.out, steps=steps,
                           resamplings=args.resamplings, jump_length=args.jump,
                           seed=args.seed)  # fmt: skip
    except (ValueError, CheckpointError) as err:
        fail("inpaint", str(err))
    print(f"{out}: {args.image} inpainted with {loaded.preset.name} (step {loaded.step})")
    return 0
