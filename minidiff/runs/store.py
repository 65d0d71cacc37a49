"""The run folder: the preset kept as plain data, and the checks before a run writes.

A run folder holds ``run.json`` (the preset), ``metrics.jsonl``, ``checkpoints/`` and
``samples/``; every checkpoint also stores the preset under ``config["run"]["preset"]``.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any, get_origin, get_type_hints

from minidiff.configs import Preset
from minidiff.training.checkpoint import (
    MARKER,
    CheckpointError,
    CheckpointNotFoundError,
    find_latest_checkpoint,
    read_checkpoint_config,
)
from minidiff.training.checkpoint_files import checkpoint_candidates
from minidiff.training.trainer import CHECKPOINT_DIR, METRICS_FILE

__all__ = [
    "RESUMABLE_FIELDS",
    "RUN_FILE",
    "RunError",
    "check_run_folder",
    "checkpoint_folder",
    "preset_from_dict",
    "preset_to_dict",
    "stored_preset",
]

RUN_FILE = "run.json"
SAMPLES_DIR = "samples"
RUN_FORMAT = "minidiff-run"
# Fields a resumed run may change: they leave the training trajectory as it is.
RESUMABLE_FIELDS = (
    "steps", "log_every", "sample_every", "checkpoint_every", "keep_last", "compile",
    "memory_format", "sampler", "sampling_steps", "sampling_eta", "num_samples",
)  # fmt: skip


class RunError(ValueError):
    """A run folder that holds another run, or a checkpoint that does not say its preset."""


# -- presets as plain data -------------------------------------------------------------


def preset_to_dict(p: Preset) -> dict[str, Any]:
    """``p`` as JSON-ready plain data (tuples as lists): what run.json and checkpoints keep."""
    return {f.name: _plain(getattr(p, f.name)) for f in fields(Preset)}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def preset_from_dict(data: Any, source: str | os.PathLike = "preset") -> Preset:
    """The `Preset` stored by `preset_to_dict` (a field missing from an older run takes
    its default).

    Raises:
        RunError: not a dict, unknown or missing fields, or values the `Preset` refuses;
            the message names ``source``.
    """
    if not isinstance(data, dict):
        raise RunError(f"{source}: the stored preset is not a mapping, got {type(data).__name__}")
    hints = get_type_hints(Preset)
    unknown = sorted(set(data) - set(hints))
    if unknown:
        raise RunError(f"{source}: the stored preset has unknown fields {unknown}")
    values = {
        name: tuple(value)
        if get_origin(hints[name]) is tuple and isinstance(value, list)
        else value
        for name, value in data.items()
    }
    try:
        return Preset(**values)
    except (TypeError, ValueError) as err:
        raise RunError(f"{source}: the stored preset is not valid: {err}") from err


def checkpoint_folder(path: Path) -> Path:
    """The checkpoint of ``path``: a step_N folder, a checkpoints/ folder, or a run folder."""
    if not path.exists():
        raise CheckpointNotFoundError(f"no checkpoint at {path}: it does not exist")
    if path.is_dir() and (path / MARKER).exists():
        return path
    for directory in (path / CHECKPOINT_DIR, path):
        latest = find_latest_checkpoint(directory)
        if latest is not None:
            return latest
    raise CheckpointNotFoundError(
        f"{path} holds no minidiff checkpoint (expected a run folder, its {CHECKPOINT_DIR}/ "
        "folder or one step_N folder of it)"
    )


def stored_preset(path: str | os.PathLike) -> Preset:
    """The preset stored in the checkpoint at ``path`` (see `load_run` for ``path``).

    Raises:
        CheckpointNotFoundError, CheckpointError: no checkpoint, or a broken one.
        RunError: the checkpoint was saved without a preset (a bare `Trainer` run).
    """
    folder = checkpoint_folder(Path(path))
    config = read_checkpoint_config(folder)
    run = config.get("run") if isinstance(config, dict) else None
    if not isinstance(run, dict) or "preset" not in run:
        raise RunError(
            f"{folder} stores no preset (it was saved by a Trainer without run_info, not by "
            "minidiff.runs.train): build its model yourself and use load_checkpoint"
        )
    return preset_from_dict(run["preset"], folder)


# -- the run folder --------------------------------------------------------------------


def _run_files(out: Path) -> list[str]:
    """The names of a run's files and folders that exist in ``out``."""
    names = (RUN_FILE, CHECKPOINT_DIR, METRICS_FILE, SAMPLES_DIR)
    return [name for name in names if (out / name).exists()] if out.is_dir() else []


def _read_run_file(path: Path) -> Preset:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunError(f"{path} is not a minidiff run file: {err}") from err
    if not isinstance(record, dict) or record.get("format") != RUN_FORMAT:
        raise RunError(f"{path} is not a minidiff run file (no format {RUN_FORMAT!r})")
    return preset_from_dict(record.get("preset"), path)


def _differences(saved: Preset, given: Preset) -> list[str]:
    return [
        f"{f.name}: saved {getattr(saved, f.name)!r}, given {getattr(given, f.name)!r}"
        for f in fields(Preset)
        if f.name not in RESUMABLE_FIELDS and getattr(saved, f.name) != getattr(given, f.name)
    ]


def _latest_preset(directory: Path) -> tuple[Path, Preset] | None:
    """The newest checkpoint in ``directory`` whose preset reads, with the preset (a
    resume passes over the newer ones that do not load); None if there is none."""
    candidates = checkpoint_candidates(directory)
    for folder in candidates:
        try:
            return folder, stored_preset(folder)
        except CheckpointError:
            if folder == candidates[-1]:
                raise
    return None


def check_run_folder(p: Preset, out_dir: str | os.PathLike, *, resume: bool = False) -> bool:
    """Check that ``train(p, out_dir, resume=resume)`` may write to ``out_dir``; reads only.

    A new run needs a folder without a run's files (other files are left alone). A
    resumed run needs the same preset as the one saved, up to `RESUMABLE_FIELDS`.

    Returns:
        Whether there is a checkpoint to resume from.

    Raises:
        RunError: ``out_dir`` is a file, holds a run while ``resume`` is False, or holds a
            run of another preset or checkpoints that store no preset.
        CheckpointError: its latest checkpoint is unreadable.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} exists and is not a folder")
    found = _run_files(out)
    if found and not resume:
        raise RunError(
            f"{out} already holds a run ({', '.join(found)}): resume it with resume=True "
            "(minidiff train --resume), or choose another folder"
        )
    saved = [(out / RUN_FILE, _read_run_file(out / RUN_FILE))] if RUN_FILE in found else []
    latest = _latest_preset(out / CHECKPOINT_DIR)
    if latest is not None:
        saved.append(latest)
    for source, old in saved:
        differences = _differences(old, p)
        if differences:
            raise RunError(
                f"{out} holds a run of another preset ({source}): "
                + "; ".join(differences)
                + "; choose another folder, or resume with the saved settings"
            )
    return latest is not None
