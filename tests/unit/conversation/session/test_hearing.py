"""The session's hearing: frames cut on the loop, judged one batch at a time off it."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from alice_voice.audio.frames import PcmFrame
from alice_voice.conversation.session.hearing import SUB_BLOCKS, Hearing
from fakes.scripted import InlineCompute, ScriptedVad

pytestmark = pytest.mark.asyncio


def chunk(level: int, arrival: float, samples: int = 320) -> PcmFrame:
    return PcmFrame(np.full(samples, level, np.int16), 16_000, arrival)


async def test_a_batch_is_claimed_at_once_so_batches_run_one_at_a_time_and_in_order() -> None:
    hearing = Hearing(ScriptedVad(), None, InlineCompute())
    for i in range(8):  # 8 x 20 ms: five whole 32 ms frames
        hearing.push(chunk(3000 if i < 4 else 0, 1.0 + i * 0.02))
    assert hearing.ready
    first = hearing.hear([])
    assert not hearing.ready, "claimed before anything is awaited: a second batch cannot start alongside"
    hearing.push(chunk(0, 1.2, samples=512))  # one more frame, while the batch runs
    verdicts = await first
    assert [v.index for v in verdicts] == [0, 1, 2, 3, 4]
    assert hearing.ready
    assert [v.index for v in await hearing.hear([])] == [5]
    assert verdicts[0].prob > 0.5 and verdicts[-1].prob < 0.5
    assert len(verdicts[0].loudness) == SUB_BLOCKS and verdicts[0].loudness[0] == pytest.approx(3000)
    assert hearing.samples_heard == 6 * 512


async def test_closing_waits_for_a_batch_still_running_before_the_detector_goes_back() -> None:
    release = asyncio.Event()

    class SlowCompute:
        async def run(self, priority: object, fn: object, *, key: object = None) -> object:
            await release.wait()
            return fn()  # type: ignore[operator]

    vad = ScriptedVad()
    hearing = Hearing(vad, None, SlowCompute())  # type: ignore[arg-type]
    for i in range(2):
        hearing.push(chunk(0, 1.0 + i * 0.02))
    batch = asyncio.ensure_future(hearing.hear([]))
    await asyncio.sleep(0)
    batch.cancel()  # the session ends mid-batch
    closing = asyncio.ensure_future(hearing.aclose())
    await asyncio.sleep(0)
    assert not vad.closed, "the detector is still in use"
    release.set()
    async with asyncio.timeout(2):
        await closing
    assert vad.closed
