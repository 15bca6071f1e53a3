"""Redis-backed session store (redis.asyncio): one JSON value per session with a TTL.

If Redis goes away every call raises `StoreUnavailable` at once (short socket timeouts, no retries on
the hot path); redis-py reconnects by itself on the next call once Redis is back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis.asyncio as redis
from redis.exceptions import RedisError

from alice_voice.errors import StoreUnavailable
from alice_voice.state.store import CALL_TTL_S, OutboundCall, SessionRecord

_PREFIX = "alice:session:"
_CLAIM_PREFIX = "alice:claim:"
_CALL_PREFIX = "alice:call:"


def session_key(session_id: str) -> str:
    return _PREFIX + session_id


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"redis: {exc}") from None


class RedisStore:
    kind = "redis"

    def __init__(self, url: str, timeout_s: float = 0.5) -> None:
        self.client = redis.from_url(url, decode_responses=True, socket_timeout=timeout_s,
                                     socket_connect_timeout=timeout_s)

    async def create(self, record: SessionRecord, ttl_s: float) -> None:
        await self.update(record, ttl_s)

    async def update(self, record: SessionRecord, ttl_s: float) -> None:
        with _reachable():
            await self.client.set(session_key(record.session_id), record.model_dump_json(),
                                  px=max(1, int(ttl_s * 1000)))

    async def get(self, session_id: str) -> SessionRecord | None:
        with _reachable():
            raw = await self.client.get(session_key(session_id))
        return SessionRecord.model_validate_json(raw) if raw else None

    async def delete(self, session_id: str) -> bool:
        with _reachable():
            return bool(await self.client.delete(session_key(session_id)))

    async def ttl_s(self, session_id: str) -> float | None:
        with _reachable():
            ms = await self.client.pttl(session_key(session_id))
        return ms / 1000.0 if ms >= 0 else None

    async def claim(self, key: str, ttl_s: float) -> bool:
        with _reachable():
            return bool(await self.client.set(_CLAIM_PREFIX + key, "1", nx=True, px=max(1, int(ttl_s * 1000))))

    async def put_call(self, call: OutboundCall) -> None:
        with _reachable():
            await self.client.set(_CALL_PREFIX + call.call_id, call.model_dump_json(), px=int(CALL_TTL_S * 1000))

    async def get_call(self, call_id: str) -> OutboundCall | None:
        with _reachable():
            raw = await self.client.get(_CALL_PREFIX + call_id)
        return OutboundCall.model_validate_json(raw) if raw else None

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError):
            return False

    async def aclose(self) -> None:
        await self.client.aclose()
