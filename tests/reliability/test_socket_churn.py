"""Churn over WebSockets: PCM and Twilio sessions opened and ended every way they can end (the client
closes, the client DELETEs the session, the call's `stop`, the client goes silent without closing), then
nothing may be left: sessions, records, tasks, file descriptors."""

from __future__ import annotations

import asyncio
import secrets

import httpx
import pytest

from conftest import make_settings
from reliability.probes import Snapshot, report, size
from support.gateway import RunningGateway, serve
from support.socket_clients import FakeTwilio, PcmClient, opened

pytestmark = [pytest.mark.asyncio, pytest.mark.realtime]

SESSIONS = size(16, 120)
WAVE = 4
QUIET_TIMEOUT_S = 1.0
ENDINGS = ("close", "delete", "stop", "silent")
FD_SLACK = 8


async def one(running: RunningGateway, http: httpx.AsyncClient, ending: str) -> str:
    base = running.url.replace("http://", "ws://")
    twilio = ending == "stop"
    client_type, path, rate = (FakeTwilio, "/api/telephony/twilio/stream", 8000) if twilio else \
        (PcmClient, "/api/voice/ws?mode=tone", 16_000)
    async with opened(client_type, base + path, rate) as client:
        if twilio:
            client.stream_sid, client.call_sid = f"MZ{secrets.token_hex(16)}", f"CA{secrets.token_hex(16)}"
            await client.start()
            await client.wait_for(lambda: client.audio or None)  # the call is up: audio flows back
            live = next(live for live in running.gateway.sessions.values()
                        if getattr(live.transport, "details", {}).get("call_sid") == client.call_sid)
            await client.stop()
        else:
            ready = await client.wait_event("session.ready")
            live = running.gateway.sessions[ready["session_id"]]
            if ending == "delete":
                response = await http.delete(f"/api/voice/sessions/{ready['session_id']}",
                                             headers={"Authorization": f"Bearer {ready['token']}"})
                assert response.status_code == 200
            elif ending == "silent":
                client.streaming = False  # nothing more sent, nothing closed: the client vanished
        if ending != "close":
            async with asyncio.timeout(QUIET_TIMEOUT_S + 5):
                await live.ended.wait()
    async with asyncio.timeout(5):
        await live.ended.wait()
    assert await running.gateway.store.get(live.id) is None
    return live.transport.end_reason


async def test_socket_churn_leaves_nothing_behind() -> None:
    settings = make_settings(peer_timeout_s=QUIET_TIMEOUT_S, max_sessions=WAVE * 2, twilio_allow_unsigned=True)
    async with serve(settings) as running, httpx.AsyncClient(base_url=running.url) as http:
        await asyncio.gather(*(one(running, http, e) for e in ENDINGS))  # warm-up
        before = Snapshot.take()
        reasons: list[str] = []
        for start in range(0, SESSIONS, WAVE):
            reasons += await asyncio.gather(*(one(running, http, ENDINGS[(start + i) % len(ENDINGS)])
                                              for i in range(WAVE)))
        after = Snapshot.take()
        assert not running.gateway.sessions
        active = running.gateway.metrics.active_sessions._value.get()
    report("socket churn", sessions=len(reasons), **before.figures("before"), **after.figures("after"))
    assert len(reasons) == SESSIONS and active == 0
    assert reasons.count("client gone") >= SESSIONS // 2 - 1, reasons  # closes and silences: both reaped
    assert "call ended" in reasons
    assert after.tasks <= before.tasks
    assert after.fds <= before.fds + FD_SLACK
