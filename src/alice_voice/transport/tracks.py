"""Media tracks: the clock-paced outbound audio track and the inbound audio reader."""

from __future__ import annotations

import asyncio
import fractions
import logging
from collections.abc import Callable

import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame

from alice_voice.audio.frames import WEBRTC_FRAME_SAMPLES, WEBRTC_RATE, Pcm, PcmFrame
from alice_voice.audio.playout import FrameSource
from alice_voice.audio.resample import InboundResampler
from alice_voice.clock import Clock

_log = logging.getLogger(__name__)
_TIME_BASE = fractions.Fraction(1, WEBRTC_RATE)
_RESYNC_S = 0.2  # after a stall longer than this, restart the timeline instead of bursting to catch up


class PacedAudioTrack(MediaStreamTrack):  # type: ignore[misc]
    """48 kHz mono 20 ms frames, one per tick of a timeline anchored at a monotonic start.

    Deadlines come from `start + pts / rate`, not from accumulated sleeps, so pacing does not drift.
    While it sends silence, a reply that becomes playable is sent at once rather than at the next tick
    (10 ms sooner on average): the timeline moves to now, which a receiver sees as one frame arriving
    early, well within any jitter buffer.
    The tick only takes a frame from its source: it cannot fail (an exception reaching aiortc's sender
    would silence the call for good while it stays connected), so a failing source gives silence.
    """

    kind = "audio"

    def __init__(self, source: FrameSource, clock: Clock) -> None:
        super().__init__()
        self.source = source
        self._clock = clock
        self._start: float | None = None
        self._pts = 0
        self._silence = np.zeros(WEBRTC_FRAME_SAMPLES, np.int16)
        self._failures = 0
        self._idle = True  # the last frame sent was silence
        self._playable = asyncio.Event()
        source.on_playable = self._playable.set

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = self._clock.now()
        if self._start is None:
            self._start = now
        else:
            self._pts += WEBRTC_FRAME_SAMPLES
            delay = self._start + self._pts / WEBRTC_RATE - now
            if delay > 0 and not await self._woken_within(delay):
                self._start = self._clock.now() - self._pts / WEBRTC_RATE  # sound to send: now, not later
            elif delay < -_RESYNC_S:
                self._start = now - self._pts / WEBRTC_RATE
        self._playable.clear()
        pcm = self._next_pcm()
        self._idle = not pcm.any()
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = WEBRTC_RATE
        frame.pts = self._pts
        frame.time_base = _TIME_BASE
        return frame

    async def _woken_within(self, delay: float) -> bool:
        """Wait until the next tick; True if it came, False if playable sound cut an idle wait short."""
        if not self._idle:
            await asyncio.sleep(delay)
            return True
        try:
            async with asyncio.timeout(delay):
                await self._playable.wait()
        except TimeoutError:
            return True
        return False

    def _next_pcm(self) -> Pcm:
        try:
            pcm = self.source.next_frame(self._clock.now())
            if pcm.shape == self._silence.shape and pcm.dtype == self._silence.dtype:
                return pcm
            raise ValueError(f"the frame source gave {pcm.dtype} {pcm.shape}, not int16 ({WEBRTC_FRAME_SAMPLES},)")
        except Exception:
            self._failures += 1
            if self._failures == 1 or self._failures % 500 == 0:  # at most one line every 10 s
                _log.exception("outbound frame source failed (%d times); sending silence", self._failures)
            return self._silence


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
