"""``minidiff anomaly``: anomaly scores and maps of a folder of PNGs with a trained run
(see `minidiff.cli.inpaint` for the three restoration commands)."""

from __future__ import annotations

import argparse
from pathlib import Path

from minidiff.cli._common import add_device_option, fail, int_at_least
from minidiff.cli.inpaint import run_parser

__all__ = ["add_parser", "run"]


def add_parser(commands) -> argparse.ArgumentParser:
    """Add ``anomaly`` to the subcommands ``commands``."""
    text = ("Score a folder of images for anomalies with a trained run. One CSV row per "
            "PNG: the ELBO in bits/dim, the AnoDDPM map's mean (Wyatt et al. 2022) and the "
            "reconstruction error at several t (Graham et al. 2023); the maps are written "
            "as PNGs.")  # fmt: skip
    sub = run_parser(commands, "anomaly", text, image=False)
    sub.add_argument("--images", required=True, type=Path, metavar="DIR")
    sub.add_argument("--out", required=True, type=Path, help="the CSV file to write")
    sub.add_argument("--maps", type=Path, default=None,
                     help="folder for the maps (default: OUT without suffix + _maps)")  # fmt: skip
    sub.add_argument("--seed", type=int_at_least(0), default=0)
    add_device_option(sub)
    return sub


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``minidiff anomaly``; returns the exit status."""
    from minidiff import atomic, runs
    from minidiff.runs.restoration import AnomalySettings, anomaly_scores
    from minidiff.training.checkpoint import CheckpointError

    out: Path = args.out
    maps = args.maps or out.with_name(f"{out.stem}_maps")
    try:
        for path, name in ((out, "--out"), (maps, "--maps")):
            if path.exists() or path.is_symlink():
                raise ValueError(f"{name} {str(path)!r} exists; it is never overwritten")
        atomic.check_output_location(out, "--out", folder=False)
        if not args.images.is_dir():
            raise ValueError(f"--images {str(args.images)!r} is not a folder")
        loaded = runs.load_run(args.checkpoint, device=runs.resolve_device(args.device))
        files = sorted(args.images.glob("*.png"))
        csv, pngs = anomaly_scores(loaded, files, AnomalySettings(seed=args.seed))
    except (ValueError, CheckpointError) as err:
        fail("anomaly", str(err))
    maps.mkdir(parents=True)
    for stem, data in pngs.items():
        atomic.write_file(maps / f"{stem}.png", data)
    atomic.write_text(out, csv)
    print(f"{out}: {len(files)} images scored with {loaded.preset.name}; maps in {maps}")
    return 0
