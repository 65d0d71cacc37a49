"""``minidiff train``: train a preset of `minidiff.configs` into a run folder.

    minidiff train --config digits --out runs/digits
    minidiff train --config digits --set steps=500 --set lr=5e-4 --out runs/short
    minidiff train --config digits --out runs/digits --resume       # continue a stopped run
    minidiff train --config cifar10 --dry-run                       # size, cost, time estimate
    torchrun --nproc_per_node=4 -m minidiff train --config cifar10 --out runs/cifar10

``--set`` takes ``section.field=value`` (``training.lr=5e-4``, ``model.channel_mults=1,2``)
or a bare ``field=value`` where one section has that field. The folder's layout is that
of `minidiff.runs.train`. ``--dry-run`` writes nothing: it prints the settings, the
parameter count, the training FLOPs (`minidiff.configs.describe`) and a time estimate
from a few timed training steps on the chosen device (`minidiff.runs.estimate_step_seconds`).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from minidiff.cli._common import add_device_option, fail

if TYPE_CHECKING:  # torch and the package load when a command runs, not for --help
    import torch

    from minidiff.configs import Preset

__all__ = ["add_parser", "run"]

INTERRUPTED = 130  # the exit status of a run stopped by Ctrl-C (128 + SIGINT)


def add_parser(commands) -> argparse.ArgumentParser:
    """Add ``train`` to the subcommands ``commands`` (an argparse subparsers object)."""
    train = commands.add_parser(
        "train",
        help="train a preset (toy2d, digits, cifar10, text-kjv, audio, ...) into a run folder",
        description="Train a preset of minidiff.configs; writes OUT/run.json, "
        "OUT/metrics.jsonl, OUT/checkpoints/ and OUT/samples/ (every sample_every steps). "
        "Works under torchrun (one process per GPU).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument(
        "--config", required=True, metavar="NAME",
        help="a preset of minidiff.configs: toy2d, digits, digits-cond, cifar10, "
        "cifar10-small, cifar10-cond, text-kjv, audio or audio-digits",
    )  # fmt: skip
    train.add_argument(
        "--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
        help="override a preset setting (repeatable), e.g. --set training.steps=500 --set "
        "model.channel_mults=1,2; a bare FIELD=VALUE works where one section has FIELD",
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
    from minidiff.configs import build_diffusion, override, preset
    from minidiff.data import DownloadError
    from minidiff.training.checkpoint import CheckpointError

    try:  # the preset, its network and its diffusion, built once for the whole command
        p = override(preset(args.config), args.set)
        model, diffusion = runs.new_model(p), build_diffusion(p)
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
            dry_run(p, device or runs.resolve_device(None), args.set, model, diffusion)
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
        runs.check_run_folder(p, args.out, resume=args.resume, diffusion=diffusion)
        data = _load_data(p, args, device, rank, distributed)
        runs.check_training_data(p, data)
    except (ValueError, CheckpointError, FileNotFoundError, DownloadError) as err:
        fail("train", str(err))
    return _train(p, args, data, (model, diffusion), device, distributed)


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


def _train(p: Preset, args, data, built, device, distributed: bool) -> int:
    from minidiff import runs
    from minidiff.training import CheckpointError, DiskFullError, cleanup_distributed

    model, diffusion = built
    try:
        trainer = runs.train(
            p, args.out, data=data, model=model, diffusion=diffusion, resume=args.resume,
            device=device, progress=not args.no_progress,
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
    lines.append(f"  sample from it  minidiff sample --checkpoint {out}{_sample_options(p, out)}")
    return "\n".join(lines)


def _sample_options(p: Preset, out: Path) -> str:
    """The options of ``minidiff sample`` for a run of ``p`` in ``out``."""
    if p.model_kind == "sequence":
        return " --n 5 --length 256"
    if p.model_kind == "diffwave":
        return f" --n 8 --out {out / 'audio'}"
    return f" --out {out / 'grid.png'}"


# -- the dry run -------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def dry_run(p: Preset, device: torch.device, assignments: list[str], model, diffusion) -> None:
    """Print the settings, size, cost and a time estimate of training ``p`` (with its
    ``model`` and ``diffusion``) on ``device``."""
    from minidiff import runs
    from minidiff.configs import describe
    from minidiff.runs.timing import WARMUP_STEPS
    from minidiff.sections import leaves, to_plain

    info = describe(p, model)
    settings = to_plain(p)
    paths = [leaf.path for leaf in leaves(p)]
    width = max(len(path) for path in paths)
    changed = f" (with {', '.join(assignments)})" if assignments else ""
    print(f"minidiff train --config {p.name}{changed}: dry run, nothing is written")
    print(f"  {'model':<{width}}  {p.model_kind!r}")
    for path in paths:
        value = settings
        for name in path.split("."):
            value = value[name]
        print(f"  {path:<{width}}  {value!r}")
    print(f"parameters         {info['parameters']:,}")
    print(f"FLOPs per example  {info['forward_flops_per_example']:.3e} (forward)")
    batch, steps = p.training.batch_size, p.training.steps
    print(f"FLOPs per step     {info['train_flops_per_step']:.3e} (3 x forward x batch "
          f"{batch})")  # fmt: skip
    print(f"FLOPs in total     {info['train_flops_total']:.3e} ({steps:,} steps)")
    epochs = info["epochs"]
    if epochs is None and p.model_kind == "mlp":  # 2-D data: TOY_POINTS points are drawn
        epochs = info["examples_seen"] / runs.TOY_POINTS
    if epochs is not None:
        print(f"epochs             {epochs:.1f}")
    seconds, timed_batch, timed = runs.estimate_step_seconds(p, device, model, diffusion)
    total = seconds * steps
    scaled = f", scaled linearly to batch {batch}" if timed_batch != batch else ""
    rate = info["train_flops_per_step"] / seconds if seconds > 0 else math.inf
    print(f"time estimate      {_duration(total)} on {device} ({seconds:.3g} s per step, "
          f"{rate:.3g} FLOP/s)")  # fmt: skip
    print(f"  estimated from {timed} timed training steps at batch {timed_batch}{scaled}, "
          f"after {WARMUP_STEPS} warm-up steps, times {steps:,} steps; one process, without "
          "sampling or checkpoints")  # fmt: skip
