"""The process's HTTP server: uvicorn, bounded everywhere a client could hold it, with SIGTERM as a drain.

On SIGTERM (a rolling update, `kubectl delete pod`, `docker stop`) the gateway first drains: it takes no
new sessions (503 with `Retry-After`; `/health` answers 503 `draining`, so the load balancer or readiness
probe takes it out) and lets live calls finish for up to `DRAIN_LIMIT_S`. A second SIGTERM cuts the drain
short. Either way the sessions still open are then told (`shutting_down`) and closed by the gateway, before
uvicorn closes the connections, and the process exits 0. SIGINT (Ctrl-C) skips the drain.

Nothing a client does can hold the process or a connection open: a request's headers and body must
arrive within `HTTP_READ_TIMEOUT_S` (else 408 and the connection is closed), a WebSocket message is at most
`WS_MAX_MESSAGE_BYTES` (else the socket is closed with 1009), and the graceful shutdown waits at most
`SHUTDOWN_GRACE_S` for requests still running.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from http import HTTPStatus
from types import FrameType

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from alice_voice.api.limits import error_body
from alice_voice.config import Settings
from alice_voice.errors import AliceError, RequestTimeout, ShuttingDown
from alice_voice.gateway import Drain, Gateway

WS_MAX_MESSAGE_BYTES = 256 * 1024  # a second of 48 kHz PCM is 96 kB; a Media Streams message ~11 kB


def server_config(app: FastAPI, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                          access_log=False, lifespan="on", ws_max_size=WS_MAX_MESSAGE_BYTES,
                          timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_s)),
                          http=_read_deadline_protocol(settings.http_read_timeout_s))


def _read_deadline_protocol(timeout_s: float) -> type[HttpToolsProtocol]:
    class ReadDeadlineProtocol(_ReadDeadline):
        read_timeout_s = timeout_s
    return ReadDeadlineProtocol


class _ReadDeadline(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with a deadline on reading each request, headers and body: a client
    that sends half a request and waits (a slowloris, or `Content-Length: 100` and one byte) gets 408
    and is disconnected, instead of holding a connection, and the shutdown, for ever."""

    read_timeout_s = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.read_timeout_s, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    @property
    def reading(self) -> bool:
        """A request is being received (its headers or body are not all in)."""
        return self._deadline is not None

    def abort_reading(self, error: AliceError) -> None:
        """Answer the request being received with `error` (unless an answer has begun) and disconnect."""
        self._disarm()
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or not cycle.response_started:
            body = json.dumps(error_body(error)).encode()
            head = f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}\r\ncontent-type: application/json\r\n"
            self.transport.write(head.encode() + b"connection: close\r\ncontent-length: "
                                 + str(len(body)).encode() + b"\r\n\r\n" + body)
        if cycle is not None:  # the application reads a disconnect, and its own answer, if any, goes nowhere
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()

    def _timed_out(self) -> None:
        self._deadline = None
        self.abort_reading(RequestTimeout(f"the request was not received within {self.read_timeout_s:g} s"))


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, gateway: Gateway, drain: Drain) -> None:
        super().__init__(config)
        self._gateway, self._drain_sessions = gateway, drain
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # SIGTERM is never handed to uvicorn: it would raise the signal again after the shutdown, and the
        # process would die by it instead of exiting 0.
        if sig != signal.SIGTERM or self._loop is None:
            super().handle_exit(sig, frame)
            return
        self._loop.call_soon_threadsafe(self._on_sigterm)

    def _on_sigterm(self) -> None:
        if self._drain is None:
            self._drain = asyncio.create_task(self._drain_then_exit(), name="drain-then-exit")
        else:  # a second SIGTERM: the drain is over now
            self._drain.cancel()

    async def _drain_then_exit(self) -> None:
        try:
            await self._drain_sessions()  # the admin endpoint's drain, if one runs: on its deadline
        finally:
            self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # The gateway tells and closes its sessions first, with its own close codes and reasons, before
        # uvicorn closes every connection (a WebSocket would get a bare 1012 and count as "client gone").
        await self._gateway.close_sessions("shutdown")
        for connection in list(self.server_state.connections):  # requests still arriving will not be served
            if isinstance(connection, _ReadDeadline) and connection.reading:
                connection.abort_reading(ShuttingDown("the gateway is shutting down"))
        await super().shutdown(sockets)
