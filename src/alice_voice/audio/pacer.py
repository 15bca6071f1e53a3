"""The one frame pacer of every transport: a 20 ms frame from the session's source per tick of a timeline
anchored at a monotonic start.

Deadlines come from `start + frames * 20 ms`, not from accumulated sleeps, so pacing does not drift. After
a stall longer than `RESYNC_S` (a slow client, a stalled loop) the timeline starts again from now, rather
than bursting stale audio to catch up. While it sends silence, sound that becomes playable goes out at
once rather than at the next tick (10 ms sooner on average): the timeline moves to now, which a receiver
sees as one frame arriving early, well within any jitter buffer.

Taking a frame cannot fail: an exception reaching a transport's sender (aiortc's) would silence the call
for good while it stays connected, so a failing source gives silence, logged now and then.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np

from alice_voice.audio.frames import WEBRTC_FRAME_SAMPLES, WEBRTC_RATE, Pcm
from alice_voice.audio.playout import FrameSource
from alice_voice.clock import Clock

FRAME_S = WEBRTC_FRAME_SAMPLES / WEBRTC_RATE
RESYNC_S = 0.2
_log = logging.getLogger(__name__)


class FramePacer:
    def __init__(self, source: FrameSource, clock: Clock) -> None:
        self.source = source
        self._clock = clock
        self._start: float | None = None
        self.frames = 0  # handed out so far
        self._idle = True  # the last frame was silence
        self._silence = np.zeros(WEBRTC_FRAME_SAMPLES, np.int16)
        self._failures = 0

    async def next_frame(self) -> Pcm:
        """Wait for the next tick (less, when sound became playable while idle), then take its frame."""
        now = self._clock.now()
        if self._start is None:
            self._start = now
        else:
            delay = self._start + self.frames * FRAME_S - now
            if delay > 0 and not await self._ticked(delay):
                self._start = self._clock.now() - self.frames * FRAME_S  # sound to send: now, not later
            elif delay < -RESYNC_S:
                self._start = now - self.frames * FRAME_S
        self.source.playable.clear()  # before the frame is taken: sound made playable during the send is kept
        pcm = self._take()
        self.frames += 1
        self._idle = not pcm.any()
        return pcm

    async def _ticked(self, delay: float) -> bool:
        """True if the tick came; False if playable sound cut an idle wait short."""
        if not self._idle:
            await asyncio.sleep(delay)
            return True
        try:
            async with asyncio.timeout(delay):
                await self.source.playable.wait()
        except TimeoutError:
            return True
        return False

    def _take(self) -> Pcm:
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
