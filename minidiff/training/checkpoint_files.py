"""The files of a checkpoint directory: completion markers that record each file's size
and SHA-256, the search for the latest complete checkpoint, reads that verify content,
and the repair of a directory after an interrupted save or clean-up.

A checkpoint folder ``step_N`` is complete when its marker ``checkpoint.json`` exists,
is valid, and every file it lists has the recorded size: a cheap test (no file is read)
that `find_latest_checkpoint` applies. The SHA-256 of each file is checked when the file
is read (`read_file`), so a bit flipped inside tensor data is caught on load. Markers of
version 1 record sizes only; they still load, without the content check.

The layout and the save protocol are described in `minidiff.training.checkpoint`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from minidiff import atomic

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "DiskFullError",
    "check_disk_full",
    "checkpoint_candidates",
    "find_latest_checkpoint",
    "make_marker",
    "read_file",
    "read_latest",
    "read_marker",
    "repair_checkpoints",
]

FORMAT = "minidiff-checkpoint"
VERSION = 2  # 2: sizes and SHA-256 of each file; 1: sizes only (still read)
MARKER = "checkpoint.json"
LATEST = "latest.json"
MODEL_FILE = "model.safetensors"
EMA_FILE = "ema.safetensors"
STATE_FILE = "state.pt"
FILES = (MODEL_FILE, EMA_FILE, STATE_FILE)
STEP_DIR = re.compile(r"^step_(\d+)$")
READ_ATTEMPTS = 20  # reads of the latest checkpoint while a writer replaces it
T = TypeVar("T")


class CheckpointError(RuntimeError):
    """A checkpoint that is foreign, corrupt, incomplete or does not fit the model."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint at the given path."""


class DiskFullError(OSError):
    """The disk filled up during training; the message names the last good checkpoint."""


def check_disk_full(err: OSError, directory: Path, step: int) -> None:
    """Raise a `DiskFullError` naming the last good checkpoint in ``directory`` if
    ``err`` (raised at training step ``step``) says the disk or the quota is full."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        raise DiskFullError(err.errno, f"{err.strerror} at step {step}; the last good "
                            f"checkpoint is {find_latest_checkpoint(directory)}: free some "
                            "space, then resume from it") from err  # fmt: skip


def step_name(step: int) -> str:
    return f"step_{step:06d}"


# -- the marker ----------------------------------------------------------------------------


def make_marker(step: int, payloads: Mapping[str, bytes]) -> bytes:
    """The marker of a checkpoint of ``step`` holding ``payloads`` (file name -> bytes)."""
    files = {
        name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in payloads.items()
    }
    marker = {"format": FORMAT, "version": VERSION, "step": step, "files": files}
    return json.dumps(marker, indent=2).encode("utf-8")


def _entry(folder: Path, name: str, entry: Any) -> tuple[int, str | None]:
    """(size, sha256 or None) of a marker entry: an int (version 1) or a dict (2)."""
    if isinstance(entry, int) and not isinstance(entry, bool):
        return entry, None
    if isinstance(entry, dict) and isinstance(entry.get("size"), int):
        digest = entry.get("sha256")
        if isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest):
            return entry["size"], digest
    raise CheckpointError(f"{folder}: {MARKER} has a malformed entry for {name!r}")


def read_marker(folder: Path) -> dict[str, Any]:
    """The validated marker of ``folder`` with ``files`` as name -> (size, sha256 or
    None), after checking that each file exists with its size.

    Raises:
        CheckpointError: a missing, foreign or malformed marker, or a file missing or of
            another size than recorded.
    """
    marker_path = folder / MARKER
    try:
        marker = json.loads(marker_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(
            f"{folder} is not a complete minidiff checkpoint: {MARKER} is missing"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{marker_path} cannot be read as JSON: {err}") from err
    if not isinstance(marker, dict) or marker.get("format") != FORMAT:
        raise CheckpointError(
            f"{folder} is not a minidiff checkpoint ({MARKER} lacks format {FORMAT!r})"
        )
    if marker.get("version") not in (1, VERSION):
        raise CheckpointError(f"{folder}: unsupported checkpoint version {marker.get('version')!r}")
    files = marker.get("files")
    if not isinstance(files, dict) or MODEL_FILE not in files or STATE_FILE not in files:
        raise CheckpointError(f"{folder}: {MARKER} does not list {MODEL_FILE} and {STATE_FILE}")
    checked = {}
    for name, entry in files.items():
        if name not in FILES:
            raise CheckpointError(f"{folder}: {MARKER} lists an unknown file {name!r}")
        size, digest = _entry(folder, name, entry)
        try:
            actual = (folder / name).stat().st_size
        except OSError as err:
            raise CheckpointError(f"{folder} is incomplete: {name}: {err.strerror}") from err
        if actual != size:
            raise CheckpointError(
                f"{folder} is corrupt: {name} has {actual} bytes, expected {size}"
            )
        checked[name] = (size, digest)
    return {**marker, "files": checked}


def read_file(folder: Path, name: str, marker: dict[str, Any]) -> bytes:
    """The bytes of ``folder/name``, checked against the size and SHA-256 in ``marker``
    (from `read_marker`): one read, so the bytes checked are the bytes used."""
    path = folder / name
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as err:
        raise CheckpointError(f"{path} cannot be read: {err.strerror or err}") from err
    size, digest = marker["files"][name]
    if len(data) != size:
        raise CheckpointError(f"{folder} is corrupt: {name} has {len(data)} bytes, expected {size}")
    if digest is not None and hashlib.sha256(data).hexdigest() != digest:
        raise CheckpointError(
            f"{folder} is corrupt: {name} does not match the SHA-256 recorded in {MARKER} "
            "(its content changed after it was saved)"
        )
    return data


def is_complete(folder: Path) -> bool:
    try:
        read_marker(folder)
    except (CheckpointError, OSError):
        return False
    return True


# -- finding checkpoints ---------------------------------------------------------------


def step_folders(directory: Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` for every ``step_N`` folder, by increasing step."""
    found = []
    for entry in directory.iterdir():
        match = STEP_DIR.match(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def set_aside(directory: Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` for the ``.old-step_N-XXXX/step_N`` copies moved aside by a
    re-save of step N that was interrupted before its commit."""
    copies = [(STEP_DIR.match(inner.name), inner) for inner in atomic.set_aside_folders(directory)]
    return sorted((int(match.group(1)), inner) for match, inner in copies if match)


def checkpoint_candidates(directory: str | os.PathLike) -> list[Path]:
    """The complete checkpoints of ``directory``, newest first: the one ``latest.json``
    names, then the others by decreasing step (at equal steps the ``step_N`` folder
    before a copy set aside). Temporaries are ignored; [] if there are none."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    candidates = [(step, 1, folder) for step, folder in step_folders(directory)]
    candidates += [(step, 0, folder) for step, folder in set_aside(directory)]
    found = [folder for _, _, folder in sorted(candidates, reverse=True) if is_complete(folder)]
    try:
        name = json.loads((directory / LATEST).read_text(encoding="utf-8"))["name"]
        pointed = directory / name
        if isinstance(name, str) and STEP_DIR.match(name) and pointed in found:
            found.remove(pointed)
            found.insert(0, pointed)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing or broken pointer: the largest step first
    return found


def find_latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint in ``directory``, or None if there is none.

    Follows ``latest.json`` when it names a complete checkpoint; otherwise returns the
    complete ``step_N`` folder with the largest ``N``. Temporaries are ignored.
    """
    candidates = checkpoint_candidates(directory)
    return candidates[0] if candidates else None


def read_latest(locate: Callable[[], Path], read: Callable[[Path], T]) -> T:
    """``read(folder)`` for ``folder = locate()``, located and read again when the read
    fails because a writer replaced the checkpoint meanwhile (``locate()`` then names
    another folder): a reader of a run that is training never sees a half-pruned one.

    Raises:
        CheckpointError: the read fails and ``locate()`` still names the same folder.
    """
    folder = locate()
    for _ in range(READ_ATTEMPTS):
        try:
            return read(folder)
        except (CheckpointError, OSError):
            again = locate()
            if again == folder:
                raise
            folder = again
    return read(folder)


# -- repair ------------------------------------------------------------------------------


def recover(directory: Path) -> None:
    """Put back a checkpoint set aside by an interrupted re-save, if its name is free."""
    names = {inner.name for step, inner in set_aside(directory) if inner.name == step_name(step)}
    atomic.recover_set_aside(directory, lambda inner: inner.name in names and is_complete(inner))


def repair_checkpoints(directory: str | os.PathLike, keep_last: int | None = None) -> Path | None:
    """Finish or roll back what interrupted saves and clean-ups left in ``directory``.

    A copy set aside by an interrupted re-save goes back under its name if the name is
    free (roll back); temporaries, trash and set-aside copies that are no longer needed
    are deleted, and complete checkpoints beyond the newest ``keep_last`` are pruned
    (finish), never the latest. Call it before writing to a checkpoint directory; a
    repair that is itself interrupted is finished by the next one.

    Returns:
        The latest complete checkpoint, or None.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return None
    recover(directory)
    latest = find_latest_checkpoint(directory)
    atomic.remove_temporaries(directory, "step_", [LATEST])
    if keep_last is not None and latest is not None:
        complete = [folder for _, folder in step_folders(directory) if is_complete(folder)]
        atomic.prune(complete, keep_last, keep=latest)
    return latest
