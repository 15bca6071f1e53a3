"""Load signals: CPU use split by OS priority (from a /proc tree written by the test), and event-loop lag
(measured on a real loop that the test blocks once)."""

from __future__ import annotations

import asyncio
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from alice_voice.compute import load
from alice_voice.compute.load import CpuMeter, CpuSample, LoopLagMonitor

TICK = load._TICK
WAIT_S = 5.0
LOOP, WORKER, NICED, URGENT = 4100, 4101, 4102, 4103  # thread ids in the fake /proc


@dataclass
class Machine:
    """The aggregate `cpu` line of /proc/stat, in ticks."""

    user: int = 0
    nice: int = 0
    system: int = 0
    idle: int = 0
    iowait: int = 0
    irq: int = 0
    softirq: int = 0
    steal: int = 0

    def line(self) -> str:
        ticks = [self.user, self.nice, self.system, self.idle, self.iowait, self.irq, self.softirq, self.steal]
        return "cpu  " + " ".join(map(str, ticks)) + " 0 0"  # guest and guest_nice, already inside user/nice


class FakeProc:
    """A /proc tree: `stat`, and `self/task/<tid>/stat` for each thread; plus the clock the meter reads."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.now = 1000.0
        monkeypatch.setattr(load, "time", SimpleNamespace(monotonic=lambda: self.now))

    def machine(self, machine: Machine) -> None:
        # A per-CPU line follows, as on a real box; only the aggregate line counts.
        (self.root / "stat").write_text(f"{machine.line()}\ncpu0 999 999 999 999 999 999 999 999 0 0\nintr 1\n")

    def thread(self, tid: int, utime: int, stime: int, nice: int, comm: str = "python") -> None:
        fields = ["S", "1", "1", "1", "0", "-1", "0", "0", "0", "0", "0", str(utime), str(stime), "0", "0",
                  str(20 + nice), str(nice), "1", "0", "0"]  # fields 3..22 of proc_pid_stat(5)
        task = self.root / "self" / "task" / str(tid)
        task.mkdir(parents=True, exist_ok=True)
        (task / "stat").write_text(f"{tid} ({comm}) {' '.join(fields)}\n")


@pytest.fixture
def proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeProc:
    return FakeProc(tmp_path, monkeypatch)


def _start(proc: FakeProc) -> CpuMeter:
    proc.machine(Machine(user=1000, nice=1000, system=1000, idle=1000, iowait=100, irq=10, softirq=10, steal=0))
    proc.thread(LOOP, utime=100, stime=100, nice=0)
    proc.thread(WORKER, utime=100, stime=0, nice=0, comm="inference-fg) 0")  # a ")" inside the name
    proc.thread(NICED, utime=500, stime=0, nice=10)
    proc.thread(URGENT, utime=50, stime=0, nice=-5)
    meter = CpuMeter(proc.root, loop_thread=LOOP)
    assert meter.sample() is None  # nothing to compare with yet
    return meter


def test_the_first_sample_is_none_and_later_ones_cover_the_interval_since_the_last(proc: FakeProc) -> None:
    meter = _start(proc)
    # 2 s later. Machine: 1000 ticks in all, of which 300 niced and 400 idle or waiting on I/O.
    proc.now += 2.0
    proc.machine(Machine(user=1000 + 150, nice=1000 + 300, system=1000 + 80, idle=1000 + 380,
                         iowait=100 + 20, irq=10 + 30, softirq=10 + 30, steal=0 + 10))
    # The loop thread used half a core, the worker a whole one, the niced thread 1.5 cores, the urgent one 0.25.
    proc.thread(LOOP, utime=100 + TICK // 2, stime=100 + TICK // 2, nice=0)
    proc.thread(WORKER, utime=100 + 2 * TICK, stime=0, nice=0, comm="inference-fg) 0")
    proc.thread(NICED, utime=500 + 3 * TICK, stime=0, nice=10)
    proc.thread(URGENT, utime=50, stime=TICK // 2, nice=-5)
    sample = meter.sample()
    assert sample is not None
    assert sample.machine_busy == pytest.approx((150 + 80 + 30 + 30 + 10) / 1000)  # user+system+irq+softirq+steal
    assert sample.process_cores == pytest.approx(0.5 + 1.0 + 0.25)  # niceness <= 0 only; the niced thread is out
    assert sample.loop_busy == pytest.approx(0.5)
    # Each thread's own CPU seconds in the interval, with its niceness (for the split by stage).
    assert sample.threads == {int(LOOP): (1.0, 0), int(WORKER): (2.0, 0), int(NICED): (3.0, 10),
                              int(URGENT): (0.5, -5)}

    # The next sample covers only the next interval: 1 s in which only the niced thread worked.
    proc.now += 1.0
    proc.machine(Machine(user=1150, nice=1300 + 100, system=1080, idle=1380, iowait=120, irq=40, softirq=40,
                         steal=10))
    proc.thread(NICED, utime=500 + 4 * TICK, stime=0, nice=10)
    later = meter.sample()
    assert later is not None
    assert (later.machine_busy, later.process_cores, later.loop_busy) == (0.0, 0.0, 0.0)
    assert later.threads[int(NICED)] == (1.0, 10)


def test_the_loop_thread_defaults_to_the_thread_that_made_the_meter(proc: FakeProc) -> None:
    me = threading.get_native_id()
    proc.machine(Machine(user=10, idle=10))
    proc.thread(me, utime=0, stime=0, nice=0)
    proc.thread(WORKER, utime=0, stime=0, nice=0)
    meter = CpuMeter(proc.root)
    assert meter.sample() is None
    proc.now += 1.0
    proc.machine(Machine(user=10 + TICK, idle=10 + TICK))
    proc.thread(me, utime=TICK // 4, stime=0, nice=0)
    proc.thread(WORKER, utime=TICK, stime=0, nice=0)
    sample = meter.sample()
    assert sample is not None
    assert sample.loop_busy == pytest.approx(0.25)
    assert sample.process_cores == pytest.approx(1.25)
    assert sample.machine_busy == pytest.approx(0.5)


def test_a_thread_that_ended_between_listing_and_reading_is_skipped(proc: FakeProc) -> None:
    meter = _start(proc)
    (proc.root / "self" / "task" / "4999").mkdir()  # listed, but its stat is gone
    proc.now += 1.0
    proc.machine(Machine(user=1000 + 50, nice=1000, system=1000, idle=1000 + 50, iowait=100, irq=10, softirq=10))
    proc.thread(WORKER, utime=100 + TICK, stime=0, nice=0, comm="inference-fg) 0")
    sample = meter.sample()
    assert sample == CpuSample(machine_busy=0.5, process_cores=1.0, loop_busy=0.0)


def test_no_sample_when_neither_the_counters_nor_the_clock_moved(proc: FakeProc) -> None:
    meter = _start(proc)
    proc.now += 1.0
    assert meter.sample() is None  # /proc/stat unchanged: no interval to divide by
    proc.machine(Machine(user=2000, nice=1000, system=1000, idle=1000, iowait=100, irq=10, softirq=10))
    assert meter.sample() is None  # the clock did not move since the previous call


def test_a_thread_that_exits_does_not_make_the_process_use_negative(proc: FakeProc) -> None:
    meter = _start(proc)
    proc.now += 1.0
    proc.machine(Machine(user=1000, nice=1000, system=1000, idle=2000, iowait=100, irq=10, softirq=10))
    # A thread's counters never go back, but one that exits takes its ticks with it.
    (proc.root / "self" / "task" / str(WORKER) / "stat").unlink()
    sample = meter.sample()
    assert sample == CpuSample(machine_busy=0.0, process_cores=0.0, loop_busy=0.0)


def test_no_sample_without_proc(tmp_path: Path) -> None:
    meter = CpuMeter(tmp_path / "no-proc", loop_thread=1)
    assert meter.sample() is None
    assert meter.sample() is None
    (tmp_path / "no-tasks").mkdir()
    (tmp_path / "no-tasks" / "stat").write_text(Machine(user=1, idle=1).line() + "\n")
    assert CpuMeter(tmp_path / "no-tasks", loop_thread=1).sample() is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the real /proc")
def test_on_the_real_proc_a_busy_loop_thread_shows_as_busy() -> None:
    meter = CpuMeter()
    assert meter.sample() is None
    mine = Path(f"/proc/self/task/{threading.get_native_id()}/stat")

    def my_ticks() -> int:
        stat = mine.read_text().rsplit(")", 1)[1].split()
        return int(stat[11]) + int(stat[12])

    before, deadline = my_ticks(), time.monotonic() + WAIT_S
    while my_ticks() < before + 3:  # the stimulus: this thread works until the kernel has counted it
        assert time.monotonic() < deadline, "the kernel never counted this thread's CPU time"
        sum(range(10_000))
    sample = meter.sample()
    assert sample is not None
    assert 0.0 < sample.loop_busy <= 1.0
    assert sample.process_cores > 0.0
    assert 0.0 < sample.machine_busy <= 1.0


# ---------- event-loop lag ----------
def test_no_lag_before_any_measurement() -> None:
    assert LoopLagMonitor().p99_ms() == 0.0


@pytest.mark.asyncio
async def test_a_blocked_loop_shows_in_the_p99_lag() -> None:
    monitor = LoopLagMonitor(interval_s=0.005)
    lags: list[float] = []
    settled, blocked_seen = asyncio.Event(), asyncio.Event()

    def on_lag(lag_ms: float) -> None:
        lags.append(lag_ms)
        if len(lags) >= 3:
            settled.set()
        if lag_ms >= 40:
            blocked_seen.set()

    monitor.on_lag = on_lag
    task = asyncio.create_task(monitor.run())
    try:
        async with asyncio.timeout(WAIT_S):
            await settled.wait()
        before = len(lags)
        asyncio.get_running_loop().call_soon(time.sleep, 0.06)  # the stimulus: one 60 ms stall of the loop
        async with asyncio.timeout(WAIT_S):
            await blocked_seen.wait()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert max(lags[before:]) >= 40  # the stall landed after the baseline samples
    assert all(lag >= 0 for lag in lags)
    assert monitor.p99_ms() >= 40
    assert monitor.p99_ms() <= max(lags)


@pytest.mark.asyncio
async def test_the_lag_window_forgets_old_samples() -> None:
    monitor = LoopLagMonitor(interval_s=0.001, window=3)
    lags: list[float] = []
    done = asyncio.Event()

    def on_lag(lag_ms: float) -> None:
        lags.append(lag_ms)
        if len(lags) == 1:
            asyncio.get_running_loop().call_soon(time.sleep, 0.06)  # the stall lands on the second sample
        if len(lags) == 6:
            done.set()

    monitor.on_lag = on_lag
    task = asyncio.create_task(monitor.run())
    try:
        async with asyncio.timeout(WAIT_S):
            await done.wait()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert lags[1] >= 40  # the stall
    assert monitor.p99_ms() == pytest.approx(float(np.percentile(lags[-3:], 99)))  # only the last three count


def test_a_thread_that_ends_does_not_take_its_past_cpu_out_of_the_sum(proc: FakeProc) -> None:
    meter = _start(proc)
    proc.now += 1.0
    proc.machine(Machine(user=1100, nice=1000, system=1000, idle=1100, iowait=100, irq=10, softirq=10, steal=0))
    proc.thread(LOOP, utime=100 + TICK // 2, stime=100, nice=0)  # half a core this second
    shutil.rmtree(proc.root / "self" / "task" / str(WORKER))  # a worker with 100 ticks behind it ends
    sample = meter.sample()
    assert sample is not None
    assert sample.process_cores == pytest.approx(0.5) and sample.loop_busy == pytest.approx(0.5)
