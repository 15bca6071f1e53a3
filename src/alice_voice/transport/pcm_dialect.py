"""The plain PCM WebSocket protocol, for programs: binary frames of 16-bit little-endian mono PCM both
ways at the rate the client asked for (`?rate=`, 16 kHz by default), and JSON text messages: the same
events as the DataChannel out, the same client messages (`stop_tts`, `text`) in."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from alice_voice.audio.frames import Pcm
from alice_voice.errors import InvalidMessage
from alice_voice.transport.media_socket import AudioIn, ClientMessage, Inbound, Outbound

RATES = (8_000, 16_000, 24_000, 48_000)
MAX_AUDIO_BYTES = 64_000  # one message: up to a second at 32 kHz... or 2 s at 16 kHz
MAX_TEXT_CHARS = 8_192  # a client message is a few words: `{"type": "text", "text": <up to 2000 characters>}`


class PcmDialect:
    has_events = True
    confirms_playback = False

    def __init__(self, rate: int = 16_000) -> None:
        if rate not in RATES:
            raise InvalidMessage(f"rate must be one of {', '.join(map(str, RATES))} (got {rate})")
        self.rate = rate
        self.details: dict[str, Any] = {}

    def inbound(self, message: str | bytes) -> list[Inbound]:
        if isinstance(message, str):
            # Its size is checked before it is parsed, and an oversized one counts against the socket like any
            # other bad message: parsing megabytes of JSON would stall every call of the process.
            if len(message) > MAX_TEXT_CHARS:
                raise InvalidMessage(f"text message too large ({len(message)} characters, limit {MAX_TEXT_CHARS})")
            try:  # the gateway validates it as it does the DataChannel's; garbage counts against the socket
                parsed = json.loads(message)
            except json.JSONDecodeError:
                raise InvalidMessage("a text message must be JSON") from None
            except RecursionError:
                raise InvalidMessage("a text message is nested too deeply") from None
            if not isinstance(parsed, dict) or not isinstance(parsed.get("type"), str):
                raise InvalidMessage('a text message must be a JSON object with a "type"')
            return [ClientMessage(message)]
        if not message or len(message) % 2 or len(message) > MAX_AUDIO_BYTES:
            raise InvalidMessage(f"audio must be whole 16-bit samples, 2 to {MAX_AUDIO_BYTES} bytes "
                                 f"(got {len(message)})")
        return [AudioIn(np.frombuffer(message, dtype="<i2").astype(np.int16))]

    def audio(self, pcm: Pcm) -> list[Outbound]:
        return [pcm.astype("<i2").tobytes()] if len(pcm) else []

    def event(self, event: dict[str, Any]) -> list[Outbound]:
        return [json.dumps(event, separators=(",", ":"))]
