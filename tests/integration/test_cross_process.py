"""Two gateway processes sharing one real redis-server: control requests reach the session's owner."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from conftest import poll_until
from support.gateway import GatewayProcess, gateway_process
from support.local_services import RedisServer
from support.rtc_client import RtcClient

TONE = {"default_mode": "tone", "preload_models": "false", "session_ttl_s": "3", "latency_budget_ms": 0}


@pytest_asyncio.fixture
async def pair(redis_server: RedisServer) -> AsyncIterator[tuple[GatewayProcess, GatewayProcess]]:
    async with gateway_process(redis_url=redis_server.url, **TONE) as owner, \
            gateway_process(redis_url=redis_server.url, **TONE) as other:
        yield owner, other


@pytest.mark.asyncio
async def test_stop_tts_and_delete_on_another_process_reach_the_owner(
        pair: tuple[GatewayProcess, GatewayProcess]) -> None:
    owner, other = pair
    client = RtcClient(owner.url, mode="tone")
    await client.connect()
    auth = {"Authorization": f"Bearer {client.token}"}
    try:
        async with httpx.AsyncClient(base_url=other.url, timeout=10) as http:
            record = (await http.get(f"/api/voice/sessions/{client.session_id}", headers=auth)).json()
            assert record["owner"] != (await http.get("/health")).json()["process"]  # really another process
            response = await http.post("/api/voice/stop-tts", json={"session_id": client.session_id}, headers=auth)
            assert response.status_code == 200 and response.json()["detail"] == "stopped"
            await client.wait_heard(len(client.heard) + 10)
            assert not client.heard[-1].pcm.any()  # the owner stopped the tone
            response = await http.post("/api/voice/stop-tts", json={"session_id": client.session_id}, headers=auth)
            assert response.json()["detail"] == "nothing_playing"
            assert (await http.delete(f"/api/voice/sessions/{client.session_id}", headers=auth)).status_code == 200
            async with httpx.AsyncClient(base_url=owner.url) as owner_http:
                response = await owner_http.get(f"/api/voice/sessions/{client.session_id}", headers=auth)
                assert response.status_code == 404
                assert (await owner_http.get("/health")).json()["sessions"]["active"] == 0
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_owner_gone_is_a_clear_410_and_delete_clears_its_record(redis_server: RedisServer) -> None:
    async with gateway_process(redis_url=redis_server.url, **TONE) as other:
        async with gateway_process(redis_url=redis_server.url, **TONE) as owner:
            client = RtcClient(owner.url, mode="tone")
            await client.connect()
            auth = {"Authorization": f"Bearer {client.token}"}
            os.kill(owner.pid, signal.SIGKILL)  # dies without a word; its record outlives it for a while
        async with httpx.AsyncClient(base_url=other.url, timeout=10) as http:
            response = await http.post("/api/voice/stop-tts", json={"session_id": client.session_id}, headers=auth)
            assert response.status_code == 410
            assert response.json()["error"]["code"] == "owner_gone"
            assert (await http.delete(f"/api/voice/sessions/{client.session_id}", headers=auth)).status_code == 200
            response = await http.get(f"/api/voice/sessions/{client.session_id}", headers=auth)
            assert response.status_code == 404
        await client.close()


@pytest.mark.asyncio
async def test_a_session_on_a_draining_process_is_still_stopped_and_ended_from_another(
        pair: tuple[GatewayProcess, GatewayProcess]) -> None:
    owner, other = pair
    assert owner.proc is not None
    client = RtcClient(owner.url, mode="tone")
    await client.connect()
    auth = {"Authorization": f"Bearer {client.token}"}
    try:
        owner.proc.send_signal(signal.SIGTERM)  # the owner drains: no new sessions, this one goes on
        async with httpx.AsyncClient(base_url=other.url, timeout=10) as http:
            async with httpx.AsyncClient(base_url=owner.url) as owner_http:
                async def draining() -> bool:
                    return (await owner_http.get("/health")).status_code == 503
                await poll_until(draining)
            response = await http.post("/api/voice/stop-tts", json={"session_id": client.session_id}, headers=auth)
            assert response.status_code == 200 and response.json()["detail"] == "stopped"
            assert (await http.delete(f"/api/voice/sessions/{client.session_id}", headers=auth)).status_code == 200
        async with asyncio.timeout(10):  # its last session gone, the owner's drain is over: it exits
            assert await owner.proc.wait() == 0
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_sigterm_drains_then_tells_sessions_and_closes_them(redis_server: RedisServer) -> None:
    async with gateway_process(redis_url=redis_server.url, **TONE, drain_limit_s=1) as gateway:
        client = RtcClient(gateway.url, mode="tone")
        await client.connect()
        os.kill(gateway.pid, signal.SIGTERM)
        event = await client.wait_event("error", timeout=10, code="shutting_down")
        assert "shutting down" in event["message"]
        closed = asyncio.Event()
        client.pc.on("connectionstatechange",
                     lambda: closed.set() if client.pc.connectionState in ("closed", "failed") else None)
        async with asyncio.timeout(10):
            await closed.wait()
        await client.close()
