"""Twilio's HTTP side: the voice webhook whose TwiML connects a call to the media stream, outbound calls
placed through the REST API, and the status callbacks of those calls. Every request from Twilio is
verified by its `X-Twilio-Signature`; placing and reading calls needs the admin key.

An outbound call asks Twilio for answering-machine detection (`MachineDetection=DetectMessageEnd`, not
async): Twilio then fetches the TwiML once it knows who answered, and a machine only after its greeting
and beep. A person is greeted with the call's first sentence; a machine gets the voicemail message, after
which the call is hung up; a fax is hung up on at once.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Annotated
from xml.etree import ElementTree

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from alice_voice.api.parts import Parts
from alice_voice.api.schemas import ErrorResponse
from alice_voice.config import PHONE_NUMBER, Settings
from alice_voice.errors import AliceError, Forbidden, NotFound
from alice_voice.state.store import CallStatus, OutboundCall
from alice_voice.transport import twilio_signature
from alice_voice.transport.twilio_signature import call_ticket

log = logging.getLogger("alice_voice.telephony")
router = APIRouter()
STREAM_PATH = "/api/telephony/twilio/stream"
TICKET = "alice_call"  # the TwiML's per-call ticket, handed back in the stream's start
OUTBOUND = "alice_outbound"  # the outbound call's id, handed back in the stream's start
VOICEMAIL = "alice_voicemail"  # "1": a machine answered; leave the message and hang up
_bearer = HTTPBearer(auto_error=False, description="The admin key.")
_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 422, 502, 503)}


class OutboundCallRequest(BaseModel):
    to: str = Field(pattern=PHONE_NUMBER.pattern, description="The number to call, in E.164 form.")
    greeting: str | None = Field(None, min_length=1, max_length=500, description="Alice's first sentence when a "
                                 "person answers (an appointment reminder); without it she waits to be spoken to.")
    brief: str | None = Field(None, min_length=1, max_length=2000, description="What the agent is told of the "
                              "call, never said (\"Remind Sam of the 3 pm dentist appointment; offer to move it\").")
    voicemail: str | None = Field(None, min_length=1, max_length=1000, description="Left on an answering machine "
                                  "(default VOICEMAIL_MESSAGE).")
    machine_detection: bool = Field(True, description="Ask Twilio whether a person or a machine answered.")


class TelephonyUnavailable(AliceError):
    status, code = 503, "telephony_unavailable"


@router.post("/api/telephony/twilio/calls", response_model=OutboundCall, status_code=201, responses=_ERRORS,
             tags=["telephony"])
async def place_call(body: OutboundCallRequest, request: Request,
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> OutboundCall:
    """Call a number through Twilio and connect it to Alice. Needs the admin key, TWILIO_ACCOUNT_SID,
    TWILIO_FROM_NUMBER and PUBLIC_URL (where Twilio reaches this gateway). Twilio's refusal (an invalid
    number, a bad credential) is a 502 naming Twilio's error."""
    parts: Parts = request.app.state.parts
    settings = parts.settings
    parts.control.require_admin(credentials.credentials if credentials else None)
    if parts.twilio is None or not settings.twilio_from_number or not settings.public_url:
        raise TelephonyUnavailable("outbound calls need TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER "
                                   "and PUBLIC_URL")
    call = OutboundCall(call_id=secrets.token_urlsafe(12), to=body.to, greeting=body.greeting, brief=body.brief,
                        voicemail=body.voicemail or settings.voicemail_message,
                        machine_detection=body.machine_detection, created_at=time.time())
    await parts.gateway.store.put_call(call)  # first: Twilio may call back before its answer reaches us
    origin = settings.public_url.rstrip("/")
    form: dict[str, str | list[str]] = {
        "To": body.to, "From": settings.twilio_from_number,
        "Url": f"{origin}/api/telephony/twilio/voice?call={call.call_id}",
        "StatusCallback": f"{origin}/api/telephony/twilio/status?call={call.call_id}",
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "Timeout": str(settings.outbound_answer_timeout_s)}
    if body.machine_detection:
        form["MachineDetection"] = "DetectMessageEnd"
    placed = await parts.twilio.create_call(form)
    # Read again: a status callback may have come before Twilio's answer did (and named the call).
    current = await parts.gateway.store.get_call(call.call_id) or call
    call = current.model_copy(update={"call_sid": placed.sid,
                                      "status": placed.status if not current.history else current.status})
    await parts.gateway.store.put_call(call)
    log.info("outbound call %s placed (%s)", call.call_id, placed.sid)
    return call


@router.get("/api/telephony/twilio/calls/{call_id}", response_model=OutboundCall, responses=_ERRORS,
            tags=["telephony"])
async def read_call(call_id: str, request: Request,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> OutboundCall:
    """An outbound call: its status history, who answered, and its session."""
    parts: Parts = request.app.state.parts
    parts.control.require_admin(credentials.credentials if credentials else None)
    return await _call(parts, call_id)


@router.post("/api/telephony/twilio/status", status_code=204, response_class=Response, tags=["telephony"],
             responses={code: {"model": ErrorResponse} for code in (403, 404, 415)})
async def call_status(request: Request, call: Annotated[str, Query(max_length=64)]) -> Response:
    """Twilio's status callback of an outbound call (signed): recorded on the call."""
    parts: Parts = request.app.state.parts
    form = await _signed_form(request)
    placed = _about(await _call(parts, call), form)
    status = form.get("CallStatus", "")
    if not status:
        raise Forbidden("the callback has no CallStatus")
    history = [*placed.history, CallStatus(status=status, at=time.time())]
    await parts.gateway.store.put_call(placed.model_copy(update={"status": status, "history": history}))
    parts.gateway.metrics.outbound_calls.labels(status=status).inc()
    log.info("outbound call %s: %s", call, status)
    return Response(status_code=204)


@router.post("/api/telephony/twilio/voice/", response_class=Response, include_in_schema=False)
@router.post("/api/telephony/twilio/voice", response_class=Response, tags=["telephony"],
             responses={200: {"content": {"application/xml": {}}, "description": "TwiML"},
                        **{code: {"model": ErrorResponse} for code in (403, 404, 413, 415)}})
async def twilio_voice(request: Request, call: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    """The webhook a Twilio number calls (and an outbound call, once answered): TwiML that connects the
    call to this gateway's media stream."""
    parts: Parts = request.app.state.parts
    settings = parts.settings
    form = await _signed_form(request)
    parameters = {name: form[name] for name in ("From", "To", "CallSid") if form.get(name)}
    if call is not None:
        answered_by = await _screened(parts, call, form)
        if answered_by == "fax":
            return _twiml(ElementTree.Element("Hangup"))
        parameters[OUTBOUND] = call
        if answered_by.startswith("machine"):
            parameters[VOICEMAIL] = "1"
    stream = ElementTree.Element("Stream", url=public_url(settings, request.url.replace(
        scheme="wss" if request.url.scheme == "https" or settings.public_url else "ws", path=STREAM_PATH, query="")))
    for name, value in parameters.items():
        ElementTree.SubElement(stream, "Parameter", name=name, value=value)
    if settings.twilio_auth_token is not None:  # the stream's signature is the same for every call: a ticket
        ticket = call_ticket(settings.twilio_auth_token.get_secret_value(), form.get("CallSid", ""), time.time())
        ElementTree.SubElement(stream, "Parameter", name=TICKET, value=ticket)
    connect = ElementTree.Element("Connect")
    connect.append(stream)
    return _twiml(connect)


async def _screened(parts: Parts, call_id: str, form: dict[str, str]) -> str:
    """Who answered an outbound call (Twilio's detection, "unknown" without it), recorded and counted."""
    placed = _about(await _call(parts, call_id), form)
    answered_by = form.get("AnsweredBy", "unknown")[:40]
    detection_ms = _number(form.get("MachineDetectionDuration"))
    await parts.gateway.store.put_call(placed.model_copy(update={"answered_by": answered_by,
                                                                 "detection_ms": detection_ms}))
    parts.gateway.metrics.answered_by.labels(answered_by=answered_by).inc()
    if detection_ms is not None:
        parts.gateway.metrics.machine_detection_ms.observe(detection_ms)
    log.info("outbound call %s answered by %s (decided in %s ms)", call_id, answered_by, detection_ms)
    return answered_by


def _about(placed: OutboundCall, form: dict[str, str]) -> OutboundCall:
    """The call a signed request names, which must be this one (before Twilio's answer to our request
    reached us, the request is the first to name it)."""
    sid = form.get("CallSid", "")
    if not sid or (placed.call_sid and sid != placed.call_sid):
        raise Forbidden("the request is not about this call")
    return placed.model_copy(update={"call_sid": sid})


async def _call(parts: Parts, call_id: str) -> OutboundCall:
    placed = await parts.gateway.store.get_call(call_id)
    if placed is None:
        raise NotFound(f"no outbound call {call_id!r}")
    return placed


async def _signed_form(request: Request) -> dict[str, str]:
    settings: Settings = request.app.state.settings
    form = {name: str(value) for name, value in (await request.form()).items()}
    verify_twilio(settings, request.headers.get("x-twilio-signature"), public_url(settings, request.url), form)
    return form


def _twiml(verb: ElementTree.Element) -> Response:
    response = ElementTree.Element("Response")
    response.append(verb)
    return Response(ElementTree.tostring(response, encoding="unicode", xml_declaration=True),
                    media_type="application/xml")


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def public_url(settings: Settings, url: object) -> str:
    """The URL as the provider called it: behind a proxy, the configured public origin's."""
    text = str(url)
    if not settings.public_url:
        return text
    scheme, _, rest = text.partition("://")
    path = rest[rest.find("/"):] if "/" in rest else "/"
    origin = settings.public_url.rstrip("/")
    if scheme in ("ws", "wss"):
        origin = origin.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    return origin + path


def verify_twilio(settings: Settings, given: str | None, url: str, form: dict[str, str] | None) -> None:
    token = settings.twilio_auth_token
    if token is None:
        if settings.twilio_allow_unsigned:
            return
        raise Forbidden("Twilio requests are refused: no TWILIO_AUTH_TOKEN is configured to verify them")
    if not twilio_signature.valid(token.get_secret_value(), given, url, form):
        raise Forbidden("the X-Twilio-Signature does not match this request")
