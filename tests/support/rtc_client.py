"""A reference WebRTC client (aiortc) for tests and benchmarks: speaks PCM, hears audio, reads events.

It timestamps everything on its own monotonic clock so latency can be measured from the client's side.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import soxr
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from alice_voice.audio.frames import WEBRTC_FRAME_SAMPLES, WEBRTC_RATE, Pcm
from alice_voice.clock import MonotonicClock
from alice_voice.transport import jitter
from alice_voice.transport.tracks import PacedAudioTrack


class MicSource:
    """Frames queued to be 'spoken' into the call; silence when the queue is empty.

    With an echo path set, what the client hears comes back into its microphone after `delay` frames,
    scaled by `gain` (a speakerphone without echo cancellation), mixed with whatever it says.
    """

    def __init__(self) -> None:
        self.frames: deque[Pcm] = deque()
        self.silence = np.zeros(WEBRTC_FRAME_SAMPLES, dtype=np.int16)
        self.sent_speech: list[float] = []  # client time each queued frame left
        self.frames_sent = 0  # every 20 ms frame, silence included
        self.drained = asyncio.Event()
        self.drained.set()
        self.echo_gain = 0.0
        self.echo_noise_rms = 0.0
        self._echo: deque[Pcm] = deque()
        self._rng = np.random.default_rng(7)
        self.playable = asyncio.Event()  # (a microphone is never idle: it sends silence on its own tick)

    def confirm_played(self, frames: int) -> None:
        """(Nothing to take back: what a microphone sent was said.)"""

    def loop_back(self, delay_ms: int, gain: float, noise_rms: float = 0.0) -> None:
        self.echo_gain, self.echo_noise_rms = gain, noise_rms
        self._echo = deque([self.silence] * (delay_ms // 20))

    def heard(self, pcm48: Pcm) -> None:
        if self.echo_gain:
            self._echo.append(pcm48)

    def _echo_frame(self) -> np.ndarray:
        if not self.echo_gain:
            return np.zeros(WEBRTC_FRAME_SAMPLES)
        frame = self._echo.popleft().astype(np.float64) if self._echo else np.zeros(WEBRTC_FRAME_SAMPLES)
        noise = self._rng.normal(0, self.echo_noise_rms, WEBRTC_FRAME_SAMPLES) if self.echo_noise_rms else 0.0
        return frame * self.echo_gain + noise

    def enqueue(self, pcm48: Pcm) -> None:
        n = WEBRTC_FRAME_SAMPLES
        padded = np.pad(pcm48, (0, (-len(pcm48)) % n))
        self.frames.extend(padded[i:i + n] for i in range(0, len(padded), n))
        self.drained.clear()

    def next_frame(self, sent_at: float) -> Pcm:
        self.frames_sent += 1
        echo = self._echo_frame()
        if not self.frames:
            self.drained.set()
            return np.clip(echo, -32768, 32767).astype(np.int16) if self.echo_gain else self.silence
        self.sent_speech.append(sent_at)
        voice = self.frames.popleft()
        return np.clip(voice + echo, -32768, 32767).astype(np.int16) if self.echo_gain else voice


@dataclass
class Heard:
    t: float
    pcm: Pcm


@dataclass
class RtcClient:
    base_url: str
    mode: str | None = None
    send_audio: bool = True
    events: list[dict[str, Any]] = field(default_factory=list)
    heard: list[Heard] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    session_id: str = ""
    token: str = ""

    def __post_init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.mic = MicSource()
        self._event_arrived = asyncio.Condition()
        self._heard_more = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        self.channel = self.pc.createDataChannel("events")
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)
        if self.send_audio:
            self.pc.addTrack(PacedAudioTrack(self.mic, MonotonicClock()))
        else:
            self.pc.addTransceiver("audio", direction="recvonly")

    async def __aenter__(self) -> RtcClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def reply_text(self, after: int = 0) -> str:
        """The agent's text streamed since event index `after`."""
        return "".join(e["delta"] for e in self.events[after:] if e["type"] == "agent.text")

    async def connect(self, timeout: float = 10.0) -> dict[str, Any]:
        t0 = time.monotonic()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        body: dict[str, Any] = {"sdp": self.pc.localDescription.sdp, "type": "offer"}
        if self.mode:
            body["mode"] = self.mode
        async with httpx.AsyncClient(base_url=self.base_url, timeout=timeout) as http:  # not timed: TLS setup
            t1 = time.monotonic()
            response = await http.post("/api/webrtc/offer", json=body)
            t2 = time.monotonic()
        response.raise_for_status()
        answer = response.json()
        server_timing = response.headers.get("server-timing", "")
        if "dur=" in server_timing:
            self.timings["server_offer_ms"] = float(server_timing.split("dur=")[1].split(",")[0])
        self.session_id, self.token = answer["session_id"], answer["token"]
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "audio":
                jitter.install(transceiver.receiver, "immediate")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        connected = asyncio.Event()
        self.pc.on("connectionstatechange",
                   lambda: connected.set() if self.pc.connectionState == "connected" else None)
        async with asyncio.timeout(timeout):
            await connected.wait()
            t3 = time.monotonic()
            await self.wait_event("session.ready", timeout)
        self.timings.update(offer_create_ms=(t1 - t0) * 1000, offer_rtt_ms=(t2 - t1) * 1000,
                            ice_connected_ms=(t3 - t2) * 1000, ready_ms=(time.monotonic() - t0) * 1000)
        return answer

    def say(self, pcm: Pcm, rate: int = 16000) -> None:
        """Queue speech to be sent in real time (20 ms a frame)."""
        self.mic.enqueue(soxr.resample(pcm, rate, WEBRTC_RATE).astype(np.int16) if rate != WEBRTC_RATE else pcm)

    async def finish_speaking(self, timeout: float = 60.0) -> float:
        """Wait until all queued speech left; returns the client time the last speech frame was sent."""
        async with asyncio.timeout(timeout):
            await self.mic.drained.wait()
        return self.mic.sent_speech[-1] if self.mic.sent_speech else time.monotonic()

    def send(self, message: dict[str, Any] | str) -> None:
        self.channel.send(message if isinstance(message, str) else json.dumps(message))

    async def wait_event(self, type_: str, timeout: float = 10.0, after: int = 0, **match: Any) -> dict[str, Any]:
        """The first event of `type_` at index >= `after` whose fields equal `match`."""
        def found() -> dict[str, Any] | None:
            for event in self.events[after:]:
                if event.get("type") == type_ and all(event.get(k) == v for k, v in match.items()):
                    return event
            return None

        async with asyncio.timeout(timeout), self._event_arrived:
            await self._event_arrived.wait_for(lambda: found() is not None)
        result = found()
        assert result is not None
        return result

    def heard_audio(self, since: float = 0.0) -> Pcm:
        chunks = [h.pcm for h in self.heard if h.t >= since]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            self.channel.close()
        await self.pc.close()

    def _on_message(self, message: str | bytes) -> None:
        event = json.loads(message)
        event["client_t"] = time.monotonic()
        self.events.append(event)
        self._tasks.append(asyncio.ensure_future(self._notify(self._event_arrived)))

    @staticmethod
    async def _notify(condition: asyncio.Condition) -> None:
        async with condition:
            condition.notify_all()

    async def wait_heard(self, frames: int, timeout: float = 10.0) -> None:
        """Wait until at least `frames` 20 ms frames have been received."""
        async with asyncio.timeout(timeout), self._heard_more:
            await self._heard_more.wait_for(lambda: len(self.heard) >= frames)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._tasks.append(asyncio.ensure_future(self._listen(track)))

    async def _listen(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            stereo = frame.to_ndarray().reshape(-1, len(frame.layout.channels))
            pcm = stereo.mean(axis=1).astype(np.int16)
            self.heard.append(Heard(time.monotonic(), pcm))
            self.mic.heard(pcm)
            await self._notify(self._heard_more)
