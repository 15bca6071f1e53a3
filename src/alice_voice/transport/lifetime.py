"""A transport's own tasks and its one ending, as every transport keeps them: the tasks it spawns are
cancelled and awaited together when it closes; the first reason it ends for is the one kept (`ended` is set
once); a task that fails is logged with the session's id and, unless the transport says otherwise, ends it
(a dead reader or pacer would leave the caller with silence on a line that looks alive)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from alice_voice.logs import SessionLogger


class Lifetime:
    def __init__(self, what: str, log: SessionLogger, *, failure_ends: bool = True) -> None:
        self.ended = asyncio.Event()
        self.end_reason = ""
        self.log = log  # (replaced by the session's once attached)
        self._what, self._failure_ends = what, failure_ends
        self._tasks: set[asyncio.Future[None]] = set()

    def spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    async def stop_tasks(self) -> None:
        """Cancel them all and wait for them (the caller bounds the wait)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def end(self, reason: str) -> None:
        if not self.ended.is_set():
            self.end_reason = reason
            self.ended.set()

    def _task_done(self, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("%s task failed", self._what, exc_info=task.exception())
            if self._failure_ends:
                self.end(f"{self._what} failed")


class EndsOnce:
    """A transport's `ended` and `end_reason`, as its `Lifetime` keeps them."""

    _lifetime: Lifetime

    @property
    def ended(self) -> asyncio.Event:
        return self._lifetime.ended

    @property
    def end_reason(self) -> str:
        return self._lifetime.end_reason
