"""What the subcommands share: argument types, exit-2 errors and atomic file writes."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

USAGE_ERROR = 2  # the exit status of bad input, as argparse uses


def version() -> str:
    """The installed version of minidiff ("unknown" in a source tree not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("minidiff")
    except PackageNotFoundError:
        return "unknown"


def int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= low (a bad value exits with status 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value

    return parse


def float_at_least(low: float) -> Callable[[str], float]:
    """An argparse type: a finite number >= low."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (value >= low and value != float("inf")):
            raise argparse.ArgumentTypeError(f"expected a finite number >= {low}, got {text!r}")
        return value

    return parse


def fail(command: str, message: str) -> NoReturn:
    """Print ``minidiff COMMAND: error: MESSAGE`` on stderr (one line) and exit with 2."""
    print(f"minidiff {command}: error: {message}", file=sys.stderr)
    raise SystemExit(USAGE_ERROR)


def check_out_folder(parser: argparse.ArgumentParser, out: Path) -> None:
    """--out may be missing or a folder, not a file."""
    if out.exists() and not out.is_dir():
        parser.error(f"--out {str(out)!r} exists and is not a directory")


def write_atomic(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(temporary_path)``, then rename the file to ``path`` in one step."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(str(temporary))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_atomic(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))


@contextlib.contextmanager
def one_blas_thread():
    """Limit BLAS to one thread with threadpoolctl when it is installed (else a no-op:
    set OMP_NUM_THREADS=1 in the environment instead)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda|cuda:N``."""
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA if available, else the CPU), cpu, cuda, cuda:N"
    )
