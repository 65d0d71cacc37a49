"""The ``minidiff`` command line: a thin layer over the package.

    minidiff toy --dataset swissroll --out runs/swissroll   # train and sample a 2-D DDPM
    minidiff demo --out demo-output                         # the toy on two datasets + report
    minidiff train --config digits --out runs/digits        # train a preset (minidiff.configs)
    minidiff train --config cifar10 --dry-run               # its size, cost and a time estimate
    minidiff sample --checkpoint runs/digits --out grid.png # a sample grid from a checkpoint
    minidiff evaluate --checkpoint runs/digits --out m.json # FID, IS, KID, P/R, bits/dim
    minidiff course student --out hw --layer 1             # a student version (minidiff.course)
    minidiff inpaint --checkpoint runs/digits --image x.png --mask m.png --out y.png
    minidiff upscale --checkpoint runs/fashion-sr2 --image x.png  # super-resolution
    minidiff anomaly --checkpoint runs/digits --images DIR --out scores.csv  # + maps

Every subcommand validates all of its arguments before it creates a folder or writes a
file; bad input exits with status 2 and a one-line message on stderr. Files are written
under a temporary name and renamed into place, so a run that is interrupted never leaves a
half-written file under the final name. ``minidiff train`` also runs under ``torchrun``
(``torchrun --nproc_per_node=K -m minidiff train ...``): one process per GPU, rank 0 writes.

The commands only parse and print: the pipelines they run are the library's
(`minidiff.runs`: `run_toy`, `run_demo`, `train`, `sample`, `estimate_step_seconds`).
One thread is enough for the small problems and usually fastest: run with
``OMP_NUM_THREADS=1`` (the Makefile sets it), or install ``threadpoolctl``, which the
toy commands then use to limit the BLAS threads themselves.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from minidiff.cli import anomaly, course, demo, evaluate, inpaint, sample, toy, train, upscale
from minidiff.cli._common import version, warnings_on_one_line

__all__ = ["build_parser", "main"]

COMMANDS = {"toy": toy, "demo": demo, "train": train, "sample": sample, "evaluate": evaluate,
            "course": course}
COMMANDS.update(inpaint=inpaint, upscale=upscale, anomaly=anomaly)  # restoration, anomalies


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="minidiff",
        description="Diffusion models built from scratch, layer by layer.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"minidiff {version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    subparsers = {name: module.add_parser(commands) for name, module in COMMANDS.items()}
    return parser, subparsers


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``minidiff`` and its subcommands."""
    return _build()[0]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``minidiff`` command; returns the exit status (bad input raises
    SystemExit(2) after a message on stderr)."""
    parser, subparsers = _build()
    args = parser.parse_args(argv)
    if args.command in COMMANDS:
        with warnings_on_one_line():
            return COMMANDS[args.command].run(args, subparsers[args.command])
    else:
        parser.error(f"unknown command {args.command!r}")
