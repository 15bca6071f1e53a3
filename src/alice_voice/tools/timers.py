"""A session's timers: set, listed and cancelled by voice, and due on the session's clock.

A timer that falls due is handed to `on_due` (the session posts its reminder to its turn policy, which
says it when the caller is not speaking); each timer is one handle on the event loop, cancelled with it
or when the session closes. Durations are spoken in words ("ten minutes") so any synthesizer reads them
well.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from num2words import num2words

from alice_voice.clock import Clock
from alice_voice.tools.spec import ToolError

MAX_TIMERS = 20
MAX_SECONDS = 24 * 3600
_UNITS = ((3600, "hour"), (60, "minute"), (1, "second"))


@dataclass(frozen=True, slots=True)
class Timer:
    timer_id: int
    seconds: int
    label: str  # the caller's name for it ("pasta"), or ""
    due: float  # on the session's clock

    @property
    def name(self) -> str:
        """How it is spoken of: "pasta timer", "ten-minute timer", "timer for one hour and ten minutes"."""
        if self.label:
            return f"{self.label} timer"
        short = duration_name(self.seconds)
        return f"{short} timer" if short else f"timer for {spoken_duration(self.seconds)}"

    @property
    def reminder(self) -> str:
        return f"Your {self.name} is done."


def duration_parts(seconds: int) -> list[tuple[int, str]]:
    parts = []
    for size, unit in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append((count, unit))
    return parts


def duration_name(seconds: int) -> str:
    """A duration of one unit as a timer is named by it ("ten-minute"); "" for mixed units."""
    parts = duration_parts(seconds)
    return f"{num2words(parts[0][0])}-{parts[0][1]}" if len(parts) == 1 else ""


def spoken_duration(seconds: int) -> str:
    """3725 -> "one hour, two minutes and five seconds"."""
    words = [f"{num2words(n)} {unit}{'s' if n != 1 else ''}" for n, unit in duration_parts(seconds)]
    if not words:
        return ""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


class SessionTimers:
    def __init__(self, clock: Clock, on_due: Callable[[Timer], None]) -> None:
        """`clock`: the session's (for the time left); `on_due(timer)` is called, on the event loop, when it
        falls due."""
        self._clock = clock
        self._on_due = on_due
        self._timers: dict[int, Timer] = {}
        self._due: dict[int, asyncio.TimerHandle] = {}
        self._next_id = 1

    def set(self, seconds: float, label: str = "") -> Timer:
        whole = round(seconds)
        if not 1 <= whole <= MAX_SECONDS:
            raise ToolError(f"a timer must run between one second and {MAX_SECONDS // 3600} hours")
        if len(self._timers) >= MAX_TIMERS:
            raise ToolError(f"there are already {MAX_TIMERS} timers; cancel one first")
        timer = Timer(self._next_id, whole, label.strip(), self._clock.now() + whole)
        self._timers[timer.timer_id] = timer
        self._due[timer.timer_id] = asyncio.get_running_loop().call_later(whole, self._fall_due, timer.timer_id)
        self._next_id += 1
        return timer

    def active(self) -> list[Timer]:
        return sorted(self._timers.values(), key=lambda t: t.due)

    def remaining_s(self, timer: Timer) -> int:
        return max(0, round(timer.due - self._clock.now()))

    def cancel(self, label: str = "", seconds: float | None = None) -> list[Timer]:
        """Cancel the timers called `label` (a duration name like "ten-minute" too), or set for `seconds`;
        with neither, every timer. Raises `ToolError` when nothing matches."""
        wanted = label.strip().lower().removesuffix(" timer")
        hits = [t for t in self._timers.values()
                if (not wanted or wanted in (t.label.lower(), t.name.lower().removesuffix(" timer")))
                and (seconds is None or t.seconds == round(seconds))]
        if not hits:
            what = wanted or (spoken_duration(round(seconds)) if seconds else "")
            raise ToolError(f"there is no {what} timer" if what else "there are no timers")
        for timer in hits:
            del self._timers[timer.timer_id]
            self._due.pop(timer.timer_id).cancel()
        return hits

    def close(self) -> None:
        """The session ends: no timer of it falls due any more."""
        for handle in self._due.values():
            handle.cancel()
        self._due.clear()
        self._timers.clear()

    def _fall_due(self, timer_id: int) -> None:
        self._due.pop(timer_id, None)
        timer = self._timers.pop(timer_id, None)
        if timer is not None:
            self._on_due(timer)
