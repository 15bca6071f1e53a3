"""Twilio Media Streams (bidirectional `<Connect><Stream>`): JSON text messages both ways, audio as
base64 μ-law at 8 kHz in 20 ms chunks.

In: `connected`, `start` (call and stream ids, custom parameters), `media`, `mark` (a mark we sent has been
played), `dtmf` (a key the caller pressed: to a digit collection, else a typed turn), `stop`. Out: `media`, a
`mark` after every frame of reply audio, named by the frame's number (Twilio echoes it when the frame has
played: the session learns what the caller heard, to the frame), and `clear` the moment a reply pauses or
is cut, so Twilio drops what it still holds; a resumed reply is sent again from the last frame confirmed.
Twilio also echoes every mark a `clear` dropped, unplayed: a mark of a frame sent before the last clear that
arrives after it is not taken as played. Twilio takes no events of ours: the rest are not sent.

The stream is not a session until its `start` arrives (`read_start`, under a short deadline): the
handshake's signature is the same for every call, so only the start's ticket says which call it is, and
nothing is admitted or counted before it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from alice_voice.audio.frames import Pcm
from alice_voice.audio.g711 import G711Codec
from alice_voice.errors import InvalidMessage
from alice_voice.transport.media_socket import (
    AudioIn,
    ClientMessage,
    Inbound,
    MarkPlayed,
    Outbound,
    StreamStopped,
)

RATE = 8_000
MAX_PAYLOAD_BYTES = 8_000  # one second of μ-law: Twilio sends 20 ms (160 bytes)
MAX_MESSAGE_CHARS = 16_384  # a media message with the largest payload, base64, and its envelope
MAX_MESSAGES_BEFORE_START = 5  # Twilio sends `connected`, then `start`


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Start(_Message):
    streamSid: str = Field(min_length=1)
    callSid: str = ""
    accountSid: str = ""
    customParameters: dict[str, str] = Field(default_factory=dict)


class Connected(_Message):
    event: Literal["connected"]


class Start(_Message):
    event: Literal["start"]
    start: _Start


class _Media(_Message):
    payload: str
    track: str = "inbound"


class Media(_Message):
    event: Literal["media"]
    media: _Media


class _Mark(_Message):
    name: str


class Mark(_Message):
    event: Literal["mark"]
    mark: _Mark


class _Dtmf(_Message):
    digit: str = Field(pattern=r"^[0-9*#A-D]$")


class Dtmf(_Message):
    event: Literal["dtmf"]
    dtmf: _Dtmf


class Stop(_Message):
    event: Literal["stop"]


_TWILIO: TypeAdapter[Connected | Start | Media | Mark | Dtmf | Stop] = TypeAdapter(
    Annotated[Connected | Start | Media | Mark | Dtmf | Stop, Field(discriminator="event")])


@dataclass(frozen=True, slots=True)
class StreamStart:
    """What a stream's `start` says: its ids and the TwiML's custom parameters."""

    stream_sid: str
    call_sid: str
    parameters: dict[str, str] = field(default_factory=dict)


async def read_start(ws: WebSocket, timeout_s: float, log: Callable[[str], None] = lambda line: None) -> StreamStart:
    """Read a new stream up to its `start`, within `timeout_s` of the handshake. Raises `InvalidMessage` for
    anything else before it (media, a malformed message, too many messages, no start in time), and
    `WebSocketDisconnect` if Twilio hangs up first."""
    try:
        async with asyncio.timeout(timeout_s):
            for _ in range(MAX_MESSAGES_BEFORE_START):
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    raise WebSocketDisconnect(message.get("code", 1000))
                parsed = _parse(message.get("text") if message.get("text") is not None else message.get("bytes"), log)
                if isinstance(parsed, Start):
                    return StreamStart(parsed.start.streamSid, parsed.start.callSid, parsed.start.customParameters)
                if parsed is not None and not isinstance(parsed, Connected):
                    raise InvalidMessage(f"{parsed.event} before start")
    except TimeoutError:
        raise InvalidMessage(f"no start within {timeout_s:g} s of the handshake") from None
    raise InvalidMessage(f"no start in the first {MAX_MESSAGES_BEFORE_START} messages")


class TwilioDialect:
    rate = RATE
    has_events = False
    confirms_playback = True

    def __init__(self, start: StreamStart, log: Callable[[str], None] = lambda line: None) -> None:
        self.stream_sid = start.stream_sid
        self.details: dict[str, Any] = {"stream_sid": start.stream_sid, "call_sid": start.call_sid,
                                        "parameters": start.parameters}
        self._log = log
        self._codec = G711Codec("mulaw", RATE)
        self._frames = 0  # frames sent (their numbers name the marks)
        self._cleared_through = 0  # frames sent when the last `clear` went out
        self._last_sound = 0  # the last frame sent with sound in it
        self._heard_all = asyncio.Event()  # every frame with sound sent has been played (or cleared)
        self._heard_all.set()

    def inbound(self, message: str | bytes) -> list[Inbound]:
        parsed = _parse(message, self._log)
        match parsed:
            case Start():
                raise InvalidMessage("a second start")
            case Media():
                return [AudioIn(self._codec.decode(_payload(parsed.media.payload)))]
            case Mark():
                frame = int(parsed.mark.name) if parsed.mark.name.isascii() and parsed.mark.name.isdigit() else 0
                if frame <= self._cleared_through:  # not ours, or dropped by a clear (echoed unplayed)
                    return []
                if frame >= self._last_sound:
                    self._heard_all.set()
                return [MarkPlayed(frame)]
            case Dtmf():
                return [ClientMessage(json.dumps({"type": "dtmf", "digit": parsed.dtmf.digit}))]
            case Stop():
                return [StreamStopped("call ended")]
        return []  # connected, or an event this gateway does not know

    def audio(self, pcm: Pcm) -> list[Outbound]:
        self._frames += 1
        payload = base64.b64encode(self._codec.encode(pcm)).decode()
        out: list[Outbound] = [_json({"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}})]
        if pcm.any():
            self._last_sound = self._frames
            self._heard_all.clear()
            out.append(_json({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": str(self._frames)}}))
        return out

    def event(self, event: dict[str, Any]) -> list[Outbound]:
        paused = event.get("type") == "turn.state" and event.get("state") == "paused"
        cut = event.get("type") == "tts.stopped" and event.get("reason") in ("barge_in", "stop_request")
        if paused or cut:
            self._cleared_through = self._frames
            self._heard_all.set()
            return [_json({"event": "clear", "streamSid": self.stream_sid})]
        return []


    async def played_out(self, timeout_s: float) -> bool:
        """Wait (bounded) until Twilio has played every frame with sound sent; False if it did not in time."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._heard_all.wait()
        except TimeoutError:
            return False
        return True


_KNOWN = frozenset({"connected", "start", "media", "mark", "dtmf", "stop"})
_Event = Connected | Start | Media | Mark | Dtmf | Stop


def _parse(message: str | bytes | None, log: Callable[[str], None]) -> _Event | None:
    """One Media Streams message, checked for size before it is parsed; None for an event type this
    gateway does not know (Twilio may add some: it is logged, not fatal)."""
    if not isinstance(message, str):
        raise InvalidMessage("Media Streams messages are JSON text")
    if len(message) > MAX_MESSAGE_CHARS:
        raise InvalidMessage(f"message too large ({len(message)} characters, limit {MAX_MESSAGE_CHARS})")
    try:
        return _TWILIO.validate_json(message)
    except ValidationError as exc:
        event = _event_name(message)
        if event is not None and event not in _KNOWN:
            log(f"Media Streams event {event[:40]!r} ignored")
            return None
        raise InvalidMessage(f"not a Media Streams message: {exc.errors()[0]['msg']}") from None


def _event_name(message: str) -> str | None:
    try:
        parsed = json.loads(message)
    except (json.JSONDecodeError, RecursionError):
        return None
    event = parsed.get("event") if isinstance(parsed, dict) else None
    return event if isinstance(event, str) else None


def _payload(payload: str) -> bytes:
    try:
        ulaw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidMessage("media payload is not base64") from None
    if not ulaw or len(ulaw) > MAX_PAYLOAD_BYTES:
        raise InvalidMessage(f"media payload must be 1 to {MAX_PAYLOAD_BYTES} bytes (got {len(ulaw)})")
    return ulaw


def _json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))
