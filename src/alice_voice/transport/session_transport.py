"""What the gateway needs of any transport a session runs over (WebRTC, a WebSocket): events out to the
client and its messages in, the session's audio both ways, whether it connected, when and why it ended,
how to tell the client a refusal, and a bounded close.

A transport is built by whoever accepted the connection (the offer's route, the socket's route), then
handed to `Gateway.open`, which gives it its session (`attach`), connects it and runs it: one path for
every kind of transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from alice_voice.audio.frames import PcmFrame
from alice_voice.audio.playout import FrameSource
from alice_voice.errors import AliceError
from alice_voice.logs import SessionLogger

TransportKind = Literal["webrtc", "websocket", "twilio", "sip"]


class EventSink(Protocol):
    """JSON events to the client (queued until the transport can send them) and its messages back."""

    on_message: Callable[[str | bytes], None]

    def send(self, event: dict[str, Any]) -> None: ...

    async def drain(self, timeout_s: float = 1.0) -> None: ...


@dataclass(frozen=True, slots=True)
class SessionWiring:
    """What a transport carries for its session: the audio it plays (pulled every 20 ms), where the
    caller's audio goes, and the session's log."""

    source: FrameSource
    deliver_audio: Callable[[PcmFrame], None]
    log: SessionLogger


class SessionTransport(Protocol):
    @property
    def kind(self) -> TransportKind: ...

    @property
    def events(self) -> EventSink: ...

    @property
    def connected(self) -> asyncio.Event: ...

    @property
    def ended(self) -> asyncio.Event: ...

    @property
    def end_reason(self) -> str: ...

    def attach(self, wiring: SessionWiring) -> None:
        """Carry this session (before `connect`)."""
        ...

    async def connect(self) -> None:
        """Set the connection up (an offer's answer; a socket's reader and pacer); the caller bounds it."""
        ...

    def refuse(self, error: AliceError) -> None:
        """Why the session is refused or ended, as the client is told it when `close()` comes (a close code
        and reason on a socket; nothing on WebRTC, whose refusal is the HTTP answer)."""
        ...

    async def close(self) -> None:
        """Stop its tasks and the connection, bounded in time; safe to call twice."""
        ...
