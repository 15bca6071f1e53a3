"""A SIP call's media over real UDP sockets on 127.0.0.1: who it answers to, keys, silence on the wire,
its end (media timeout, BYE on close unless the caller hung up)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio
from aiortc.rtp import RtpPacket

from alice_voice.audio.frames import WEBRTC_FRAME_SAMPLES, PcmFrame
from alice_voice.clock import SYSTEM_CLOCK
from alice_voice.logs import session_logger
from alice_voice.metrics import Metrics
from alice_voice.transport.session_transport import SessionWiring
from alice_voice.transport.sip.call import SipCall
from alice_voice.transport.sip.media_plan import MediaPlan
from alice_voice.transport.sip.rtp_socket import RtpSocket
from conftest import poll_until

pytestmark = pytest.mark.asyncio


class Silence:
    """The session's playout with nothing to say."""

    def __init__(self) -> None:
        self.playable = asyncio.Event()

    def next_frame(self, sent_at: float) -> np.ndarray:
        return np.zeros(WEBRTC_FRAME_SAMPLES, np.int16)

    def confirm_played(self, frames: int) -> None:
        return None


class Dialog:
    def __init__(self) -> None:
        self.hang_ups = 0

    def hang_up(self) -> None:
        self.hang_ups += 1

    async def transfer(self, target: str) -> None:
        return None


class Phone:
    """The caller's end: a UDP socket that sends RTP and keeps what comes back."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()

    def send(self, to: int, seq: int, payload: bytes = b"\xff" * 160, payload_type: int = 0, ts: int = 0) -> None:
        packet = RtpPacket(payload_type=payload_type, sequence_number=seq, timestamp=ts or seq * 160, ssrc=9,
                           payload=payload)
        self.sock.sendto(packet.serialize(), ("127.0.0.1", to))

    async def receive(self, timeout_s: float = 2.0) -> RtpPacket:
        async with asyncio.timeout(timeout_s):
            data = await asyncio.get_running_loop().sock_recv(self.sock, 2048)
        return RtpPacket.parse(data)


@pytest_asyncio.fixture
async def call_parts() -> AsyncIterator[tuple[SipCall, Dialog, Phone, list[PcmFrame], list[str]]]:
    phone = Phone()
    rtp = await RtpSocket.bind("127.0.0.1", (33000, 33999), phone.address)
    dialog, heard, messages = Dialog(), [], []
    plan = MediaPlan("mulaw", 0, 101, phone.address, held=False)
    call = SipCall(rtp, plan, dialog, clock=SYSTEM_CLOCK, metrics=Metrics(), quiet_timeout_s=0.5)
    call.attach(SessionWiring(Silence(), heard.append, session_logger("test", "sip")))
    call.events.on_message = lambda raw: messages.append(str(raw))
    await call.connect()
    try:
        yield call, dialog, phone, heard, messages
    finally:
        await call.close()
        phone.sock.close()


async def test_silence_goes_out_as_20_ms_packets_and_the_callers_audio_comes_in(call_parts: tuple) -> None:
    call, _, phone, heard, _ = call_parts
    first, second = await phone.receive(), await phone.receive()
    assert first.payload_type == 0 and len(first.payload) == 160 and first.marker == 1
    assert (second.sequence_number - first.sequence_number, second.timestamp - first.timestamp) == (1, 160)
    for seq in range(1, 6):
        phone.send(call.local_port, seq)
    await poll_until(lambda: len(heard) >= 4)  # 20 ms frames at 16 kHz (the resampler holds a few samples)
    assert all(frame.samples.shape == (320,) and frame.rate == 16_000 for frame in heard)


async def test_packets_from_anyone_but_the_caller_are_dropped(call_parts: tuple) -> None:
    call, _, phone, _, messages = call_parts
    phone.send(call.local_port, 1)
    await phone.receive()
    stranger = Phone()
    try:
        for seq in range(2, 40):
            stranger.send(call.local_port, seq, payload=bytes([1, 0, 0, 160]), payload_type=101, ts=seq)
        phone.send(call.local_port, 2, payload=bytes([5, 0, 0, 160]), payload_type=101, ts=8000)
        await poll_until(lambda: bool(messages))
        assert [json.loads(m) for m in messages] == [{"type": "dtmf", "digit": "5"}], "the caller's key alone"
        with pytest.raises(TimeoutError):
            await stranger.receive(timeout_s=0.2)  # and nothing is sent to the stranger
    finally:
        stranger.sock.close()


async def test_no_packet_for_the_quiet_timeout_ends_the_call_and_close_hangs_up(call_parts: tuple) -> None:
    call, dialog, phone, _, _ = call_parts
    phone.send(call.local_port, 1)
    await asyncio.wait_for(call.ended.wait(), timeout=3)
    assert call.end_reason == "media timeout"
    await call.close()
    assert dialog.hang_ups == 1, "Alice sends the BYE"


async def test_a_caller_who_hung_up_is_not_sent_a_bye(call_parts: tuple) -> None:
    call, dialog, _, _, _ = call_parts
    call.caller_hung_up()
    await call.close()
    assert call.end_reason == "caller hung up" and dialog.hang_ups == 0
