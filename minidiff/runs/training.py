"""Training a preset into its run folder (see `minidiff.runs`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from minidiff import atomic
from minidiff.configs import IMAGE_MODELS, Preset, build_diffusion
from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.runs.data import check_training_data, new_model, resolve_device, training_data
from minidiff.runs.grids import save_image_grid
from minidiff.runs.lock import lock_run_folder
from minidiff.runs.sampling import default_steps, draw_samples, grid_condition
from minidiff.runs.store import (
    RUN_FILE,
    RUN_FORMAT,
    SAMPLES_DIR,
    check_run_folder,
    preset_to_dict,
)
from minidiff.training.distributed import current_rank_and_world
from minidiff.training.trainer import METRICS_FILE, Trainer

__all__ = ["GRID_SAMPLES", "train"]

GRID_SAMPLES = 64  # images in the grids written during training (at most)
GRID_KINDS = (*IMAGE_MODELS, "mlp")  # model kinds whose samples the grids of sample_every show


def train(
    p: Preset,
    out_dir: str | os.PathLike,
    *,
    data=None,
    model: nn.Module | None = None,
    diffusion=None,
    resume: bool = False,
    device: torch.device | str | None = None,
    progress: bool = True,
    root: str | os.PathLike | None = None,
    download: bool = False,
    stop: Callable[[int], bool] | None = None,
) -> Trainer:
    """Train preset ``p`` into the folder ``out_dir`` (layout in the module docstring).

    Args:
        p: the preset.
        out_dir: the run folder (created if missing).
        data: the training data (default: `training_data` of ``p``).
        model, diffusion: the preset's network, initialised from ``p.training.seed``, and
            its process, Gaussian or discrete (default: `new_model` and `build_diffusion`
            of ``p``; a caller that has built them, e.g. to check the preset, passes them
            on).
        resume: continue the run in ``out_dir`` from its latest checkpoint (or start it if
            there is none yet); False refuses a folder that holds a run.
        device: where to train (None: CUDA if available); under torchrun the caller
            passes the process's device (`minidiff.training.setup_distributed`).
        progress: show a progress bar.
        root, download: see `training_data`.
        stop: ends training early when ``stop(step)`` is True (`Trainer.train`), e.g. a
            `minidiff.training.budget.Budget`; the run can be resumed later.

    Returns:
        The finished `Trainer` (its ``step``, ``model``, ``ema``, ``checkpoint_dir``).

    Raises:
        RunError: see `check_run_folder`; nothing is written then. `RunLockedError`:
            another trainer holds ``out_dir`` (`lock_run_folder`, held until the end).
        ValueError: ``out_dir`` cannot be created, or the data is smaller than a batch.
        CheckpointError: resuming, no checkpoint loads; nothing is written then.
    """
    out, device = Path(out_dir), resolve_device(device)
    atomic.check_output_location(out, "out_dir")
    model = new_model(p) if model is None else model
    diffusion = build_diffusion(p) if diffusion is None else diffusion
    has_checkpoint = check_run_folder(p, out, resume=resume, diffusion=diffusion)
    if data is None:
        data = training_data(p, root=root, download=download, device=device)
    check_training_data(p, data)
    rank, world_size = current_rank_and_world()
    if world_size > 1:  # every rank has read the folder before rank 0 writes to it
        torch.distributed.barrier()
    with lock_run_folder(out) if rank == 0 else contextlib.nullcontext():
        if rank == 0:  # again, now that no other trainer can write to the folder
            has_checkpoint = check_run_folder(p, out, resume=resume, diffusion=diffusion)
        grids = rank == 0 and p.model_kind in GRID_KINDS
        hook = _grid_hook(p, diffusion, out / SAMPLES_DIR) if grids else None
        trainer = Trainer(  # resuming loads here, before anything is written
            model, diffusion, data, p.training, out_dir=out, device=device,
            resume=has_checkpoint, progress=progress and rank == 0, sample_fn=hook,
            run_info={"preset": preset_to_dict(p)},
        )  # fmt: skip
        if rank == 0:
            record = {"format": RUN_FORMAT, "preset": preset_to_dict(p)}
            atomic.write_json(out / RUN_FILE, record, indent=2)
            if not has_checkpoint:  # log lines of an earlier start that saved no checkpoint
                (out / METRICS_FILE).unlink(missing_ok=True)
        trainer.train(stop=stop)
    return trainer


def _grid_hook(p: Preset, diffusion: GaussianDiffusion, folder: Path):
    """``hook(ema_model, step)`` writing ``folder/step_N.png``: `GRID_SAMPLES` samples at
    most, drawn with the preset's sampler and the same seed at every step; for a
    class-conditional or caption preset, one row per class (`grid_condition`) guided with
    ``p.sampling.guidance``."""
    s, images = p.sampling, p.model_kind in IMAGE_MODELS
    n = min(s.num_samples, GRID_SAMPLES) if images else s.num_samples  # images, points
    scale = max(1, 32 // p.sample_shape[-1]) if images else 1  # small images: enlarged
    labels, nrow = grid_condition(p, n)
    n = n if labels is None else len(labels)  # ceil(n / classes) of each class, a row each

    def hook(ema_model: nn.Module, step: int) -> None:
        x0 = draw_samples(
            ema_model, diffusion, p, n, sampler=s.sampler, steps=default_steps(p, s.sampler),
            eta=s.sampling_eta if s.sampler == "ddim" else 0.0, seed=p.training.seed,
            batch_size=n, labels=labels, guidance=s.guidance,
        )  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        save_image_grid(x0, folder / f"step_{step:06d}.png", nrow, scale=scale)

    return hook
