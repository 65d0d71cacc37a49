"""``minidiff evaluate``: sample quality and likelihood of a checkpoint of ``minidiff train``.

    minidiff evaluate --checkpoint runs/digits --out metrics.json
    minidiff evaluate --checkpoint runs/cifar10 --metrics fid,is --n 10000 \\
        --inception-weights pt_inception-2015-12-05-6726825d.pth --out metrics.json
    minidiff evaluate --checkpoint runs/digits-cond --metrics fid,accuracy --out m.json

A conditional digits run (``digits-cond``, ``digits-caption``) is sampled class by class
at its preset's guidance scale and also reports ``accuracy``: the share of samples the
digits classifier assigns to the class asked for, per class and in all.

The pipeline is `minidiff.runs.evaluate`; this file parses and prints. Bad input (an
unknown metric, n too small for the feature dimension, a missing weights file, a reference
that is not the model's data) exits with status 2 and one line on stderr, writing nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from minidiff.cli._common import add_device_option, fail, int_at_least

__all__ = ["add_parser", "run"]


def add_parser(commands) -> argparse.ArgumentParser:
    """Add ``evaluate`` to the subcommands ``commands``."""
    from minidiff.runs.evaluate import METRICS, REFERENCES

    evaluate = commands.add_parser(
        "evaluate",
        help="FID, IS, KID, precision/recall and bits/dim of a checkpoint",
        description="Sample a checkpoint, compare the samples with held-out data in a "
        "feature space (the digits classifier, the Fashion-MNIST judge or the FID Inception) "
        "next to the train-vs-test floor, measure bits/dim, print a table and write JSON.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    evaluate.add_argument("--checkpoint", required=True, type=Path, metavar="RUN")
    evaluate.add_argument("--out", required=True, type=Path, help="the JSON file to write")
    evaluate.add_argument("--metrics", default="fid,is,kid,pr,bpd",
                          help=f"comma-separated subset of {','.join(METRICS)}")  # fmt: skip
    evaluate.add_argument("--n", type=int_at_least(1), default=1000, help="samples to draw")
    evaluate.add_argument("--sampler", default=None, help="ancestral or ddim (default: preset's)")
    evaluate.add_argument("--steps", type=int_at_least(1), default=None, help="DDIM steps")
    evaluate.add_argument(
        "--reference", default=None, help=f"{', '.join(REFERENCES)} (default: the model's data)"
    )
    evaluate.add_argument(
        "--inception-weights",
        default=None,
        metavar="PATH",
        help="the FID Inception weights (default: $MINIDIFF_INCEPTION_WEIGHTS)",
    )
    evaluate.add_argument("--data-root", default="data", help="where CIFAR-10 is")
    evaluate.add_argument("--seed", type=int_at_least(0), default=0, help="random seed")
    add_device_option(evaluate)
    evaluate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return evaluate


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``minidiff evaluate`` with parsed arguments; returns the exit status."""
    from minidiff import atomic, runs
    from minidiff.runs import evaluate as pipeline
    from minidiff.training.checkpoint import CheckpointError

    out: Path = args.out
    if out.exists() or out.is_symlink():
        fail("evaluate", f"--out {str(out)!r} exists; it is never overwritten: choose another name")
    if not out.parent.is_dir():
        fail("evaluate", f"--out {str(out)!r}: the folder {str(out.parent)!r} does not exist")
    try:
        atomic.check_output_location(out, "--out", folder=False)  # writable, before the work
        settings = pipeline.EvaluateSettings(
            checkpoint=str(args.checkpoint), metrics=pipeline.parse_metrics(args.metrics), n=args.n,
            sampler=args.sampler, steps=args.steps, reference=args.reference,
            inception_weights=args.inception_weights or pipeline.environment_weights(),
            seed=args.seed, data_root=args.data_root, device=args.device,
        )  # fmt: skip
        loaded = runs.load_run(args.checkpoint, device=runs.resolve_device(args.device))
        pipeline.check_settings(settings, loaded)
        record = pipeline.evaluate(settings, run=loaded, progress=not args.no_progress)
    except (ValueError, CheckpointError, FileNotFoundError) as err:
        fail("evaluate", str(err))
    print(pipeline.format_table(record))
    if "feature_space" in record:
        print(f"features: {record['feature_space']}")
    atomic.write_json(out, record, indent=2, sort_keys=True)
    print(f"wrote {out}")
    return 0
