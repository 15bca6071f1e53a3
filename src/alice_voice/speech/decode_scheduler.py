"""The one process-wide queue through which every embedded ASR decode runs.

A fixed number of worker threads take jobs in this order: finals first (oldest first), then partials (one
per stream key, oldest stream first). With two or more workers, partials may occupy all but one of them:
one lane is always free, so a final starts at once instead of waiting for a partial pass to finish.

A partial that is out of date is dropped instead of queued: per key only the newest pending partial is
kept, and the one it replaces resolves to None. A final also drops the pending partial of its key, since
the final covers at least as much audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
_log = logging.getLogger(__name__)

PassObserver = Callable[[bool, float], None]
"""Called from a worker thread after each job with (final, seconds of compute)."""


@dataclass(eq=False, slots=True)
class _Job:
    key: Hashable
    fn: Callable[[], Any]
    final: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        # RuntimeError: the caller's loop is closed, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(_settle, self.future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class DecodeScheduler:
    """Bounded worker threads running blocking decode callables for async callers."""

    def __init__(self, threads: int = 1, name: str = "asr-decode") -> None:
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.threads = threads
        self.on_pass: PassObserver | None = None
        self._cv = threading.Condition()
        self._finals: deque[_Job] = deque()
        self._partials: OrderedDict[Hashable, _Job] = OrderedDict()
        self._partial_lanes = max(1, threads - 1)
        self._running_partials = 0
        self._closed = False
        self._workers = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(threads)]
        for worker in self._workers:
            worker.start()

    async def run(self, key: Hashable, fn: Callable[[], T], *, final: bool) -> T | None:
        """Run `fn` on a worker; None if a newer partial for `key` (or a final) superseded it."""
        return await self.submit(key, fn, final=final)

    def submit(self, key: Hashable, fn: Callable[[], T], *, final: bool) -> asyncio.Future[T | None]:
        """Queue `fn` now; cancelling the returned future withdraws the job if it has not started."""
        loop = asyncio.get_running_loop()
        job = _Job(key, fn, final, loop, loop.create_future())
        job.future.add_done_callback(lambda future: self._withdraw(job) if future.cancelled() else None)
        self._submit(job)
        return job.future

    def pending(self) -> int:
        with self._cv:
            return len(self._finals) + len(self._partials)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the workers after their current job; jobs still queued resolve to None."""
        with self._cv:
            self._closed = True
            dropped = [*self._finals, *self._partials.values()]
            self._finals.clear()
            self._partials.clear()
            self._cv.notify_all()
        for job in dropped:
            job.settle(None)
        for worker in self._workers:
            if worker is not threading.current_thread():
                worker.join(timeout_s)

    def _submit(self, job: _Job) -> None:
        with self._cv:
            if self._closed:
                raise RuntimeError("decode scheduler is closed")
            if job.final:
                replaced = self._partials.pop(job.key, None)
                self._finals.append(job)
            else:
                replaced = self._partials.get(job.key)
                # Assigning to an existing key keeps its place: a busy stream does not lose its turn.
                self._partials[job.key] = job
            self._cv.notify()
        if replaced is not None:
            replaced.settle(None)

    def _withdraw(self, job: _Job) -> None:
        with self._cv:
            if job.final:
                with contextlib.suppress(ValueError):
                    self._finals.remove(job)
            elif self._partials.get(job.key) is job:
                del self._partials[job.key]

    def _next(self) -> _Job | None:
        with self._cv:
            while True:
                if self._finals:
                    return self._finals.popleft()
                if self._partials and self._running_partials < self._partial_lanes:
                    self._running_partials += 1
                    return self._partials.popitem(last=False)[1]
                if self._closed:
                    return None
                self._cv.wait()

    def _done(self, job: _Job) -> None:
        if not job.final:
            with self._cv:
                self._running_partials -= 1
                self._cv.notify()

    def _work(self) -> None:
        while (job := self._next()) is not None:
            started = time.perf_counter()
            result: Any = None
            error: Exception | None = None
            try:
                result = job.fn()
            except Exception as exc:
                error = exc
            self._done(job)
            self._observe(job.final, time.perf_counter() - started)
            job.settle(result, error)

    def _observe(self, final: bool, seconds: float) -> None:
        observer = self.on_pass
        if observer is None:
            return
        try:
            observer(final, seconds)
        except Exception:
            _log.exception("decode pass observer failed")  # a worker must outlive a bad observer


_shared: DecodeScheduler | None = None
_shared_lock = threading.Lock()


def shared_scheduler(threads: int) -> DecodeScheduler:
    """The process-wide scheduler; the first caller's `threads` sizes it for the life of the process."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = DecodeScheduler(threads)
        return _shared
