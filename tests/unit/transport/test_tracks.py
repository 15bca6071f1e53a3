"""The paced outbound track: it only takes frames, cannot fail, and starts a reply at once when idle.

The track's clock is a manual one, set so that the next tick is far away: whether `recv()` returns at
once or keeps waiting then shows what it decided, with no timing in the test."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from alice_voice.audio.frames import WEBRTC_FRAME_SAMPLES, Pcm
from alice_voice.transport.tracks import PacedAudioTrack

pytestmark = pytest.mark.asyncio
FAR_S = 30.0


class ManualClock:
    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> float:
        return self.t


class Source:
    """Silence until `sound` is set; then that frame."""

    def __init__(self) -> None:
        self.sound: Pcm | None = None
        self.on_playable = lambda: None
        self.fail = False

    def next_frame(self, sent_at: float) -> Pcm:
        if self.fail:
            raise RuntimeError("a defect in the source")
        return self.sound if self.sound is not None else np.zeros(WEBRTC_FRAME_SAMPLES, np.int16)


async def started(source: Source, clock: ManualClock) -> PacedAudioTrack:
    track = PacedAudioTrack(source, clock)  # type: ignore[arg-type]
    await track.recv()  # anchors the timeline at clock.t
    clock.t -= FAR_S  # from now on, the next tick is FAR_S away
    return track


async def test_an_idle_track_sends_a_reply_that_becomes_playable_at_once() -> None:
    source, clock = Source(), ManualClock()
    track = await started(source, clock)
    source.sound = np.full(WEBRTC_FRAME_SAMPLES, 1000, np.int16)
    pending = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)  # the track is now waiting for its tick
    assert not pending.done()
    source.on_playable()
    async with asyncio.timeout(2):
        frame = await pending
    assert (frame.to_ndarray() == 1000).all()
    # The timeline moved to now: the next frame is due one tick from here, not FAR_S away.
    clock.t += 0.02
    async with asyncio.timeout(2):
        await track.recv()
    track.stop()


async def test_a_track_already_sending_sound_keeps_its_tick() -> None:
    source, clock = Source(), ManualClock()
    source.sound = np.full(WEBRTC_FRAME_SAMPLES, 1000, np.int16)
    track = await started(source, clock)
    pending = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    source.on_playable()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(pending), timeout=0.2)
    pending.cancel()
    track.stop()


async def test_a_failing_source_gives_silence_and_the_track_goes_on() -> None:
    source, clock = Source(), ManualClock()
    track = PacedAudioTrack(source, clock)  # type: ignore[arg-type]
    source.fail = True
    frame = await track.recv()
    assert not frame.to_ndarray().any()
    source.fail, source.sound = False, np.full(WEBRTC_FRAME_SAMPLES, 7, np.int16)
    clock.t += 0.02
    async with asyncio.timeout(2):
        assert (((await track.recv()).to_ndarray()) == 7).all()
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()
