"""Fixtures of the reliability suite: a private redis-server (so "no keys left" means exactly that)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.local_services import RedisServer


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settled_heap() -> Iterator[None]:
    """For a test that times the event loop: the test process carries every earlier test's objects (models,
    clients, apps), and a full garbage collection of them stalls the loop 50-100 ms whenever it falls due,
    which says nothing about what the test measures. The gateway itself freezes its models' objects out of
    the collector once they are loaded (gateway/runtime.py); here the whole heap so far is."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
