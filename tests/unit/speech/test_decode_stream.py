"""The per-utterance stream shared by the embedded recognizers, over a scripted decode source.

The fake source hands every decode request to the test as a future; the test decides when and with
what each decode completes, so every ordering below is forced, not timed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import numpy as np
import pytest

from alice_voice.compute import InferenceScheduler, Lane, Priority
from alice_voice.errors import ProviderError, ProviderTimeout
from alice_voice.speech.decode_stream import Decode, DecodeStream, Heard, StreamTiming, partial_pressure
from alice_voice.speech.protocols import Transcript
from fakes.scripted import InlineCompute

INTERVAL = 320
WAIT_S = 5.0
PARTIALS = {Priority.FIRST_PARTIAL, Priority.PARTIAL}

Key = tuple[int, bool]  # (end, final)


class ScriptedSource:
    """Every request becomes a future the test answers; records each request's priority and what became
    of each decode (started awaiting its answer, or cancelled while it waited)."""

    def __init__(self) -> None:
        self.pushed: list[int] = []
        self.requests: list[tuple[int, Priority]] = []
        self.decodes: dict[Key, asyncio.Future[str | None]] = {}
        self.started: set[Key] = set()
        self.cancelled: set[Key] = set()
        self.closed = False
        self.grounded: dict[str, str] = {}  # a decode's text -> the part of it the audio holds

    def push(self, pcm: np.ndarray, end: int) -> None:
        self.pushed.append(end)

    def request(self, end: int, priority: Priority) -> Decode | None:
        assert priority in PARTIALS | {Priority.FINAL}
        self.requests.append((end, priority))
        key = (end, priority is Priority.FINAL)
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.decodes[key] = future

        async def decode() -> Heard | None:
            self.started.add(key)
            try:
                text = await future
            except asyncio.CancelledError:
                self.cancelled.add(key)
                raise
            return None if text is None else Heard(text, self.grounded.get(text))
        return decode

    def answer(self, end: int, final: bool, text: str | None) -> None:
        self.decodes[(end, final)].set_result(text)

    def priorities(self) -> list[Priority]:
        return [priority for _, priority in self.requests]

    async def aclose(self) -> None:
        self.closed = True


class Reader:
    """Collects what the stream yields, with a way to wait for the next item."""

    def __init__(self, stream: DecodeStream) -> None:
        self.items: list[Transcript] = []
        self.error: BaseException | None = None
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._read(aiter(stream)))

    async def _read(self, items: AsyncIterator[Transcript]) -> None:
        try:
            async for item in items:
                self.items.append(item)
                self._changed.set()
        except ProviderError as exc:
            self.error = exc
            self._changed.set()

    async def next(self) -> Transcript:
        count = len(self.items)
        async with asyncio.timeout(WAIT_S):
            while len(self.items) == count:
                self._changed.clear()
                await self._changed.wait()
        return self.items[count]

    async def wait_error(self) -> BaseException:
        async with asyncio.timeout(WAIT_S):
            while self.error is None:
                self._changed.clear()
                await self._changed.wait()
        return self.error


async def _noop() -> None:
    return None


async def settle_tasks() -> None:
    """Let every task that is ready now take its next step (tasks run in the order they became ready)."""
    await asyncio.create_task(_noop())


def pcm(samples: int) -> np.ndarray:
    return np.ones(samples, np.int16)


def make(timeout_s: float = WAIT_S, pressure: Callable[[], float] = lambda: 1.0) -> tuple[DecodeStream, ScriptedSource]:
    source = ScriptedSource()
    return DecodeStream("fake", source, StreamTiming(INTERVAL, timeout_s, pressure)), source


@pytest.mark.asyncio
async def test_partials_come_at_the_first_words_cadence_until_words_are_shown_then_at_the_interval() -> None:
    source = ScriptedSource()
    stream = DecodeStream("fake", source, StreamTiming(INTERVAL, WAIT_S, first_partial=INTERVAL // 2))
    reader = Reader(stream)
    for _ in range(4):
        stream.push(pcm(80))
    assert sorted(end for end, _ in source.decodes) == [160, 320]  # no words yet: every half interval
    source.answer(160, False, "")
    source.answer(320, False, "what")  # the first words are shown
    assert await reader.next() == Transcript("what", "", False, 320)
    for _ in range(8):
        stream.push(pcm(80))
    # the one asked at 480 (the cadence was still the first words' then), then whole intervals
    assert sorted(end for end, _ in source.decodes) == [160, 320, 480, 800]
    await stream.aclose()


@pytest.mark.asyncio
async def test_partials_every_interval_then_a_final() -> None:
    stream, source = make()
    reader = Reader(stream)
    for _ in range(4):
        stream.push(pcm(160))
    assert source.pushed == [160, 320, 480, 640]
    assert sorted(source.decodes) == [(320, False), (640, False)]
    # Both asked before any partial was yielded: both are the utterance's first words to show.
    assert source.priorities() == [Priority.FIRST_PARTIAL, Priority.FIRST_PARTIAL]
    source.answer(320, False, "what")
    assert await reader.next() == Transcript("what", "", False, 320)
    source.answer(640, False, "What time")
    assert await reader.next() == Transcript("What time", "What", False, 640)
    stream.finish()
    assert source.requests[-1] == (640, Priority.FINAL)
    source.answer(640, True, "What time is it?")
    assert await reader.next() == Transcript("What time is it?", "What time is it?", True, 640)
    await stream.aclose()
    async with asyncio.timeout(WAIT_S):
        await reader.task
    assert source.closed


@pytest.mark.asyncio
async def test_empty_and_superseded_partials_are_not_yielded() -> None:
    stream, source = make()
    reader = Reader(stream)
    stream.push(pcm(320))
    stream.push(pcm(320))
    stream.push(pcm(320))
    source.answer(320, False, "  ")
    source.answer(640, False, None)
    source.answer(960, False, "hello")
    assert await reader.next() == Transcript("hello", "", False, 960)
    await stream.aclose()
    assert len(reader.items) == 1


@pytest.mark.asyncio
async def test_a_partial_older_than_the_last_yield_is_dropped() -> None:
    stream, source = make()
    reader = Reader(stream)
    stream.push(pcm(320))
    stream.push(pcm(320))
    source.answer(640, False, "hello there")
    assert (await reader.next()).samples == 640
    source.answer(320, False, "hello")  # finished late (another worker thread): already covered
    await settle_tasks()
    assert (320, False) not in source.cancelled  # it completed, and was dropped as out of date
    stream.finish()
    source.answer(640, True, "Hello there.")
    assert await reader.next() == Transcript("Hello there.", "Hello there.", True, 640)
    await stream.aclose()
    assert [t.samples for t in reader.items] == [640, 640]


@pytest.mark.asyncio
async def test_speculative_finish_then_more_audio_then_a_covering_final() -> None:
    stream, source = make()
    reader = Reader(stream)
    stream.push(pcm(320))
    stream.finish()
    stream.push(pcm(320))  # the user went on after the speculative finish
    await settle_tasks()
    # A partial over more audio than a final still decoding is not yielded: the final comes first.
    source.answer(640, False, "what time is")
    await settle_tasks()
    source.answer(320, True, "What time?")
    assert await reader.next() == Transcript("What time?", "What time?", True, 320)
    stream.push(pcm(320))
    source.answer(960, False, "What time is it")
    # The final seeds the agreement: its words that the new hypothesis repeats are stable at once.
    assert await reader.next() == Transcript("What time is it", "What time", False, 960)
    stream.finish()
    source.answer(960, True, "What time is it?")
    assert await reader.next() == Transcript("What time is it?", "What time is it?", True, 960)
    await stream.aclose()
    assert [t.samples for t in reader.items] == [320, 960, 960]


@pytest.mark.asyncio
async def test_a_final_carries_the_words_its_audio_holds_and_a_partial_none() -> None:
    stream, source = make()
    source.grounded["Set a timer for it."] = "Set a timer for"
    reader = Reader(stream)
    stream.push(pcm(INTERVAL))
    await settle_tasks()
    source.answer(INTERVAL, False, "Set a timer for it.")
    assert (await reader.next()).grounded_text is None
    stream.finish()
    source.answer(INTERVAL, True, "Set a timer for it.")
    final = await reader.next()
    assert (final.text, final.grounded_text) == ("Set a timer for it.", "Set a timer for")
    await stream.aclose()


@pytest.mark.asyncio
async def test_an_earlier_final_finishing_after_a_later_one_is_dropped() -> None:
    stream, source = make()
    reader = Reader(stream)
    stream.push(pcm(100))
    stream.finish()
    stream.push(pcm(100))
    stream.finish()
    source.answer(200, True, "two parts")
    assert await reader.next() == Transcript("two parts", "two parts", True, 200)
    source.answer(100, True, "one part")
    await stream.aclose()
    assert [t.text for t in reader.items] == ["two parts"]


@pytest.mark.asyncio
async def test_finish_with_no_audio_yields_an_empty_final() -> None:
    stream, source = make()
    reader = Reader(stream)
    stream.finish()
    source.answer(0, True, "")
    assert await reader.next() == Transcript("", "", True, 0)
    await stream.aclose()


@pytest.mark.asyncio
async def test_decode_failure_is_raised_from_the_iterator_as_provider_error() -> None:
    stream, source = make()
    reader = Reader(stream)
    stream.push(pcm(320))
    source.decodes[(320, False)].set_exception(RuntimeError("model exploded"))
    error = await reader.wait_error()
    assert isinstance(error, ProviderError)
    assert error.provider == "fake"
    assert isinstance(error.__cause__, RuntimeError)
    await stream.aclose()


@pytest.mark.asyncio
async def test_final_slower_than_the_timeout_is_a_provider_timeout() -> None:
    stream, _source = make(timeout_s=0.05)
    reader = Reader(stream)
    stream.push(pcm(10))
    stream.finish()  # never answered
    error = await reader.wait_error()
    assert isinstance(error, ProviderTimeout)
    await stream.aclose()


@pytest.mark.asyncio
async def test_aclose_cancels_pending_decodes_and_ends_iteration() -> None:
    stream, source = make()
    reader = Reader(stream)
    stream.push(pcm(320))
    stream.finish()
    await settle_tasks()
    await stream.aclose()
    async with asyncio.timeout(WAIT_S):
        await reader.task
    assert reader.items == []
    assert source.cancelled == {(320, True)}  # the final was waiting for its answer: cancelled
    assert (320, False) not in source.started  # the partial was withdrawn by finish() before it ran
    stream.push(pcm(320))
    stream.finish()
    assert len(source.decodes) == 2  # a closed stream ignores more audio
    await stream.aclose()


class QuietSource(ScriptedSource):
    """Answers no partial request: nothing new worth decoding was pushed."""

    def request(self, end: int, priority: Priority) -> Decode | None:
        return super().request(end, priority) if priority is Priority.FINAL else None


@pytest.mark.asyncio
async def test_source_may_decline_a_partial_but_not_a_final() -> None:
    source = QuietSource()
    stream = DecodeStream("fake", source, StreamTiming(INTERVAL, WAIT_S))
    reader = Reader(stream)
    stream.push(pcm(INTERVAL * 3))
    stream.finish()
    assert list(source.decodes) == [(INTERVAL * 3, True)]
    source.answer(INTERVAL * 3, True, "")
    assert await reader.next() == Transcript("", "", True, INTERVAL * 3)
    await stream.aclose()


@pytest.mark.asyncio
async def test_first_partial_priority_until_a_partial_is_yielded_then_partial() -> None:
    stream, source = make()
    reader = Reader(stream)
    stream.push(pcm(320))
    stream.push(pcm(320))
    source.answer(320, False, "   ")  # nothing heard yet: no partial yielded
    await settle_tasks()
    stream.push(pcm(320))
    assert source.priorities() == [Priority.FIRST_PARTIAL] * 3
    source.answer(960, False, "hello")
    assert (await reader.next()).samples == 960
    stream.push(pcm(320))
    stream.push(pcm(320))
    assert source.requests[3:] == [(1280, Priority.PARTIAL), (1600, Priority.PARTIAL)]
    stream.finish()
    assert source.requests[-1] == (1600, Priority.FINAL)
    await stream.aclose()


@pytest.mark.asyncio
async def test_finish_cancels_a_partial_decode_already_waiting() -> None:
    stream, source = make()
    reader = Reader(stream)
    stream.push(pcm(320))
    await settle_tasks()
    assert (320, False) in source.started  # the partial's decode is in flight
    stream.finish()
    await settle_tasks()
    assert source.cancelled == {(320, False)}  # the final covers its audio
    assert source.decodes[(320, False)].cancelled()
    source.answer(320, True, "Hello.")
    assert await reader.next() == Transcript("Hello.", "Hello.", True, 320)
    await stream.aclose()
    assert [t.final for t in reader.items] == [True]


@pytest.mark.asyncio
async def test_finish_withdraws_a_partial_decode_not_started_yet() -> None:
    stream, source = make()
    reader = Reader(stream)
    stream.push(pcm(320))
    stream.finish()  # before the partial's task got to run
    source.answer(320, True, "Hello.")
    assert await reader.next() == Transcript("Hello.", "Hello.", True, 320)
    assert (320, False) not in source.started  # its decode never ran
    await stream.aclose()
    assert len(reader.items) == 1


@pytest.mark.asyncio
async def test_partials_requested_after_a_finish_are_not_cancelled() -> None:
    stream, source = make()
    reader = Reader(stream)
    stream.push(pcm(320))
    stream.finish()
    source.answer(320, True, "Set a timer")
    assert (await reader.next()).final
    stream.push(pcm(320))  # the user went on: this partial covers audio the final did not
    source.answer(640, False, "Set a timer for")
    assert await reader.next() == Transcript("Set a timer for", "Set a timer", False, 640)
    assert (640, False) not in source.cancelled
    await stream.aclose()


async def partial_requests(pressure: float, samples: int) -> list[int]:
    stream, source = make(pressure=lambda: pressure)
    for _ in range(samples // 160):
        stream.push(pcm(160))
    await stream.aclose()
    return [end for end, priority in source.requests if priority in PARTIALS]


@pytest.mark.asyncio
async def test_pressure_stretches_the_partial_interval() -> None:
    audio = INTERVAL * 8
    idle = await partial_requests(1.0, audio)
    busy = await partial_requests(2.0, audio)
    assert idle == [INTERVAL * k for k in range(1, 9)]
    assert busy == [INTERVAL, INTERVAL * 3, INTERVAL * 5, INTERVAL * 7]  # each gap twice as long
    assert len(busy) * 2 == len(idle)
    # Less than one partial waiting per thread never asks for partials more often than the interval.
    assert await partial_requests(0.25, audio) == idle


def test_partial_pressure_is_partials_waiting_per_thread_that_runs_them() -> None:
    assert partial_pressure(InlineCompute())() == 1.0  # not the scheduler: no pressure
    scheduler = InferenceScheduler([Lane("finals", 1, frozenset(Priority) - PARTIALS),
                                    Lane("partials", 2, frozenset(PARTIALS))], name="test-pressure")
    release = threading.Event()
    try:
        pressure = partial_pressure(scheduler)
        assert pressure() == 0.0
        jobs = [scheduler.submit(priority, lambda: release.wait(WAIT_S))
                for priority in (Priority.FIRST_PARTIAL, Priority.PARTIAL, Priority.PARTIAL, Priority.PARTIAL,
                                 Priority.FINAL)]
        assert pressure() == 2.0  # four partials queued or running, over two threads; the final is not one
        release.set()
        for job in jobs:
            assert job.result(WAIT_S) is True
    finally:
        release.set()
        scheduler.close()
