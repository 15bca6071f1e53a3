"""The WebSocket routes: the plain PCM protocol for programs, and Twilio Media Streams for phone calls
(api/telephony.py has the TwiML webhook that connects a call to it). Both open a session like any other:
admission, the store record, control from any process, metrics; the socket is closed with a code and a
reason when it cannot be opened, is refused, or ends."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from alice_voice.api.parts import Parts
from alice_voice.api.telephony import OUTBOUND, STREAM_PATH, TICKET, VOICEMAIL, public_url, verify_twilio
from alice_voice.config import Settings
from alice_voice.conversation.session.ports import CallOpening
from alice_voice.errors import AliceError, Forbidden, InvalidMessage
from alice_voice.gateway import Gateway, LiveSession
from alice_voice.transport.media_socket import POLICY_VIOLATION, Dialect, close_code, close_reason
from alice_voice.transport.pcm_dialect import PcmDialect
from alice_voice.transport.phone_line import PhoneLine, TwilioLine
from alice_voice.transport.twilio_dialect import StreamStart, TwilioDialect, read_start
from alice_voice.transport.twilio_signature import TICKET_MAX_AGE_S, valid_ticket

log = logging.getLogger("alice_voice.telephony")

router = APIRouter()


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


@router.websocket(STREAM_PATH)
async def twilio_stream(ws: WebSocket) -> None:
    """A call's media. Nothing is admitted or counted until its `start` names the call with a valid,
    unused ticket, within `TWILIO_START_TIMEOUT_S` of the handshake."""
    settings: Settings = ws.app.state.settings
    await ws.accept()
    try:
        verify_twilio(settings, ws.headers.get("x-twilio-signature"), public_url(settings, ws.url), None)
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
    await _serve(ws, "twilio", dialect, None, line, lambda live: _outbound_answered(ws.app.state.parts, live, start))


async def _outbound_answered(parts: Parts, live: LiveSession, start: StreamStart) -> None:
    """A call this gateway placed: a person hears its greeting; a machine, the voicemail, then it hangs up."""
    call_id = start.parameters.get(OUTBOUND)
    if call_id is None:
        return
    placed = await parts.gateway.store.get_call(call_id)
    if placed is None or placed.call_sid != start.call_sid:
        live.log.warning("the stream names outbound call %r, which is not this call's", call_id[:64])
        return
    await parts.gateway.store.put_call(placed.model_copy(update={"session_id": live.id}))
    live.writer.update(call_id=call_id)
    answered_by: Literal["human", "machine", "unknown"] = "unknown"  # Twilio could not tell, or was not asked
    if start.parameters.get(VOICEMAIL) == "1":
        answered_by = "machine"
    elif placed.answered_by == "human":
        answered_by = "human"
    live.conversation.begin_call(CallOpening(answered_by, placed.voicemail, placed.greeting or "",
                                             placed.brief or ""))


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
                 mode: Literal["agent", "tone"] | None, line: PhoneLine | None = None,
                 opened: Callable[[LiveSession], Awaitable[None]] | None = None) -> None:
    parts: Parts = ws.app.state.parts
    try:
        live, _, _ = await parts.gateway.open(lambda: parts.transports.socket(ws, dialect, kind), mode, line)
    except AliceError as exc:  # refused (1013: at capacity, shutting down) or failed (1011), with the reason
        if ws.application_state is WebSocketState.CONNECTED:  # (a session begun has closed it already)
            await ws.close(close_code(exc), close_reason(exc.message))
        return
    if opened is not None:
        try:
            await opened(live)
        except AliceError as exc:  # (the store away): the call goes on, as an inbound one would
            live.log.warning("the call's opening was not looked up: %s", exc.message)
    await live.ended.wait()  # the session's own tasks use the socket until it is disposed of
