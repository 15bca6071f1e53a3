"""The HTTP contract's bad-input and authorization cases: each a 4xx JSON error, never a 500 or a leak."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from conftest import RunningGateway, make_settings, serve
from support.rtc_client import RtcClient

VALID_SDP_PREFIX = "v=0\r\n"


def error_code(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return str(body["error"]["code"])


@pytest_asyncio.fixture
async def http(tone_gateway: RunningGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=tone_gateway.url, timeout=10) as client:
        yield client


@pytest.mark.asyncio
@pytest.mark.parametrize(("body", "status", "code"), [
    ({"sdp": "", "type": "offer"}, 422, "invalid_body"),
    ({"sdp": "not an sdp at all", "type": "offer"}, 400, "invalid_sdp"),
    ({"sdp": VALID_SDP_PREFIX + "o=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", "type": "offer"}, 400, "invalid_sdp"),
    ({"sdp": "v=0\r\n", "type": "answer"}, 422, "invalid_body"),
    ({"sdp": "v=0\r\n", "type": "offer", "mode": "karaoke"}, 422, "invalid_body"),
    ({"type": "offer"}, 422, "invalid_body"),
    ([1, 2, 3], 422, "invalid_body"),
])
async def test_bad_offers(http: httpx.AsyncClient, tone_gateway: RunningGateway, body: object, status: int,
                          code: str) -> None:
    response = await http.post("/api/webrtc/offer", json=body)
    assert response.status_code == status
    assert error_code(response) == code
    assert not tone_gateway.gateway.sessions


@pytest.mark.asyncio
async def test_non_json_wrong_type_and_oversized_bodies(http: httpx.AsyncClient, tone_gateway: RunningGateway) -> None:
    response = await http.post("/api/webrtc/offer", content=b"{not json", headers={"content-type": "application/json"})
    assert (response.status_code, error_code(response)) == (400, "bad_request")
    response = await http.post("/api/webrtc/offer", content=b"sdp=x", headers={"content-type": "text/plain"})
    assert (response.status_code, error_code(response)) == (415, "unsupported_media_type")
    big = b'{"sdp": "' + b"a" * (tone_gateway.settings.max_body_bytes + 10) + b'", "type": "offer"}'
    response = await http.post("/api/webrtc/offer", content=big, headers={"content-type": "application/json"})
    assert (response.status_code, error_code(response)) == (413, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(100):
            yield b"x" * 1024

    response = await http.post("/api/webrtc/offer", content=chunks(), headers={"content-type": "application/json"})
    assert (response.status_code, error_code(response)) == (413, "payload_too_large")
    assert not tone_gateway.gateway.sessions


@pytest.mark.asyncio
async def test_authorization_rules(http: httpx.AsyncClient) -> None:
    assert error_code(await http.get("/api/voice/sessions/nope")) == "session_not_found"
    first, second = RtcClient(str(http.base_url), mode="tone"), RtcClient(str(http.base_url), mode="tone")
    await asyncio.gather(first.connect(), second.connect())
    try:
        url = f"/api/voice/sessions/{first.session_id}"
        assert (await http.get("/api/voice/sessions/nope", headers={"Authorization": f"Bearer {first.token}"})
                ).status_code == 404
        response = await http.get(url)
        assert (response.status_code, error_code(response)) == (401, "unauthorized")
        response = await http.get(url, headers={"Authorization": "Bearer wrong"})
        assert (response.status_code, error_code(response)) == (403, "forbidden")
        response = await http.get(url, headers={"Authorization": f"Bearer {second.token}"})
        assert (response.status_code, error_code(response)) == (403, "forbidden")
        response = await http.delete(url, headers={"Authorization": f"Bearer {second.token}"})
        assert response.status_code == 403
        response = await http.post("/api/voice/stop-tts", json={"session_id": first.session_id},
                                   headers={"Authorization": f"Bearer {second.token}"})
        assert response.status_code == 403
        response = await http.get(url, headers={"Authorization": f"Bearer {first.token}"})
        assert response.status_code == 200 and response.json()["session_id"] == first.session_id
    finally:
        await asyncio.gather(first.close(), second.close())


@pytest.mark.asyncio
async def test_admin_key_opens_any_session() -> None:
    async with serve(make_settings(admin_key="s3cret-admin")) as running:
        client = RtcClient(running.url, mode="tone")
        await client.connect()
        async with httpx.AsyncClient(base_url=running.url) as http:
            admin = {"Authorization": "Bearer s3cret-admin"}
            assert (await http.get(f"/api/voice/sessions/{client.session_id}", headers=admin)).status_code == 200
            assert (await http.delete(f"/api/voice/sessions/{client.session_id}", headers=admin)).status_code == 200
            assert (await http.get(f"/api/voice/sessions/{client.session_id}", headers=admin)).status_code == 404
        await client.close()


@pytest.mark.asyncio
async def test_stop_tts_stops_the_tone_then_says_nothing_playing(http: httpx.AsyncClient) -> None:
    client = RtcClient(str(http.base_url), mode="tone")
    await client.connect()
    try:
        auth = {"Authorization": f"Bearer {client.token}"}
        response = await http.post("/api/voice/stop-tts", json={"session_id": client.session_id}, headers=auth)
        assert response.json() == {"session_id": client.session_id, "stopped": True, "detail": "stopped"}
        response = await http.post("/api/voice/stop-tts", json={"session_id": client.session_id}, headers=auth)
        assert response.json()["detail"] == "nothing_playing"
        response = await http.post("/api/voice/stop-tts", json={"session_id": "nope"}, headers=auth)
        assert (response.status_code, error_code(response)) == (404, "session_not_found")
        response = await http.post("/api/voice/stop-tts", json={}, headers=auth)
        assert response.status_code == 422
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_capacity_gives_503_json() -> None:
    async with serve(make_settings(max_sessions=1)) as running:
        first = RtcClient(running.url, mode="tone")
        await first.connect()
        second = RtcClient(running.url, mode="tone")
        with pytest.raises(httpx.HTTPStatusError) as info:
            await second.connect()
        assert info.value.response.status_code == 503
        assert error_code(info.value.response) == "at_capacity"
        assert len(running.gateway.sessions) == 1
        await asyncio.gather(first.close(), second.close())


@pytest.mark.asyncio
async def test_health_metrics_openapi_and_index(http: httpx.AsyncClient) -> None:
    health = (await http.get("/health")).json()
    assert health["status"] == "ok" and health["store"] == {"kind": "memory", "up": True}
    assert health["sessions"]["capacity"] == 8
    load = health["load"]  # an idle process: admitting, its prediction and the figures it comes from
    assert load["admitting"] and load["headroom"] >= 1 and load["recent_first_audio_p95_ms"] is None
    assert load["predicted_first_audio_ms"] >= load["critical_job_ms"] > 0
    client = RtcClient(str(http.base_url), mode="tone")
    await client.connect()
    await client.close()
    text = (await http.get("/metrics")).text
    for name in ("voice_webrtc_offer_ms_bucket", "voice_ice_connect_ms_count", "voice_first_partial_ms_bucket",
                 "voice_first_audio_ms_bucket", "voice_barge_in_ms_bucket", "voice_active_sessions",
                 'voice_sessions_total{mode="tone",transport="webrtc"} 1.0'):
        assert name in text
    schema = (await http.get("/openapi.json")).json()
    assert {"OfferRequest", "OfferResponse", "SessionView", "ErrorResponse"} <= set(schema["components"]["schemas"])
    assert "/api/webrtc/offer" in schema["paths"]
    index = await http.get("/")
    assert index.status_code == 200 and "Alice Voice" in index.text
    response = await http.get("/no/such/page")
    assert (response.status_code, error_code(response)) == (404, "not_found")
    response = await http.put("/health", json={})
    assert (response.status_code, error_code(response)) == (405, "method_not_allowed")


@pytest.mark.asyncio
async def test_webrtc_config_gives_clients_the_ice_servers() -> None:
    async with serve(make_settings(ice_servers=["stun:stun.example:3478", "turn:turn.example:3478"],
                                   ice_username="alice", ice_credential="pw")) as running, \
            httpx.AsyncClient(base_url=running.url) as http:
        config = (await http.get("/api/webrtc/config")).json()
    assert config["ice_servers"] == [
        {"urls": "stun:stun.example:3478", "username": None, "credential": None},
        {"urls": "turn:turn.example:3478", "username": "alice", "credential": "pw"},
    ]


@pytest.mark.asyncio
async def test_a_transport_failure_while_answering_is_a_503_and_leaves_nothing(
        tone_gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    from alice_voice.transport.peer import Peer

    async def broken(self: Peer) -> None:
        raise OSError("no UDP port available")

    monkeypatch.setattr(Peer, "connect", broken)  # the gateway's side only; the client is aiortc's own
    client = RtcClient(tone_gateway.url, mode="tone")
    with pytest.raises(httpx.HTTPStatusError) as info:
        await client.connect()
    assert info.value.response.status_code == 503
    assert error_code(info.value.response) == "transport_unavailable"
    assert not tone_gateway.gateway.sessions
    await client.close()
