"""Outbound calls end to end: placed through a fake of Twilio's REST API (its wire format), their signed
status callbacks recorded, answered by a person (greeted) or by an answering machine (the voicemail left
after the beep, then hung up), on the fake Media Streams client with the embedded models."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from xml.etree import ElementTree

import httpx
import numpy as np
import pytest
import pytest_asyncio

import speech_fixtures as sf
from alice_voice.state.store import OutboundCall
from alice_voice.transport.twilio_signature import signature
from bench.phone_band import phone_line
from conftest import make_settings
from fakes.twilio_rest import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioRest, RestRequest
from support.gateway import RunningGateway, serve
from support.socket_clients import FakeTwilio, opened
from support.twilio_calls import STREAM, no_sessions_left, ws_url

pytestmark = [pytest.mark.asyncio, pytest.mark.realtime, pytest.mark.models]
PUBLIC = "https://alice.example.com"
ADMIN = {"Authorization": "Bearer admin-key"}
GREETING = "Hello, this is Alice from the clinic, calling about your appointment tomorrow."
VOICEMAIL = "Hello, this is Alice from the clinic. Please call us back. Goodbye."


@pytest_asyncio.fixture
async def rest() -> AsyncIterator[FakeTwilioRest]:
    with FakeTwilioRest() as fake:
        yield fake


@pytest_asyncio.fixture
async def gateway(rest: FakeTwilioRest) -> AsyncIterator[RunningGateway]:
    settings = make_settings(default_mode="agent", preload_models=True, twilio_auth_token=AUTH_TOKEN,
                             twilio_account_sid=ACCOUNT_SID, twilio_api_url=rest.url, twilio_from_number="+15557770000",
                             public_url=PUBLIC, admin_key="admin-key")
    async with serve(settings) as running:
        await running.app.state.runtime.resources()
        yield running


async def twilio_posts(gateway: RunningGateway, public: str, form: dict[str, str]) -> httpx.Response:
    """Twilio's signed request to `public` (a URL it was given), reaching the gateway on loopback."""
    local = gateway.url + public.removeprefix(PUBLIC)
    async with httpx.AsyncClient() as http:
        return await http.post(local, data=form, headers={"X-Twilio-Signature": signature(AUTH_TOKEN, public, form)})


async def place(gateway: RunningGateway, **body: Any) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(gateway.url + "/api/telephony/twilio/calls", json=body, headers=ADMIN)


async def read(gateway: RunningGateway, call_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        response = await http.get(gateway.url + f"/api/telephony/twilio/calls/{call_id}", headers=ADMIN)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


async def answer(gateway: RunningGateway, created: RestRequest, call: FakeTwilio, **amd: str) -> dict[str, str]:
    """What Twilio does once the callee picks up: the status callbacks, then the TwiML of the call's Url."""
    for status in ("initiated", "ringing", "in-progress"):
        callback = await twilio_posts(gateway, created.field("StatusCallback"),
                                      {"CallSid": call.call_sid, "CallStatus": status})
        assert callback.status_code == 204
    twiml = await twilio_posts(gateway, created.field("Url"), {"CallSid": call.call_sid, "Direction": "outbound-api",
                                                              "To": created.field("To"), **amd})
    twiml.raise_for_status()
    stream = ElementTree.fromstring(twiml.text).find("./Connect/Stream")
    assert stream is not None and stream.attrib["url"] == PUBLIC.replace("https", "wss") + STREAM
    return {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}


def stream_headers() -> dict[str, str]:
    return {"X-Twilio-Signature": signature(AUTH_TOKEN, PUBLIC.replace("https", "wss") + STREAM)}


@pytest.mark.parametrize("answered_by", ["human", "machine_end_beep"])
async def test_an_outbound_call_greets_a_person_or_leaves_a_voicemail(gateway: RunningGateway, rest: FakeTwilioRest,
                                                                      answered_by: str) -> None:
    placed = await place(gateway, to="+15551239876", greeting=GREETING, voicemail=VOICEMAIL)
    assert placed.status_code == 201, placed.text
    call_id, call_sid = placed.json()["call_id"], placed.json()["call_sid"]
    created = await rest.wait_for(lambda r: r.path.endswith("/Calls.json"))
    assert created.form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert (created.field("To"), created.field("From"), created.field("MachineDetection")) == (
        "+15551239876", "+15557770000", "DetectMessageEnd")
    async with opened(FakeTwilio, ws_url(gateway, STREAM), 8_000, stream_headers()) as call:
        call.call_sid = call_sid
        parameters = await answer(gateway, created, call, AnsweredBy=answered_by, MachineDetectionDuration="2300")
        await call.start(parameters)
        [live] = await call.wait_for(lambda: list(gateway.gateway.sessions.values()) or None)
        said = await call.wait_for(lambda: live.conversation.history or None)  # type: ignore[attr-defined]
        assert live.record.call_id == call_id, "the session names its call"
        if answered_by == "human":
            assert said[0].content == GREETING and said[0].role == "assistant"
            assert gateway.gateway.sessions, "a person is talked to, not hung up on"
        else:
            assert said[0].content == VOICEMAIL
            hang_up = await rest.wait_for(lambda r: r.field("Status") == "completed")
            assert hang_up.path.endswith(f"/Calls/{call_sid}.json")
            assert hang_up.at >= max(at for at, rms in call.heard if rms > 300), "the message was heard whole"
        await call.stop()
        await call.wait_closed()
    await no_sessions_left(gateway)
    record = await read(gateway, call_id)
    assert [h["status"] for h in record["history"]] == ["initiated", "ringing", "in-progress"]
    assert (record["answered_by"], record["detection_ms"], record["session_id"]) == (answered_by, 2300, live.id)
    assert gateway.gateway.metrics.answered_by.labels(answered_by=answered_by)._value.get() == 1


async def test_a_call_that_is_never_answered_is_recorded(gateway: RunningGateway, rest: FakeTwilioRest) -> None:
    placed = (await place(gateway, to="+15551239876")).json()
    created = await rest.wait_for(lambda r: r.path.endswith("/Calls.json"))
    for status in ("initiated", "ringing", "no-answer"):
        await twilio_posts(gateway, created.field("StatusCallback"), {"CallSid": placed["call_sid"],
                                                                      "CallStatus": status})
    record = await read(gateway, placed["call_id"])
    assert record["status"] == "no-answer" and record["session_id"] is None
    assert gateway.gateway.metrics.outbound_calls.labels(status="no-answer")._value.get() == 1


async def test_bad_outbound_requests_get_clear_errors(gateway: RunningGateway, rest: FakeTwilioRest) -> None:
    refused = await place(gateway, to="+15550001234")  # Twilio: not a valid phone number
    assert refused.status_code == 502 and "21211" in refused.json()["error"]["message"]
    assert (await place(gateway, to="0800 FLOWERS")).status_code == 422
    async with httpx.AsyncClient() as http:
        anonymous = await http.post(gateway.url + "/api/telephony/twilio/calls", json={"to": "+15551239876"})
        unknown = await http.get(gateway.url + "/api/telephony/twilio/calls/nope", headers=ADMIN)
    assert anonymous.status_code == 401 and unknown.status_code == 404
    placed = (await place(gateway, to="+15551239876")).json()
    status_url = f"{PUBLIC}/api/telephony/twilio/status?call={placed['call_id']}"
    forged = await twilio_posts(gateway, status_url.replace(placed["call_id"], "other"),
                                {"CallSid": placed["call_sid"], "CallStatus": "completed"})
    assert forged.status_code == 404
    async with httpx.AsyncClient() as http:
        unsigned = await http.post(gateway.url + status_url.removeprefix(PUBLIC),
                                   data={"CallSid": placed["call_sid"], "CallStatus": "completed"})
    assert unsigned.status_code == 403
    another_call = await twilio_posts(gateway, status_url, {"CallSid": "CA" + "9" * 32, "CallStatus": "completed"})
    assert another_call.status_code == 403
    assert (await read(gateway, placed["call_id"]))["status"] == "queued"


@pytest.mark.parametrize(("callee", "said", "answered_by"), [
    ("Hello?", GREETING, "human"),
    ("Hi, you've reached Sam. Please leave a message after the tone.", VOICEMAIL, "machine"),
])
async def test_without_twilios_detection_the_callees_first_words_tell(
        gateway: RunningGateway, rest: FakeTwilioRest, callee: str, said: str, answered_by: str) -> None:
    placed = (await place(gateway, to="+15551239876", greeting=GREETING, voicemail=VOICEMAIL,
                          machine_detection=False)).json()
    created = await rest.wait_for(lambda r: r.path.endswith("/Calls.json"))
    assert "MachineDetection" not in created.form
    async with opened(FakeTwilio, ws_url(gateway, STREAM), 8_000, stream_headers()) as call:
        call.call_sid = placed["call_sid"]
        await call.start(await answer(gateway, created, call))
        [live] = await call.wait_for(lambda: list(gateway.gateway.sessions.values()) or None)
        speech = np.concatenate([sf.silence(1.0), sf.synth(callee)])  # a callee picks up, then speaks
        if answered_by == "machine":  # the machine's beep after its greeting
            speech = np.concatenate([speech, sf.silence(0.4), sf.tone(1000, 500)])
        await call.say(phone_line(speech))
        history = await call.wait_for(lambda: [m for m in live.conversation.history if m.role == "assistant"]  # type: ignore[attr-defined]
                                      or None, timeout=30)
        assert history[0].content == said
        if answered_by == "machine":
            await rest.wait_for(lambda r: r.field("Status") == "completed")
        await call.stop()
        await call.wait_closed()
    await no_sessions_left(gateway)
    assert gateway.gateway.metrics.answered_by.labels(answered_by=answered_by)._value.get() == 1


async def test_a_callback_before_twilios_answer_names_the_call(gateway: RunningGateway) -> None:
    """Twilio may post `initiated` before its answer to our request reaches us: the signed callback is the
    first to name the call, and the answer, when it comes, keeps what was recorded."""
    early = OutboundCall(call_id="early-call", to="+15551239876", voicemail=VOICEMAIL, machine_detection=True,
                         created_at=time.time())
    await gateway.gateway.store.put_call(early)
    status_url = f"{PUBLIC}/api/telephony/twilio/status?call=early-call"
    first = await twilio_posts(gateway, status_url, {"CallSid": "CA" + "1" * 32, "CallStatus": "initiated"})
    other = await twilio_posts(gateway, status_url, {"CallSid": "CA" + "2" * 32, "CallStatus": "ringing"})
    assert (first.status_code, other.status_code) == (204, 403)
    record = await read(gateway, "early-call")
    assert record["call_sid"] == "CA" + "1" * 32 and [h["status"] for h in record["history"]] == ["initiated"]
