"""The owner of the CPU: every model call of every session of a runtime runs through its scheduler.

Callers submit a blocking callable with a `Priority`; worker threads in lanes (see `priority.py`) take the
highest-priority job they serve. Work that is out of date is withdrawn before it runs:

- cancelling the awaiting task cancels a job that has not started (a cut reply's synthesis);
- a job submitted with a `key` replaces a pending job with the same key, which then raises `Superseded`
  (an end-of-turn question asked again, a partial decode overtaken by a newer one).

A job already running cannot be stopped (a CTranslate2 or ONNX call), so its result is dropped instead.
Every job's queue wait and run time go to the observers (the gateway's metrics and its admission).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from alice_voice.compute.priority import Lane, Priority

T = TypeVar("T")
JobObserver = Callable[[Priority, float, float], None]
"""Called from the worker thread after each job with (priority, seconds queued, seconds running)."""

_log = logging.getLogger(__name__)


class JobRunner(Protocol):
    """What sessions need of the scheduler: run a blocking call at a priority (tests substitute one)."""

    async def run(self, priority: Priority, fn: Callable[[], T], *, key: Hashable | None = None) -> T: ...


@dataclass(frozen=True, slots=True)
class JobTimes:
    """Per priority: seconds jobs ran, and the CPU seconds their worker threads spent on them (a model
    library's own threads, CTranslate2's, are not counted here); the workers' native thread ids."""

    run_s: dict[Priority, float]
    cpu_s: dict[Priority, float]
    workers: frozenset[int]


class Superseded(Exception):
    """A newer job with the same key replaced this one before it ran."""


class SchedulerClosed(RuntimeError):
    """The scheduler stopped before the job ran."""


@dataclass(eq=False, slots=True)
class _Job:
    priority: Priority
    fn: Callable[[], Any]
    key: Hashable | None
    queued_at: float
    future: concurrent.futures.Future[Any] = field(default_factory=concurrent.futures.Future)
    withdrawn: bool = False


class InferenceScheduler:
    """Prioritized worker lanes for blocking model calls; safe to submit to from any thread."""

    def __init__(self, lanes: Sequence[Lane], name: str = "inference") -> None:
        if not lanes or any(lane.threads < 1 for lane in lanes):
            raise ValueError("need at least one lane, each with at least one thread")
        served = frozenset().union(*(lane.serves for lane in lanes))
        if served != frozenset(Priority):
            raise ValueError(f"no lane serves {sorted(p.label for p in set(Priority) - served)}")
        self.lanes = tuple(lanes)
        self._cv = threading.Condition()
        self._queues: dict[Priority, deque[_Job]] = {priority: deque() for priority in Priority}
        self._keyed: dict[Hashable, _Job] = {}
        self._running: dict[Priority, int] = dict.fromkeys(Priority, 0)
        self._busy_s: dict[str, float] = {lane.name: 0.0 for lane in lanes}
        self._run_s: dict[Priority, float] = dict.fromkeys(Priority, 0.0)
        self._cpu_s: dict[Priority, float] = dict.fromkeys(Priority, 0.0)
        self._worker_ids: set[int] = set()
        self._observers: list[JobObserver] = []
        self._closed = False
        self._threads = [threading.Thread(target=self._work, args=(lane,), name=f"{name}-{lane.name}-{i}",
                                          daemon=True) for lane in lanes for i in range(lane.threads)]
        for thread in self._threads:
            thread.start()

    # ---------- submitting ----------
    def submit(self, priority: Priority, fn: Callable[[], T], *,
               key: Hashable | None = None) -> concurrent.futures.Future[T]:
        """Queue `fn`; cancelling the returned future withdraws it if it has not started."""
        job = _Job(priority, fn, key, time.perf_counter())
        replaced: _Job | None = None
        with self._cv:
            if self._closed:
                raise SchedulerClosed("the inference scheduler is closed")
            if key is not None:
                replaced = self._keyed.get(key)
                self._keyed[key] = job
                if replaced is not None and not replaced.future.running():
                    replaced.withdrawn = True
                else:
                    replaced = None
            self._queues[priority].append(job)
            self._cv.notify_all()
        if replaced is not None:
            _fail(replaced.future, Superseded())
        return job.future

    async def run(self, priority: Priority, fn: Callable[[], T], *, key: Hashable | None = None) -> T:
        """`fn`'s result; raises what it raises, `Superseded`, or `SchedulerClosed`. Cancelling the
        caller withdraws the job if it has not started."""
        return await asyncio.wrap_future(self.submit(priority, fn, key=key))

    def call(self, priority: Priority, fn: Callable[[], T]) -> T:
        """Blocking, for threads other than the event loop's: e.g. to build a model inside a lane, so the
        threads the model library starts inherit that lane's OS priority."""
        return self.submit(priority, fn).result()

    # ---------- observing ----------
    def add_observer(self, observer: JobObserver) -> None:
        with self._cv:
            self._observers.append(observer)

    def remove_observer(self, observer: JobObserver) -> None:
        with self._cv:
            if observer in self._observers:
                self._observers.remove(observer)

    def backlog(self, priorities: Iterable[Priority]) -> int:
        """Jobs of these priorities queued or running now."""
        wanted = set(priorities)
        with self._cv:
            queued = sum(not job.withdrawn and not job.future.done()
                         for priority in wanted for job in self._queues[priority])
            return queued + sum(self._running[priority] for priority in wanted)

    def lane_threads(self, priority: Priority) -> int:
        """Threads that may run a job of `priority`."""
        return sum(lane.threads for lane in self.lanes if priority in lane.serves)

    def busy_seconds(self) -> dict[str, float]:
        """Seconds each lane has spent running jobs (completed jobs only), since start."""
        with self._cv:
            return dict(self._busy_s)

    def job_times(self) -> JobTimes:
        """Per priority, the completed jobs' run time and their worker threads' own CPU time, since start."""
        with self._cv:
            return JobTimes(dict(self._run_s), dict(self._cpu_s), frozenset(self._worker_ids))

    # ---------- closing ----------
    def close(self, timeout_s: float = 5.0) -> None:
        """Stop after the running jobs; queued ones fail with `SchedulerClosed`."""
        with self._cv:
            self._closed = True
            dropped = [job for queue in self._queues.values() for job in queue]
            for queue in self._queues.values():
                queue.clear()
            self._keyed.clear()
            self._cv.notify_all()
        for job in dropped:
            _fail(job.future, SchedulerClosed("the inference scheduler closed before the job ran"))
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout_s)

    # ---------- workers ----------
    def _work(self, lane: Lane) -> None:
        _set_thread_nice(lane.nice)
        with self._cv:
            self._worker_ids.add(threading.get_native_id())
        while (job := self._take(lane)) is not None:
            self._run(lane, job)
            del job  # an idle worker must not keep the last job's session alive

    def _run(self, lane: Lane, job: _Job) -> None:
        started, cpu_started = time.perf_counter(), time.thread_time()
        result: Any = None
        error: BaseException | None = None
        try:
            result = job.fn()
        except BaseException as exc:  # the caller decides what a failure means
            error = exc
        # Off the books before the caller hears of it: a job whose result is out is not running.
        self._finished(lane, job, started, time.perf_counter(), time.thread_time() - cpu_started)
        if error is None:
            job.future.set_result(result)
        else:
            job.future.set_exception(error)

    def _take(self, lane: Lane) -> _Job | None:
        order = sorted(lane.serves)
        with self._cv:
            while True:
                for priority in order:
                    queue = self._queues[priority]
                    while queue:
                        job = queue.popleft()
                        if self._keyed.get(job.key) is job:
                            del self._keyed[job.key]
                        if job.withdrawn or not job.future.set_running_or_notify_cancel():
                            continue  # superseded, or its caller went away
                        self._running[priority] += 1
                        return job
                if self._closed:
                    return None
                self._cv.wait()

    def _finished(self, lane: Lane, job: _Job, started: float, ended: float, cpu_s: float) -> None:
        with self._cv:
            self._running[job.priority] -= 1
            self._busy_s[lane.name] += ended - started
            self._run_s[job.priority] += ended - started
            self._cpu_s[job.priority] += cpu_s
            observers = list(self._observers)
        for observer in observers:
            try:
                observer(job.priority, started - job.queued_at, ended - started)
            except Exception:
                _log.exception("scheduler observer failed")  # a worker must outlive a bad observer


def _fail(future: concurrent.futures.Future[Any], error: BaseException) -> None:
    with contextlib.suppress(concurrent.futures.InvalidStateError):  # cancelled by its caller meanwhile
        future.set_exception(error)


def _set_thread_nice(nice: int) -> None:
    """Set this thread's OS niceness (Linux: it is per thread, and inherited by threads it starts). Raising
    it needs no privilege; lowering it does, so a lane meant for nice 0 created from a niced thread stays
    niced (with a warning)."""
    if not sys.platform.startswith("linux"):
        return
    me = threading.get_native_id()
    if os.getpriority(os.PRIO_PROCESS, me) == nice:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, me, nice)
    except OSError as exc:
        _log.warning("could not set the priority of %s to %d: %s", threading.current_thread().name, nice, exc)


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask, which container CPU sets restrict)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
