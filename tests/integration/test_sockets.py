"""Sessions over WebSockets against the running gateway with the embedded models: the plain PCM protocol
from a program, and phone calls through a fake Twilio speaking the Media Streams formats."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest
import pytest_asyncio

import speech_fixtures as sf
from alice_voice.conversation.agents import Message
from alice_voice.conversation.agents.local import CAPABILITIES
from alice_voice.transport.twilio_signature import signature
from conftest import make_settings
from support.gateway import RunningGateway, serve
from support.socket_clients import FakeTwilio, PcmClient, opened
from support.twilio_calls import TOKEN, answered, no_sessions_left, twilio_headers, ws_url

pytestmark = [pytest.mark.asyncio, pytest.mark.realtime, pytest.mark.models]


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[RunningGateway]:
    async with serve(make_settings(default_mode="agent", preload_models=True, twilio_auth_token=TOKEN)) as running:
        await running.app.state.runtime.resources()
        yield running


async def test_a_program_talks_to_alice_over_the_pcm_socket(gateway: RunningGateway) -> None:
    async with opened(PcmClient, ws_url(gateway, "/api/voice/ws?rate=24000"), 24_000) as client:
        ready = await client.wait_event("session.ready")
        assert ready["mode"] == "agent" and ready["token"]
        await client.say(sf.synth("What is seven times eight?"))
        done = await client.wait_event("tts.stopped", reason="done")
        final = next(e for e in client.events if e["type"] == "transcript.final")
        assert "seven" in final["text"].lower() or "7" in final["text"]
        assert client.reply_text() == "Seven times eight is fifty-six."
        assert sum(len(chunk) for chunk in client.audio if np.abs(chunk).max() > 500) > 24_000 * 0.5, \
            "the reply was heard, at the rate asked for"
        metrics = await client.wait_event("turn.metrics")
        assert metrics["timings"]["first_audio_ms"] > 0 and done

        seen = len(client.events)
        await client.send_json({"type": "text", "text": "what is 12 plus 30"})
        await client.wait_event("tts.stopped", after=seen, reason="done")
        assert client.reply_text(seen) == "Twelve plus thirty is forty-two."

        seen = len(client.events)
        await client.send_json({"type": "text", "text": "what can you do"})
        await client.wait_event("tts.started", after=seen)
        await client.send_json({"type": "stop_tts"})
        stopped = await client.wait_event("tts.stopped", after=seen)
        assert stopped["reason"] == "stop_request"

        async with httpx.AsyncClient(base_url=gateway.url) as http:
            view = (await http.get(f"/api/voice/sessions/{ready['session_id']}",
                                   headers={"Authorization": f"Bearer {ready['token']}"})).json()
        assert view["transport"] == "websocket" and view["turn_count"] >= 2
    await no_sessions_left(gateway, ready["session_id"])
    assert gateway.gateway.metrics.sessions_total.labels(mode="agent", transport="websocket")._value.get() == 1


async def test_bad_messages_get_errors_and_a_flood_closes_the_socket(gateway: RunningGateway) -> None:
    async with opened(PcmClient, ws_url(gateway, "/api/voice/ws"), 16_000) as client:
        await client.wait_event("session.ready")
        await client.ws.send(b"\x01\x02\x03")  # not whole samples
        odd = await client.wait_event("error")
        assert odd["code"] == "invalid_message" and "whole 16-bit samples" in odd["message"]
        await client.ws.send("{not json")
        garbage = await client.wait_event("error", after=client.events.index(odd) + 1, code="invalid_message")
        assert garbage["message"] == "a text message must be JSON"
        for _ in range(1000):  # more messages than a real client sends in four seconds, at once
            await client.ws.send(b"\x00\x00")
        code, reason = await client.wait_closed()
        assert code == 1008 and reason == "too many messages"
    await no_sessions_left(gateway)


async def test_an_unknown_rate_is_refused_with_a_reason(gateway: RunningGateway) -> None:
    async with opened(PcmClient, ws_url(gateway, "/api/voice/ws?rate=11025"), 11_025) as client:
        code, reason = await client.wait_closed()
    assert code == 1008 and "rate must be one of" in reason


async def test_a_phone_call_through_twilio_media_streams(gateway: RunningGateway) -> None:
    async with opened(FakeTwilio, ws_url(gateway, "/api/telephony/twilio/stream"), 8_000,
                      twilio_headers(gateway)) as call:
        parameters = await answered(gateway, call, From="+15550001111")
        await call.start(parameters)
        await call.say(sf.synth("What is seven times eight?"))
        await call.wait_for(lambda: call.audible_ms() > 800 or None, timeout=30)
        [live] = gateway.gateway.sessions.values()
        assert live.record.transport == "twilio"
        details = live.transport.details  # type: ignore[attr-defined]
        assert details["stream_sid"] == call.stream_sid and details["call_sid"] == call.call_sid
        assert details["parameters"]["From"] == "+15550001111"

        def history(at_least: int) -> list[Message] | None:
            said: list[Message] = live.conversation.history  # type: ignore[attr-defined]
            return said if len(said) >= at_least else None

        said = await call.wait_for(lambda: history(2))
        assert said[1].content == "Seven times eight is fifty-six."
        await call.wait_for(lambda: call.marks_acknowledged or None)  # marks went out and came back as played

        await call.dtmf("0")  # a key press reaches the agent as a typed turn
        said = await call.wait_for(lambda: history(4))
        assert said[2].content == "Pressed 0."

        # Talking over a long reply: Twilio is told to drop what it holds the moment the reply pauses, not
        # when the words have confirmed the interruption; the history keeps what was heard.
        sent, before = len(call.events), call.audible_ms()
        await call.say(sf.synth("What can you do?"), tail_s=0.3)
        await call.wait_for(lambda: call.audible_ms() > before + 2000 or None)
        states_at_clear: list[str] = []
        call.on_clear = lambda: states_at_clear.append(live.record.state)
        await call.say(sf.synth("Wait, stop. Stop."), tail_s=1.5)
        await call.wait_for(lambda: call.cleared or None, timeout=20)
        assert any(e["event"] == "clear" for e in call.events[sent:])
        assert states_at_clear[0] == "paused", states_at_clear
        said = await call.wait_for(lambda: history(6))
        assert said[5].role == "assistant" and CAPABILITIES.startswith(said[5].content)
        assert said[5].content != CAPABILITIES, "only what was heard"
        await call.stop()
        await call.wait_closed()
    await no_sessions_left(gateway, live.id)


async def test_an_unsigned_or_forged_twilio_stream_is_refused(gateway: RunningGateway) -> None:
    for headers in (None, {"X-Twilio-Signature": signature("wrong-token", ws_url(gateway, "/x"))}):
        async with opened(FakeTwilio, ws_url(gateway, "/api/telephony/twilio/stream"), 8_000, headers) as call:
            code, reason = await call.wait_closed()
        assert code == 1008 and "X-Twilio-Signature" in reason
    assert not gateway.gateway.sessions


async def test_a_stream_without_its_calls_ticket_is_refused(gateway: RunningGateway) -> None:
    """The stream's signature is the same for every call; the TwiML's ticket is what ties it to one."""
    async with opened(FakeTwilio, ws_url(gateway, "/api/telephony/twilio/stream"), 8_000,
                      twilio_headers(gateway)) as call:
        parameters = await answered(gateway, call)
        call.call_sid = "CA99999999999999999999999999999999"  # a replayed handshake, for another call
        await call.start(parameters)
        code, reason = await call.wait_closed()
    assert code == 1008 and reason == "the stream is not from a call this gateway answered"
    await no_sessions_left(gateway)


async def test_a_browser_page_elsewhere_cannot_open_a_session(gateway: RunningGateway) -> None:
    headers = {"Origin": "https://elsewhere.example"}
    async with opened(PcmClient, ws_url(gateway, "/api/voice/ws"), 16_000, headers) as client:
        code, reason = await client.wait_closed()
    assert code == 1008 and reason == "cross-origin WebSocket refused"
    assert not gateway.gateway.sessions


async def test_audio_faster_than_real_time_closes_the_socket(gateway: RunningGateway) -> None:
    async with opened(PcmClient, ws_url(gateway, "/api/voice/ws"), 16_000) as client:
        await client.wait_event("session.ready")
        for _ in range(12):
            await client.ws.send(b"\x00\x00" * 16_000)  # a second of audio per message, all at once
        code, reason = await client.wait_closed()
    assert code == 1008 and reason == "audio faster than real time"
    await no_sessions_left(gateway)


async def test_media_before_start_closes_the_stream(gateway: RunningGateway) -> None:
    async with opened(FakeTwilio, ws_url(gateway, "/api/telephony/twilio/stream"), 8_000,
                      twilio_headers(gateway)) as call:
        await call.send({"event": "media", "streamSid": call.stream_sid, "media": {"payload": "AAAA"}})
        code, reason = await call.wait_closed()
    assert code == 1008 and reason == "media before start"
    await no_sessions_left(gateway)


async def test_the_twiml_webhook_connects_a_signed_call_to_the_stream(gateway: RunningGateway) -> None:
    form = {"CallSid": "CA1", "From": "+15550001111", "To": "+15550002222"}
    url = gateway.url + "/api/telephony/twilio/voice"
    async with httpx.AsyncClient() as http:
        signed = await http.post(url, data=form, headers={"X-Twilio-Signature": signature(TOKEN, url, form)})
        forged = await http.post(url, data=form, headers={"X-Twilio-Signature": "bm90IGl0"})
        as_json = await http.post(url, json=form)
    assert signed.status_code == 200 and signed.headers["content-type"].startswith("application/xml")
    assert f'<Stream url="{ws_url(gateway, "/api/telephony/twilio/stream")}">' in signed.text
    assert '<Parameter name="From" value="+15550001111" />' in signed.text
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "forbidden"
    assert as_json.status_code == 415
