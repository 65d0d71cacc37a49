"""The metrics log of a run: one JSON record per line, appended as training goes, and
trimmed on resume to the records up to the resumed checkpoint.

An append that a crash or a full disk cuts short leaves a torn last line (part of a
record, or NUL bytes where a file system had reserved space that was never written).
`trim_log` keeps every complete record and drops torn lines with a one-line
`RepairWarning`, so that a torn log never stops a resume.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from minidiff import atomic

__all__ = ["append_record", "read_records", "trim_log"]


def append_record(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append ``record`` to the log ``path`` as one line of JSON (the folder must exist)."""
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
