"""A SIP call's media as a session transport (and its phone line): G.711 RTP both ways.

In: the reader task takes the socket's packets in order (`ReorderBuffer`), decodes the negotiated law,
resamples once to the pipeline's 16 kHz and cuts 20 ms frames; a telephone-event is a key press, handed
to the session as the `dtmf` message a Twilio key is. Out: the gateway's one pacer takes a 20 ms frame
every tick and sends it as one packet, silence included (comfort silence keeps NATs and the caller's
jitter buffer going), so a reply cut by barge-in stops on the wire at the next packet. Receiver reports go
to the caller's RTCP port every `REPORT_S`. No packet for `quiet_timeout_s` ends the call (the caller
vanished without a BYE), except while it is on hold.

SIP carries no events of ours: the session's events are dropped here, as on Twilio.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from aiortc.rtp import RtcpRrPacket, RtpPacket

from alice_voice.audio.frames import SPEECH_RATE, WEBRTC_RATE, Framer
from alice_voice.audio.g711 import RATE, G711Codec
from alice_voice.audio.pacer import FramePacer
from alice_voice.audio.playout import FrameSource
from alice_voice.audio.resample import SteadyResampler
from alice_voice.clock import Clock
from alice_voice.errors import AliceError
from alice_voice.logs import session_logger
from alice_voice.metrics import Metrics
from alice_voice.tools.call_control import CallEnding, LineAbilities
from alice_voice.transport.lifetime import EndsOnce, Lifetime
from alice_voice.transport.session_transport import SessionWiring, TransportKind
from alice_voice.transport.sip.media_plan import MediaPlan
from alice_voice.transport.sip.rtp_receiver import KeyPresses, ReceptionStats, ReorderBuffer
from alice_voice.transport.sip.rtp_socket import RtpSocket

REPORT_S = 5.0
HEARD_PACKETS = 3  # after the last words left, the caller's jitter buffer plays them within a few packets
_CLOSE_S = 3.0
_SOCKET_LOG = session_logger("alice_voice.sip", "-")


class CallSignalling(Protocol):
    """The call's SIP dialog, as its media needs it."""

    def hang_up(self) -> None:
        """BYE, if the call is still up (safe to call twice)."""
        ...

    async def transfer(self, target: str) -> None:
        """REFER the caller to `target` and wait for the result; raises `ProviderError` if it fails."""
        ...


class SilentEvents:
    """SIP has no channel for our events; the caller's key presses come in as messages."""

    def __init__(self) -> None:
        self.on_message: Callable[[str | bytes], None] = lambda message: None

    def send(self, event: dict[str, Any]) -> None:
        return None

    async def drain(self, timeout_s: float = 1.0) -> None:
        return None


class SipCall(EndsOnce):
    kind: TransportKind = "sip"

    def __init__(self, socket: RtpSocket, plan: MediaPlan, signalling: CallSignalling, *, clock: Clock,
                 metrics: Metrics, quiet_timeout_s: float = 5.0) -> None:
        self._socket, self._plan, self._signalling = socket, plan, signalling
        self._clock, self._metrics = clock, metrics
        self.events = SilentEvents()
        self.connected = asyncio.Event()
        self._lifetime = Lifetime("call media", _SOCKET_LOG)
        self._wiring: SessionWiring | None = None
        self._codec = G711Codec(plan.law)
        self._in = SteadyResampler(RATE, SPEECH_RATE)
        self._out = SteadyResampler(WEBRTC_RATE, RATE)
        self._framer = Framer(SPEECH_RATE // 50, SPEECH_RATE)
        self._reorder, self._keys, self._stats = ReorderBuffer(), KeyPresses(), ReceptionStats()
        self._held = plan.held
        self._ssrc = secrets.randbits(32)
        self._seq, self._timestamp = secrets.randbits(16), secrets.randbits(32)
        self.sdp_version = 1  # our answers' o= version (the next re-INVITE's answer is one higher)
        self._ticks = 0  # frames the pacer has taken (sent, or dropped on hold)
        self._ticked = asyncio.Event()
        self._quiet_timeout_s = quiet_timeout_s
        self._hung_up_by_caller = False

    # ---------- the session transport ----------
    def attach(self, wiring: SessionWiring) -> None:
        self._wiring, self._lifetime.log = wiring, wiring.log

    async def connect(self) -> None:
        if self._wiring is None:
            raise RuntimeError("attach() the call to its session first")
        self.connected.set()
        for coro in (self._receive(), self._receive_rtcp(), self._pace(self._wiring.source), self._report()):
            self._lifetime.spawn(coro)

    def refuse(self, error: AliceError) -> None:
        return None  # a call refused before its answer gets the SIP status (api/sip.py); a live one, a BYE

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CLOSE_S):
                await self._lifetime.stop_tasks()
        if not self._hung_up_by_caller:
            self._signalling.hang_up()
        self._socket.close()
        self._lifetime.end("closed")

    # ---------- what the dialog tells it ----------
    def caller_hung_up(self) -> None:
        self._hung_up_by_caller = True
        self._lifetime.end("caller hung up")

    def media_lost(self, why: str) -> None:
        self._lifetime.end(why)

    @property
    def local_port(self) -> int:
        return self._socket.port

    @property
    def payload_type(self) -> int:
        return self._plan.payload_type

    def renegotiated(self, plan: MediaPlan) -> None:
        """A re-INVITE: on hold (nothing sent, silence expected) or taken off it; media moved elsewhere."""
        if not plan.held and plan.remote != self._plan.remote:
            self._socket.move_to(plan.remote)
        self._held, self._plan = plan.held, plan

    # ---------- the phone line ----------
    @property
    def abilities(self) -> LineAbilities:
        return LineAbilities(transfer=True)

    async def finish(self, ending: CallEnding) -> None:
        """Once the last words are on the wire (and a few packets more): REFER for a transfer; a hang-up is
        the BYE the session's end sends."""
        await self._ticks_later(HEARD_PACKETS)
        if ending.reason == "transferred":
            await self._signalling.transfer(ending.target)

    async def _ticks_later(self, count: int) -> None:
        target = self._ticks + count
        while self._ticks < target and not self.ended.is_set():
            self._ticked.clear()
            await self._ticked.wait()

    # ---------- in ----------
    async def _receive(self) -> None:
        inbox = self._socket.rtp_inbox.queue
        while True:
            try:
                async with asyncio.timeout(None if self._held else self._quiet_timeout_s):
                    data, source = await inbox.get()
            except TimeoutError:
                if self._held:
                    continue
                self._lifetime.end("media timeout")
                return
            if not self._socket.from_caller(source):
                continue  # someone else's packets must not steer or feed the call
            try:
                packet = RtpPacket.parse(data)
            except ValueError:
                continue  # not RTP (a STUN keep-alive, noise): ignored
            self._socket.latch(source)
            self._stats.saw(packet, int(self._clock.now() * RATE))
            for ordered in self._reorder.push(packet):
                self._take(ordered)

    def _take(self, packet: RtpPacket) -> None:
        if packet.payload_type == self._plan.event_payload_type:
            key = self._keys.key(packet)
            if key is not None:
                self.events.on_message(json.dumps({"type": "dtmf", "digit": key}))
            return
        if packet.payload_type != self._plan.payload_type or not packet.payload or self._wiring is None:
            return  # (comfort noise, or a codec not agreed)
        pcm = self._in.convert(self._codec.decode(packet.payload))
        frames = self._framer.push(np.asarray(pcm, dtype=np.int16), self._clock.now())
        self._metrics.audio_frames.labels(stage="received").inc(len(frames))
        for frame in frames:
            self._wiring.deliver_audio(frame)

    async def _receive_rtcp(self) -> None:
        inbox = self._socket.rtcp_inbox.queue
        while True:
            _, source = await inbox.get()  # (its reports are not used; where they come from is)
            if source[0] == self._socket.remote[0]:
                self._socket.latch_rtcp(source)

    # ---------- out ----------
    async def _pace(self, source: FrameSource) -> None:
        pacer = FramePacer(source, self._clock)
        samples, starting = RATE // 50, True  # the first packet, or the first after hold: RTP's marker bit
        while True:
            frame = await pacer.next_frame()
            pcm = self._out.convert(frame)
            self._ticks += 1
            self._ticked.set()
            if self._held:  # (the clock of the stream goes on: the caller's buffer places what follows)
                self._timestamp, starting = (self._timestamp + samples) % (1 << 32), True
                continue
            packet = RtpPacket(payload_type=self._plan.payload_type, marker=int(starting),
                               sequence_number=self._seq, timestamp=self._timestamp, ssrc=self._ssrc,
                               payload=self._codec.encode(pcm))
            self._socket.send_rtp(packet.serialize())
            self._seq, self._timestamp = (self._seq + 1) % 65536, (self._timestamp + samples) % (1 << 32)
            starting = False

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(REPORT_S)
            report = self._stats.report()
            if report is not None:
                self._socket.send_rtcp(bytes(RtcpRrPacket(ssrc=self._ssrc, reports=[report])))

