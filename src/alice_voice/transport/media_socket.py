"""A session over a WebSocket: audio and messages in, paced audio and events out, in one `Dialect`.

The socket's reader hands the dialect every message; what it makes of one (audio at the socket's rate, a
client message, the start or the end of the stream, an acknowledged mark) is carried out here: audio is
resampled once to the pipeline's 16 kHz and cut into 20 ms frames. A pacer takes one 20 ms frame from the
session's playout every 20 ms (deadlines from the start, so it does not drift) and sends it converted to
the socket's rate; events go out as the dialect writes them. A malformed message gets an `error` event
(or, where the dialect has no events, a log line); past `MAX_BAD_MESSAGES`, or a flood of messages, the
socket is closed with 1008 and the reason. A client that goes away ends the session, and so does one
that sends nothing for `quiet_timeout_s` (it vanished without closing: a client keeps sending audio,
silence included, as Twilio does).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from alice_voice.audio.frames import SPEECH_RATE, WEBRTC_RATE, Framer, Pcm
from alice_voice.audio.pacer import FramePacer
from alice_voice.audio.playout import FrameSource
from alice_voice.audio.resample import SteadyResampler
from alice_voice.clock import Clock, wall_ms
from alice_voice.errors import AliceError, InvalidMessage, ShuttingDown
from alice_voice.logs import session_logger
from alice_voice.metrics import Metrics
from alice_voice.rate_limit import TokenBucket
from alice_voice.transport.lifetime import EndsOnce, Lifetime
from alice_voice.transport.session_transport import SessionWiring, TransportKind

FRAME_S = 0.02
MAX_BAD_MESSAGES = 20
MAX_MESSAGES_PER_S = 250  # 50 audio frames a second, with room for control messages
MESSAGE_BURST = 500  # what may queue up while a session opens (up to OFFER_TIMEOUT_S of audio)
AUDIO_SPEED = 1.5  # audio may come at most this much faster than real time, after a burst of:
AUDIO_BURST_S = 10.0
_CLOSE_S = 3.0
GOING_AWAY = 1001
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
INTERNAL_ERROR = 1011
_SOCKET_LOG = session_logger("alice_voice.socket", "-")  # until the socket has its session


def close_code(error: InvalidMessage | Exception) -> int:
    """A refused session's close code: 1013 when trying later may work, 1011 otherwise."""
    status = getattr(error, "status", 500)
    return TRY_AGAIN_LATER if status == 503 else POLICY_VIOLATION if 400 <= status < 500 else INTERNAL_ERROR


def close_reason(text: str) -> str:
    """A WebSocket close reason: at most 123 bytes of UTF-8, cut at a character."""
    return text.encode()[:123].decode("utf-8", "ignore")


# ---------- what a dialect reads ----------
@dataclass(frozen=True, slots=True)
class AudioIn:
    pcm: Pcm  # at the dialect's rate


@dataclass(frozen=True, slots=True)
class ClientMessage:
    raw: str  # a client message as the DataChannel would carry it (`stop_tts`, `text`)


@dataclass(frozen=True, slots=True)
class StreamStopped:
    reason: str


@dataclass(frozen=True, slots=True)
class MarkPlayed:
    """The far end has played the first `frames` frames of audio the socket sent."""

    frames: int


Inbound = AudioIn | ClientMessage | StreamStopped | MarkPlayed
Outbound = str | bytes


class Dialect(Protocol):
    """One wire format. `rate`: its audio rate. `inbound` raises `InvalidMessage` for what it cannot read."""

    rate: int
    has_events: bool  # it carries our events (else a bad message closes the socket at once)
    confirms_playback: bool  # the far end buffers audio and says what it has played (MarkPlayed)
    details: dict[str, Any]  # what the stream said of itself when it began (Twilio: call and stream ids)

    def inbound(self, message: str | bytes) -> list[Inbound]: ...

    def audio(self, pcm: Pcm) -> list[Outbound]:
        """20 ms of reply audio at `rate` (and whatever goes with it, e.g. a mark)."""
        ...

    def event(self, event: dict[str, Any]) -> list[Outbound]: ...


class SocketEvents:
    """The session's events, written in the socket's dialect; queued until the socket sends them."""

    def __init__(self, dialect: Dialect) -> None:
        self.outbox: asyncio.Queue[Outbound] = asyncio.Queue()
        self.on_message: Callable[[str | bytes], None] = lambda message: None
        self._dialect = dialect

    def send(self, event: dict[str, Any]) -> None:
        for message in self._dialect.event(event):
            self.outbox.put_nowait(message)

    async def drain(self, timeout_s: float = 1.0) -> None:
        """Wait (bounded) until what was sent has been handed to the socket."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.outbox.join()


class MediaSocket(EndsOnce):
    """One session's WebSocket (a `SessionTransport`), accepted, in its `kind` of dialect."""

    def __init__(self, ws: WebSocket, dialect: Dialect, kind: TransportKind, *, clock: Clock, metrics: Metrics,
                 quiet_timeout_s: float = 5.0) -> None:
        self._ws, self._dialect, self.kind = ws, dialect, kind
        self._events = SocketEvents(dialect)
        self._clock, self._metrics = clock, metrics
        self._wiring: SessionWiring | None = None
        self._lifetime = Lifetime("socket", _SOCKET_LOG)
        self.connected = asyncio.Event()
        self.details = dialect.details
        self._in = SteadyResampler(dialect.rate, SPEECH_RATE) if dialect.rate != SPEECH_RATE else None
        self._out = SteadyResampler(WEBRTC_RATE, dialect.rate) if dialect.rate != WEBRTC_RATE else None
        self._framer = Framer(SPEECH_RATE // 50, SPEECH_RATE)
        self._bad = 0
        now = clock.now()
        self._messages = TokenBucket(MAX_MESSAGES_PER_S, MESSAGE_BURST, now)
        self._audio = TokenBucket(AUDIO_SPEED, AUDIO_BURST_S, now)  # in seconds of audio
        self._close: tuple[int, str] = (1000, "session ended")
        self._quiet_timeout_s = quiet_timeout_s

    @property
    def events(self) -> SocketEvents:
        return self._events

    def attach(self, wiring: SessionWiring) -> None:
        self._wiring, self._lifetime.log = wiring, wiring.log
        if self._dialect.confirms_playback:
            wiring.source.confirm_played(0)  # (what was heard is what is confirmed from the first frame on)

    async def connect(self) -> None:
        if self._wiring is None:
            raise RuntimeError("attach() the socket to its session first")
        self.connected.set()
        for coro in (self._read(), self._pace(self._wiring.source), self._send_events()):
            self._lifetime.spawn(coro)

    def refuse(self, error: AliceError) -> None:
        """The close frame `close()` will send: the refusal's code and reason (a live session closed by a
        shutdown is going away, 1001; one refused before it began may try again later, 1013)."""
        code = GOING_AWAY if isinstance(error, ShuttingDown) and self.connected.is_set() else close_code(error)
        self._close = (code, close_reason(error.message))

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CLOSE_S):
                await self._lifetime.stop_tasks()
                if self._ws.application_state is WebSocketState.CONNECTED:  # (our side: not closed yet)
                    with contextlib.suppress(Exception):
                        await self._ws.close(*self._close)
        self._lifetime.end("closed")

    # ---------- in ----------
    async def _read(self) -> None:
        while not self.ended.is_set():
            try:
                async with asyncio.timeout(self._quiet_timeout_s):
                    message = await self._ws.receive()
            except (TimeoutError, WebSocketDisconnect, RuntimeError):  # silent, gone, or already closed
                self._lifetime.end("client gone")
                return
            if message["type"] == "websocket.disconnect":
                self._lifetime.end("client gone")
                return
            data = message.get("text")
            self._take(data if data is not None else message.get("bytes") or b"")

    def _take(self, message: str | bytes) -> None:
        if not self._messages.take(1, self._clock.now()):
            self._refuse("too many messages")
            return
        try:
            items = self._dialect.inbound(message)
        except InvalidMessage as exc:
            self._bad += 1
            self._lifetime.log.info("socket message rejected: %s", exc.message)
            if self._dialect.has_events:
                self._events.send({"type": "error", "t": wall_ms(), "code": exc.code, "message": exc.message})
            if self._bad > MAX_BAD_MESSAGES or not self._dialect.has_events:
                self._refuse(exc.message)
            return
        for item in items:
            match item:
                case AudioIn():
                    self._hear(item.pcm)
                case ClientMessage():
                    self._events.on_message(item.raw)
                case StreamStopped():
                    self._lifetime.end(item.reason)
                case MarkPlayed() if self._wiring is not None:
                    self._wiring.source.confirm_played(item.frames)

    def _hear(self, pcm: Pcm) -> None:
        now = self._clock.now()
        if not self._audio.take(len(pcm) / self._dialect.rate, now):
            self._refuse("audio faster than real time")
            return
        pcm16k = self._in.convert(pcm) if self._in is not None else pcm
        frames = self._framer.push(np.asarray(pcm16k, dtype=np.int16), now)
        self._metrics.audio_frames.labels(stage="received").inc(len(frames))
        if self._wiring is not None:
            for frame in frames:
                self._wiring.deliver_audio(frame)

    def _refuse(self, reason: str) -> None:
        self._close = (POLICY_VIOLATION, close_reason(reason))
        self._lifetime.end(f"refused: {reason}")

    # ---------- out ----------
    async def _pace(self, source: FrameSource) -> None:
        pacer = FramePacer(source, self._clock)
        while True:
            frame = await pacer.next_frame()
            pcm = self._out.convert(frame) if self._out is not None else frame
            for message in self._dialect.audio(np.asarray(pcm, dtype=np.int16)):
                if not await self._send(message):
                    return

    async def _send_events(self) -> None:
        outbox = self._events.outbox
        while True:
            message = await outbox.get()
            sent = await self._send(message)
            outbox.task_done()
            if not sent:
                return

    async def _send(self, message: Outbound) -> bool:
        """False once the socket is gone (the session then ends)."""
        try:
            if isinstance(message, bytes):
                await self._ws.send_bytes(message)
            else:
                await self._ws.send_text(message)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._lifetime.end("client gone")
            return False
        return True


