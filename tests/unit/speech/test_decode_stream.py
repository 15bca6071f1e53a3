"""The per-utterance stream shared by the embedded recognizers, over a scripted decode source.

The fake source hands every decode request to the test as a future; the test decides when and with
what each decode completes, so every ordering below is forced, not timed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from alice_voice.errors import ProviderError, ProviderTimeout
from alice_voice.speech.decode_stream import Decode, DecodeStream, StreamTiming
from alice_voice.speech.protocols import Transcript

INTERVAL = 320
WAIT_S = 5.0


class ScriptedSource:
    def __init__(self) -> None:
        self.pushed: list[int] = []
        self.decodes: dict[tuple[int, bool], asyncio.Future[str | None]] = {}
        self.closed = False

    def push(self, pcm: np.ndarray, end: int) -> None:
        self.pushed.append(end)

    def request(self, end: int, final: bool) -> Decode | None:
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.decodes[(end, final)] = future

        async def decode() -> str | None:
            return await future
        return decode

    def answer(self, end: int, final: bool, text: str | None) -> None:
        self.decodes[(end, final)].set_result(text)

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


def make(timeout_s: float = WAIT_S) -> tuple[DecodeStream, ScriptedSource]:
    source = ScriptedSource()
    return DecodeStream("fake", source, StreamTiming(INTERVAL, timeout_s)), source


@pytest.mark.asyncio
async def test_partials_every_interval_then_a_final() -> None:
    stream, source = make()
    reader = Reader(stream)
    for _ in range(4):
        stream.push(pcm(160))
    assert source.pushed == [160, 320, 480, 640]
    assert sorted(source.decodes) == [(320, False), (640, False)]
    source.answer(320, False, "what")
    assert await reader.next() == Transcript("what", "", False, 320)
    source.answer(640, False, "What time")
    assert await reader.next() == Transcript("What time", "What", False, 640)
    stream.finish()
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
    assert all(f.cancelled() for f in source.decodes.values())
    stream.push(pcm(320))
    stream.finish()
    assert len(source.decodes) == 2  # a closed stream ignores more audio
    await stream.aclose()


class QuietSource(ScriptedSource):
    """Answers no partial request: nothing new worth decoding was pushed."""

    def request(self, end: int, final: bool) -> Decode | None:
        return super().request(end, final) if final else None


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
