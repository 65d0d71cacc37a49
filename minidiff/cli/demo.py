"""``minidiff demo``: the toy on two datasets, the digits model, and a report.

    minidiff demo --out demo-output

Runs `minidiff toy` on each of `DEMO_DATASETS` (NumPy, seconds each), then trains the
``digits`` preset (`minidiff.configs`, a small U-Net on the 8x8 digits; PyTorch on the
CPU, a few minutes) into OUT/digits/run, samples it, scores the samples with a classifier
trained on real digits (`minidiff.evaluation.digit_quality`) and writes OUT/report.md:
`minidiff.runs.demo.run_demo`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from minidiff.cli._common import check_out_folder, int_at_least
from minidiff.cli.toy import add_run_options
from minidiff.runs.demo import (
    DEMO_DATASETS,
    DEMO_DIGITS_STEPS,
    DIGITS_SAMPLES,
    QUICK_SAMPLES,
    QUICK_STEPS,
    run_demo,
)

__all__ = ["add_parser", "run"]


def add_parser(commands) -> argparse.ArgumentParser:
    """Add ``demo`` to the subcommands ``commands`` (an argparse subparsers object)."""
    demo = commands.add_parser(
        "demo",
        help="run the toy on two datasets and write a report",
        description=f"Run `minidiff toy` on {', '.join(DEMO_DATASETS)} into OUT/<dataset>/ "
        "and summarise the metrics in OUT/report.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="output directory")
    demo.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_STEPS} training steps and {QUICK_SAMPLES} samples per dataset",
    )
    add_run_options(demo, None, None, 0)
    demo.add_argument(
        "--digits-steps", type=int_at_least(1), default=None,
        help=f"training steps of the digits model (default: {DEMO_DIGITS_STEPS}; the digits "
        "preset trains longer)",
    )  # fmt: skip
    demo.add_argument(
        "--digits-samples", type=int_at_least(2), default=DIGITS_SAMPLES,
        help="digits drawn from the trained model and scored",
    )  # fmt: skip
    demo.add_argument(
        "--threads", type=int_at_least(1), default=min(os.cpu_count() or 1, 8),
        help="torch threads for the digits model",
    )  # fmt: skip
    return demo


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``minidiff demo`` with parsed arguments; returns the exit status."""
    check_out_folder(parser, args.out)
    if (args.out / "digits" / "run").exists():
        parser.error(f"--out {str(args.out)!r} holds an earlier demo: pick another folder")
    run_demo(
        args.out,
        quick=args.quick,
        steps=args.steps,
        n_samples=args.n_samples,
        seed=args.seed,
        progress=not args.no_progress,
        digits_steps=args.digits_steps,
        digits_samples=args.digits_samples,
        threads=args.threads,
    )
    print(f"{args.out / 'report.md'}")
    return 0
