"""The process-wide inference scheduler: priority lanes, withdrawal of out-of-date work, closing, observers,
and the background lane's lower OS priority.

Every ordering below is forced by events, never by timing: a `Gate` job holds its worker until the test
opens it, so the jobs queued behind it are all in the queue when the worker comes back for one.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from alice_voice.compute import (
    InferenceScheduler,
    Lane,
    Priority,
    SchedulerClosed,
    Superseded,
    default_lanes,
)
from alice_voice.compute.priority import BACKGROUND, BACKGROUND_NICE, FOREGROUND

WAIT_S = 5.0
EVERY = frozenset(Priority)


class Gate:
    """A job that reports it started (and on which thread), then blocks its worker until `open()`."""

    def __init__(self, result: str = "gate") -> None:
        self.started = threading.Event()
        self._release = threading.Event()
        self.result = result
        self.thread = ""

    def __call__(self) -> str:
        self.thread = threading.current_thread().name
        self.started.set()
        if not self._release.wait(WAIT_S):
            raise TimeoutError("gate never opened")
        return self.result

    def open(self) -> None:
        self._release.set()

    async def wait_started(self) -> None:
        assert await asyncio.to_thread(self.started.wait, WAIT_S), "gate job never started"


def recorder(log: list[str], name: str) -> Callable[[], str]:
    def job() -> str:
        log.append(name)
        return name
    return job


class Schedulers:
    """Makes schedulers and gates for one test; the teardown opens every gate and closes every scheduler."""

    def __init__(self) -> None:
        self.made: list[InferenceScheduler] = []
        self.gates: list[Gate] = []

    def __call__(self, *lanes: Lane) -> InferenceScheduler:
        scheduler = InferenceScheduler(lanes or (Lane("all", 1, EVERY),), name="test")
        self.made.append(scheduler)
        return scheduler

    def gate(self, result: str = "gate") -> Gate:
        gate = Gate(result)
        self.gates.append(gate)
        return gate

    def close(self) -> None:
        for gate in self.gates:
            gate.open()
        for scheduler in self.made:
            scheduler.close()


@pytest.fixture
def schedulers() -> Iterator[Schedulers]:
    made = Schedulers()
    yield made
    made.close()


async def _submitted() -> None:
    """Tasks start in creation order: once a task created after them has run, they have all submitted."""
    await asyncio.create_task(asyncio.sleep(0))


# ---------- results and errors ----------
@pytest.mark.asyncio
async def test_run_returns_the_result_and_raises_what_the_job_raises(schedulers: Schedulers) -> None:
    scheduler = schedulers()
    async with asyncio.timeout(WAIT_S):
        assert await scheduler.run(Priority.FINAL, lambda: 6 * 7) == 42

        def broken() -> int:
            raise ValueError("bad audio")

        with pytest.raises(ValueError, match="bad audio"):
            await scheduler.run(Priority.FINAL, broken)
        # The worker that ran the failing job is still there.
        assert await scheduler.run(Priority.PARTIAL, lambda: "still working") == "still working"


def test_call_from_a_plain_thread_blocks_for_the_result_or_the_error(schedulers: Schedulers) -> None:
    scheduler = schedulers()
    outcome: dict[str, object] = {}

    def broken() -> None:
        raise KeyError("no model")

    def caller() -> None:
        outcome["thread"] = scheduler.call(Priority.FINAL, lambda: threading.current_thread().name)
        try:
            scheduler.call(Priority.TTS, broken)
        except KeyError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=caller)
    thread.start()
    thread.join(WAIT_S)
    assert not thread.is_alive()
    assert outcome["thread"] == "test-all-0"  # it ran on the lane's worker, not on the calling thread
    assert isinstance(outcome["error"], KeyError)


# ---------- priority and lanes ----------
@pytest.mark.asyncio
async def test_a_lane_takes_its_highest_priority_job_first_and_equal_ones_in_order(schedulers: Schedulers) -> None:
    scheduler = schedulers()
    gate, log = schedulers.gate(), []
    busy = scheduler.submit(Priority.PARTIAL, gate)
    await gate.wait_started()
    queued = [(Priority.PARTIAL, "partial 1"), (Priority.TTS, "tts"), (Priority.FINAL, "final 1"),
              (Priority.FIRST_PARTIAL, "first partial"), (Priority.HEARING, "hearing"),
              (Priority.FINAL, "final 2"), (Priority.END_OF_TURN, "end of turn"), (Priority.FIRST_TTS, "first tts"),
              (Priority.PARTIAL, "partial 2")]
    futures = [scheduler.submit(priority, recorder(log, name)) for priority, name in queued]
    assert scheduler.backlog(Priority) == 1 + len(queued)
    gate.open()
    async with asyncio.timeout(WAIT_S):
        await asyncio.gather(asyncio.wrap_future(busy), *map(asyncio.wrap_future, futures))
    assert log == ["hearing", "end of turn", "final 1", "final 2", "first tts", "tts", "first partial",
                   "partial 1", "partial 2"]
    assert scheduler.backlog(Priority) == 0


@pytest.mark.asyncio
async def test_a_lane_never_runs_a_priority_it_does_not_serve_even_when_idle(schedulers: Schedulers) -> None:
    scheduler = schedulers(Lane("fg", 1, FOREGROUND), Lane("bg", 1, BACKGROUND))
    gate = schedulers.gate()
    busy = scheduler.submit(Priority.PARTIAL, gate)
    await gate.wait_started()
    assert gate.thread == "test-bg-0"
    ran_on: list[str] = []
    partial = scheduler.submit(Priority.PARTIAL, lambda: ran_on.append(threading.current_thread().name))
    async with asyncio.timeout(WAIT_S):
        # The foreground worker is free and runs foreground work at once, twice over...
        assert await scheduler.run(Priority.FINAL, lambda: threading.current_thread().name) == "test-fg-0"
        assert await scheduler.run(Priority.HEARING, lambda: threading.current_thread().name) == "test-fg-0"
    # ...but the partial waits for the background worker.
    assert not partial.done() and ran_on == []
    assert scheduler.backlog([Priority.PARTIAL]) == 2  # one running, one queued
    assert scheduler.backlog(FOREGROUND) == 0
    gate.open()
    async with asyncio.timeout(WAIT_S):
        await asyncio.wrap_future(partial)
        assert await asyncio.wrap_future(busy) == "gate"
    assert ran_on == ["test-bg-0"]


@pytest.mark.asyncio
async def test_a_priority_served_by_two_lanes_runs_on_either(schedulers: Schedulers) -> None:
    scheduler = schedulers(Lane("fg", 1, FOREGROUND | {Priority.TTS}), Lane("bg", 1, BACKGROUND))
    gate = schedulers.gate()
    busy = scheduler.submit(Priority.TTS, gate)
    await gate.wait_started()
    (other,) = {"test-fg-0", "test-bg-0"} - {gate.thread}  # the lane the gate is not blocking
    async with asyncio.timeout(WAIT_S):
        assert await scheduler.run(Priority.TTS, lambda: threading.current_thread().name) == other
    gate.open()
    async with asyncio.timeout(WAIT_S):
        assert await asyncio.wrap_future(busy) == "gate"


def test_lane_threads_counts_every_thread_that_may_run_a_priority(schedulers: Schedulers) -> None:
    scheduler = schedulers(Lane("hear", 1, frozenset({Priority.HEARING})), Lane("fg", 2, FOREGROUND),
                           Lane("bg", 3, BACKGROUND))
    assert scheduler.lane_threads(Priority.HEARING) == 3
    assert scheduler.lane_threads(Priority.FINAL) == 2
    assert scheduler.lane_threads(Priority.PARTIAL) == 3


def test_default_lanes_keep_short_jobs_apart_from_long_ones_and_background_below() -> None:
    hearing, turn, decode, background = default_lanes(4)
    assert (hearing.threads, hearing.serves, hearing.nice) == (1, frozenset({Priority.HEARING}), 0)
    assert (turn.threads, turn.serves, turn.nice) == (4, frozenset({Priority.END_OF_TURN, Priority.FIRST_TTS}), 0)
    assert (decode.threads, decode.serves, decode.nice) == (4, frozenset({Priority.FINAL, Priority.FIRST_PARTIAL}), 0)
    assert (background.threads, background.serves, background.nice) == (4, BACKGROUND, BACKGROUND_NICE)
    assert hearing.serves | turn.serves | decode.serves == FOREGROUND
    assert FOREGROUND | BACKGROUND == EVERY and not FOREGROUND & BACKGROUND
    assert Priority.FIRST_PARTIAL.label == "first_partial"


# ---------- withdrawing out-of-date work ----------
@pytest.mark.asyncio
async def test_cancelling_the_awaiter_withdraws_its_queued_job(schedulers: Schedulers) -> None:
    scheduler = schedulers()
    gate, log = schedulers.gate(), []
    busy = scheduler.submit(Priority.FINAL, gate)
    await gate.wait_started()
    cut = asyncio.create_task(scheduler.run(Priority.FIRST_TTS, recorder(log, "cut reply")))
    await _submitted()
    assert scheduler.backlog(Priority) == 2
    cut.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cut
    assert scheduler.backlog(Priority) == 1  # only the running gate is left
    gate.open()
    async with asyncio.timeout(WAIT_S):
        assert await asyncio.wrap_future(busy) == "gate"
        # One worker, first in first out at a priority: had the cut job stayed queued it would run before this.
        assert await scheduler.run(Priority.TTS, recorder(log, "after")) == "after"
    assert log == ["after"]


@pytest.mark.asyncio
async def test_cancelling_the_awaiter_of_a_running_job_drops_its_result(schedulers: Schedulers) -> None:
    scheduler = schedulers()
    gate = schedulers.gate("dropped result")
    finished = threading.Event()

    def synthesis() -> str:
        result = gate()
        finished.set()
        return result

    running = asyncio.create_task(scheduler.run(Priority.FIRST_TTS, synthesis))
    await gate.wait_started()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert scheduler.backlog(Priority) == 1  # a running call cannot be stopped
    gate.open()
    assert await asyncio.to_thread(finished.wait, WAIT_S), "the running job was not let finish"
    async with asyncio.timeout(WAIT_S):
        assert await scheduler.run(Priority.FINAL, lambda: "next") == "next"
    assert scheduler.backlog(Priority) == 0


@pytest.mark.asyncio
async def test_a_newer_job_with_the_same_key_supersedes_the_queued_one(schedulers: Schedulers) -> None:
    scheduler = schedulers()
    gate, log = schedulers.gate(), []
    busy = scheduler.submit(Priority.FINAL, gate)
    await gate.wait_started()
    older = asyncio.create_task(scheduler.run(Priority.PARTIAL, recorder(log, "older"), key="stream a"))
    other = asyncio.create_task(scheduler.run(Priority.PARTIAL, recorder(log, "other stream"), key="stream b"))
    await _submitted()
    newer = asyncio.create_task(scheduler.run(Priority.PARTIAL, recorder(log, "newer"), key="stream a"))
    async with asyncio.timeout(WAIT_S):
        with pytest.raises(Superseded):
            await older  # raised at once, while the only worker is still blocked
    await _submitted()
    assert scheduler.backlog([Priority.PARTIAL]) == 2  # the other stream's and the newer one
    gate.open()
    async with asyncio.timeout(WAIT_S):
        assert await asyncio.gather(newer, other) == ["newer", "other stream"]
        assert await asyncio.wrap_future(busy) == "gate"
    assert sorted(log) == ["newer", "other stream"]  # the superseded job never ran


@pytest.mark.asyncio
async def test_a_key_supersedes_across_priorities(schedulers: Schedulers) -> None:
    """An end-of-turn question asked again, now more urgently: the pending one is out of date either way."""
    scheduler = schedulers()
    gate, log = schedulers.gate(), []
    busy = scheduler.submit(Priority.HEARING, gate)
    await gate.wait_started()
    older = scheduler.submit(Priority.TTS, recorder(log, "older"), key="eot")
    newer = scheduler.submit(Priority.END_OF_TURN, recorder(log, "newer"), key="eot")
    async with asyncio.timeout(WAIT_S):
        with pytest.raises(Superseded):
            await asyncio.wrap_future(older)
        gate.open()
        assert await asyncio.wrap_future(newer) == "newer"
        assert await asyncio.wrap_future(busy) == "gate"
    assert log == ["newer"]


@pytest.mark.asyncio
async def test_a_newer_job_with_the_same_key_leaves_a_running_one_alone(schedulers: Schedulers) -> None:
    scheduler = schedulers()
    running_gate = schedulers.gate("running")
    running = asyncio.create_task(scheduler.run(Priority.PARTIAL, running_gate, key="stream a"))
    await running_gate.wait_started()
    newer = asyncio.create_task(scheduler.run(Priority.PARTIAL, lambda: "newer", key="stream a"))
    await _submitted()
    assert not running.done()
    assert scheduler.backlog([Priority.PARTIAL]) == 2
    running_gate.open()
    async with asyncio.timeout(WAIT_S):
        assert await asyncio.gather(running, newer) == ["running", "newer"]


@pytest.mark.asyncio
async def test_a_key_is_free_again_once_its_job_has_run(schedulers: Schedulers) -> None:
    scheduler = schedulers()
    async with asyncio.timeout(WAIT_S):
        assert await scheduler.run(Priority.FINAL, lambda: 1, key="k") == 1
        assert await scheduler.run(Priority.FINAL, lambda: 2, key="k") == 2


# ---------- closing ----------
@pytest.mark.asyncio
async def test_close_fails_queued_jobs_lets_the_running_one_finish_and_refuses_new_ones(
        schedulers: Schedulers) -> None:
    scheduler = schedulers()
    gate = schedulers.gate()
    busy = scheduler.submit(Priority.FINAL, gate)
    await gate.wait_started()
    queued = [scheduler.submit(Priority.PARTIAL, lambda: "never"),
              scheduler.submit(Priority.END_OF_TURN, lambda: "never", key="eot")]
    awaited = asyncio.create_task(scheduler.run(Priority.TTS, lambda: "never"))
    await _submitted()
    closer = asyncio.create_task(asyncio.to_thread(scheduler.close))
    async with asyncio.timeout(WAIT_S):
        with pytest.raises(SchedulerClosed):
            await awaited  # failed before the running job ends
        for future in queued:
            with pytest.raises(SchedulerClosed):
                await asyncio.wrap_future(future)
    assert not busy.done()
    gate.open()
    async with asyncio.timeout(WAIT_S):
        assert await asyncio.wrap_future(busy) == "gate"
        await closer
    with pytest.raises(SchedulerClosed):
        scheduler.submit(Priority.FINAL, lambda: "late")
    with pytest.raises(SchedulerClosed):
        await scheduler.run(Priority.FINAL, lambda: "late")
    assert issubclass(SchedulerClosed, RuntimeError)


# ---------- observing ----------
@pytest.mark.asyncio
async def test_observers_get_priority_queue_wait_and_run_time_and_a_failing_one_harms_nothing(
        schedulers: Schedulers, caplog: pytest.LogCaptureFixture) -> None:
    scheduler = schedulers()
    seen: list[tuple[Priority, float, float]] = []
    both_seen = threading.Event()

    def failing(priority: Priority, waited_s: float, ran_s: float) -> None:
        raise RuntimeError("bad observer")

    def recording(priority: Priority, waited_s: float, ran_s: float) -> None:
        seen.append((priority, waited_s, ran_s))
        if len(seen) == 2:
            both_seen.set()

    scheduler.add_observer(failing)
    scheduler.add_observer(recording)
    gate = schedulers.gate()
    busy = scheduler.submit(Priority.END_OF_TURN, gate)
    await gate.wait_started()
    gate_running_since = time.perf_counter()
    queued = scheduler.submit(Priority.FINAL, lambda: "queued")
    queued_since = time.perf_counter()
    released_at = time.perf_counter()
    gate.open()
    assert await asyncio.to_thread(both_seen.wait, WAIT_S), "observers not called"
    assert busy.result(0) == "gate" and queued.result(0) == "queued"  # resolved before their observers ran
    (gate_priority, gate_wait, gate_run), (queued_priority, queued_wait, queued_run) = seen
    assert (gate_priority, queued_priority) == (Priority.END_OF_TURN, Priority.FINAL)
    assert gate_wait >= 0 and gate_run >= released_at - gate_running_since
    assert queued_wait >= released_at - queued_since and queued_run >= 0
    # The lane's busy time is the sum of its jobs' run times (observers are called after it is added).
    assert scheduler.busy_seconds() == pytest.approx({"all": gate_run + queued_run})
    assert [r.getMessage() for r in caplog.records].count("scheduler observer failed") == 2

    # A removed observer is not called again; the one still registered (and called after it) is.
    third_seen = threading.Event()
    scheduler.remove_observer(failing)
    scheduler.remove_observer(failing)  # removing twice is harmless
    scheduler.remove_observer(recording)
    scheduler.add_observer(lambda priority, waited_s, ran_s: third_seen.set())
    async with asyncio.timeout(WAIT_S):
        assert await scheduler.run(Priority.PARTIAL, lambda: "third") == "third"
    assert await asyncio.to_thread(third_seen.wait, WAIT_S)
    assert len(seen) == 2
    assert [r.getMessage() for r in caplog.records].count("scheduler observer failed") == 2


@pytest.mark.asyncio
async def test_job_times_count_a_job_s_own_cpu_apart_from_its_waiting(schedulers: Schedulers) -> None:
    scheduler = schedulers(Lane("fg", 1, FOREGROUND), Lane("bg", 1, BACKGROUND))
    before = scheduler.job_times()
    assert before.run_s == dict.fromkeys(Priority, 0.0) and before.cpu_s == dict.fromkeys(Priority, 0.0)

    def spin() -> None:  # CPU in the worker's own thread
        started = time.thread_time()
        while time.thread_time() - started < 0.05:
            pass

    blocked = threading.Event()
    async with asyncio.timeout(WAIT_S):
        await scheduler.run(Priority.END_OF_TURN, spin)
        # Blocked in another thread's work, as a worker is while CTranslate2's own threads decode.
        await scheduler.run(Priority.PARTIAL, lambda: blocked.wait(0.05))
    after = scheduler.job_times()
    assert after.cpu_s[Priority.END_OF_TURN] >= 0.05 and after.run_s[Priority.END_OF_TURN] >= 0.05
    assert after.run_s[Priority.PARTIAL] >= 0.05 and after.cpu_s[Priority.PARTIAL] < 0.03
    assert len(after.workers) == 2 and threading.get_native_id() not in after.workers


def test_busy_seconds_starts_at_zero_for_every_lane(schedulers: Schedulers) -> None:
    scheduler = schedulers(Lane("fg", 1, FOREGROUND), Lane("bg", 2, BACKGROUND))
    assert scheduler.busy_seconds() == {"fg": 0.0, "bg": 0.0}


# ---------- OS priority ----------
def _niceness_of_this_thread() -> tuple[int, int]:
    """This thread's niceness, from the syscall and from field 19 of its /proc stat."""
    tid = threading.get_native_id()
    stat = Path(f"/proc/self/task/{tid}/stat").read_text()
    from_proc = int(stat.rsplit(")", 1)[1].split()[16])
    return os.getpriority(os.PRIO_PROCESS, tid), from_proc


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="niceness is per thread only on Linux")
@pytest.mark.asyncio
async def test_the_background_lane_runs_niced_and_threads_started_in_it_inherit_that(
        schedulers: Schedulers) -> None:
    base = _niceness_of_this_thread()[0]
    assert base < BACKGROUND_NICE, "the test runner itself must run below the background lane's niceness"
    scheduler = schedulers(Lane("fg", 1, FOREGROUND), Lane("bg", 1, BACKGROUND, nice=BACKGROUND_NICE))

    def in_a_thread_started_by_the_job() -> tuple[int, int]:
        # As CTranslate2 or ONNX Runtime would: a thread of its own, started during the call.
        result: list[tuple[int, int]] = []
        child = threading.Thread(target=lambda: result.append(_niceness_of_this_thread()))
        child.start()
        child.join(WAIT_S)
        return result[0]

    async with asyncio.timeout(WAIT_S):
        background = await scheduler.run(Priority.PARTIAL, _niceness_of_this_thread)
        background_child = await scheduler.run(Priority.TTS, in_a_thread_started_by_the_job)
        foreground = await scheduler.run(Priority.FINAL, _niceness_of_this_thread)
        foreground_child = await scheduler.run(Priority.FINAL, in_a_thread_started_by_the_job)
    assert background == (BACKGROUND_NICE, BACKGROUND_NICE)
    assert background_child == (BACKGROUND_NICE, BACKGROUND_NICE)
    assert foreground == (base, base) and foreground_child == (base, base)
    assert _niceness_of_this_thread() == (base, base)  # the process and its other threads keep theirs


# ---------- construction ----------
def test_every_priority_must_be_served_by_some_lane() -> None:
    with pytest.raises(ValueError, match="partial"):
        InferenceScheduler([Lane("fg", 1, FOREGROUND), Lane("bg", 1, BACKGROUND - {Priority.PARTIAL})])
    with pytest.raises(ValueError, match="end_of_turn"):
        InferenceScheduler([Lane("only", 1, EVERY - {Priority.END_OF_TURN})])


def test_there_must_be_a_lane_and_each_lane_needs_a_thread() -> None:
    with pytest.raises(ValueError, match="at least one"):
        InferenceScheduler([])
    with pytest.raises(ValueError, match="at least one"):
        InferenceScheduler([Lane("fg", 1, FOREGROUND), Lane("bg", 0, BACKGROUND)])
