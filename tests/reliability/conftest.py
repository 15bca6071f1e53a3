"""Fixtures of the reliability suite: a private redis-server (so "no keys left" means exactly that)."""

from __future__ import annotations

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
