"""Tolerances used across the tests, named once.

Float64 algebraic identities hold to round-off: relative 1e-10 with a small absolute
floor for quantities that should be 0. Monte Carlo checks state their bound in standard
errors next to the assertion.
"""

RTOL = 1e-10
ATOL = 1e-12

# Identities that go through a long product, a sum over T terms or a log/exp pair lose a
# few more digits: still far below any modelling error.
RTOL_LOOSE = 1e-8
ATOL_LOOSE = 1e-10

# Monte Carlo checks: a statistic within this many standard errors of its expectation.
# With fixed seeds this is a deterministic check whose false-alarm probability, had the
# seed been random, would be about 6e-5 (two-sided, normal approximation).
N_STANDARD_ERRORS = 4.0
