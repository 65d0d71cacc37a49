"""``minidiff toy``: train the NumPy DDPM on a 2-D dataset, sample, measure, plot.

    minidiff toy --dataset swissroll --out runs/swissroll

Writes OUT/samples.png (data vs samples and the reverse trajectory) and OUT/metrics.json
(the settings, timings and three sample distances, with their data-vs-data floor and a
Gaussian baseline): `minidiff.runs.toy.run_toy`.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from minidiff.cli._common import check_out_folder, int_at_least
from minidiff.runs.toy import TOY_SAMPLERS, ToySettings, one_blas_thread, run_toy
from minidiff.toy.datasets import DATASETS

__all__ = ["add_parser", "add_run_options", "run"]

TOY_OPTIONS = tuple(field.name for field in fields(ToySettings) if field.name != "progress")


def add_run_options(parser: argparse.ArgumentParser, steps, n_samples, seed) -> None:
    """The options that ``toy`` and ``demo`` share."""
    parser.add_argument("--steps", type=int_at_least(1), default=steps, help="training steps")
    parser.add_argument(
        "--n-samples",
        type=int_at_least(2),
        default=n_samples,
        help="samples to draw, and held-out points to compare them with",
    )
    parser.add_argument("--seed", type=int_at_least(0), default=seed, help="random seed")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def add_parser(commands) -> argparse.ArgumentParser:
    """Add ``toy`` to the subcommands ``commands`` (an argparse subparsers object)."""
    defaults = ToySettings(dataset=DATASETS[0])
    toy = commands.add_parser(
        "toy",
        help="train a DDPM on a 2-D dataset in NumPy and sample from it",
        description="Train the NumPy MLP on a 2-D dataset (Ho et al. 2020, Algorithm 1), "
        "sample from it, and write OUT/samples.png and OUT/metrics.json.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    toy.add_argument("--dataset", required=True, choices=DATASETS)
    toy.add_argument("--out", required=True, type=Path, help="output directory")
    add_run_options(toy, defaults.steps, defaults.n_samples, defaults.seed)
    toy.add_argument(
        "--n-train", type=int_at_least(1), default=defaults.n_train, help="training set size"
    )
    toy.add_argument("--T", type=int_at_least(21), default=defaults.T, help="diffusion steps")
    toy.add_argument("--sampler", choices=TOY_SAMPLERS, default=defaults.sampler)
    toy.add_argument(
        "--ddim-steps", type=int_at_least(1), default=defaults.ddim_steps, help="DDIM steps, <= T"
    )
    return toy


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``minidiff toy`` with parsed arguments; returns the exit status."""
    check_out_folder(parser, args.out)
    if args.sampler == "ddim" and args.ddim_steps > args.T:
        parser.error(f"--ddim-steps must be <= --T = {args.T}, got {args.ddim_steps}")
    options = {key: value for key, value in vars(args).items() if key in TOY_OPTIONS}
    settings = ToySettings(**options, progress=not args.no_progress)
    with one_blas_thread():
        metrics = run_toy(settings, args.out)
    sw = metrics["samples_vs_held_out"]["sliced_wasserstein"]
    print(
        f"{args.out / 'metrics.json'}: sliced Wasserstein {sw:.4f} "
        f"({metrics['sliced_wasserstein_over_floor']:.2f} x the data-vs-data floor)"
    )
    return 0
