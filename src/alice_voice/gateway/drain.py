"""The drain of a rolling update: the process takes no new sessions (503 `shutting_down` with
`Retry-After`; `/health` says draining, so the load balancer takes it out) and waits up to `DRAIN_LIMIT_S`
for its live sessions, and offers still opening, to end by themselves. One drain per process: a second
request (SIGTERM after the admin endpoint) waits for the same one, on its own deadline. What is left when
it ends is for the shutdown (`Gateway.close_sessions`)."""

from __future__ import annotations

import asyncio
import logging

from alice_voice.errors import ShuttingDown
from alice_voice.gateway.sessions import Gateway

_RECHECK_S = 0.5
log = logging.getLogger("alice_voice.gateway")


class Drain:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._task: asyncio.Task[int] | None = None

    @property
    def draining(self) -> bool:
        return self._task is not None

    def start(self, limit_s: float | None = None) -> None:
        """Begin (at once: the next offer is refused) and go on in the background."""
        if self._task is None:
            gateway = self._gateway
            gateway.refusal = ShuttingDown("the gateway is draining: try another",
                                           retry_after_s=gateway.settings.retry_after_s)
            limit = gateway.settings.drain_limit_s if limit_s is None else limit_s
            self._task = asyncio.create_task(self._wait(limit), name="gateway-drain")

    async def __call__(self, limit_s: float | None = None) -> int:
        """Drain (or join the drain under way); returns how many sessions are left when it ends."""
        self.start(limit_s)
        assert self._task is not None
        return await asyncio.shield(self._task)

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()  # the shutdown makes it moot
            await asyncio.gather(self._task, return_exceptions=True)

    async def _wait(self, limit_s: float) -> int:
        gateway = self._gateway
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        log.info("draining: %d live sessions, %d opening, up to %.0f s", len(gateway.sessions), gateway.opening,
                 limit_s)
        while (gateway.sessions or gateway.opening) and loop.time() < deadline:
            # a session's end, or (an offer still opening has no end to wait on yet) a look again shortly
            waiters = [asyncio.ensure_future(live.ended.wait()) for live in list(gateway.sessions.values())]
            await asyncio.wait(waiters or [asyncio.ensure_future(asyncio.sleep(_RECHECK_S))],
                               timeout=min(_RECHECK_S, max(0.0, deadline - loop.time())),
                               return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
        log.info("drained: %d sessions left", len(gateway.sessions))
        return len(gateway.sessions)
