"""Test configuration: hypothesis profiles and thread settings.

Profiles (choose with ``--hypothesis-profile=NAME``):
- ``ci`` (the default): derandomized, so every run checks the same examples.
- ``thorough``: many more examples, random, for runs behind ``make test-slow``.
- ``grade``: ``ci`` without shrinking, for `minidiff course grade` (a failing exercise
  is reported at its first failing example, at once).
"""

import os
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings

from tests.requirements import missing

settings.register_profile(
    "ci",
    max_examples=60,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=1000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "grade", settings.get_profile("ci"), phases=[Phase.explicit, Phase.reuse, Phase.generate]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Small NumPy problems run fastest on one thread, and the test run already uses both
# cores through two workers.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

np.seterr(over="raise", invalid="raise")  # hidden overflow / NaN in float64 math fails loudly


@pytest.fixture
def unwritable_folder(tmp_path):
    """An empty folder that this process cannot create files in: mode 0o555, or for
    root (whom permissions do not stop) the immutable attribute (`chattr`, e2fsprogs);
    where neither is possible the test says so (`tests.requirements.missing`: a failure
    under CI)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(
        ["chattr", "+i", str(folder)], capture_output=True
    ).returncode:
        missing("cannot make a folder unwritable for root here: chattr +i failed or is absent")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
