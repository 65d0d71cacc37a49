"""The trained models that benchmarks/restoration.py and benchmarks/anomaly.py measure.

Each is trained once into ``RUNS_DIR/NAME`` (skipped when its final checkpoint exists),
on one CPU thread, with `minidiff.runs.train` (diffusion) or
`minidiff.applications.superres.train_superres`:

- ``digits-no0``, ``digits-no1``: the ``digits`` preset trained on the nine classes other
  than 0 (resp. 1) of the digits "train" split (leave-one-class-out for anomaly detection;
  ``digits-no0`` also inpaints the test digits of classes 1..9);
- ``fashion-mnist-no0``: the ``fashion-mnist`` preset trained on classes 1..9;
- ``digits-sr2``, ``fashion-mnist-sr2``, ``fashion-mnist-sr4``: super-resolution
  (`minidiff.applications.superres.SUPERRES_PRESETS`).

The step counts are cut to what a shared 2-core machine trains in tens of minutes; they
are printed with every table.

Run:  .venv/bin/python benchmarks/restoration_runs.py [--runs DIR] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minidiff.applications.superres import (  # noqa: E402
    SUPERRES_PRESETS,
    save_superres,
    train_superres,
)
from minidiff.configs import override, preset  # noqa: E402

RUNS_DIR = Path(__file__).resolve().parent / "results" / "runs"
# name: (preset, held-out class, training overrides)
DIFFUSION_RUNS = {
    "digits-no0": ("digits", 0, ("training.steps=800",)),
    "digits-no1": ("digits", 1, ("training.steps=400",)),  # cut to fit the time available
    "fashion-mnist-no0": (
        "fashion-mnist",
        0,
        (
            "training.steps=300",
            "training.batch_size=32",
            "training.sample_every=0",
            "training.checkpoint_every=100",
        ),
    ),
}
# name: (SUPERRES_PRESETS entry, overrides of the SuperResConfig)
SUPERRES_RUNS = {
    "digits-sr2": ("digits-sr2", {"steps": 300}),
    "fashion-mnist-sr2": ("fashion-mnist-sr2", {"steps": 300, "batch_size": 16}),
    "fashion-mnist-sr4": ("fashion-mnist-sr4", {"steps": 300, "batch_size": 16}),
}


def images(dataset: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(x (N, 1, S, S) in [-1, 1], labels (N,)) of ``dataset`` ("digits" or
    "fashion-mnist")."""
    if dataset == "digits":
        from minidiff.data import load_digits

        return load_digits(split, labels=True)
    from minidiff.data.fashion_mnist import load_fashion_mnist

    return load_fashion_mnist(split, labels=True)


def train_diffusion(name: str, runs: Path = RUNS_DIR) -> Path:
    """Train ``DIFFUSION_RUNS[name]`` into ``runs/name`` unless it is there."""
    from minidiff import runs as minidiff_runs

    preset_name, held_out, overrides = DIFFUSION_RUNS[name]
    p = override(preset(preset_name), list(overrides))
    out = runs / name
    if (out / "checkpoints" / f"step_{p.training.steps:06d}").is_dir():
        return out
    x, y = images(p.data.dataset, "train")
    start = time.perf_counter()
    minidiff_runs.train(p, out, data=x[y != held_out], progress=False, device="cpu")
    print(f"{name}: {p.training.steps} steps in {time.perf_counter() - start:.0f} s", flush=True)
    return out


def train_sr(name: str, runs: Path = RUNS_DIR) -> Path:
    """Train ``SUPERRES_RUNS[name]`` into ``runs/name`` unless it is there."""
    base, changes = SUPERRES_RUNS[name]
    config = replace(SUPERRES_PRESETS[base], **changes)
    out = runs / name
    if (out / "superres.pt").is_file():
        return out
    x, _ = images(config.dataset, "train")
    start = time.perf_counter()
    network, _ = train_superres(config, x)
    save_superres(out, network, config)
    print(f"{name}: {config.steps} steps in {time.perf_counter() - start:.0f} s", flush=True)
    return out


def main(runs: Path = RUNS_DIR, only: tuple[str, ...] = ()) -> None:
    torch.set_num_threads(1)
    for name in only or (*DIFFUSION_RUNS, *SUPERRES_RUNS):
        if name in DIFFUSION_RUNS:
            train_diffusion(name, runs)
        elif name in SUPERRES_RUNS:
            train_sr(name, runs)
        else:
            raise ValueError(f"unknown run {name!r}; expected one of "
                             f"{(*DIFFUSION_RUNS, *SUPERRES_RUNS)}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=RUNS_DIR)
    parser.add_argument("--only", nargs="*", default=())
    args = parser.parse_args()
    try:
        main(args.runs, tuple(args.only))
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
