"""Shared fixtures: settings, a real uvicorn gateway on 127.0.0.1, a real redis-server.

Waits use asyncio.timeout or polling with deadlines, never a blind sleep.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from alice_voice.config import Settings
from support.gateway import RunningGateway, bench_settings, serve
from support.local_services import RedisServer

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test on the agent gateway loads the models and talks to it in real time: mark it so."""
    for item in items:
        if "agent_gateway" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.models)
            item.add_marker(pytest.mark.realtime)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ALICE_* setting from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("ALICE_"):
            monkeypatch.delenv(name)


async def poll_until(check: Callable[[], Awaitable[bool] | bool], timeout: float = 5.0, every: float = 0.05) -> None:
    """For state outside this process (Redis, a server's record) that has no event to wait on."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(every)


def make_settings(**overrides: Any) -> Settings:
    """Tone by default and no model loading, unless a test asks for the agent. No admission by load (a
    latency budget of 0), so that the test machine's own load (a browser, a model loading, another job on
    the box) never gets an offer refused: only tests of admission set a budget."""
    return bench_settings(**{"default_mode": "tone", "preload_models": False, "latency_budget_ms": 0,
                             **overrides})


@pytest_asyncio.fixture
async def agent_gateway() -> AsyncIterator[RunningGateway]:
    """The embedded models, loaded before the test's clock starts."""
    async with serve(make_settings(default_mode="agent", preload_models=True)) as running:
        await running.app.state.runtime.resources()
        yield running


@pytest_asyncio.fixture
async def tone_gateway() -> AsyncIterator[RunningGateway]:
    async with serve(make_settings()) as running:
        yield running


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
