"""Control of a phone call over Twilio, end to end: a caller on the fake Media Streams client talks to the
embedded models; the agent hangs up, puts the caller through, or reads the keypad, through a fake of
Twilio's REST API on its wire format (form-encoded, basic auth, JSON resources and errors)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

import speech_fixtures as sf
from alice_voice.conversation.agents import Message
from alice_voice.conversation.agents.local_calls import GOODBYE
from alice_voice.gateway.live_session import LiveSession
from alice_voice.gateway.sessions import TRANSFER_FAILED
from conftest import make_settings
from fakes.openai_chat import FakeCall, FakeOpenAiChat
from fakes.twilio_rest import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioRest
from support.gateway import RunningGateway, serve
from support.socket_clients import FakeTwilio, PcmClient, opened
from support.twilio_calls import STREAM, answered, no_sessions_left, twilio_headers, ws_url

pytestmark = [pytest.mark.asyncio, pytest.mark.realtime, pytest.mark.models]
SALES = "+15551230000"


@pytest_asyncio.fixture
async def rest() -> AsyncIterator[FakeTwilioRest]:
    with FakeTwilioRest() as fake:
        yield fake


def phone_settings(rest: FakeTwilioRest, **overrides: Any) -> Any:
    return make_settings(default_mode="agent", preload_models=True, twilio_auth_token=AUTH_TOKEN,
                         twilio_account_sid=ACCOUNT_SID, twilio_api_url=rest.url,
                         transfer_targets={"sales": SALES}, **overrides)


@pytest_asyncio.fixture
async def gateway(rest: FakeTwilioRest) -> AsyncIterator[RunningGateway]:
    async with serve(phone_settings(rest)) as running:
        await running.app.state.runtime.resources()
        yield running


async def session_of(call: FakeTwilio, gateway: RunningGateway) -> LiveSession:
    """The call's session, once its stream has started."""
    [live] = await call.wait_for(lambda: list(gateway.gateway.sessions.values()) or None)
    return live  # type: ignore[no-any-return]


def history(live: LiveSession) -> list[Message]:
    said: list[Message] = live.conversation.history  # type: ignore[attr-defined]
    return said


def last_loud(call: FakeTwilio) -> float:
    return max(at for at, rms in call.heard if rms > 300)


def ended(gateway: RunningGateway, reason: str) -> float:
    return gateway.app.state.parts.gateway.metrics.sessions_ended.labels(reason=reason)._value.get()  # type: ignore[no-any-return]


async def test_a_goodbye_is_heard_whole_then_the_call_is_hung_up(gateway: RunningGateway,
                                                                  rest: FakeTwilioRest) -> None:
    async with opened(FakeTwilio, ws_url(gateway, STREAM), 8_000, twilio_headers(gateway)) as call:
        await call.start(await answered(gateway, call))
        live = await session_of(call, gateway)
        await call.say(sf.synth("That's all, goodbye."))
        hang_up = await rest.wait_for(lambda r: r.field("Status") == "completed", timeout=30)
        assert hang_up.path.endswith(f"/Calls/{call.call_sid}.json")
        assert history(live)[-1] == Message("assistant", GOODBYE, history(live)[-1].tool_calls)
        assert [t.name for t in history(live)[-1].tool_calls] == ["end_call"]
        # Nothing was cut: Twilio had played the goodbye's last sound before it was asked to hang up.
        assert not any(kind == "media" and abs(pcm).max() > 500 for _, kind, pcm in call.buffer)
        assert hang_up.at >= last_loud(call)
        await call.wait_closed()
    await no_sessions_left(gateway, live.id)
    assert ended(gateway, "hung_up") == 1


@pytest.mark.parametrize("refused", [False, True])
async def test_put_through_to_a_configured_person_after_the_handover(gateway: RunningGateway, rest: FakeTwilioRest,
                                                                     refused: bool) -> None:
    """Refused by Twilio, the transfer leaves the caller with Alice, who says so."""
    if refused:
        rest.refuse.add(FakeTwilio.call_sid)
    async with opened(FakeTwilio, ws_url(gateway, STREAM), 8_000, twilio_headers(gateway)) as call:
        await call.start(await answered(gateway, call))
        live = await session_of(call, gateway)
        await call.say(sf.synth("Can you put me through to sales, please?"))
        transfer = await rest.wait_for(lambda r: bool(r.field("Twiml")), timeout=30)
        assert transfer.field("Twiml") == f"<Response><Dial><Number>{SALES}</Number></Dial></Response>"
        assert transfer.at >= last_loud(call), "the handover was heard first"
        if refused:
            said = await call.wait_for(lambda: history(live) if history(live)[-1].content == TRANSFER_FAILED
                                       else None, timeout=30)
            assert gateway.gateway.sessions, "the caller is still on the line"
            assert gateway.gateway.metrics.errors_total.labels(code="provider_error")._value.get() >= 1
        else:
            said = history(live)
        assert said[-1 - refused].content == "Of course. I'm putting you through to sales now."
        await call.stop()  # Twilio leaves the stream (for the <Dial>, or the caller hangs up)
        await call.wait_closed()
    await no_sessions_left(gateway)
    assert ended(gateway, "transferred") == (0 if refused else 1)


async def test_key_presses_are_read_as_one_entry_for_the_agent(rest: FakeTwilioRest) -> None:
    def collect_when_asked(asked: str) -> list[list[FakeCall]]:
        return [[FakeCall("collect_digits", json.dumps({"max_digits": 8}))]] if asked == "Pressed 0." else []

    with FakeOpenAiChat(reply=("Thank you.",), tool_rounds_for=collect_when_asked) as llm:
        settings = phone_settings(rest, agent="openai", llm_base_url=llm.base_url, llm_api_key="test-key")
        async with serve(settings) as running:
            await running.app.state.runtime.resources()
            async with opened(FakeTwilio, ws_url(running, STREAM), 8_000, twilio_headers(running)) as call:
                await call.start(await answered(running, call))
                live = await session_of(call, running)
                await call.dtmf("0")  # no collection waits: a typed turn, which asks for the account number
                await call.wait_for(lambda: len(llm.requests) >= 1 or None)
                offered = {t["function"]["name"] for t in llm.requests[0].body["tools"]}
                assert {"end_call", "transfer_call", "collect_digits"} <= offered
                keypad = live.conversation.keypad  # type: ignore[attr-defined]
                await call.wait_for(lambda: keypad.collecting or None)  # (media ticks wake the wait)
                for key in "4711#":
                    await call.dtmf(key)
                await call.wait_for(lambda: len(llm.requests) >= 2 or None)
                result = llm.requests[1].body["messages"][-1]
                assert result["role"] == "tool" and result["content"] == "The caller entered 4711."
                said = await call.wait_for(lambda: history(live) if len(history(live)) >= 2 else None)
                assert [m.content for m in said if m.role == "user"] == ["Pressed 0."], "keys were no turns"
                await call.stop()
                await call.wait_closed()
            await no_sessions_left(running)


async def test_call_tools_are_offered_only_in_phone_calls(rest: FakeTwilioRest) -> None:
    with FakeOpenAiChat(reply=("Hi.",)) as llm:
        settings = phone_settings(rest, agent="openai", llm_base_url=llm.base_url, llm_api_key="test-key")
        async with serve(settings) as running:
            await running.app.state.runtime.resources()
            async with opened(PcmClient, ws_url(running, "/api/voice/ws"), 16_000) as client:
                await client.wait_event("session.ready")
                await client.send_json({"type": "text", "text": "Hello"})
                await client.wait_event("tts.stopped", reason="done")
                await client.send_json({"type": "dtmf", "digit": "5"})
                await client.wait_for(lambda: len(llm.requests) >= 2 or None)
            offered = {t["function"]["name"] for t in llm.requests[0].body["tools"]}
            assert offered.isdisjoint({"end_call", "transfer_call", "collect_digits"})
            assert llm.requests[1].body["messages"][-1] == {"role": "user", "content": "Pressed 5."}


