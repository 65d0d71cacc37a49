"""Test configuration: hypothesis profiles and thread settings.

Profiles (choose with ``--hypothesis-profile=NAME``):
- ``ci`` (the default): derandomized, so every run checks the same examples.
- ``thorough``: many more examples, random, for runs behind ``make test-slow``.
"""

import os

import numpy as np
from hypothesis import HealthCheck, settings

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
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Small NumPy problems run fastest on one thread, and the test run already uses both
# cores through two workers.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

np.seterr(over="raise", invalid="raise")  # hidden overflow / NaN in float64 math fails loudly
