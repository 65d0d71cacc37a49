"""The metrics file of a training run: one JSON line every ``log_every`` steps.

Each line holds ``step``, ``loss`` and ``grad_norm`` (means over the good steps since the
previous line; None if all were skipped), ``lr``, ``images_per_s`` and ``skipped`` (the
run's skipped steps so far), the `METRIC_KEYS`. Records are appended as training goes
(`append_record`) and trimmed on resume to those up to the resumed checkpoint (`trim_log`).

An append that a crash or a full disk cuts short leaves a torn last line (part of a
record, or NUL bytes where a file system had reserved space that was never written).
`trim_log` keeps every complete record and drops torn lines with a one-line
`RepairWarning`, so that a torn log never stops a resume.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

from minidiff import atomic

__all__ = [
    "METRICS_FILE",
    "METRIC_KEYS",
    "MetricsInterval",
    "append_record",
    "read_records",
    "trim_log",
]

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


def append_record(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append ``record`` to the log ``path`` as one line of JSON (its folder is created)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as file:
        file.write(json.dumps(record) + "\n")
        file.flush()


def _parse(line: bytes) -> dict[str, Any] | None:
    """The record on ``line``, or None if the line is torn (not a whole JSON object with
    an integer step, or holding NUL bytes)."""
    if b"\x00" in line:
        return None
    try:
        record = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    step = record.get("step") if isinstance(record, dict) else None
    return record if isinstance(step, int) and not isinstance(step, bool) else None


def read_records(path: str | os.PathLike) -> tuple[list[dict[str, Any]], int]:
    """The complete records of the log ``path`` in order, and the number of bytes of
    torn lines left out."""
    records, torn = [], 0
    for line in Path(path).read_bytes().split(b"\n"):
        if not line.strip(b" \t\r"):
            continue
        record = _parse(line)
        if record is None:
            torn += len(line)
        else:
            records.append(record)
    return records, torn


def trim_log(path: str | os.PathLike, last_step: int) -> None:
    """Rewrite the log ``path`` (atomically) to its complete records up to ``last_step``:
    the lines of later steps (written by a run that crashed before its next checkpoint)
    and torn lines go; a torn line is reported by a one-line `RepairWarning`."""
    path = Path(path)
    if not path.exists():
        return
    records, torn = read_records(path)
    kept = [record for record in records if record["step"] <= last_step]
    text = "".join(json.dumps(record) + "\n" for record in kept)
    if text.encode("utf-8") != path.read_bytes():
        atomic.write_text(path, text)
    if torn:
        warnings.warn(
            f"{path}: dropped {torn} bytes of torn lines (a write cut short by a crash or a "
            f"full disk); kept its complete records up to step {last_step}",
            atomic.RepairWarning,
            stacklevel=2,
        )
