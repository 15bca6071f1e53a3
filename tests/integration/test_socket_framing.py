"""What the WebSocket protocols promise of every message, checked on a tone session over the real socket:
20 ms frames from the first one, and the telephony webhook where Twilio's console may point it."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from alice_voice.transport.twilio_signature import signature
from conftest import make_settings
from support.gateway import RunningGateway, serve
from support.socket_clients import FakeTwilio, PcmClient, opened

pytestmark = pytest.mark.asyncio
TOKEN = "twilio-test-token"


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[RunningGateway]:
    async with serve(make_settings(twilio_auth_token=TOKEN, public_url="https://alice.example.com")) as running:
        yield running


@pytest.mark.parametrize("rate", [8_000, 16_000, 24_000, 48_000])
async def test_every_pcm_frame_is_20_ms_from_the_first(gateway: RunningGateway, rate: int) -> None:
    async with opened(PcmClient, gateway.url.replace("http://", "ws://") + f"/api/voice/ws?rate={rate}",
                      rate) as client:
        await client.wait_for(lambda: len(client.audio) >= 25 or None, timeout=5)
    assert {len(frame) for frame in client.audio} == {rate // 50}


async def test_every_twilio_payload_is_20_ms_from_the_first(gateway: RunningGateway) -> None:
    webhook = "https://alice.example.com/api/telephony/twilio/voice"
    form = {"CallSid": FakeTwilio.call_sid}
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        twiml = await http.post("/api/telephony/twilio/voice", data=form,
                                headers={"X-Twilio-Signature": signature(TOKEN, webhook, form)})
    ticket = twiml.text.split('name="alice_call" value="')[1].split('"')[0]
    url = gateway.url.replace("http://", "ws://") + "/api/telephony/twilio/stream"
    headers = {"X-Twilio-Signature": signature(TOKEN, "wss://alice.example.com/api/telephony/twilio/stream")}
    async with opened(FakeTwilio, url, 8_000, headers) as call:
        await call.start({"alice_call": ticket})
        await call.wait_for(lambda: len(call.audio) >= 25 or None, timeout=5)
        payloads = [base64.b64decode(e["media"]["payload"]) for e in call.events if e["event"] == "media"]
    assert {len(payload) for payload in payloads} == {160}


async def test_the_webhook_with_a_trailing_slash_is_served_not_redirected_inside(gateway: RunningGateway) -> None:
    url = "https://alice.example.com/api/telephony/twilio/voice/"
    form = {"CallSid": "CA1"}
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post("/api/telephony/twilio/voice/", data=form,
                                   headers={"X-Twilio-Signature": signature(TOKEN, url, form)})
        unknown = await http.get("/health/")
    assert response.status_code == 200 and "<Stream url=\"wss://alice.example.com/" in response.text
    assert unknown.status_code == 404 and "location" not in unknown.headers
