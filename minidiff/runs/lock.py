"""One trainer per run folder: an exclusive OS lock held for the trainer's life.

The lock is ``fcntl.flock`` on the file ``.lock`` in the run folder. The operating system
releases it when the holder's file descriptor closes, which happens on every exit, a
crash or ``kill -9`` included: a lock left by a dead process never blocks the next
trainer, and no stale-lock clean-up is needed. The file itself stays (deleting a lock
file while another process may be opening it would let two holders in). Where ``fcntl``
does not exist (Windows) the lock is not taken.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from minidiff.runs.store import RunError

__all__ = ["LOCK_FILE", "RunLockedError", "lock_run_folder"]

LOCK_FILE = ".lock"


class RunLockedError(RunError):
    """Another process (a trainer) holds the run folder."""


def _holder(fd: int) -> str:
    """The process id written by the holder, as text for a message ("" if unknown)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (process {text})" if text.isdigit() else ""


@contextlib.contextmanager
def lock_run_folder(out: str | os.PathLike) -> Iterator[Path]:
    """Hold the run folder ``out`` (created if missing) exclusively for the block.

    Yields:
        The folder.

    Raises:
        RunLockedError: another process, or another holder in this one, holds it.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock on this platform
        yield out
        return
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(
                f"{out} is in use by another trainer{_holder(fd)}: wait for it to finish, "
                "or choose another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield out
    finally:
        os.close(fd)  # releases the lock
