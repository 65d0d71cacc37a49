"""``minidiff train``: train a preset of `minidiff.configs` into a run folder.

    minidiff train --config digits --out runs/digits
    minidiff train --config digits --set steps=500 --set lr=5e-4 --out runs/short
    minidiff train --config digits --out runs/digits --resume       # continue a stopped run
    minidiff train --config cifar10 --dry-run                       # size, cost, time estimate
    torchrun --nproc_per_node=4 -m minidiff train --config cifar10 --out runs/cifar10

The folder's layout is that of `minidiff.runs.train`. ``--dry-run`` writes nothing: it
prints the settings, the parameter count, the training FLOPs (`minidiff.configs.describe`)
and a time estimate from a few timed training steps on the chosen device.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from minidiff.cli._common import add_device_option, fail

if TYPE_CHECKING:  # torch and the package load when a command runs, not for --help
    import torch

    from minidiff.configs import Preset

__all__ = ["add_parser", "estimate_step_seconds", "run"]

INTERRUPTED = 130  # the exit status of a run stopped by Ctrl-C (128 + SIGINT)
# FLOPs of one timed step, at most: the timed batch is the full batch or as many examples as
# fit in this budget (a CPU takes a few seconds for 5e10; a GPU needs a full batch to be busy)
TIMING_FLOPS = {"cpu": 5e10, "cuda": 1e14}
WARMUP_STEPS = 2  # untimed steps first (allocations, kernel selection, compilation) ...
TIMED_STEPS = 50  # ... then at most this many timed steps ...
TIMING_SECONDS = 3.0  # ... and no more once this much time has been measured


def add_parser(commands) -> argparse.ArgumentParser:
    """Add ``train`` to the subcommands ``commands`` (an argparse subparsers object)."""
    train = commands.add_parser(
        "train",
        help="train a preset (toy2d, digits, cifar10, cifar10-small) into a run folder",
        description="Train a preset of minidiff.configs; writes OUT/run.json, "
        "OUT/metrics.jsonl, OUT/checkpoints/ and OUT/samples/ (every sample_every steps). "
        "Works under torchrun (one process per GPU).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument(
        "--config", required=True, metavar="NAME",
        help="a preset of minidiff.configs: toy2d, digits, cifar10 or cifar10-small",
    )  # fmt: skip
    train.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE",
        help="override a preset field (repeatable), e.g. --set steps=500 --set channel_mults=1,2",
    )  # fmt: skip
    train.add_argument("--out", type=Path, help="the run folder (required unless --dry-run)")
    train.add_argument(
        "--resume", action="store_true",
        help="continue the run in --out from its latest checkpoint (start it if there is none)",
    )  # fmt: skip
    train.add_argument(
        "--dry-run", action="store_true",
        help="print the settings, size, FLOPs and a time estimate; write nothing",
    )  # fmt: skip
    add_device_option(train)
    train.add_argument("--data-root", type=Path, default=None, help="CIFAR-10 folder (./data)")
    train.add_argument("--download", action="store_true", help="download CIFAR-10 if missing")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return train


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``minidiff train`` with parsed arguments; returns the exit status."""
    from minidiff import atomic, runs
    from minidiff.configs import override, preset
    from minidiff.data import DownloadError
    from minidiff.training.checkpoint import CheckpointError

    try:
        p = override(preset(args.config), args.set)
        runs.check_preset(p)
    except ValueError as err:
        fail("train", str(err))
    distributed = int(os.environ.get("WORLD_SIZE", "1") or 1) > 1
    if distributed and args.device != "auto":
        fail("train", f"--device {args.device} cannot be used under torchrun: each process "
                      "trains on cuda:LOCAL_RANK (or the CPU without CUDA)")  # fmt: skip
    device = None
    if not distributed:
        try:
            device = runs.resolve_device(args.device)
        except ValueError as err:
            fail("train", str(err))
    if args.dry_run:
        if int(os.environ.get("RANK", "0") or 0) == 0:
            dry_run(p, device or runs.resolve_device(None), args.set)
        return 0
    if args.out is None:
        fail("train", "--out is required (the run folder), unless --dry-run")
    rank = 0
    if distributed:
        from minidiff.training import setup_distributed

        context = setup_distributed()
        device, rank = context.device, context.rank
    try:  # everything that can refuse the run, before anything is written
        atomic.check_output_location(args.out, "--out")
        runs.check_run_folder(p, args.out, resume=args.resume)
        data = _load_data(p, args, device, rank, distributed)
        runs.check_training_data(p, data)
    except (ValueError, CheckpointError, FileNotFoundError, DownloadError) as err:
        fail("train", str(err))
    return _train(p, args, data, device, distributed)


def _load_data(p: Preset, args, device, rank: int, distributed: bool):
    """The training data; under torchrun rank 0 loads (and downloads) it first."""
    import torch.distributed

    from minidiff import runs

    if distributed and rank != 0:
        torch.distributed.barrier()  # wait for rank 0 to fetch and cache the data
    download = args.download and rank == 0
    data = runs.training_data(p, root=args.data_root, download=download, device=device)
    if distributed and rank == 0:
        torch.distributed.barrier()
    return data


def _train(p: Preset, args, data, device, distributed: bool) -> int:
    from minidiff import runs
    from minidiff.training import CheckpointError, DiskFullError, cleanup_distributed

    try:
        trainer = runs.train(
            p, args.out, data=data, resume=args.resume, device=device,
            progress=not args.no_progress,
        )  # fmt: skip
        if trainer.rank == 0:
            print(_summary(p, args.out, trainer))
    except KeyboardInterrupt:
        print(f"minidiff train: interrupted; the latest checkpoint in {args.out / 'checkpoints'} "
              "is kept: continue with the same command and --resume", file=sys.stderr)  # fmt: skip
        return INTERRUPTED
    except (runs.RunError, CheckpointError, DiskFullError) as err:  # found once writing began
        fail("train", str(err))
    finally:
        if distributed:
            cleanup_distributed()
    return 0


def _summary(p: Preset, out: Path, trainer) -> str:
    """Where the run's files are, and its last logged loss."""
    from minidiff import runs
    from minidiff.training import find_latest_checkpoint

    lines = [f"trained {p.name} for {trainer.step} steps in {out}"]
    metrics = out / "metrics.jsonl"
    if metrics.is_file():
        losses = [r for r in runs.read_metrics(out) if r.get("loss") is not None]
        if losses:
            lines.append(f"  final loss      {losses[-1]['loss']:.5f} (step {losses[-1]['step']})")
        lines.append(f"  metrics         {metrics}")
    lines.append(f"  checkpoint      {find_latest_checkpoint(trainer.checkpoint_dir)}")
    samples = out / "samples"
    if samples.is_dir():
        lines.append(f"  sample grids    {samples} ({len(list(samples.glob('*.png')))} files)")
    lines.append(f"  sample from it  minidiff sample --checkpoint {out} --out {out / 'grid.png'}")
    return "\n".join(lines)


# -- the dry run -------------------------------------------------------------------------


def estimate_step_seconds(p: Preset, device: torch.device) -> tuple[float, int, int]:
    """Seconds per training step of ``p`` at its full batch, estimated by timing.

    The steps are timed at the full batch when a step costs at most
    ``TIMING_FLOPS[device.type]``, else at the largest batch within that budget (at least
    1), and scaled linearly to the full batch: a step's cost is nearly linear in the batch
    once each example keeps the device busy, as a large image network does on a CPU. The
    first `WARMUP_STEPS` steps (memory allocation, kernel selection, compilation) are left
    out as a warm-up.
    Random data of the preset's shape stands in for the data set; nothing is written.

    Returns:
        ``(seconds_per_step, timed_batch, timed_steps)``.
    """
    import torch

    from minidiff.configs import build_diffusion, describe
    from minidiff.runs.data import new_model
    from minidiff.training import Trainer

    per_example = 3 * describe(p)["forward_flops_per_example"]
    budget = TIMING_FLOPS.get(device.type, TIMING_FLOPS["cpu"])
    batch = max(1, min(p.batch_size, int(budget // per_example)))
    q = replace(p, batch_size=batch)
    shape = (q.in_channels, q.image_size, q.image_size) if q.model == "unet" else (q.in_channels,)
    x0 = torch.rand((2 * batch, *shape), generator=torch.Generator().manual_seed(0)) * 2 - 1
    trainer = Trainer(new_model(q), build_diffusion(q), x0, q.train_config(),
                      out_dir=Path(os.devnull) / "unused", device=device)  # fmt: skip
    for _ in range(WARMUP_STEPS):
        trainer.train_step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    timed, start = 0, time.perf_counter()
    while timed < TIMED_STEPS and (timed < 1 or time.perf_counter() - start < TIMING_SECONDS):
        trainer.train_step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        timed += 1
    seconds = (time.perf_counter() - start) / timed
    return seconds * p.batch_size / batch, batch, timed


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def dry_run(p: Preset, device: torch.device, assignments: list[str]) -> None:
    """Print the settings, size, cost and a time estimate of training ``p`` on ``device``."""
    from minidiff import runs
    from minidiff.configs import Preset, describe

    info = describe(p)
    width = max(len(f.name) for f in fields(Preset))
    changed = f" (with {', '.join(assignments)})" if assignments else ""
    print(f"minidiff train --config {p.name}{changed}: dry run, nothing is written")
    for f in fields(Preset):
        print(f"  {f.name:<{width}}  {getattr(p, f.name)!r}")
    print(f"parameters         {info['parameters']:,}")
    print(f"FLOPs per example  {info['forward_flops_per_example']:.3e} (forward)")
    print(f"FLOPs per step     {info['train_flops_per_step']:.3e} (3 x forward x batch "
          f"{p.batch_size})")  # fmt: skip
    print(f"FLOPs in total     {info['train_flops_total']:.3e} ({p.steps:,} steps)")
    epochs = info["epochs"]
    if epochs is None:  # 2-D data: `minidiff.runs.training_data` draws TOY_POINTS points
        epochs = info["examples_seen"] / runs.TOY_POINTS
    print(f"epochs             {epochs:.1f}")
    seconds, batch, timed = estimate_step_seconds(p, device)
    total = seconds * p.steps
    scaled = f", scaled linearly to batch {p.batch_size}" if batch != p.batch_size else ""
    rate = info["train_flops_per_step"] / seconds if seconds > 0 else math.inf
    print(f"time estimate      {_duration(total)} on {device} ({seconds:.3g} s per step, "
          f"{rate:.3g} FLOP/s)")  # fmt: skip
    print(f"  estimated from {timed} timed training steps at batch {batch}{scaled}, after "
          f"{WARMUP_STEPS} warm-up steps, times {p.steps:,} steps; one process, without "
          "sampling or checkpoints")  # fmt: skip
