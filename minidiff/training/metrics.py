"""The metrics file of a training run: one JSON line every ``log_every`` steps.

Each line holds ``step``, ``loss`` and ``grad_norm`` (means over the good steps since the
previous line; None if all were skipped), ``lr``, ``images_per_s`` and ``skipped`` (the
run's skipped steps so far), the `METRIC_KEYS`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

__all__ = ["METRICS_FILE", "METRIC_KEYS", "MetricsInterval", "append_record", "truncate_metrics"]

METRIC_KEYS = ("step", "loss", "grad_norm", "lr", "images_per_s", "skipped")
METRICS_FILE = "metrics.jsonl"


class MetricsInterval:
    """Sums over the steps since the last metrics line."""

    def __init__(self) -> None:
        self.loss, self.grad_norm, self.good, self.images = 0.0, 0.0, 0, 0
        self.start = time.perf_counter()

    def add(self, images: int, loss: float | None = None, grad_norm: float | None = None) -> None:
        """Count one step of ``images`` examples; ``loss`` and ``grad_norm`` for a good one."""
        self.images += images
        if loss is not None and grad_norm is not None:
            self.loss += loss
            self.grad_norm += grad_norm
            self.good += 1

    def record(self, step: int, lr: float, skipped: int) -> dict[str, Any]:
        """The metrics line of the interval, which then starts again."""
        now, good = time.perf_counter(), self.good
        record = {
            "step": step,
            "loss": self.loss / good if good else None,
            "grad_norm": self.grad_norm / good if good else None,
            "lr": lr,
            "images_per_s": self.images / max(now - self.start, 1e-9),
            "skipped": skipped,
        }
        self.loss, self.grad_norm, self.good, self.images = 0.0, 0.0, 0, 0
        self.start = now
        return record


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line to ``path`` (its folder is created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as file:
        file.write(json.dumps(record) + "\n")
        file.flush()


def truncate_metrics(path: Path, step: int) -> None:
    """Drop the lines of the metrics file ``path`` after ``step`` (from a run that
    crashed after its last checkpoint); a missing file is left missing."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= step]
    if len(kept) != len(lines):
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
