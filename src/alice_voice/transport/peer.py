"""One aiortc peer connection: offer -> answer, the `events` DataChannel, audio in and out, and its end.

The peer reports its end through `ended`: the client closed, ICE failed, it never connected, or it went
quiet: disconnected, or its audio stopped arriving, for longer than `peer_timeout_s` (a client that
vanishes without a goodbye; ICE consent checks alone take ~30 s to notice). The owner then calls
`close()`, which is bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCConfiguration, RTCDataChannel, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from alice_voice.audio.frames import PcmFrame
from alice_voice.clock import Clock
from alice_voice.errors import AliceError, InvalidSdp
from alice_voice.logs import SessionLogger, session_logger
from alice_voice.metrics import Metrics
from alice_voice.transport import jitter
from alice_voice.transport.lifetime import EndsOnce, Lifetime
from alice_voice.transport.session_transport import SessionWiring, TransportKind
from alice_voice.transport.tracks import PacedAudioTrack, read_inbound

_CLOSE_DEADLINE_S = 3.0
_PEER_LOG = session_logger("alice_voice.peer", "-")  # until the peer has its session


class EventChannel:
    """JSON events over the client's `events` DataChannel; events sent before it opens wait, in order."""

    def __init__(self) -> None:
        self.log: SessionLogger = _PEER_LOG
        self._channel: RTCDataChannel | None = None
        self._pending: list[str] = []
        self.on_message: Callable[[str | bytes], None] = lambda message: None

    @property
    def open(self) -> bool:
        return self._channel is not None and self._channel.readyState == "open"

    def attach(self, channel: RTCDataChannel) -> None:
        self._channel = channel
        channel.on("message", lambda message: self.on_message(message))
        if channel.readyState == "open":
            self._drain()
        else:
            channel.on("open", self._drain)

    def send(self, event: dict[str, Any]) -> None:
        text = json.dumps(event, separators=(",", ":"))
        if not self.open:
            self._pending.append(text)
            return
        self._send_now(text)

    async def drain(self, timeout_s: float = 1.0) -> None:
        """Wait (bounded) until what was sent has left, e.g. a last event before closing."""
        channel = self._channel
        if channel is None or channel.readyState != "open" or channel.bufferedAmount == 0:
            return
        emptied = asyncio.Event()
        channel.on("bufferedamountlow", emptied.set)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await emptied.wait()

    def _drain(self) -> None:
        pending, self._pending = self._pending, []
        for text in pending:
            self._send_now(text)

    def _send_now(self, text: str) -> None:
        assert self._channel is not None
        try:
            self._channel.send(text)
        except Exception as exc:  # the transport closed under us; the session is ending anyway
            self.log.debug("event not sent: %s", exc)


def ice_servers(urls: list[str], username: str | None, credential: str | None) -> list[RTCIceServer]:
    """STUN servers as given; TURN servers with their credentials."""
    def server(url: str) -> RTCIceServer:
        if url.startswith(("turn:", "turns:")):
            return RTCIceServer(urls=url, username=username, credential=credential)
        return RTCIceServer(urls=url)

    return [server(url) for url in urls]


class Peer(EndsOnce):
    """The session's RTCPeerConnection and the tasks that read from it (a `SessionTransport`); `answer`
    is its SDP answer to `offer_sdp`, once connected."""

    kind: TransportKind = "webrtc"

    def __init__(self, offer_sdp: str, *, ice_servers: list[RTCIceServer], jitter_mode: jitter.JitterMode,
                 clock: Clock, metrics: Metrics, peer_timeout_s: float, connect_timeout_s: float) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers))
        self.events = EventChannel()
        self.answer = ""
        self.connected = asyncio.Event()
        # (a failed reader is logged; the connection's own state and the media watch say when it has ended)
        self._lifetime = Lifetime("peer", _PEER_LOG, failure_ends=False)
        self._offer_sdp = offer_sdp
        self._clock = clock
        self._wiring: SessionWiring | None = None
        self._outbound: PacedAudioTrack | None = None
        self._metrics = metrics
        self._jitter_mode = jitter_mode
        self._peer_timeout_s = peer_timeout_s
        self.last_media: float | None = None
        self._connect_timeout_s = connect_timeout_s
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    def attach(self, wiring: SessionWiring) -> None:
        self._wiring, self._lifetime.log = wiring, wiring.log
        self.events.log = wiring.log
        self._outbound = PacedAudioTrack(wiring.source, self._clock)

    def refuse(self, error: AliceError) -> None:
        """(A refused offer is told by its HTTP answer.)"""

    async def connect(self) -> None:
        """Apply the client's offer and make our answer SDP (non-trickle: candidates included)."""
        if self._outbound is None:
            raise RuntimeError("attach() the peer to its session first")
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=self._offer_sdp, type="offer"))
        except Exception as exc:  # aiortc raises assorted types on malformed SDP
            raise InvalidSdp(f"malformed SDP offer: {exc or type(exc).__name__}") from None
        audio = [t for t in self.pc.getTransceivers() if t.kind == "audio"]
        if not audio:
            raise InvalidSdp("the offer has no audio m-line")
        for transceiver in audio:
            jitter.install(transceiver.receiver, self._jitter_mode, on_lost=self._count_lost)
        self.pc.addTrack(self._outbound)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self._spawn(self._watch())
        self.answer = str(self.pc.localDescription.sdp)

    async def close(self) -> None:
        """Stop the tasks and the connection, bounded in time; safe to call twice."""
        if self._outbound is not None:
            self._outbound.stop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CLOSE_DEADLINE_S):
                await self._lifetime.stop_tasks()
                await self.pc.close()
        if self.pc.connectionState != "closed":
            self._lifetime.log.warning("peer connection did not close within %.1f s", _CLOSE_DEADLINE_S)
        self._lifetime.end("closed")

    def _spawn(self, coro: Awaitable[None]) -> None:
        self._lifetime.spawn(coro)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label == "events":
            self.events.attach(channel)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(read_inbound(track, self._clock, self._stamp_and_deliver))

    def _stamp_and_deliver(self, frame: PcmFrame) -> None:
        self.last_media = frame.arrival
        self._metrics.audio_frames.labels(stage="received").inc(round(frame.duration_s * 50))
        if self._wiring is not None:
            self._wiring.deliver_audio(frame)

    def _count_lost(self, frames: int) -> None:
        self._metrics.audio_frames.labels(stage="lost").inc(frames)

    def _on_state(self) -> None:
        state = self.pc.connectionState
        self._lifetime.log.debug("connection state %s", state)
        if state == "connected":
            self.connected.set()
        elif state in ("failed", "closed"):
            self._lifetime.end(f"connection {state}")

    async def _watch(self) -> None:
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                await self.connected.wait()
        except TimeoutError:
            self._lifetime.end("ice connect timeout")
            return
        quiet_since: float | None = None
        while not self.ended.is_set():
            await asyncio.sleep(self._peer_timeout_s / 4)
            now = self._clock.now()
            media_stale = self.last_media is not None and now - self.last_media > self._peer_timeout_s
            if self.pc.connectionState == "connected" and not media_stale:
                quiet_since = None
                continue
            quiet_since = quiet_since if quiet_since is not None else now
            if media_stale or now - quiet_since >= self._peer_timeout_s:
                self._lifetime.end("client gone" if media_stale else "disconnected")


