"""``minidiff upscale``: super-resolution of a PNG with a super-resolution run (see
`minidiff.cli.inpaint` for the three restoration commands)."""

from __future__ import annotations

import argparse
from pathlib import Path

from minidiff.cli._common import fail, int_at_least
from minidiff.cli.inpaint import run_parser

__all__ = ["add_parser", "run"]


def add_parser(commands) -> argparse.ArgumentParser:
    """Add ``upscale`` to the subcommands ``commands``."""
    sub = run_parser(commands, "upscale", "Super-resolve an image with a super-resolution "
                     "run (SR3 or SRDiff, minidiff.applications.superres).")  # fmt: skip
    sub.add_argument("--out", type=Path, default=None,
                     help="the PNG (default: NAME_upscaled.png beside --image)")  # fmt: skip
    sub.add_argument("--seed", type=int_at_least(0), default=0)
    return sub


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``minidiff upscale``; returns the exit status."""
    from minidiff.runs.restoration import upscale_file

    out = args.out or args.image.with_name(f"{args.image.stem}_upscaled.png")
    try:
        upscale_file(args.checkpoint, args.image, out, seed=args.seed)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        fail("upscale", str(err).splitlines()[0])
    print(f"{out}: {args.image} upscaled with {args.checkpoint}")
    return 0
