"""The training curve of a run: its metrics.jsonl read back and drawn."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from minidiff import atomic
from minidiff.training.trainer import METRICS_FILE

__all__ = ["read_metrics", "save_loss_plot"]


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of ``run_dir/metrics.jsonl``, in order (one per ``log_every`` steps:
    ``step``, ``loss``, ``grad_norm``, ``lr``, ``images_per_s``, ``skipped``).

    Raises:
        FileNotFoundError: the run has no metrics file.
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {METRICS_FILE} in {str(run_dir)!r}")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def save_loss_plot(run_dir: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Draw the training loss of the run in ``run_dir`` (log scale) and its gradient norm,
    and write the figure to ``path`` as a PNG (atomically).

    Each logged loss is the mean over ``log_every`` steps; the loss of one step is noisy
    because t is drawn at random (Ho et al. 2020, Algorithm 1), so the curve shows these
    means. Returns the path written.
    """
    from matplotlib.figure import Figure

    records = [r for r in read_metrics(run_dir) if r["loss"] is not None]
    if not records:
        raise ValueError(f"the run in {str(run_dir)!r} has no logged loss yet")
    step = np.array([r["step"] for r in records])
    figure = Figure(figsize=(8, 3), layout="constrained")
    loss_ax, norm_ax = figure.subplots(1, 2)
    loss_ax.plot(step, [r["loss"] for r in records])
    loss_ax.set(yscale="log", xlabel="step", ylabel="loss (mean per log interval)")
    norm_ax.plot(step, [r["grad_norm"] for r in records], color="tab:orange")
    norm_ax.set(yscale="log", xlabel="step", ylabel="gradient norm (before clipping)")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    path = Path(path)
    atomic.write_file(path, buffer.getvalue())
    return path
