"""Real WebSocket clients of the gateway: a program speaking the plain PCM protocol, and a fake Twilio
written against the published Media Streams message formats (connected, start, media, mark, dtmf, stop;
it buffers what it is sent and plays it in real time, echoes a mark when playback reaches it, and on
`clear` drops its buffer and echoes the marks it dropped, as Twilio's documentation says)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr
from websockets.asyncio.client import ClientConnection, connect

from alice_voice.audio.g711 import G711Codec

FRAME_S = 0.02
LOUD_RMS = 300.0  # a frame of the caller's speech (synthesized speech is far louder; silence is ~0)


def _rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0


@dataclass
class SocketClient:
    """Reads everything the gateway sends into `events` (JSON) and `audio` (PCM at `rate`)."""

    ws: ClientConnection
    rate: int
    events: list[dict[str, Any]] = field(default_factory=list)
    audio: list[np.ndarray] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    closed: tuple[int | None, str] | None = None
    speech: asyncio.Queue[np.ndarray] = field(default_factory=asyncio.Queue)  # 20 ms frames at `rate`
    streaming: bool = False  # the microphone runs: speech when there is some, silence otherwise
    sent_loud: list[float] = field(default_factory=list)  # when each loud frame of speech left (monotonic)
    heard: list[tuple[float, float]] = field(default_factory=list)  # (arrival, rms) of each audio chunk

    def __post_init__(self) -> None:
        """(A subclass's state beyond these fields.)"""

    async def microphone(self) -> None:
        """Like a real client (and Twilio), audio goes out every 20 ms, silence when nobody speaks."""
        loop = asyncio.get_running_loop()
        start, sent, silence = loop.time(), 0, np.zeros(self.rate // 50, np.int16)
        while True:
            if self.streaming:
                frame = silence if self.speech.empty() else self.speech.get_nowait()
                await self.send_audio(frame, sent)
                if frame is not silence and _rms(frame) > LOUD_RMS:
                    self.sent_loud.append(loop.time())
                if frame is not silence:
                    self.speech.task_done()
            sent += 1
            await asyncio.sleep(max(0.0, start + sent * FRAME_S - loop.time()))  # real-time pacing

    async def send_audio(self, frame: np.ndarray, n: int) -> None:
        raise NotImplementedError

    async def say(self, pcm16k: np.ndarray, tail_s: float = 1.5) -> None:
        """Speak (at the client's rate, 20 ms frames, in real time), followed by `tail_s` of silence."""
        pcm = soxr.resample(pcm16k, 16_000, self.rate).astype(np.int16) if self.rate != 16_000 else pcm16k
        audio = np.concatenate([pcm, np.zeros(int(tail_s * self.rate), np.int16)])
        step = self.rate // 50
        for i in range(0, len(audio) - step + 1, step):
            self.speech.put_nowait(audio[i:i + step])
        self.streaming = True
        await self.speech.join()

    async def read(self) -> None:
        try:
            async for message in self.ws:
                self.take(message)
                async with self.changed:
                    self.changed.notify_all()
        finally:
            self.closed = (self.ws.close_code, self.ws.close_reason or "")
            async with self.changed:
                self.changed.notify_all()

    def hear(self, chunk: np.ndarray) -> None:
        self.audio.append(chunk)
        self.heard.append((asyncio.get_running_loop().time(), _rms(chunk)))

    def take(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            self.hear(np.frombuffer(message, dtype="<i2"))
        else:
            self.events.append(json.loads(message))

    async def wait_for(self, found: Any, timeout: float = 30.0) -> Any:
        async with asyncio.timeout(timeout), self.changed:
            while (result := found()) is None:
                if self.closed is not None:
                    raise AssertionError(f"the socket closed: {self.closed}")
                await self.changed.wait()
            return result

    async def wait_event(self, type_: str, after: int = 0, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((e for e in self.events[after:] if e.get("type") == type_
                         and all(e.get(k) == v for k, v in match.items())), None)
        result: dict[str, Any] = await self.wait_for(found, timeout)
        return result

    async def wait_closed(self, timeout: float = 10.0) -> tuple[int | None, str]:
        async with asyncio.timeout(timeout), self.changed:
            while self.closed is None:
                await self.changed.wait()
        return self.closed

    def reply_text(self, after: int = 0) -> str:
        return "".join(e["delta"] for e in self.events[after:] if e.get("type") == "agent.text")


class PcmClient(SocketClient):
    async def send_audio(self, frame: np.ndarray, n: int) -> None:
        with contextlib.suppress(Exception):
            await self.ws.send(frame.astype("<i2").tobytes())

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))


class FakeTwilio(SocketClient):
    """Twilio's side of a bidirectional Media Stream. What it is sent waits in its buffer and plays in real
    time, `LEAD_S` after it arrived at the earliest (the network and Twilio's own buffering); `audio` is what
    was played, `dropped` what a `clear` threw away unplayed."""

    stream_sid = "MZ00000000000000000000000000000001"
    call_sid = "CA00000000000000000000000000000001"
    LEAD_S = 0.1
    marks_acknowledged: int = 0
    cleared: int = 0
    on_clear: Any = None  # called when a clear arrives (a test reads the gateway's state at that moment)

    def __post_init__(self) -> None:
        self.buffer: deque[tuple[float, str, Any]] = deque()  # (arrival, "media" | "mark", pcm | mark)
        self.codec = G711Codec("mulaw")  # ffmpeg's G.711, as a telephone network's
        self.dropped: list[np.ndarray] = []

    def take(self, message: str | bytes) -> None:
        assert isinstance(message, str), "Media Streams messages are JSON text"
        event = json.loads(message)
        assert event.get("streamSid") == self.stream_sid, event
        self.events.append(event)
        now = asyncio.get_running_loop().time()
        if event["event"] == "media":
            ulaw = base64.b64decode(event["media"]["payload"])
            self.buffer.append((now, "media", self.codec.decode(ulaw)))
        elif event["event"] == "mark":
            self.buffer.append((now, "mark", event["mark"]))
        elif event["event"] == "clear":
            self.cleared += 1
            if self.on_clear is not None:
                self.on_clear()
            for _, kind, item in self.buffer:
                if kind == "mark":
                    self._echo(item)  # dropped unplayed, echoed all the same
                else:
                    self.dropped.append(item)
            self.buffer.clear()

    async def playback(self) -> None:
        """One 20 ms frame a tick, from the buffer, and the marks that follow it as playback reaches them."""
        loop = asyncio.get_running_loop()
        start, ticks = loop.time(), 0
        while True:
            now = loop.time()
            while self.buffer and self.buffer[0][1] == "mark":
                self._echo(self.buffer.popleft()[2])
            if self.buffer and self.buffer[0][0] + self.LEAD_S <= now:
                self.hear(self.buffer.popleft()[2])
                async with self.changed:
                    self.changed.notify_all()
            ticks += 1
            await asyncio.sleep(max(0.0, start + ticks * FRAME_S - loop.time()))

    def _echo(self, mark: dict[str, Any]) -> None:
        self.marks_acknowledged += 1
        asyncio.get_running_loop().create_task(self.send({"event": "mark", "streamSid": self.stream_sid,
                                                          "mark": mark}))

    async def send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            await self.ws.send(json.dumps(message))

    async def start(self, parameters: dict[str, str] | None = None) -> None:
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self.send({"event": "start", "sequenceNumber": "1", "streamSid": self.stream_sid, "start": {
            "accountSid": "AC0", "streamSid": self.stream_sid, "callSid": self.call_sid, "tracks": ["inbound"],
            "customParameters": parameters or {},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
        self.streaming = True

    async def send_audio(self, frame: np.ndarray, n: int) -> None:
        """The caller's audio: μ-law 8 kHz `media` messages, 20 ms each."""
        payload = base64.b64encode(self.codec.encode(frame)).decode()
        await self.send({"event": "media", "sequenceNumber": str(n + 2), "streamSid": self.stream_sid,
                         "media": {"track": "inbound", "chunk": str(n + 1), "timestamp": str(n * 20),
                                   "payload": payload}})

    async def dtmf(self, digit: str) -> None:
        await self.send({"event": "dtmf", "streamSid": self.stream_sid, "sequenceNumber": "900",
                         "dtmf": {"track": "inbound_track", "digit": digit}})

    async def stop(self) -> None:
        await self.send({"event": "stop", "sequenceNumber": "999", "streamSid": self.stream_sid,
                         "stop": {"accountSid": "AC0", "callSid": self.call_sid}})

    def audible_ms(self) -> int:
        return 20 * sum(1 for chunk in self.audio if np.abs(chunk).max() > 500)


@contextlib.asynccontextmanager
async def opened(client_type: type[SocketClient], url: str, rate: int,
                 headers: dict[str, str] | None = None) -> AsyncIterator[Any]:
    async with connect(url, additional_headers=headers, max_size=2**20) as ws:
        client = client_type(ws, rate)
        client.streaming = client_type is PcmClient  # Twilio's media flows once the stream has started
        tasks = {asyncio.create_task(client.read()), asyncio.create_task(client.microphone())}
        if isinstance(client, FakeTwilio):
            tasks.add(asyncio.create_task(client.playback()))
        try:
            yield client
        finally:
            await ws.close()
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=5)
