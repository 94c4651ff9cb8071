"""Where a gate message's time goes: monotonic laps per step, logged at debug level as ``gate.steps``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class Steps:
    """Laps of one gate message: each :meth:`lap` charges the time since the previous one to a step."""

    began: float = field(default_factory=time.perf_counter)
    laps: dict[str, float] = field(default_factory=dict)
    _last: float = -1.0

    def lap(self, step: str) -> None:
        """Charge the time since the previous lap (or the start) to *step*."""
        now = time.perf_counter()
        last = self.began if self._last < 0 else self._last
        self.laps[step] = self.laps.get(step, 0.0) + (now - last)
        self._last = now

    def seconds(self) -> float:
        """Return the time from the start to the last lap."""
        return (self.began if self._last < 0 else self._last) - self.began

    def millis(self) -> dict[str, float]:
        """Return each step's time in milliseconds (rounded to µs), in the order first seen."""
        return {step: round(seconds * 1000, 3) for step, seconds in self.laps.items()}


class _Unwatched(Steps):
    """Steps nobody reads (the store called from tests and tools): laps cost nothing."""

    def lap(self, step: str) -> None:
        """Do nothing."""


UNWATCHED: Steps = _Unwatched()
