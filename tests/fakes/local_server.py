"""Runs an ASGI app with uvicorn on 127.0.0.1 (a free port) in a background thread.

The socket is bound before the thread starts, so the port is known at once and cannot be taken by
anyone else; `start()` returns when uvicorn's startup has finished (an event, not a sleep).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

import uvicorn


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.loop = asyncio.get_running_loop()
        self.ready.set()


class LocalServer:
    """A started server: `url`, `call_soon` (run a callable on the server's loop), `stop()`."""

    def __init__(self, app: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=5)
        self._server = _Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"fake-server-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> LocalServer:
        self._thread.start()
        if not self._server.ready.wait(timeout):
            raise TimeoutError(f"fake server on port {self.port} did not start within {timeout} s")
        return self

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Thread-safe: e.g. set an asyncio.Event that a handler on the server's loop waits on."""
        assert self._server.loop is not None
        self._server.loop.call_soon_threadsafe(callback)

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()
        if self._thread.is_alive():
            raise TimeoutError(f"fake server on port {self.port} did not stop within {timeout} s")

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
