"""The gateway in this process, on 127.0.0.1, for tests and benchmarks (a real uvicorn server)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from alice_voice.api.app import create_app
from alice_voice.api.server import DrainingServer, server_config
from alice_voice.config import Settings
from alice_voice.gateway import Drain, Gateway
from alice_voice.transport.ice import pin_host_addresses
from support.engines import shared_engines
from support.local_services import free_port


def bench_settings(**overrides: Any) -> Settings:
    """Loopback-only settings: ICE pinned to 127.0.0.1, a free port, quiet logs."""
    base: dict[str, Any] = {"host": "127.0.0.1", "port": free_port(), "ice_host_addresses": ["127.0.0.1"],
                            "log_level": "WARNING"}
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

    @property
    def drain(self) -> Drain:
        drain: Drain = self.app.state.parts.drain
        return drain


@contextlib.asynccontextmanager
async def serve(settings: Settings, **app_kwargs: Any) -> AsyncIterator[RunningGateway]:
    """A real uvicorn server in this event loop, on 127.0.0.1, configured as `python -m alice_voice` is (its
    models shared with the other gateways of this run: support/engines.py)."""
    pin_host_addresses(settings.ice_host_addresses)  # as `python -m alice_voice` does at start-up
    app = create_app(settings, **{"engines": shared_engines(settings), **app_kwargs})
    server = DrainingServer(server_config(app, settings.model_copy(update={"host": "127.0.0.1"})),
                            app.state.gateway, app.state.parts.drain)
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




@contextlib.asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[str]:
    """The base URL of a gateway whose models are loaded."""
    async with serve(settings) as running:
        if settings.preload_models:
            await running.app.state.runtime.resources()
        yield running.url


@dataclass
class GatewayProcess:
    url: str
    pid: int
    proc: asyncio.subprocess.Process | None = None

    def rss_mb(self) -> float:
        """The gateway process's resident memory (MB)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        """User + system CPU time the gateway process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def gateway_process(**settings: Any) -> AsyncIterator[GatewayProcess]:
    """`python -m alice_voice` in its own process (as deployed), ready once its models are loaded."""
    port = free_port()
    env = {**os.environ, "ALICE_PORT": str(port), "ALICE_HOST": "127.0.0.1", "ALICE_ICE_HOST_ADDRESSES": "127.0.0.1",
           "ALICE_LOG_LEVEL": "WARNING"}
    env.update({f"ALICE_{name.upper()}": str(value) for name, value in settings.items()})
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "alice_voice", env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_ready(url, proc)
        yield GatewayProcess(url, proc.pid, proc)
    finally:
        if proc.returncode is None:
            proc.terminate()
            await _exited(proc)


async def _exited(proc: asyncio.subprocess.Process, timeout_s: float = 15.0) -> None:
    """Wait for a SIGTERM'd gateway to exit; one that does not prints every thread's stack (SIGUSR1, see
    alice_voice.__main__) to the test's stderr before it is killed, so the hang can be read, not guessed."""
    try:
        async with asyncio.timeout(timeout_s):
            await proc.wait()
    except TimeoutError:
        proc.send_signal(signal.SIGUSR1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise AssertionError(f"the gateway did not exit within {timeout_s:g} s of SIGTERM (stacks above)") from None


async def _wait_ready(url: str, proc: asyncio.subprocess.Process, timeout: float = 180.0) -> None:
    async with asyncio.timeout(timeout), httpx.AsyncClient(base_url=url) as http:
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"the gateway exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                health = (await http.get("/health")).json()
                if health["models"].get("state") in ("ready", "not loaded"):  # "not loaded": no preloading
                    return
            await asyncio.sleep(0.1)
