"""Shared fixtures: settings, a real uvicorn gateway on 127.0.0.1, a real redis-server.

Waits use asyncio.timeout or polling with deadlines, never a blind sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI

from alice_voice.api.app import create_app
from alice_voice.config import Settings
from alice_voice.gateway import Gateway

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ALICE_* setting from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("ALICE_"):
            monkeypatch.delenv(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)  # polling a socket with a deadline, not waiting blindly
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


async def poll_until(check: Callable[[], Awaitable[bool] | bool], timeout: float = 5.0, every: float = 0.05) -> None:
    """For state outside this process (Redis, a server's record) that has no event to wait on."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(every)


def make_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {"host": "127.0.0.1", "port": free_port(), "ice_host_addresses": ["127.0.0.1"],
                            "default_mode": "tone", "log_level": "WARNING", "preload_models": False}
    return Settings(**{**base, **overrides})


@dataclass
class RunningGateway:
    url: str
    app: FastAPI
    settings: Settings

    @property
    def gateway(self) -> Gateway:
        gateway: Gateway = self.app.state.gateway
        return gateway


@contextlib.asynccontextmanager
async def serve(settings: Settings, **app_kwargs: Any) -> AsyncIterator[RunningGateway]:
    """A real uvicorn server in this event loop, on 127.0.0.1."""
    app = create_app(settings, **app_kwargs)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning",
                                           lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield RunningGateway(f"http://127.0.0.1:{settings.port}", app, settings)
    finally:
        server.should_exit = True
        async with asyncio.timeout(15):
            await task


@pytest_asyncio.fixture
async def tone_gateway() -> AsyncIterator[RunningGateway]:
    async with serve(make_settings()) as running:
        yield running


class RedisServer:
    """A real redis-server on a free loopback port, stoppable and restartable on the same port."""

    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed (make test installs it)")
        self.exe, self.workdir, self.port = exe, workdir, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = [self.exe, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
               "--dir", str(self.workdir), "--daemonize", "no", "--loglevel", "warning"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.proc = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
