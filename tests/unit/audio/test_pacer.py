"""The one frame pacer of every transport, on virtual time: its ticks are read off the loop's clock."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from alice_voice.audio.frames import WEBRTC_FRAME_SAMPLES
from alice_voice.audio.pacer import FRAME_S, RESYNC_S, FramePacer
from fakes.scripted import SOUND_FRAME as SOUND
from fakes.scripted import ScriptedFrames as Source
from support.virtual_time import VIRTUAL_TIME, LoopClock

pytestmark = [pytest.mark.asyncio, VIRTUAL_TIME]


async def frame_times(pacer: FramePacer, count: int) -> list[float]:
    loop = asyncio.get_running_loop()
    times = []
    for _ in range(count):
        await pacer.next_frame()
        times.append(loop.time())
    return times


async def test_one_frame_every_20_ms_on_a_timeline_that_does_not_drift() -> None:
    pacer = FramePacer(Source(), LoopClock())
    times = await frame_times(pacer, 200)
    assert times[-1] - times[0] == pytest.approx(199 * FRAME_S, abs=1e-6)
    assert np.diff(times) == pytest.approx([FRAME_S] * 199, abs=1e-6)


async def test_an_idle_pacer_sends_sound_that_becomes_playable_at_once() -> None:
    source = Source()
    pacer = FramePacer(source, LoopClock())
    [start] = await frame_times(pacer, 1)
    asyncio.get_running_loop().call_later(0.005, source.play)  # 5 ms into the next tick's wait
    frame = await pacer.next_frame()
    assert (frame == 1000).all() and asyncio.get_running_loop().time() == pytest.approx(start + 0.005, abs=1e-6)
    [after] = await frame_times(pacer, 1)  # the timeline moved to now: one tick from here
    assert after == pytest.approx(start + 0.005 + FRAME_S, abs=1e-6)


async def test_a_pacer_already_sending_sound_keeps_its_tick() -> None:
    source = Source()
    source.sound = SOUND
    pacer = FramePacer(source, LoopClock())
    [start] = await frame_times(pacer, 1)
    asyncio.get_running_loop().call_later(0.005, source.playable.set)
    [after] = await frame_times(pacer, 1)
    assert after == pytest.approx(start + FRAME_S, abs=1e-6)


async def test_after_a_stall_the_timeline_starts_again_from_now_instead_of_bursting() -> None:
    pacer = FramePacer(Source(), LoopClock())
    await frame_times(pacer, 1)
    await asyncio.sleep(RESYNC_S + 0.3)  # the loop was busy elsewhere
    times = await frame_times(pacer, 3)
    assert np.diff(times) == pytest.approx([FRAME_S, FRAME_S], abs=1e-6), "no stale frames sent back to back"


async def test_a_failing_source_gives_silence_and_the_pacer_goes_on() -> None:
    source = Source()
    pacer = FramePacer(source, LoopClock())
    source.fail = True
    assert not (await pacer.next_frame()).any()
    source.fail, source.sound = False, np.full(WEBRTC_FRAME_SAMPLES, 7, np.int16)
    assert ((await pacer.next_frame()) == 7).all()
