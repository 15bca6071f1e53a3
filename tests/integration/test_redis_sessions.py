"""Session records in a real redis-server: TTL and owner, deletion, and Redis going away and coming back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as redis

from alice_voice.state.redis_store import session_key
from conftest import RunningGateway, make_settings, poll_until, serve
from support.local_services import RedisServer
from support.rtc_client import RtcClient


@pytest_asyncio.fixture
async def redis_gateway(redis_server: RedisServer) -> AsyncIterator[RunningGateway]:
    async with serve(make_settings(redis_url=redis_server.url, session_ttl_s=3.0)) as running:
        yield running


@pytest_asyncio.fixture
async def raw_redis(redis_server: RedisServer) -> AsyncIterator[redis.Redis]:
    client = redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.mark.asyncio
async def test_record_has_ttl_owner_and_no_token(redis_gateway: RunningGateway, raw_redis: redis.Redis) -> None:
    client = RtcClient(redis_gateway.url, mode="tone")
    await client.connect()
    key = session_key(client.session_id)
    stored = json.loads(await raw_redis.get(key))
    assert stored["owner"] == redis_gateway.gateway.owner
    assert stored["mode"] == "tone" and stored["turn_count"] == 0
    assert client.token not in json.dumps(stored)  # only a digest is kept
    assert 0 < await raw_redis.pttl(key) <= 3000

    async def listening() -> bool:
        return json.loads(await raw_redis.get(key))["state"] == "listening"

    await poll_until(listening)
    async with httpx.AsyncClient(base_url=redis_gateway.url) as http:
        auth = {"Authorization": f"Bearer {client.token}"}
        assert (await http.delete(f"/api/voice/sessions/{client.session_id}", headers=auth)).status_code == 200
    assert await raw_redis.exists(key) == 0
    assert client.session_id not in redis_gateway.gateway.sessions
    await client.close()


@pytest.mark.asyncio
async def test_ttl_is_refreshed_while_the_session_lives(redis_gateway: RunningGateway, raw_redis: redis.Redis) -> None:
    client = RtcClient(redis_gateway.url, mode="tone")
    await client.connect()
    key = session_key(client.session_id)
    await client.wait_heard(len(client.heard) + 225, timeout=15)  # 4.5 s of audio: 1.5 x the 3 s TTL
    assert 0 < await raw_redis.pttl(key) <= 3000
    await client.close()


@pytest.mark.asyncio
async def test_redis_down_then_back(redis_server: RedisServer) -> None:
    async with serve(make_settings(redis_url=redis_server.url, session_ttl_s=1.0)) as running, \
            httpx.AsyncClient(base_url=running.url, timeout=10) as http:
        survivor = RtcClient(running.url, mode="tone")
        await survivor.connect()
        redis_server.stop()
        try:
            health = (await http.get("/health")).json()
            assert health["status"] == "degraded" and health["store"]["up"] is False
            late = RtcClient(running.url, mode="tone")
            with pytest.raises(httpx.HTTPStatusError) as info:
                await late.connect()
            assert info.value.response.status_code == 503
            assert info.value.response.json()["error"]["code"] == "store_unavailable"
            await late.close()
            assert len(running.gateway.sessions) == 1  # the failed offer left nothing behind
            response = await http.get(f"/api/voice/sessions/{survivor.session_id}",
                                      headers={"Authorization": f"Bearer {survivor.token}"})
            assert response.status_code == 200  # the owner answers for its own live session
            await survivor.wait_heard(len(survivor.heard) + 25)  # the live call goes on
        finally:
            redis_server.start()

        async def healthy() -> bool:
            return bool((await http.get("/health")).json()["status"] == "ok")

        await poll_until(healthy)
        raw = redis.from_url(redis_server.url, decode_responses=True)

        async def rewritten() -> bool:  # the survivor's record is written again after the outage
            return bool(await raw.exists(session_key(survivor.session_id)))

        await poll_until(rewritten)
        assert survivor.session_id in running.gateway.sessions
        fresh = RtcClient(running.url, mode="tone")
        await fresh.connect()
        assert await raw.exists(session_key(fresh.session_id))
        await asyncio.gather(fresh.close(), survivor.close())
        await raw.aclose()
