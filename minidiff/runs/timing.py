"""How long a preset's training takes, estimated by timing a few steps (the time estimate
of ``minidiff train --dry-run``)."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from minidiff.configs import MODEL_KINDS, Preset, build_diffusion, describe
from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.runs.data import new_model
from minidiff.training.trainer import Trainer

__all__ = ["TIMED_STEPS", "TIMING_FLOPS", "TIMING_SECONDS", "WARMUP_STEPS",
           "estimate_step_seconds"]  # fmt: skip

# FLOPs of one timed step, at most: the timed batch is the full batch or as many examples as
# fit in this budget (a CPU takes a few seconds for 5e10; a GPU needs a full batch to be busy)
TIMING_FLOPS = {"cpu": 5e10, "cuda": 1e14}
WARMUP_STEPS = 2  # untimed steps first (allocations, kernel selection, compilation) ...
TIMED_STEPS = 50  # ... then at most this many timed steps ...
TIMING_SECONDS = 3.0  # ... and no more once this much time has been measured


def estimate_step_seconds(
    p: Preset,
    device: torch.device,
    model: nn.Module | None = None,
    diffusion: GaussianDiffusion | None = None,
) -> tuple[float, int, int]:
    """Seconds per training step of ``p`` at its full batch, estimated by timing.

    The steps are timed at the full batch when a step costs at most
    ``TIMING_FLOPS[device.type]``, else at the largest batch within that budget (at least
    1), and scaled linearly to the full batch: a step's cost is nearly linear in the batch
    once each example keeps the device busy, as a large image network does on a CPU. The
    first `WARMUP_STEPS` steps (memory allocation, kernel selection, compilation) are left
    out as a warm-up.
    Random data of the preset's shape stands in for the data set; nothing is written.
    ``model`` and ``diffusion`` (default: `new_model` and `build_diffusion` of ``p``) are
    the ones timed; the model's weights change, as in training.

    Returns:
        ``(seconds_per_step, timed_batch, timed_steps)``.
    """
    model = new_model(p) if model is None else model
    diffusion = build_diffusion(p) if diffusion is None else diffusion
    per_example = 3 * describe(p, model)["forward_flops_per_example"]
    budget = TIMING_FLOPS.get(device.type, TIMING_FLOPS["cpu"])
    batch = max(1, min(p.training.batch_size, int(budget // per_example)))
    config = replace(p.training, batch_size=batch)
    generator = torch.Generator().manual_seed(0)
    if MODEL_KINDS[p.model_kind].data == "tokens":  # token ids of the vocabulary
        x0 = torch.randint(0, p.model.vocab_size, (2 * batch, *p.sample_shape), generator=generator)
    else:  # values in [-1, 1]
        x0 = torch.rand((2 * batch, *p.sample_shape), generator=generator) * 2 - 1
    trainer = Trainer(model, diffusion, x0, config, out_dir=Path(os.devnull) / "unused",
                      device=device)  # fmt: skip
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
    return seconds * p.training.batch_size / batch, batch, timed
