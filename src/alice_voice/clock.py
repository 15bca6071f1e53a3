"""One injected monotonic clock; tests may substitute their own."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()


def wall_ms() -> float:
    """Wall-clock milliseconds, for timestamps shown to clients (event `t`) and records."""
    return time.time() * 1000.0


SYSTEM_CLOCK: Clock = MonotonicClock()
