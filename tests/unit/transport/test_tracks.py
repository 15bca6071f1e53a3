"""aiortc's outbound track: frames from the session's source, paced by the one pacer (its timing is
tested in tests/unit/audio/test_pacer.py), stamped for RTP, and stopped with the call."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from alice_voice.audio.frames import WEBRTC_FRAME_SAMPLES, WEBRTC_RATE
from alice_voice.transport.tracks import PacedAudioTrack
from fakes.scripted import ScriptedFrames as Source
from support.virtual_time import VIRTUAL_TIME, LoopClock

pytestmark = [pytest.mark.asyncio, VIRTUAL_TIME]


async def test_frames_are_48_khz_mono_with_consecutive_timestamps() -> None:
    source = Source()
    source.sound = np.full(WEBRTC_FRAME_SAMPLES, 5, np.int16)
    track = PacedAudioTrack(source, LoopClock())
    frames = [await track.recv() for _ in range(3)]
    assert [f.pts for f in frames] == [0, WEBRTC_FRAME_SAMPLES, 2 * WEBRTC_FRAME_SAMPLES]
    assert all(f.sample_rate == WEBRTC_RATE and (f.to_ndarray() == 5).all() for f in frames)
    track.stop()


async def test_a_stopped_track_ends_the_stream() -> None:
    track = PacedAudioTrack(Source(), LoopClock())
    await track.recv()
    track.stop()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(track.recv(), 1)
