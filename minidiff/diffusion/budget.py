"""Small training loops' bookkeeping: a wall-clock and CPU-time budget, and a loss log.

On a shared machine the wall clock overstates the work a run did; CPU time of one thread
does not, so a loop may stop on either. Used by the waveform and text pipelines.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["TrainingLog", "check_counts"]


def check_counts(settings, names: tuple[str, ...]) -> None:
    """Raise ValueError unless each attribute of ``settings`` in ``names`` is an int >= 1,
    and ``settings.lr`` (if present) is > 0."""
    for name in names:
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if hasattr(settings, "lr") and not settings.lr > 0:
        raise ValueError(f"lr must be > 0, got {settings.lr!r}")


class TrainingLog:
    """Mean losses every ``log_every`` steps with wall and CPU seconds since creation.

    Args:
        steps: the last step (always logged).
        max_seconds, max_cpu_seconds: budgets; `update` returns True once one is spent.
        log: called with each record ``{"step", "loss", "seconds", "cpu_seconds"}``.
    """

    def __init__(
        self,
        steps: int,
        log_every: int,
        max_seconds: float | None = None,
        max_cpu_seconds: float | None = None,
        log: Callable[[dict], None] | None = None,
    ) -> None:
        self.steps, self.log_every, self.log = steps, log_every, log
        self.max_seconds, self.max_cpu_seconds = max_seconds, max_cpu_seconds
        self.history: list[dict] = []
        self._running: list[float] = []
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def update(self, step: int, loss: float) -> bool:
        """Record one step's loss; True when a budget is spent (the loop should stop)."""
        self._running.append(loss)
        seconds = time.perf_counter() - self._wall
        cpu_seconds = time.process_time() - self._cpu
        spent = (self.max_seconds is not None and seconds >= self.max_seconds) or (
            self.max_cpu_seconds is not None and cpu_seconds >= self.max_cpu_seconds
        )
        if step % self.log_every == 0 or step == self.steps or spent:
            mean = sum(self._running) / len(self._running)
            record = {"step": step, "loss": mean, "seconds": seconds, "cpu_seconds": cpu_seconds}
            self.history.append(record)
            self._running = []
            if self.log is not None:
                self.log(record)
        return spent
