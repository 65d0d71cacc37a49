"""Checkpoints that survive a crash at any moment, and load without unsafe unpickling.

Layout of a checkpoint directory::

    run/
      step_000100/            one complete checkpoint
        model.safetensors     the model's state_dict (safetensors: no code, no pickle)
        ema.safetensors       the EMA shadow weights (if an EMA was saved)
        state.pt              optimizer, scheduler, step, data state, RNG state, config
        checkpoint.json       completion marker: format, version, step, each file's size
                              and SHA-256 (`minidiff.training.checkpoint_files`)
      step_000200/
      latest.json             {"step": 200, "name": "step_000200"}

``state.pt`` is read only with ``torch.load(..., weights_only=True)``, which refuses
anything but tensors and plain containers and numbers: a crafted file cannot run code.
Each file is read once, checked against its SHA-256 and parsed from those bytes.

Saving is atomic, by the file-system mechanics of `minidiff.atomic`: (1) every
file is written into ``.tmp-step_000200-XXXX`` and fsynced, the marker last; (2) the
folder is renamed to ``step_000200``; (3) ``latest.json`` is replaced atomically: the
commit point; (4) the leftovers of interrupted saves, and checkpoints beyond
``keep_last``, are deleted (`repair_checkpoints`, which also finishes the clean-up of a
save killed after (3)). A crash before (3) leaves the previous checkpoint as the latest;
after (3), the new one.

`find_latest_checkpoint` follows ``latest.json``, ignores temporaries and folders without
a valid marker, and scans the step folders, largest step first, when the pointer is
missing or names a broken checkpoint (so a run's first save commits at (2)). Re-saving an
existing step moves the old folder to ``.old-step_N-XXXX/step_N`` until the new one is in
place: if that save is interrupted, the scan still finds the old copy and the next save
puts it back. One process writes to a directory.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import nn

from minidiff import atomic
from minidiff.training.checkpoint_files import (
    EMA_FILE,
    FORMAT,
    LATEST,
    MARKER,
    MODEL_FILE,
    STATE_FILE,
    CheckpointError,
    CheckpointNotFoundError,
    checkpoint_candidates,
    find_latest_checkpoint,
    make_marker,
    read_file,
    read_latest,
    read_marker,
    recover,
    repair_checkpoints,
    step_name,
)
from minidiff.training.ema import EMA, _compare_shapes

STATE_VERSION = 1  # the layout of state.pt

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "save_checkpoint",
    "load_checkpoint",
    "load_latest_checkpoint",
    "find_latest_checkpoint",
    "read_checkpoint_config",
    "repair_checkpoints",
]

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
    recover(parent)
    name = step_name(step)
    state = {
        "format": FORMAT,
        "version": STATE_VERSION,
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
    payloads[MARKER] = make_marker(step, payloads)  # written last

    aside = atomic.write_folder(parent, name, payloads)  # re-saving: the old copy, set aside
    final = parent / name
    atomic.write_json(parent / LATEST, {"step": step, "name": name})  # the commit point
    if aside is not None:
        atomic.remove_tree(aside)
    repair_checkpoints(parent, keep_last)  # leftovers, and checkpoints beyond keep_last
    return final


def _ema_counters(ema: EMA) -> dict[str, Any]:
    """The EMA's state without its tensors (those go to ema.safetensors)."""
    return {key: value for key, value in ema.state_dict().items() if key != "shadow"}


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


def _load_tensors(path: Path, data: bytes, device: str) -> dict[str, torch.Tensor]:
    """The tensors of the safetensors file ``path`` from its bytes ``data``."""
    try:
        tensors = safetensors.torch.load(data)
    except (SafetensorError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from err
    return {key: value.to(device) for key, value in tensors.items()}


def _load_state(path: Path, data: bytes, map_location: Any) -> dict[str, Any]:
    """The state of the state.pt file ``path`` from its bytes ``data``."""
    try:
        state = torch.load(io.BytesIO(data), map_location=map_location or "cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any refusal or corruption is a bad checkpoint
        raise CheckpointError(
            f"{path} is not a valid minidiff checkpoint and was not loaded: it is corrupt, or "
            f"holds objects other than tensors and plain data ({type(err).__name__})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a valid minidiff checkpoint state")
    return state


def read_checkpoint_config(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The config saved in the complete checkpoint ``folder`` (one ``step_N`` folder),
    without loading any weights: what a caller needs to build the model first.

    Raises:
        CheckpointError: ``folder`` is not a complete, readable minidiff checkpoint.
    """
    folder = Path(folder)
    data = read_file(folder, STATE_FILE, read_marker(folder))
    return _load_state(folder / STATE_FILE, data, "cpu").get("config")


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
        CheckpointError: not a minidiff checkpoint, incomplete or corrupt (a file whose
            SHA-256 differs from the marker's), a state.pt that ``weights_only``
            refuses, keys or shapes that differ from ``model``'s (listed), a config that
            differs, or a requested part (EMA, optimizer) that was not saved.
    """
    path = Path(path)
    parts = {"model": model, "ema": ema, "optimizer": optimizer, "scheduler": scheduler}
    return read_latest(  # a run directory: read again if its trainer replaced the latest
        lambda: _resolve(path), lambda folder: _load(folder, map_location, config, **parts)
    )


def _load(folder: Path, map_location, config, *, model, ema, optimizer, scheduler):
    """`load_checkpoint` of the checkpoint ``folder``."""
    marker = read_marker(folder)
    wanted = [STATE_FILE, MODEL_FILE, *([EMA_FILE] if ema is not None else [])]
    # every file read (and verified) first, parsed after: a consistent snapshot
    blobs = {name: read_file(folder, name, marker) for name in wanted if name in marker["files"]}
    device = "cpu" if map_location is None else str(torch.device(map_location))
    state = _load_state(folder / STATE_FILE, blobs[STATE_FILE], map_location)
    if state.get("step") != marker.get("step"):
        raise CheckpointError(
            f"{folder} is inconsistent: {STATE_FILE} has step {state.get('step')!r}, "
            f"{MARKER} has step {marker.get('step')!r}"
        )
    if config is not None:
        differences = _config_differences(state.get("config"), config)
        if differences:
            raise CheckpointError(f"{folder}: config differs: " + "; ".join(differences))
    weights = _load_tensors(folder / MODEL_FILE, blobs[MODEL_FILE], device)
    problems = _compare_shapes(model.state_dict(), weights)
    if problems:
        raise CheckpointError(f"{folder} does not fit the model: " + "; ".join(problems))
    ema_state = None
    if ema is not None:
        if state.get("ema") is None or EMA_FILE not in marker["files"]:
            raise CheckpointError(f"{folder} holds no EMA, but ema was given")
        shadow = _load_tensors(folder / EMA_FILE, blobs[EMA_FILE], device)
        ema_state = dict(state["ema"], shadow=shadow)
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


def load_latest_checkpoint(directory: str | os.PathLike, **parts: Any) -> dict[str, Any]:
    """`load_checkpoint` of the newest checkpoint in ``directory`` that loads: one that
    fails (corrupt, unreadable) is passed over with a one-line `RepairWarning`, and the
    one before it is tried.

    Args:
        directory: a checkpoint directory (holding ``step_N`` folders).
        parts: the keyword arguments of `load_checkpoint` (``model``, ``ema``, ...).

    Raises:
        CheckpointNotFoundError: no complete checkpoint in ``directory``.
        CheckpointError: none of them loads (the message gives the newest one's reason).
    """
    candidates = checkpoint_candidates(directory)
    if not candidates:
        raise CheckpointNotFoundError(f"no checkpoint to resume from in {directory}")
    failures = []
    for folder in candidates:
        try:
            info = load_checkpoint(folder, **parts)
        except CheckpointError as err:
            failures.append(err)
            continue
        for err in failures:
            warnings.warn(f"passed over a checkpoint that does not load: {err}",
                          atomic.RepairWarning, stacklevel=2)  # fmt: skip
        return info
    raise CheckpointError(f"no checkpoint in {directory} loads; the latest: {failures[0]}")
