"""Media tracks: the clock-paced outbound audio track and the inbound audio reader."""

from __future__ import annotations

import fractions
from collections.abc import Callable

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame

from alice_voice.audio.frames import WEBRTC_FRAME_SAMPLES, WEBRTC_RATE, PcmFrame
from alice_voice.audio.pacer import FramePacer
from alice_voice.audio.playout import FrameSource
from alice_voice.audio.resample import InboundResampler
from alice_voice.clock import Clock

_TIME_BASE = fractions.Fraction(1, WEBRTC_RATE)


class PacedAudioTrack(MediaStreamTrack):  # type: ignore[misc]
    """aiortc's outbound audio track: 48 kHz mono 20 ms frames from the session's source, paced by the
    gateway's one pacer (audio/pacer.py): aiortc pulls (`recv`), the pacer says when."""

    kind = "audio"

    def __init__(self, source: FrameSource, clock: Clock) -> None:
        super().__init__()
        self._pacer = FramePacer(source, clock)

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pcm = await self._pacer.next_frame()
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = WEBRTC_RATE
        frame.pts = (self._pacer.frames - 1) * WEBRTC_FRAME_SAMPLES
        frame.time_base = _TIME_BASE
        return frame


async def read_inbound(track: MediaStreamTrack, clock: Clock, deliver: Callable[[PcmFrame], None]) -> None:
    """Decode the remote audio track into mono 16 kHz frames stamped with their arrival time, and hand each
    to `deliver` (which only queues it). Returns when the track ends. One resampler per stream: PyAV's
    downmix and resample cost ~25 us a 20 ms frame, so they stay on the event loop.
    """
    resampler = InboundResampler()
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        arrival = clock.now()
        pcm = resampler.convert(frame)
        if len(pcm):
            deliver(PcmFrame(pcm, 16_000, arrival))
