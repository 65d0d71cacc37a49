"""A time budget for `Trainer.train`: stop after a wall-clock or a CPU-time limit.

On a shared machine the wall clock overstates the work a run did; the CPU time of one
thread does not, so a run may stop on either. `Budget` is the ``stop`` callable of
`minidiff.training.Trainer.train` and keeps the times it saw last.
"""

from __future__ import annotations

import math
import time

__all__ = ["Budget"]


class Budget:
    """``budget(step)`` is True once ``max_seconds`` of wall time or ``max_cpu_seconds``
    of this process's CPU time have passed since the budget was made (None: no limit).

    Attributes:
        seconds, cpu_seconds: the wall and CPU seconds at the last call.
        step: the step of the last call.
    """

    def __init__(self, max_seconds: float | None = None,
                 max_cpu_seconds: float | None = None) -> None:  # fmt: skip
        for name, value in (("max_seconds", max_seconds), ("max_cpu_seconds", max_cpu_seconds)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not 0 <= value < math.inf):  # fmt: skip
                raise ValueError(f"{name} must be a finite number >= 0 or None, got {value!r}")
        self.max_seconds, self.max_cpu_seconds = max_seconds, max_cpu_seconds
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        self.seconds = self.cpu_seconds = 0.0
        self.step = 0

    def __call__(self, step: int) -> bool:
        """Record the times at ``step``; True once a limit is reached."""
        self.step = step
        self.seconds = time.perf_counter() - self._wall
        self.cpu_seconds = time.process_time() - self._cpu
        return (self.max_seconds is not None and self.seconds >= self.max_seconds) or (
            self.max_cpu_seconds is not None and self.cpu_seconds >= self.max_cpu_seconds
        )
