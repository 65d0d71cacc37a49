"""What a test needs from the machine (a Debian package, a program, a dev extra).

Where it is missing a test says so in one line and is skipped, except under CI (the
environment variable ``CI`` set): the set-up there installs everything, so a missing piece
is a broken set-up and fails the run instead of hiding it.
"""

from __future__ import annotations

import os

import pytest

IN_CI = bool(os.environ.get("CI"))


def missing(message: str) -> None:
    """Skip the running test naming what is missing (fail under CI)."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def needs(available: bool, reason: str) -> pytest.MarkDecorator:
    """A mark that skips a test when ``available`` is false, except under CI, where the test
    runs and fails with the loader's own message naming what to install."""
    return pytest.mark.skipif(not available and not IN_CI, reason=reason)
