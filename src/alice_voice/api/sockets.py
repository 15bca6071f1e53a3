"""The WebSocket routes: the plain PCM protocol for programs, and Twilio Media Streams for phone calls
(with the TwiML webhook that connects a call to it). Both open a session like any other: admission, the
store record, control from any process, metrics; the socket is closed with a code and a reason when it
cannot be opened, is refused, or ends."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Literal
from urllib.parse import urlsplit
from xml.etree import ElementTree

from fastapi import APIRouter, Query, Request, Response, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from alice_voice.api.parts import Parts
from alice_voice.api.schemas import ErrorResponse
from alice_voice.config import Settings
from alice_voice.errors import AliceError, Forbidden, InvalidMessage
from alice_voice.gateway import Gateway
from alice_voice.transport import twilio_signature
from alice_voice.transport.media_socket import POLICY_VIOLATION, Dialect, close_code, close_reason
from alice_voice.transport.pcm_dialect import PcmDialect
from alice_voice.transport.phone_line import PhoneLine, TwilioLine
from alice_voice.transport.twilio_dialect import StreamStart, TwilioDialect, read_start
from alice_voice.transport.twilio_signature import TICKET_MAX_AGE_S, call_ticket, valid_ticket

log = logging.getLogger("alice_voice.telephony")

router = APIRouter()
STREAM_PATH = "/api/telephony/twilio/stream"
TICKET = "alice_call"  # the TwiML's per-call ticket, handed back in the stream's start


@router.websocket("/api/voice/ws")
async def pcm_socket(ws: WebSocket, rate: Annotated[int, Query()] = 16_000,
                     mode: Annotated[Literal["agent", "tone"] | None, Query()] = None) -> None:
    """Binary PCM16 frames and JSON messages both ways; the first event, `session.ready`, carries the
    session's token for the HTTP API."""
    await ws.accept()
    origin = ws.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != ws.headers.get("host"):
        # A browser opens WebSockets to any site without CORS: a page elsewhere must not spend our capacity.
        await ws.close(POLICY_VIOLATION, "cross-origin WebSocket refused")
        return
    try:
        dialect = PcmDialect(rate)
    except InvalidMessage as exc:
        await ws.close(POLICY_VIOLATION, close_reason(exc.message))
        return
    await _serve(ws, "websocket", dialect, mode)


@router.post("/api/telephony/twilio/voice/", response_class=Response, include_in_schema=False)
@router.post("/api/telephony/twilio/voice", response_class=Response, tags=["telephony"],
             responses={200: {"content": {"application/xml": {}}, "description": "TwiML"},
                        **{code: {"model": ErrorResponse} for code in (403, 413, 415)}})
async def twilio_voice(request: Request) -> Response:
    """The webhook a Twilio number calls: TwiML that connects the call to this gateway's media stream."""
    settings: Settings = request.app.state.settings
    form = {name: str(value) for name, value in (await request.form()).items()}
    _verify(settings, request.headers.get("x-twilio-signature"), _public(settings, request.url), form)
    stream = ElementTree.Element("Stream", url=_public(settings, request.url.replace(
        scheme="wss" if request.url.scheme == "https" or settings.public_url else "ws", path=STREAM_PATH, query="")))
    for name in ("From", "To", "CallSid"):
        if form.get(name):
            ElementTree.SubElement(stream, "Parameter", name=name, value=form[name])
    if settings.twilio_auth_token is not None:  # the stream's signature is the same for every call: a ticket
        ticket = call_ticket(settings.twilio_auth_token.get_secret_value(), form.get("CallSid", ""), time.time())
        ElementTree.SubElement(stream, "Parameter", name=TICKET, value=ticket)
    connect = ElementTree.Element("Connect")
    connect.append(stream)
    response = ElementTree.Element("Response")
    response.append(connect)
    twiml = ElementTree.tostring(response, encoding="unicode", xml_declaration=True)
    return Response(twiml, media_type="application/xml")


@router.websocket(STREAM_PATH)
async def twilio_stream(ws: WebSocket) -> None:
    """A call's media. Nothing is admitted or counted until its `start` names the call with a valid,
    unused ticket, within `TWILIO_START_TIMEOUT_S` of the handshake."""
    settings: Settings = ws.app.state.settings
    await ws.accept()
    try:
        _verify(settings, ws.headers.get("x-twilio-signature"), _public(settings, ws.url), None)
        start = await read_start(ws, settings.twilio_start_timeout_s, log.info)
        await _claim_ticket(ws.app.state.parts.gateway, settings, start)
    except WebSocketDisconnect:
        return
    except AliceError as exc:  # forged, replayed, malformed or silent: 1008 (1013 if the store is away)
        if ws.application_state is WebSocketState.CONNECTED:
            await ws.close(close_code(exc), close_reason(exc.message))
        return
    dialect = TwilioDialect(start, log.info)
    line = TwilioLine(ws.app.state.parts.twilio, start.call_sid, dialect.played_out)
    await _serve(ws, "twilio", dialect, None, line)


async def _claim_ticket(gateway: Gateway, settings: Settings, start: StreamStart) -> None:
    """The stream's handshake is signed over its URL alone, the same for every call: the ticket the TwiML
    gave this call, brought back in `start`, is what proves the stream is that call's, once."""
    token = settings.twilio_auth_token
    if token is None:
        return  # TWILIO_ALLOW_UNSIGNED: development only
    ticket = start.parameters.get(TICKET)
    if not valid_ticket(token.get_secret_value(), start.call_sid, ticket, time.time()):
        raise Forbidden("the stream is not from a call this gateway answered")
    if not await gateway.store.claim(f"twilio-ticket:{ticket}", TICKET_MAX_AGE_S):
        raise Forbidden("this call's ticket has been used already")


async def _serve(ws: WebSocket, kind: Literal["websocket", "twilio"], dialect: Dialect,
                 mode: Literal["agent", "tone"] | None, line: PhoneLine | None = None) -> None:
    parts: Parts = ws.app.state.parts
    try:
        live, _, _ = await parts.gateway.open(lambda: parts.transports.socket(ws, dialect, kind), mode, line)
    except AliceError as exc:  # refused (1013: at capacity, shutting down) or failed (1011), with the reason
        if ws.application_state is WebSocketState.CONNECTED:  # (a session begun has closed it already)
            await ws.close(close_code(exc), close_reason(exc.message))
        return
    await live.ended.wait()  # the session's own tasks use the socket until it is disposed of


def _public(settings: Settings, url: object) -> str:
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


def _verify(settings: Settings, given: str | None, url: str, form: dict[str, str] | None) -> None:
    token = settings.twilio_auth_token
    if token is None:
        if settings.twilio_allow_unsigned:
            return
        raise Forbidden("Twilio requests are refused: no TWILIO_AUTH_TOKEN is configured to verify them")
    if not twilio_signature.valid(token.get_secret_value(), given, url, form):
        raise Forbidden("the X-Twilio-Signature does not match this request")
