"""A real aiortc client over loopback: the tone, its pacing, session.ready, and a clean end."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest

from conftest import RunningGateway
from support.rtc_client import RtcClient


def dominant_hz(pcm: np.ndarray, rate: int = 48000) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / rate)[int(np.argmax(spectrum))])


@pytest.mark.asyncio
async def test_tone_is_440_hz_paced_at_20_ms_with_session_ready_first(tone_gateway: RunningGateway) -> None:
    client = RtcClient(tone_gateway.url, mode="tone")
    await client.connect()
    try:
        assert client.events[0]["type"] == "session.ready"
        assert client.events[0]["session_id"] == client.session_id
        await client.wait_heard(100)
        frames = client.heard[-75:]
        audio = np.concatenate([h.pcm for h in frames])
        assert abs(dominant_hz(audio) - 440.0) < 5.0
        assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 2000
        # Pacing: the frame rate over the last ~1.5 s is 50/s, and no burst of back-to-back frames.
        gaps = np.diff([h.t for h in frames]) * 1000
        span_s = frames[-1].t - frames[0].t
        assert 45 <= (len(frames) - 1) / span_s <= 55
        assert np.median(gaps) == pytest.approx(20, abs=4)
        assert np.percentile(gaps, 95) < 40
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_session_record_delete_and_cleanup(tone_gateway: RunningGateway) -> None:
    gateway = tone_gateway.gateway
    client = RtcClient(tone_gateway.url, mode="tone")
    await client.connect()
    headers = {"Authorization": f"Bearer {client.token}"}
    async with httpx.AsyncClient(base_url=tone_gateway.url) as http:
        record = (await http.get(f"/api/voice/sessions/{client.session_id}", headers=headers)).json()
        assert record["mode"] == "tone" and record["owner"] == gateway.owner
        assert "token_hash" not in record
        assert (await http.delete(f"/api/voice/sessions/{client.session_id}", headers=headers)).status_code == 200
        assert client.session_id not in gateway.sessions
        assert (await http.get(f"/api/voice/sessions/{client.session_id}", headers=headers)).status_code == 404
        assert (await http.delete(f"/api/voice/sessions/{client.session_id}", headers=headers)).status_code == 404
    await client.close()


@pytest.mark.asyncio
async def test_client_close_ends_the_session(tone_gateway: RunningGateway) -> None:
    gateway = tone_gateway.gateway
    client = RtcClient(tone_gateway.url, mode="tone")
    await client.connect()
    live = gateway.sessions[client.session_id]
    await client.close()
    async with asyncio.timeout(10):
        await live.ended.wait()
    assert client.session_id not in gateway.sessions
    assert live.transport.pc.connectionState == "closed" and live.runner is not None and live.runner.done()


@pytest.mark.asyncio
async def test_bad_datachannel_messages_get_error_events_and_the_session_lives_on(
        tone_gateway: RunningGateway) -> None:
    client = RtcClient(tone_gateway.url, mode="tone")
    await client.connect()
    try:
        for raw in ("not json", '{"type": "dance"}', "x" * 10_000):
            seen = len(client.events)
            client.send(raw)
            event = await client.wait_event("error", after=seen)
            assert event["code"] == "invalid_message"
        seen = len(client.events)
        client.send({"type": "stop_tts"})  # a valid message still works afterwards: the tone stops
        await client.wait_heard(len(client.heard) + 10)
        assert not client.heard[-1].pcm.any()
        assert client.session_id in tone_gateway.gateway.sessions
    finally:
        await client.close()
