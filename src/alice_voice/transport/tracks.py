"""Media tracks: the clock-paced outbound audio track and the inbound audio reader."""

from __future__ import annotations

import asyncio
import fractions
from collections.abc import Awaitable, Callable

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame

from alice_voice.audio.frames import WEBRTC_FRAME_SAMPLES, WEBRTC_RATE, PcmFrame
from alice_voice.audio.playout import FrameSource
from alice_voice.audio.resample import InboundResampler
from alice_voice.clock import Clock

_TIME_BASE = fractions.Fraction(1, WEBRTC_RATE)
_RESYNC_S = 0.2  # after a stall longer than this, restart the timeline instead of bursting to catch up


class PacedAudioTrack(MediaStreamTrack):  # type: ignore[misc]
    """48 kHz mono 20 ms frames, one per tick of a timeline anchored at a monotonic start.

    Deadlines come from `start + pts / rate`, not from accumulated sleeps, so pacing does not drift.
    `on_sent(t)` is called with the clock time each frame is handed to the sender.
    """

    kind = "audio"

    def __init__(self, source: FrameSource, clock: Clock) -> None:
        super().__init__()
        self.source = source
        self._clock = clock
        self._start: float | None = None
        self._pts = 0
        self.on_sent: Callable[[float], None] = lambda t: None

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = self._clock.now()
        if self._start is None:
            self._start = now
        else:
            self._pts += WEBRTC_FRAME_SAMPLES
            delay = self._start + self._pts / WEBRTC_RATE - now
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -_RESYNC_S:
                self._start = now - self._pts / WEBRTC_RATE
        pcm = self.source.next_frame()
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = WEBRTC_RATE
        frame.pts = self._pts
        frame.time_base = _TIME_BASE
        self.on_sent(self._clock.now())
        return frame


async def read_inbound(track: MediaStreamTrack, clock: Clock,
                       deliver: Callable[[PcmFrame], Awaitable[None] | None]) -> None:
    """Decode the remote audio track into mono 16 kHz frames stamped with their arrival time.

    Returns when the track ends. One resampler per stream.
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
            result = deliver(PcmFrame(pcm, 16_000, arrival))
            if result is not None:
                await result
