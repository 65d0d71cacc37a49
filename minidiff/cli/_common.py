"""What the subcommands share: argument types, exit-2 errors, one-line warnings."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from minidiff.atomic import check_output_location

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
    """--out may be missing or a folder, not a file, and can be created (one line, exit 2)."""
    try:
        check_output_location(out, "--out")
    except ValueError as err:
        fail(parser.prog.removeprefix("minidiff "), str(err))


@contextlib.contextmanager
def warnings_on_one_line():
    """Show each warning as one line ``minidiff: warning: MESSAGE`` on stderr."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"minidiff: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda|cuda:N``."""
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA if available, else the CPU), cpu, cuda, cuda:N"
    )
