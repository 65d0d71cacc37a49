"""Where the test run finds the executed tutorials and the built site.

``make test`` writes both before pytest starts: ``make tutorials`` executes the notebooks
into ``build/tutorials/`` and ``mkdocs build`` writes ``site/``. Run alone, the tests that
need them skip with a one-line reason; under CI (the ``CI`` variable set) a missing one
fails, so the check cannot pass by not running.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.requirements import missing

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = ROOT / "tutorials"
EXECUTED = Path(os.environ.get("MINIDIFF_EXECUTED_TUTORIALS", ROOT / "build" / "tutorials"))
SITE = Path(os.environ.get("MINIDIFF_SITE_DIR", ROOT / "site"))


def require(path: Path, what: str, how: str) -> Path:
    """Return ``path`` if it exists; otherwise skip (fail under CI) naming ``how``."""
    if path.exists():
        return path
    missing(f"{what} not found at {path}: {how}")
