"""Checkpoints that survive a crash at any moment, and load without unsafe unpickling.

Layout of a checkpoint directory::

    run/
      step_000100/            one complete checkpoint
        model.safetensors     the model's state_dict (safetensors: no code, no pickle)
        ema.safetensors       the EMA shadow weights (if an EMA was saved)
        state.pt              optimizer, scheduler, step, data state, RNG state, config
        checkpoint.json       completion marker: format, version, step, file sizes
      step_000200/
      latest.json             {"step": 200, "name": "step_000200"}

``state.pt`` is read only with ``torch.load(..., weights_only=True)``, which refuses
anything but tensors and plain containers and numbers: a crafted file cannot run code.

Saving is atomic, by the file-system mechanics of `minidiff.training.atomic`: (1) every
file is written into ``.tmp-step_000200-XXXX`` and fsynced, the marker last; (2) the
folder is renamed to ``step_000200``; (3) ``latest.json`` is replaced atomically: the
commit point; (4) the leftovers of interrupted saves, and checkpoints beyond
``keep_last``, are deleted. A crash before (3) leaves the previous checkpoint as the
latest; after (3), the new one.

`find_latest_checkpoint` follows ``latest.json``, ignores temporaries and folders without
a valid marker, and scans the step folders, largest step first, when the pointer is
missing or names a broken checkpoint (so a run's first save commits at (2)). Re-saving an
existing step moves the old folder to ``.old-step_N-XXXX/step_N`` until the new one is in
place: if that save is interrupted, the scan still finds the old copy and the next save
puts it back. One process writes to a directory.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import nn

from minidiff.training import atomic
from minidiff.training.ema import EMA, _compare_shapes

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "save_checkpoint",
    "load_checkpoint",
    "find_latest_checkpoint",
    "read_checkpoint_config",
]

FORMAT = "minidiff-checkpoint"
VERSION = 1
MARKER = "checkpoint.json"
LATEST = "latest.json"
MODEL_FILE = "model.safetensors"
EMA_FILE = "ema.safetensors"
STATE_FILE = "state.pt"
_STEP_DIR = re.compile(r"^step_(\d+)$")


class CheckpointError(RuntimeError):
    """A checkpoint that is foreign, corrupt, incomplete or does not fit the model."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint at the given path."""


# -- reading -----------------------------------------------------------------------------


def _step_name(step: int) -> str:
    return f"step_{step:06d}"


def _read_marker(folder: Path) -> dict[str, Any]:
    """The parsed, validated marker of ``folder``; raises CheckpointError if incomplete."""
    marker_path = folder / MARKER
    if not marker_path.is_file():
        raise CheckpointError(
            f"{folder} is not a complete minidiff checkpoint: {MARKER} is missing"
        )
    try:
        marker = json.loads(marker_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{marker_path} is not valid JSON: {err}") from err
    if not isinstance(marker, dict) or marker.get("format") != FORMAT:
        raise CheckpointError(
            f"{folder} is not a minidiff checkpoint ({MARKER} lacks format {FORMAT!r})"
        )
    if marker.get("version") != VERSION:
        raise CheckpointError(f"{folder}: unsupported checkpoint version {marker.get('version')!r}")
    files = marker.get("files")
    if not isinstance(files, dict) or MODEL_FILE not in files or STATE_FILE not in files:
        raise CheckpointError(f"{folder}: {MARKER} does not list {MODEL_FILE} and {STATE_FILE}")
    for name, size in files.items():
        if name not in (MODEL_FILE, EMA_FILE, STATE_FILE) or not isinstance(size, int):
            raise CheckpointError(f"{folder}: {MARKER} lists an unknown file {name!r}")
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"{folder} is incomplete: {name} is missing")
        if path.stat().st_size != size:
            raise CheckpointError(
                f"{folder} is corrupt: {name} has {path.stat().st_size} bytes, expected {size}"
            )
    return marker


def _is_complete(folder: Path) -> bool:
    try:
        _read_marker(folder)
    except (CheckpointError, OSError):
        return False
    return True


def _step_folders(directory: Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` for every ``step_N`` folder, by increasing step."""
    found = []
    for entry in directory.iterdir():
        match = _STEP_DIR.match(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def _set_aside(directory: Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` for the ``.old-step_N-XXXX/step_N`` copies moved aside by a
    re-save of step N that was interrupted before its commit."""
    copies = [(_STEP_DIR.match(inner.name), inner) for inner in atomic.set_aside_folders(directory)]
    return sorted((int(match.group(1)), inner) for match, inner in copies if match)


def find_latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint in ``directory``, or None if there is none.

    Follows ``latest.json`` when it names a complete checkpoint; otherwise returns the
    complete ``step_N`` folder with the largest ``N``. Temporaries are ignored.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return None
    try:
        pointer = json.loads((directory / LATEST).read_text(encoding="utf-8"))
        name = pointer["name"]
        if isinstance(name, str) and _STEP_DIR.match(name) and _is_complete(directory / name):
            return directory / name
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing or broken pointer: scan instead
    # largest step first; at equal steps the step_N folder before a copy set aside
    candidates = [(step, 1, folder) for step, folder in _step_folders(directory)]
    candidates += [(step, 0, folder) for step, folder in _set_aside(directory)]
    for _, _, folder in sorted(candidates, reverse=True):
        if _is_complete(folder):
            return folder
    return None


# -- saving ------------------------------------------------------------------------------


def _tensors_for_safetensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies; safetensors refuses tensors that share storage (tied weights)."""
    out, seen = {}, set()
    for name, tensor in tensors.items():
        tensor = tensor.detach().to("cpu").contiguous()
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if key in seen or tensor.untyped_storage().nbytes() != tensor.nbytes:
            tensor = tensor.clone()
        seen.add(key)
        out[name] = tensor
    return out


def _check_plain_data(**values: Any) -> None:
    """Each value must survive ``torch.load(..., weights_only=True)``, or loading would fail."""
    for argument, value in values.items():
        buffer = io.BytesIO()
        try:
            torch.save(value, buffer)
            buffer.seek(0)
            torch.load(buffer, weights_only=True)
        except Exception as err:  # noqa: BLE001 - report any type weights_only refuses
            raise ValueError(
                f"{argument} must hold only tensors, dicts, lists, tuples, ints, floats, "
                f"bools, strings and None (what weights_only=True loads); got {err}"
            ) from err


def _validate_save_args(step: int, keep_last: int | None, config: Any) -> None:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    if keep_last is not None and (
        isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1
    ):
        raise ValueError(f"keep_last must be a positive int or None, got {keep_last!r}")
    if config is not None and not isinstance(config, dict):
        raise ValueError(f"config must be a dict or None, got {type(config).__name__}")


def save_checkpoint(
    path_or_dir: str | os.PathLike,
    *,
    model: nn.Module,
    ema: EMA | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    step: int,
    data_state: Any = None,
    rng_state: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    keep_last: int | None = None,
) -> Path:
    """Save a checkpoint atomically as ``path_or_dir/step_{step:06d}`` (see the module doc).

    Args:
        path_or_dir: the run's checkpoint directory (created if missing).
        model: the network; its ``state_dict()`` goes to ``model.safetensors``.
        ema: the EMA, saved to ``ema.safetensors`` (its counters to ``state.pt``).
        optimizer, scheduler: anything with ``state_dict()``; saved to ``state.pt``.
        step: the training step, a non-negative int.
        data_state, rng_state, config: plain data (tensors, dicts, lists, tuples, ints,
            floats, bools, strings, None), e.g. `capture_rng_state()`'s output.
        keep_last: keep only this many step folders (the largest steps, and always the
            one just saved); None keeps all.

    Returns:
        The folder of the new checkpoint.
    """
    _validate_save_args(step, keep_last, config)
    _check_plain_data(data_state=data_state, rng_state=rng_state, config=config)
    parent = Path(path_or_dir)
    parent.mkdir(parents=True, exist_ok=True)
    _recover(parent)
    name = _step_name(step)
    state = {
        "format": FORMAT,
        "version": VERSION,
        "step": step,
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "ema": None if ema is None else _ema_counters(ema),
        "data_state": data_state,
        "rng_state": rng_state,
        "config": config,
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payloads = {MODEL_FILE: safetensors.torch.save(_tensors_for_safetensors(model.state_dict()))}
    if ema is not None:
        payloads[EMA_FILE] = safetensors.torch.save(_tensors_for_safetensors(ema.shadow))
    payloads[STATE_FILE] = buffer.getvalue()
    sizes = {file: len(data) for file, data in payloads.items()}
    marker = {"format": FORMAT, "version": VERSION, "step": step, "files": sizes}
    payloads[MARKER] = json.dumps(marker, indent=2).encode("utf-8")  # written last

    aside = atomic.write_folder(parent, name, payloads)  # re-saving: the old copy, set aside
    final = parent / name
    atomic.write_json(parent / LATEST, {"step": step, "name": name})  # the commit point
    if aside is not None:
        atomic.remove_tree(aside)
    atomic.remove_temporaries(parent, "step_", [LATEST])
    if keep_last is not None:
        complete = [folder for _, folder in _step_folders(parent) if _is_complete(folder)]
        atomic.prune(complete, keep_last, keep=final)
    return final


def _ema_counters(ema: EMA) -> dict[str, Any]:
    """The EMA's state without its tensors (those go to ema.safetensors)."""
    return {key: value for key, value in ema.state_dict().items() if key != "shadow"}


def _recover(parent: Path) -> None:
    """Put back a checkpoint set aside by an interrupted re-save, if its name is free."""
    names = {inner.name for step, inner in _set_aside(parent) if inner.name == _step_name(step)}
    atomic.recover_set_aside(parent, lambda inner: inner.name in names and _is_complete(inner))


# -- loading -----------------------------------------------------------------------------


def _resolve(path: Path) -> Path:
    """A checkpoint folder from a folder or from a run directory holding checkpoints."""
    if not path.exists():
        raise CheckpointNotFoundError(f"no checkpoint at {path}: it does not exist")
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a checkpoint folder (expected a step_N directory)")
    if (path / MARKER).exists():
        return path
    latest = find_latest_checkpoint(path)
    if latest is None:
        raise CheckpointNotFoundError(
            f"{path} holds no complete minidiff checkpoint ({MARKER} is missing)"
        )
    return latest


def _load_tensors(path: Path, device: str) -> dict[str, torch.Tensor]:
    try:
        return safetensors.torch.load_file(path, device=device)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from err


def _load_state(path: Path, map_location: Any) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location=map_location or "cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any refusal or corruption is a bad checkpoint
        raise CheckpointError(
            f"{path} could not be loaded with weights_only=True (it is corrupt, or holds "
            f"objects other than tensors and plain data, which are refused): {err}"
        ) from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a minidiff checkpoint state")
    return state


def read_checkpoint_config(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The config saved in the complete checkpoint ``folder`` (one ``step_N`` folder),
    without loading any weights: what a caller needs to build the model first.

    Raises:
        CheckpointError: ``folder`` is not a complete, readable minidiff checkpoint.
    """
    folder = Path(folder)
    _read_marker(folder)
    return _load_state(folder / STATE_FILE, "cpu").get("config")


def _config_differences(saved: Any, expected: dict[str, Any]) -> list[str]:
    saved = saved if isinstance(saved, dict) else {}
    keys = sorted(set(saved) | set(expected), key=str)
    return [
        f"{key}: saved {saved.get(key, '<missing>')!r}, expected {expected.get(key, '<missing>')!r}"
        for key in keys
        if saved.get(key, "<missing>") != expected.get(key, "<missing>")
    ]


def load_checkpoint(
    path: str | os.PathLike,
    *,
    model: nn.Module,
    ema: EMA | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    map_location: str | torch.device | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Load a checkpoint into ``model`` (and ``ema``, ``optimizer``, ``scheduler``).

    Everything is read and checked before anything is modified, so a failed load leaves
    the objects as they were.

    Args:
        path: a ``step_N`` folder, or a run directory (its latest complete checkpoint).
        model, ema, optimizer, scheduler: filled in place; pass only what was saved.
        map_location: the device for the loaded tensors (default: the CPU); the model's
            ``load_state_dict`` then copies them to its own device and dtype.
        config: if given, the saved config must equal it.

    Returns:
        ``{"step", "data_state", "rng_state", "config", "path"}``.

    Raises:
        CheckpointNotFoundError: nothing at ``path``.
        CheckpointError: not a minidiff checkpoint, incomplete or corrupt, a state.pt that
            ``weights_only`` refuses, keys or shapes that differ from ``model``'s (listed),
            a config that differs, or a requested part (EMA, optimizer) that was not saved.
    """
    folder = _resolve(Path(path))
    marker = _read_marker(folder)
    device = "cpu" if map_location is None else str(torch.device(map_location))
    state = _load_state(folder / STATE_FILE, map_location)
    if state.get("step") != marker.get("step"):
        raise CheckpointError(
            f"{folder} is inconsistent: {STATE_FILE} has step {state.get('step')!r}, "
            f"{MARKER} has step {marker.get('step')!r}"
        )
    if config is not None:
        differences = _config_differences(state.get("config"), config)
        if differences:
            raise CheckpointError(f"{folder}: config differs: " + "; ".join(differences))
    weights = _load_tensors(folder / MODEL_FILE, device)
    problems = _compare_shapes(model.state_dict(), weights)
    if problems:
        raise CheckpointError(f"{folder} does not fit the model: " + "; ".join(problems))
    ema_state = None
    if ema is not None:
        if state.get("ema") is None or EMA_FILE not in marker["files"]:
            raise CheckpointError(f"{folder} holds no EMA, but ema was given")
        ema_state = dict(state["ema"], shadow=_load_tensors(folder / EMA_FILE, device))
        problems = _compare_shapes(ema.shadow, ema_state["shadow"])
        if problems:
            raise CheckpointError(f"{folder}: the EMA does not fit: " + "; ".join(problems))
    for part, target in (("optimizer", optimizer), ("scheduler", scheduler)):
        if target is not None and state.get(part) is None:
            raise CheckpointError(f"{folder} holds no {part} state, but {part} was given")

    model.load_state_dict(weights)
    if ema is not None:
        ema.load_state_dict(ema_state)
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    return {
        "step": int(state["step"]),
        "data_state": state.get("data_state"),
        "rng_state": state.get("rng_state"),
        "config": state.get("config"),
        "path": folder,
    }
