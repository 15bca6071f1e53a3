"""The process's load signals: recent CPU use, and how late the event loop runs.

CPU is read from the kernel's own counters, split by OS priority: work at normal priority (the event
loop, the hearing and foreground lanes, other programs on the machine) competes with a caller's next
reply; work at lowered priority (the background lane's partial decodes) gives way to it, so it is not
load for admission's purposes. On Linux, /proc/stat counts niced time apart, and /proc/self/task/*/stat
gives each thread's CPU time and niceness.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class CpuSample:
    """Over the last interval: the busy share of the machine's CPUs at normal priority (0..1), the cores
    this process's normal-priority threads used, and the busy share of the event loop's own thread; and the
    CPU seconds each thread of the process used (by native id) with its niceness."""

    machine_busy: float
    process_cores: float
    loop_busy: float
    threads: dict[int, tuple[float, int]] = field(default_factory=dict, compare=False)


class CpuMeter:
    """Call `sample()` now and then; each returns the use since the previous call (None the first time).
    `loop_thread`: the native id of the event loop's thread (default: the caller's)."""

    def __init__(self, proc: Path = Path("/proc"), loop_thread: int | None = None) -> None:
        self._proc = proc
        self.loop_thread = loop_thread or threading.get_native_id()
        self._loop_thread = str(self.loop_thread)
        self._last: tuple[float, int, int] | None = None  # (time, machine busy ticks, machine total ticks)
        self._threads: dict[str, int] = {}  # each thread's CPU ticks at the last sample

    def sample(self) -> CpuSample | None:
        try:
            busy, total = self._machine()
            threads = self._thread_ticks()
        except OSError:
            return None  # not Linux, or /proc is not mounted: admission falls back to its other signals
        now = time.monotonic()
        last, self._last = self._last, (now, busy, total)
        before, self._threads = self._threads, {tid: ticks for tid, (ticks, _) in threads.items()}
        if last is None or total <= last[2] or now <= last[0]:
            return None
        # Per thread, so that a thread ending does not take its past CPU time out of the sum.
        grew = {tid: ticks - before.get(tid, 0) for tid, (ticks, _) in threads.items()}
        urgent = sum(grew[tid] for tid, (_, nice) in threads.items() if nice <= 0)
        seconds = now - last[0]
        machine = (busy - last[1]) / (total - last[2])
        return CpuSample(min(1.0, max(0.0, machine)), max(0.0, urgent / _TICK / seconds),
                         min(1.0, max(0.0, grew.get(self._loop_thread, 0) / _TICK / seconds)),
                         {int(tid): (grew[tid] / _TICK, nice) for tid, (_, nice) in threads.items()})

    def _machine(self) -> tuple[int, int]:
        fields = [int(v) for v in (self._proc / "stat").read_text().split("\n", 1)[0].split()[1:9]]
        user, _nice, system, _idle, _iowait, irq, softirq, steal = fields
        return user + system + irq + softirq + steal, sum(fields)

    def _thread_ticks(self) -> dict[str, tuple[int, int]]:
        """Each thread of this process: (CPU ticks so far, niceness)."""
        threads: dict[str, tuple[int, int]] = {}
        for task in (self._proc / "self" / "task").iterdir():
            try:
                stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # the thread ended meanwhile
            threads[task.name] = (int(stat[11]) + int(stat[12]), int(stat[16]))  # utime + stime, niceness
        return threads


class LoopLagMonitor:
    """Measures how late the event loop wakes a timer; keeps the last `window` samples."""

    def __init__(self, interval_s: float = 0.05, window: int = 600) -> None:
        self.interval_s = interval_s
        self._lags_ms: deque[float] = deque(maxlen=window)
        self.on_lag: Callable[[float], None] = lambda lag_ms: None

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.interval_s)
            lag_ms = max(0.0, (time.perf_counter() - started - self.interval_s) * 1000)
            self._lags_ms.append(lag_ms)
            self.on_lag(lag_ms)

    def p99_ms(self) -> float:
        return float(np.percentile(self._lags_ms, 99)) if self._lags_ms else 0.0
