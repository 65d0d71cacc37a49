"""Files and folders that appear under their final names complete or not at all.

A crash (a power cut, a killed process) can stop a program between any two system calls.
The functions here order their calls so that whatever a reader finds under a final name is
whole, after a crash at any point:

- `write_json` writes a file under a temporary name, fsyncs it, renames it over the final
  name with ``os.replace`` (atomic on POSIX and Windows) and fsyncs the parent folder, so
  that the rename itself survives a power cut;
- `write_folder` fills ``.tmp-NAME-XXXX`` in the same parent, fsyncs it and renames it to
  ``NAME``; an existing ``NAME`` is first moved aside to ``.old-NAME-XXXX/NAME``, which
  the caller deletes once the new folder is committed, and which `recover_set_aside` puts
  back if the write never completed;
- `remove_folder` (and `prune`, built on it) first moves a folder to
  ``.trash-NAME-XXXX/NAME``, so no half-deleted ``NAME`` is ever visible;
- `remove_temporaries` deletes what interrupted writes left behind.

One process writes to a folder. Every write, fsync, rename, temporary folder and tree
removal goes through the five primitives `write_bytes`, `fsync_dir`, `replace`,
`make_temp_dir` and `remove_tree`, looked up in this module when called, so a test can
patch them to crash at each call in turn.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "write_bytes",
    "fsync_dir",
    "replace",
    "make_temp_dir",
    "remove_tree",
    "write_json",
    "write_folder",
    "set_aside_folders",
    "recover_set_aside",
    "remove_folder",
    "prune",
    "remove_temporaries",
]

# -- the primitives ----------------------------------------------------------------------


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file at ``path`` (which must not exist) and fsync it."""
    with open(path, "xb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (creations, renames) durable, where the OS allows it."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target`` atomically, replacing a file at ``target``."""
    os.replace(source, target)


def make_temp_dir(parent: Path, prefix: str) -> Path:
    """A new empty folder ``parent/PREFIXXXXX`` with a random suffix."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def remove_tree(path: Path) -> None:
    """Delete the folder ``path`` and everything in it."""
    shutil.rmtree(path)


# -- built on the primitives -------------------------------------------------------------


def write_json(path: Path, value: Any) -> None:
    """Replace the file ``path`` by ``value`` as JSON, atomically and durably.

    The temporary file is ``.NAME.tmp-PID`` beside ``path``; the ``os.replace`` onto
    ``path`` is the moment the new content becomes visible.
    """
    temp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    if temp.exists():
        temp.unlink()
    write_bytes(temp, json.dumps(value).encode("utf-8"))
    replace(temp, path)
    fsync_dir(path.parent)


def write_folder(parent: Path, name: str, files: Mapping[str, bytes]) -> Path | None:
    """Create the folder ``parent/name`` holding ``files``, atomically and durably.

    The files are written in the order given (put a completion marker last) into
    ``.tmp-NAME-XXXX`` and fsynced, the folder is fsynced and renamed to ``name``, and
    ``parent`` is fsynced.

    Args:
        parent: the folder that receives ``name``; it must exist.
        name: the new folder's name.
        files: file name -> content.

    Returns:
        None, or, if ``parent/name`` existed, the folder ``.old-NAME-XXXX`` that holds the
        previous copy as ``.old-NAME-XXXX/NAME``: delete it with `remove_tree` once the
        new folder is committed; until then `set_aside_folders` finds the copy.
    """
    temp = make_temp_dir(parent, f".tmp-{name}-")
    for file, data in files.items():
        write_bytes(temp / file, data)
    fsync_dir(temp)
    final = parent / name
    aside = None
    if final.exists():  # keep the old copy until the new one is in place
        aside = make_temp_dir(parent, f".old-{name}-")
        replace(final, aside / name)
    replace(temp, final)
    fsync_dir(parent)
    return aside


def set_aside_folders(parent: Path) -> list[Path]:
    """The copies ``parent/.old-NAME-XXXX/NAME`` moved aside by `write_folder`, sorted."""
    found = []
    for entry in parent.glob(".old-*"):
        for inner in entry.iterdir() if entry.is_dir() else ():
            if entry.name.startswith(f".old-{inner.name}-"):
                found.append(inner)
    return sorted(found)


def recover_set_aside(parent: Path, accept: Callable[[Path], bool]) -> None:
    """Move each set-aside copy ``.old-NAME-XXXX/NAME`` back to ``parent/NAME`` if that
    name is free and ``accept(copy)`` is true (e.g. the copy is complete)."""
    for inner in set_aside_folders(parent):
        target = parent / inner.name
        if not target.exists() and accept(inner):
            replace(inner, target)
            fsync_dir(parent)


def remove_folder(folder: Path) -> None:
    """Delete ``folder`` after moving it to ``.trash-NAME-XXXX/NAME`` beside it."""
    trash = make_temp_dir(folder.parent, f".trash-{folder.name}-")
    replace(folder, trash / folder.name)  # no half-deleted folder is ever visible
    remove_tree(trash)


def prune(folders: Sequence[Path], keep_last: int, keep: Path) -> None:
    """Delete ``folders`` (ordered oldest first) but the last ``keep_last`` and ``keep``.

    Args:
        folders: the candidates, oldest first.
        keep_last: how many of the newest to keep, a positive int.
        keep: a folder never deleted, even when it is not among the newest.
    """
    kept = set(folders[-keep_last:]) | {keep}
    for folder in folders:
        if folder not in kept:
            remove_folder(folder)


def remove_temporaries(parent: Path, folder_prefix: str, file_names: Iterable[str]) -> None:
    """Delete what interrupted writes left in ``parent``: the folders ``.tmp-``,
    ``.trash-`` and ``.old-`` followed by ``folder_prefix``, and the temporary files
    ``.NAME.tmp-*`` of `write_json` for each NAME in ``file_names``."""
    folders = tuple(f".{kind}-{folder_prefix}" for kind in ("tmp", "trash", "old"))
    files = tuple(f".{name}.tmp-" for name in file_names)
    for entry in parent.iterdir():
        if entry.is_dir() and entry.name.startswith(folders):
            remove_tree(entry)
        elif entry.is_file() and entry.name.startswith(files):
            entry.unlink()
