"""Virtual time for tests of the session: the event loop's own clock, fast-forwarded by `looptime`.

`VIRTUAL_TIME` marks a test: its loop's time is virtual, and moves on only when everything due at this
instant has run (sleeps, deadlines, timers and call_later all follow it). One no-op loop cycle before
time moves on is enough for these tests: nothing they run works outside the loop.
"""

from __future__ import annotations

import asyncio

import pytest

VIRTUAL_TIME = pytest.mark.looptime(noop_cycles=1)


class LoopClock:
    """A session's clock that is the event loop's (virtual under `VIRTUAL_TIME`)."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()
