"""Draining for a rolling update: no new sessions (503 + Retry-After, /health 503 `draining`), live calls
go on to their end, then the process exits; past DRAIN_LIMIT_S the callers left are told and closed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
import threading
from typing import Any

import httpx
import pytest

from conftest import make_settings, poll_until
from support.engines import shared_engines
from support.gateway import gateway_process, serve
from support.rtc_client import RtcClient
from support.socket_clients import PcmClient, opened

pytestmark = [pytest.mark.asyncio, pytest.mark.realtime]
ADMIN = "admin-key-for-tests"


async def refused_offer(url: str) -> httpx.Response:
    client = RtcClient(url, mode="tone")
    try:
        with pytest.raises(httpx.HTTPStatusError) as refused:
            await client.connect()
    finally:
        await client.close()
    return refused.value.response


async def test_an_admin_drain_refuses_new_sessions_and_lets_live_calls_finish() -> None:
    async with serve(make_settings(admin_key=ADMIN, retry_after_s=7)) as running, \
            httpx.AsyncClient(base_url=running.url) as http:
        caller = RtcClient(running.url, mode="tone")
        await caller.connect()
        assert (await http.post("/api/admin/drain", json={})).status_code == 401
        wrong = await http.post("/api/admin/drain", json={}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        started = await http.post("/api/admin/drain", headers={"Authorization": f"Bearer {ADMIN}"})  # no body
        assert started.status_code == 202 and started.json() == {"draining": True, "sessions": 1, "limit_s": 300.0}

        response = await refused_offer(running.url)
        assert response.status_code == 503 and response.headers["retry-after"] == "7"
        assert response.json()["error"]["code"] == "shutting_down"
        health = await http.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "draining"
        assert (await http.get("/health/live")).json() == {"live": True}

        # The live call is untouched: it still hears its tone and answers control requests.
        heard = len(caller.heard)
        await caller.wait_heard(heard + 10)
        stop = await http.post("/api/voice/stop-tts", json={"session_id": caller.session_id},
                               headers={"Authorization": f"Bearer {caller.token}"})
        assert stop.json()["stopped"] is True
        live = running.gateway.sessions[caller.session_id]
        await caller.close()  # the caller hangs up: the drain is over
        async with asyncio.timeout(10):
            await live.ended.wait()
        assert not running.gateway.sessions and running.drain.draining


async def test_sigterm_drains_then_exits_and_a_call_past_the_limit_is_told() -> None:
    async with gateway_process(drain_limit_s=2, shutdown_grace_s=2, default_mode="tone",
                               preload_models=False) as gateway:
        assert gateway.proc is not None
        caller = RtcClient(gateway.url, mode="tone")
        await caller.connect()
        try:
            gateway.proc.send_signal(signal.SIGTERM)
            async with httpx.AsyncClient(base_url=gateway.url) as http:
                async def draining() -> bool:  # another process: no event to wait on
                    return (await http.get("/health")).status_code == 503

                await poll_until(draining)
                response = await refused_offer(gateway.url)
            assert response.status_code == 503
            heard = len(caller.heard)
            await caller.wait_heard(heard + 25)  # the call goes on during the drain
            told = await caller.wait_event("error", timeout=10, code="shutting_down")  # the limit passed
            assert told["message"] == "the gateway is shutting down"
            async with asyncio.timeout(10):
                code = await gateway.proc.wait()
            assert code == 0
        finally:
            await caller.close()


async def test_sigterm_exits_while_a_client_holds_a_half_sent_request() -> None:
    """uvicorn's graceful shutdown waits for every request in flight: one that never finishes sending its
    body must not keep the process alive (it is cut off after SHUTDOWN_GRACE_S)."""
    async with gateway_process(drain_limit_s=1, shutdown_grace_s=1, http_read_timeout_s=60, default_mode="tone",
                               preload_models=False) as gateway:
        assert gateway.proc is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", int(gateway.url.rsplit(":", 1)[1]))
        try:
            writer.write(b"POST /api/voice/stop-tts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{")
            await writer.drain()
            async with httpx.AsyncClient(base_url=gateway.url) as http:
                assert (await http.get("/health")).status_code == 200  # the request is in flight
            gateway.proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                assert await gateway.proc.wait() == 0
                answer = await reader.read()  # told, then disconnected
            assert answer.startswith(b"HTTP/1.1 503 ") and b'"code": "shutting_down"' in answer
        finally:
            writer.close()


async def test_a_second_sigterm_ends_the_drain_tells_the_callers_and_exits_0() -> None:
    async with gateway_process(drain_limit_s=300, shutdown_grace_s=2, default_mode="tone",
                               preload_models=False) as gateway:
        assert gateway.proc is not None
        async with opened(PcmClient, gateway.url.replace("http://", "ws://") + "/api/voice/ws", 16_000) as caller:
            await caller.wait_event("session.ready")
            gateway.proc.send_signal(signal.SIGTERM)
            async with httpx.AsyncClient(base_url=gateway.url) as http:
                async def draining() -> bool:
                    return (await http.get("/health")).status_code == 503

                await poll_until(draining)
            gateway.proc.send_signal(signal.SIGTERM)  # the operator will not wait for the drain
            told = await caller.wait_event("error", timeout=10, code="shutting_down")
            assert told["message"] == "the gateway is shutting down"
            code, reason = await caller.wait_closed()
            assert (code, reason) == (1001, "the gateway is shutting down")
        async with asyncio.timeout(10):
            assert await gateway.proc.wait() == 0, "an exit, not a death by the signal"


async def test_a_shutdown_closes_sessions_as_a_shutdown_not_as_clients_gone() -> None:
    async with serve(make_settings()) as running:
        ended = running.gateway.metrics.sessions_ended
        async with opened(PcmClient, running.url.replace("http://", "ws://") + "/api/voice/ws", 16_000) as caller:
            await caller.wait_event("session.ready")
            await running.gateway.close_sessions("shutdown")
            await caller.wait_event("error", code="shutting_down")
            assert await caller.wait_closed() == (1001, "the gateway is shutting down")
        assert ended.labels(reason="shutdown")._value.get() == 1
        assert ended.labels(reason="client_gone")._value.get() == 0


async def test_a_second_drain_waits_for_the_first_on_its_own_deadline() -> None:
    """SIGTERM after the admin endpoint's drain must not start the clock again (the grace period would
    run out mid-call)."""
    async with serve(make_settings()) as running:
        caller = RtcClient(running.url, mode="tone")
        await caller.connect()
        try:
            running.drain.start(0.5)
            started = asyncio.get_running_loop().time()
            left = await asyncio.wait_for(running.drain(), 10)  # the default limit is 300 s
            assert left == 1 and asyncio.get_running_loop().time() - started < 3
        finally:
            await caller.close()


async def test_health_says_starting_until_the_models_are_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(default_mode="agent", preload_models=True)
    engines, loaded = shared_engines(settings), threading.Event()
    load = engines.load

    def held_load() -> concurrent.futures.Future[Any]:  # the models take as long as the test says (a cold node)
        held: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def later() -> None:
            loaded.wait(30)
            held.set_result(load().result())
        threading.Thread(target=later, daemon=True).start()
        return held

    monkeypatch.setattr(engines, "load", held_load)
    async with serve(settings) as running, \
            httpx.AsyncClient(base_url=running.url) as http:
        early = await http.get("/health")
        loaded.set()
        await running.app.state.runtime.resources()
        ready = await http.get("/health")
    assert early.status_code == 503 and early.json()["status"] == "starting"
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
