"""The process's HTTP server: uvicorn, with SIGTERM turned into a drain.

On SIGTERM (a rolling update, `kubectl delete pod`, `docker stop`) the gateway first drains: it takes no
new sessions (503 with `Retry-After`; `/health` answers 503 `draining`, so the load balancer or readiness
probe takes it out) and lets live calls finish for up to `DRAIN_LIMIT_S`; then uvicorn's normal shutdown
tells the callers still connected (`shutting_down`) and closes them within `SHUTDOWN_GRACE_S`. SIGINT
(Ctrl-C) or a second SIGTERM skips the drain.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from types import FrameType

import uvicorn

from alice_voice.gateway import Gateway


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, gateway: Gateway) -> None:
        super().__init__(config)
        self._gateway = gateway
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Task[None] | None = None
        self._drain_requested = False

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or self._loop is None or self._drain_requested:
            super().handle_exit(sig, frame)
            return
        self._drain_requested = True  # here, in the handler: a second SIGTERM before the loop runs skips it
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        self._drain = asyncio.create_task(self._drain_then_exit(), name="drain-then-exit")

    async def _drain_then_exit(self) -> None:
        try:
            await self._gateway.drain()  # the admin endpoint's drain, if one runs: on its deadline
            await self._gateway.say_goodbye()  # before uvicorn closes the WebSockets
        finally:
            self.should_exit = True
