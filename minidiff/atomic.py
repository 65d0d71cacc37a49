"""Files and folders that appear under their final names complete or not at all: the
one writer of the package, and the checks made before a command writes anything.

A crash (a power cut, a killed process) can stop a program between any two system calls.
The functions here order their calls so that whatever a reader finds under a final name is
whole, after a crash at any point:

- `write_file` writes a file under a temporary name ``.NAME.tmp-PID-XXXX``, fsyncs it,
  renames it over the final name with ``os.replace`` (atomic on POSIX and Windows) and
  fsyncs the parent folder, so that the rename itself survives a power cut; `write_json`
  and `write_text` are built on it;
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

`check_output_location` tells, before any work, whether a file or folder can be created
at a path: every existing ancestor a folder, the nearest one writable.
`RepairWarning` is the category of the warnings that report a repair of a damaged file or
folder (a torn log trimmed, a corrupt checkpoint passed over).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "RepairWarning",
    "check_output_location",
    "write_file",
    "write_text",
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


def write_file(path: str | os.PathLike, data: bytes | Callable[[BinaryIO], Any]) -> None:
    """Replace the file ``path`` by ``data``, atomically and durably.

    Args:
        path: the final name; its folder must exist.
        data: the bytes, or ``write(file)`` that writes them to a binary file object
            (e.g. ``lambda f: np.save(f, array)`` or ``lambda f: figure.savefig(f)``).

    The bytes go to ``.NAME.tmp-PID-XXXX`` beside ``path`` (removed if anything fails);
    the ``os.replace`` onto ``path`` is the moment the new content becomes visible.
    """
    path = Path(path)
    if callable(data):
        buffer = io.BytesIO()
        data(buffer)
        data = buffer.getbuffer()  # a view: no copy
    temp = path.parent / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        write_bytes(temp, data)
        replace(temp, path)
    except BaseException:  # a full disk, Ctrl-C: no temporary is left behind
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json(path: str | os.PathLike, value: Any, **dumps: Any) -> None:
    """Replace the file ``path`` by ``value`` as JSON (`write_file`); ``dumps`` are
    options of `json.dumps` such as ``indent``."""
    text = json.dumps(value, **dumps) + ("\n" if dumps.get("indent") is not None else "")
    write_file(path, text.encode("utf-8"))


def write_text(path: str | os.PathLike, text: str) -> None:
    """Replace the file ``path`` by ``text`` in UTF-8 (`write_file`)."""
    write_file(path, text.encode("utf-8"))


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
    ``.NAME.tmp-*`` of `write_file` for each NAME in ``file_names``."""
    folders = tuple(f".{kind}-{folder_prefix}" for kind in ("tmp", "trash", "old"))
    files = tuple(f".{name}.tmp-" for name in file_names)
    for entry in parent.iterdir():
        if entry.is_dir() and entry.name.startswith(folders):
            remove_tree(entry)
        elif entry.is_file() and entry.name.startswith(files):
            entry.unlink()


# -- before writing ----------------------------------------------------------------------


class RepairWarning(UserWarning):
    """A damaged file or folder was repaired, or passed over, so that work could go on."""


def check_output_location(
    path: str | os.PathLike, argument: str = "path", *, folder: bool = True
) -> None:
    """Check that a folder (or with ``folder=False`` a file) can be created at ``path``,
    before any work: each ancestor that exists must be a folder, and the nearest one
    writable; an existing ``path`` must be a folder when ``folder`` is true.

    Raises:
        ValueError: a file stands where a folder is needed, or the folder that would
            receive the new entries is not writable; the message names ``argument``.
    """
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise ValueError(f"{argument} {str(path)!r} exists and is not a folder")
    ancestor = path if path.is_dir() else path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(
            f"{argument} {str(path)!r} cannot be created: {str(ancestor)!r} is a file, "
            "not a folder"
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(
            f"{argument} {str(path)!r} cannot be created: the folder {str(ancestor)!r} is "
            "not writable (permission denied or a read-only file system)"
        )
