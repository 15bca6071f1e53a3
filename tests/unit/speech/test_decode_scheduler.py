"""The process-wide decode scheduler: bounded workers, finals first, latest-only partials, cancellation.

Jobs are plain callables; a `Gate` job holds a worker until the test opens it, so every ordering below
is forced by events, never by timing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest

from alice_voice.speech.decode_scheduler import DecodeScheduler, shared_scheduler

WAIT_S = 5.0


class Gate:
    """A job that reports it started, then blocks its worker until `open()`."""

    def __init__(self, result: str = "gate") -> None:
        self.started = threading.Event()
        self._release = threading.Event()
        self.result = result

    def __call__(self) -> str:
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


async def _noop() -> None:
    return None


@pytest.fixture
def scheduler() -> Iterator[DecodeScheduler]:
    sched = DecodeScheduler(threads=1)
    yield sched
    sched.close()


@pytest.mark.asyncio
async def test_run_returns_the_result_and_raises_the_error(scheduler: DecodeScheduler) -> None:
    assert await scheduler.run("a", lambda: 6 * 7, final=False) == 42

    def broken() -> int:
        raise ValueError("bad audio")

    with pytest.raises(ValueError, match="bad audio"):
        await scheduler.run("a", broken, final=True)
    assert await scheduler.run("a", lambda: "still working", final=True) == "still working"


@pytest.mark.asyncio
async def test_final_runs_before_partials_queued_earlier(scheduler: DecodeScheduler) -> None:
    gate, log = Gate(), []
    busy = scheduler.submit("busy", gate, final=False)
    await gate.wait_started()
    partial_a = scheduler.submit("a", recorder(log, "partial a"), final=False)
    partial_b = scheduler.submit("b", recorder(log, "partial b"), final=False)
    final_c = scheduler.submit("c", recorder(log, "final c"), final=True)
    gate.open()
    async with asyncio.timeout(WAIT_S):
        results = await asyncio.gather(busy, partial_a, partial_b, final_c)
    assert results == ["gate", "partial a", "partial b", "final c"]
    assert log == ["final c", "partial a", "partial b"]


@pytest.mark.asyncio
async def test_finals_run_in_the_order_they_were_requested(scheduler: DecodeScheduler) -> None:
    gate, log = Gate(), []
    busy = scheduler.submit("busy", gate, final=False)
    await gate.wait_started()
    finals = [scheduler.submit(key, recorder(log, key), final=True) for key in ("x", "y", "x")]
    gate.open()
    async with asyncio.timeout(WAIT_S):
        await asyncio.gather(busy, *finals)
    assert log == ["x", "y", "x"]


@pytest.mark.asyncio
async def test_newer_partial_supersedes_the_pending_one(scheduler: DecodeScheduler) -> None:
    gate, log = Gate(), []
    busy = scheduler.submit("busy", gate, final=False)
    await gate.wait_started()
    first = scheduler.submit("s", recorder(log, "first"), final=False)
    other = scheduler.submit("t", recorder(log, "other stream"), final=False)
    second = scheduler.submit("s", recorder(log, "second"), final=False)
    async with asyncio.timeout(WAIT_S):
        assert await first is None  # resolved while the worker is still blocked
    assert scheduler.pending() == 2
    gate.open()
    async with asyncio.timeout(WAIT_S):
        assert await asyncio.gather(busy, other, second) == ["gate", "other stream", "second"]
    # The superseding partial keeps the superseded one's place, ahead of the other stream.
    assert log == ["second", "other stream"]


@pytest.mark.asyncio
async def test_final_drops_the_pending_partial_of_its_key(scheduler: DecodeScheduler) -> None:
    gate, log = Gate(), []
    busy = scheduler.submit("busy", gate, final=False)
    await gate.wait_started()
    partial = scheduler.submit("s", recorder(log, "partial s"), final=False)
    unrelated = scheduler.submit("t", recorder(log, "partial t"), final=False)
    final = scheduler.submit("s", recorder(log, "final s"), final=True)
    async with asyncio.timeout(WAIT_S):
        assert await partial is None
    gate.open()
    async with asyncio.timeout(WAIT_S):
        assert await asyncio.gather(busy, final, unrelated) == ["gate", "final s", "partial t"]
    assert log == ["final s", "partial t"]


@pytest.mark.asyncio
async def test_cancelled_waiter_withdraws_its_queued_job(scheduler: DecodeScheduler) -> None:
    gate, log = Gate(), []
    busy = scheduler.submit("busy", gate, final=False)
    await gate.wait_started()
    partial = asyncio.create_task(scheduler.run("s", recorder(log, "partial"), final=False))
    final = asyncio.create_task(scheduler.run("t", recorder(log, "final"), final=True))
    await asyncio.create_task(_noop())  # tasks start in creation order: both have now submitted
    assert scheduler.pending() == 2
    partial.cancel()
    final.cancel()
    for task in (partial, final):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert scheduler.pending() == 0
    gate.open()
    async with asyncio.timeout(WAIT_S):
        assert await busy == "gate"
        assert await scheduler.run("u", recorder(log, "after"), final=False) == "after"
    assert log == ["after"]


@pytest.mark.asyncio
async def test_cancel_while_running_lets_the_job_finish_and_the_worker_go_on(
        scheduler: DecodeScheduler) -> None:
    gate = Gate()
    running = asyncio.create_task(scheduler.run("s", gate, final=True))
    await gate.wait_started()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    gate.open()
    async with asyncio.timeout(WAIT_S):
        assert await scheduler.run("s", lambda: "next", final=False) == "next"


@pytest.mark.asyncio
async def test_no_more_partials_run_at_once_than_their_lanes() -> None:
    sched = DecodeScheduler(threads=3)  # two partial lanes, one kept for finals
    try:
        gates = [Gate(f"g{i}") for i in range(3)]
        futures = [sched.submit(f"k{i}", gate, final=False) for i, gate in enumerate(gates)]
        await gates[0].wait_started()
        await gates[1].wait_started()
        assert not gates[2].started.is_set()
        assert sched.pending() == 1
        gates[0].open()
        await gates[2].wait_started()
        gates[1].open()
        gates[2].open()
        async with asyncio.timeout(WAIT_S):
            assert await asyncio.gather(*futures) == ["g0", "g1", "g2"]
    finally:
        sched.close()


@pytest.mark.asyncio
async def test_close_resolves_queued_jobs_to_none_and_refuses_new_ones() -> None:
    sched = DecodeScheduler(threads=1)
    gate = Gate()
    busy = sched.submit("busy", gate, final=False)
    await gate.wait_started()
    queued = sched.submit("s", lambda: "never", final=True)
    closer = asyncio.create_task(asyncio.to_thread(sched.close))
    async with asyncio.timeout(WAIT_S):
        assert await queued is None
    gate.open()
    async with asyncio.timeout(WAIT_S):
        assert await busy == "gate"
        await closer
    with pytest.raises(RuntimeError, match="closed"):
        await sched.run("s", lambda: "late", final=False)


@pytest.mark.asyncio
async def test_observer_sees_every_pass(scheduler: DecodeScheduler) -> None:
    seen: list[tuple[bool, float]] = []
    scheduler.on_pass = lambda final, seconds: seen.append((final, seconds))
    await scheduler.run("s", lambda: None, final=False)
    await scheduler.run("s", lambda: None, final=True)
    assert [final for final, _ in seen] == [False, True]
    assert all(seconds >= 0 for _, seconds in seen)


def test_shared_scheduler_is_one_per_process() -> None:
    first = shared_scheduler(1)
    assert shared_scheduler(3) is first
    assert first.threads >= 1


@pytest.mark.asyncio
async def test_with_two_workers_a_final_does_not_wait_for_a_running_partial() -> None:
    scheduler = DecodeScheduler(threads=2)
    release = threading.Event()
    started = threading.Event()

    def slow_partial() -> str:
        started.set()
        release.wait(5)
        return "partial"

    try:
        partial = scheduler.submit("a", slow_partial, final=False)
        await asyncio.to_thread(started.wait, 5)
        second = scheduler.submit("b", lambda: "other partial", final=False)  # no free partial lane
        async with asyncio.timeout(5):
            assert await scheduler.run("a", lambda: "final", final=True) == "final"
        assert not second.done()  # partials never take the lane kept for finals
        release.set()
        assert await partial == "partial" and await second == "other partial"
    finally:
        release.set()
        scheduler.close()
