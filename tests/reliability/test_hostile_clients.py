"""What an adversarial client can do to a running gateway, over the real socket or HTTP: each case here
held a door open before (issue 19): one client stalling every call, a replayed Twilio handshake holding
capacity, a half-sent request holding a connection and the shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from alice_voice.transport.twilio_signature import call_ticket, signature
from conftest import make_settings
from support.gateway import RunningGateway, serve
from support.socket_clients import FakeTwilio, PcmClient, opened

pytestmark = pytest.mark.asyncio
TOKEN = "twilio-test-token"


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[RunningGateway]:
    async with serve(make_settings(twilio_auth_token=TOKEN, twilio_start_timeout_s=0.5,
                                   http_read_timeout_s=0.5)) as running:
        yield running


def ws_url(gateway: RunningGateway, path: str) -> str:
    return gateway.url.replace("http://", "ws://") + path


STREAM = "/api/telephony/twilio/stream"


def signed(gateway: RunningGateway) -> dict[str, str]:
    return {"X-Twilio-Signature": signature(TOKEN, ws_url(gateway, STREAM))}


async def twiml_parameters(gateway: RunningGateway, call_sid: str) -> dict[str, str]:
    """The webhook Twilio calls first; its TwiML hands the stream the call's ticket."""
    url = gateway.url + "/api/telephony/twilio/voice"
    form = {"CallSid": call_sid}
    async with httpx.AsyncClient() as http:
        response = await http.post(url, data=form, headers={"X-Twilio-Signature": signature(TOKEN, url, form)})
    response.raise_for_status()
    ticket = response.text.split('name="alice_call" value="')[1].split('"')[0]
    return {"alice_call": ticket}


# ---------- one client must not stall every call ----------
async def test_a_huge_text_message_closes_that_socket_at_once(gateway: RunningGateway) -> None:
    url = ws_url(gateway, "/api/voice/ws")
    async with opened(PcmClient, url, 16_000) as bystander, opened(PcmClient, url, 16_000) as attacker:
        await bystander.wait_event("session.ready")
        await attacker.wait_event("session.ready")
        with contextlib.suppress(Exception):  # the gateway closes the socket under the sender
            for _ in range(10):
                await attacker.ws.send("[" + " " * (8 * 2**20) + "]")
        code, _ = await attacker.wait_closed()
        assert code == 1009, "refused by its size, before it is read or parsed"
        await bystander.ws.send(json.dumps({"type": "stop_tts"}))  # the other call goes on
        heard = len(bystander.audio)
        await bystander.wait_for(lambda: len(bystander.audio) > heard + 5 or None, timeout=5)
    assert bystander.closed is not None and bystander.closed[0] != 1009


async def test_oversized_text_messages_count_as_bad_and_close_the_socket(gateway: RunningGateway) -> None:
    async with opened(PcmClient, ws_url(gateway, "/api/voice/ws"), 16_000) as client:
        await client.wait_event("session.ready")
        big = json.dumps({"type": "text", "text": "x" * 10_000})
        error = None
        with contextlib.suppress(Exception):
            for _ in range(25):
                await client.ws.send(big)
            error = await client.wait_event("error", code="invalid_message")
        code, reason = await client.wait_closed()
    assert error is None or "too large" in error["message"]
    assert code == 1008 and "text message too large" in reason


async def test_deeply_nested_json_is_an_error_not_a_crash(gateway: RunningGateway) -> None:
    async with opened(PcmClient, ws_url(gateway, "/api/voice/ws"), 16_000) as client:
        await client.wait_event("session.ready")
        await client.ws.send("[" * 5000)
        error = await client.wait_event("error", code="invalid_message")
        assert "nested too deeply" in error["message"]
        await client.send_json({"type": "stop_tts"})  # the session goes on
        await client.wait_for(lambda: len(client.audio) > 5 or None, timeout=5)
        assert client.closed is None

    async with opened(FakeTwilio, ws_url(gateway, STREAM), 8_000, signed(gateway)) as call:
        await call.start(await twiml_parameters(gateway, call.call_sid))
        await call.wait_for(lambda: gateway.gateway.sessions or None, timeout=5)
        await call.ws.send("[" * 5000)
        code, reason = await call.wait_closed()
    assert code == 1008 and reason.startswith("not a Media Streams message")


# ---------- a replayed Twilio handshake ----------
async def test_a_stream_that_never_starts_holds_no_session(gateway: RunningGateway) -> None:
    """The handshake's signature is the same for every call: a replay that never sends `start` is no
    session and holds no capacity, and is closed after `TWILIO_START_TIMEOUT_S`."""
    async with opened(FakeTwilio, ws_url(gateway, STREAM), 8_000, signed(gateway)) as call:
        for _ in range(3):
            await call.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            assert not gateway.gateway.sessions
            async with httpx.AsyncClient(base_url=gateway.url) as http:
                assert (await http.get("/health")).json()["sessions"]["active"] == 0
        code, reason = await call.wait_closed(timeout=5)
    assert code == 1008 and reason == "no start within 0.5 s of the handshake"
    assert not gateway.gateway.sessions


async def test_a_calls_ticket_opens_one_stream_once(gateway: RunningGateway) -> None:
    parameters = await twiml_parameters(gateway, FakeTwilio.call_sid)
    async with opened(FakeTwilio, ws_url(gateway, STREAM), 8_000, signed(gateway)) as first:
        await first.start(parameters)
        await first.wait_for(lambda: gateway.gateway.sessions or None, timeout=5)
        async with opened(FakeTwilio, ws_url(gateway, STREAM), 8_000, signed(gateway)) as second:
            await second.start(parameters)  # the same call's ticket, while the first stream is live
            code, reason = await second.wait_closed()
        assert code == 1008 and reason == "this call's ticket has been used already"
        assert len(gateway.gateway.sessions) == 1
        await first.stop()
        await first.wait_closed()
    async with opened(FakeTwilio, ws_url(gateway, STREAM), 8_000, signed(gateway)) as again:
        await again.start(parameters)  # after the call hung up
        code, reason = await again.wait_closed()
    assert code == 1008 and reason == "this call's ticket has been used already"


@pytest.mark.parametrize("ticket", ["².x", "9" * 5000, call_ticket(TOKEN, FakeTwilio.call_sid, time.time() - 120),
                                    call_ticket("another-token", FakeTwilio.call_sid, time.time())])
async def test_a_malformed_stale_or_foreign_ticket_is_refused(gateway: RunningGateway, ticket: str) -> None:
    async with opened(FakeTwilio, ws_url(gateway, STREAM), 8_000, signed(gateway)) as call:
        await call.start({"alice_call": ticket})
        code, reason = await call.wait_closed()
    assert code == 1008 and reason == "the stream is not from a call this gateway answered"
    assert not gateway.gateway.sessions


# ---------- half-sent requests ----------
async def _raw(gateway: RunningGateway, request: bytes) -> bytes:
    """Send `request` as is, then read until the gateway closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.settings.port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(5):
            return await reader.read()
    finally:
        writer.close()


@pytest.mark.parametrize("request_bytes", [
    b"POST /api/voice/stop-tts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ",
    b"",
], ids=["body", "headers", "nothing"])
async def test_a_request_that_never_finishes_gets_408_and_is_closed(gateway: RunningGateway,
                                                                    request_bytes: bytes) -> None:
    answer = await _raw(gateway, request_bytes)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"


# ---------- typed turns ----------
@pytest.mark.models
async def test_typed_turns_are_rate_limited_per_session(agent_gateway: RunningGateway) -> None:
    """100 typed turns a second (under the message cap) used 1.6 of 2 cores: a session may start a few a
    second, after a short burst; the rest get `rate_limited`, and the session goes on."""
    async with opened(PcmClient, ws_url(agent_gateway, "/api/voice/ws"), 16_000) as client:
        await client.wait_event("session.ready")
        for n in range(20):
            await client.send_json({"type": "text", "text": f"what is {n} plus one"})
        await client.wait_for(lambda: sum(e.get("code") == "rate_limited" for e in client.events) >= 14 or None)
        limited = [e for e in client.events if e.get("code") == "rate_limited"]
        assert len(limited) <= 15 and limited[0]["message"] == "too many typed turns: at most 2 a second"
        assert client.closed is None
