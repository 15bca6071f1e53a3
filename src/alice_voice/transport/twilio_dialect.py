"""Twilio Media Streams (bidirectional `<Connect><Stream>`): JSON text messages both ways, audio as
base64 μ-law at 8 kHz in 20 ms chunks.

In: `connected`, `start` (call and stream ids, custom parameters), `media`, `mark` (a mark we sent has been
played), `dtmf` (a key the caller pressed: it reaches the agent as a typed turn), `stop`. Out: `media`, a
`mark` after every `MARK_EVERY` frames of reply audio (so the played position is known), and `clear` when
a reply is cut, so Twilio drops what it still holds. Twilio takes no events of ours: the rest are not sent.
"""

from __future__ import annotations

import base64
import binascii
import json
import warnings
from collections.abc import Callable
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from alice_voice.audio.frames import Pcm

with warnings.catch_warnings():  # the stdlib's G.711 codec (3.11); audioop-lts is the same module from 3.13
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop
from alice_voice.errors import InvalidMessage
from alice_voice.transport.media_socket import (
    AudioIn,
    ClientMessage,
    Inbound,
    MarkPlayed,
    Outbound,
    StreamStarted,
    StreamStopped,
)

RATE = 8_000
MARK_EVERY = 10  # frames: a mark every 200 ms of reply audio
MAX_PAYLOAD_BYTES = 8_000  # one second of μ-law: Twilio sends 20 ms (160 bytes)


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


class TwilioDialect:
    rate = RATE
    has_events = False
    needs_start = True

    def __init__(self, admit_start: Callable[[str, dict[str, str]], bool] | None = None,
                 log: Callable[[str], None] = lambda line: None) -> None:
        """`admit_start(call_sid, custom parameters)`: whether this stream belongs to a call we answered."""
        self.stream_sid = ""
        self._admit_start = admit_start
        self._log = log
        self._audible = 0  # reply frames sent

    def inbound(self, message: str | bytes) -> list[Inbound]:
        if isinstance(message, bytes):
            raise InvalidMessage("Media Streams messages are JSON text")
        try:
            parsed = _TWILIO.validate_json(message)
        except ValidationError as exc:
            event = _event_name(message)
            if event is not None and event not in _KNOWN:  # one Twilio added later: noted, not fatal
                self._log(f"Media Streams event {event[:40]!r} ignored")
                return []
            raise InvalidMessage(f"not a Media Streams message: {exc.errors()[0]['msg']}") from None
        match parsed:
            case Start():
                admit = self._admit_start
                if admit is not None and not admit(parsed.start.callSid, parsed.start.customParameters):
                    raise InvalidMessage("the stream is not from a call this gateway answered")
                self.stream_sid = parsed.start.streamSid
                return [StreamStarted({"stream_sid": parsed.start.streamSid, "call_sid": parsed.start.callSid,
                                       "parameters": parsed.start.customParameters})]
            case Media():
                self._require_start("media")
                return [AudioIn(_decode(parsed.media.payload))]
            case Mark():
                return [MarkPlayed(parsed.mark.name)]
            case Dtmf():
                self._require_start("dtmf")
                return [ClientMessage(json.dumps({"type": "text", "text": f"Pressed {parsed.dtmf.digit}."}))]
            case Stop():
                return [StreamStopped("call ended")]
        return []  # connected: nothing to do

    def audio(self, pcm: Pcm) -> list[Outbound]:
        if not self.stream_sid or not len(pcm):
            return []
        payload = base64.b64encode(audioop.lin2ulaw(pcm.astype("<i2").tobytes(), 2)).decode()
        out: list[Outbound] = [_json({"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}})]
        if pcm.any():
            self._audible += 1
            if self._audible % MARK_EVERY == 0:
                out.append(_json({"event": "mark", "streamSid": self.stream_sid,
                                  "mark": {"name": f"audio-{self._audible}"}}))
        return out

    def event(self, event: dict[str, Any]) -> list[Outbound]:
        if event.get("type") == "tts.stopped" and event.get("reason") in ("barge_in", "stop_request") \
                and self.stream_sid:
            return [_json({"event": "clear", "streamSid": self.stream_sid})]
        return []

    def _require_start(self, what: str) -> None:
        if not self.stream_sid:
            raise InvalidMessage(f"{what} before start")


_KNOWN = frozenset({"connected", "start", "media", "mark", "dtmf", "stop"})


def _event_name(message: str) -> str | None:
    try:
        parsed = json.loads(message)
    except json.JSONDecodeError:
        return None
    event = parsed.get("event") if isinstance(parsed, dict) else None
    return event if isinstance(event, str) else None


def _decode(payload: str) -> Pcm:
    try:
        ulaw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidMessage("media payload is not base64") from None
    if not ulaw or len(ulaw) > MAX_PAYLOAD_BYTES:
        raise InvalidMessage(f"media payload must be 1 to {MAX_PAYLOAD_BYTES} bytes (got {len(ulaw)})")
    return np.frombuffer(audioop.ulaw2lin(ulaw, 2), dtype="<i2").astype(np.int16)


def _json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))
