"""Shared by the streaming-ASR integration tests: push audio like a receive loop, collect transcripts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from alice_voice.audio.frames import Pcm
from alice_voice.compute import InferenceScheduler, JobRunner, Priority, available_cores, default_lanes
from alice_voice.speech.protocols import AsrStream, StreamingAsr, Transcript

T = TypeVar("T")
PIECE = 320  # 20 ms at 16 kHz
WAIT_S = 20.0


@dataclass
class Collected:
    items: list[Transcript] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def finals(self) -> list[Transcript]:
        return [t for t in self.items if t.final]

    async def wait_for(self, count: int, *, final: bool) -> None:
        async with asyncio.timeout(WAIT_S):
            while sum(t.final == final for t in self.items) < count:
                self.changed.clear()
                await self.changed.wait()


async def collect(stream: AsrStream, into: Collected) -> None:
    async for transcript in stream:
        into.items.append(transcript)
        into.changed.set()


async def push(stream: AsrStream, pcm: Pcm) -> None:
    for i in range(0, len(pcm), PIECE):
        stream.push(pcm[i:i + PIECE])
        await asyncio.sleep(0)  # a yield per frame, as a real receive loop has; no waiting


async def transcribe(asr: StreamingAsr, pcm: Pcm) -> Collected:
    """Push everything, finish, return what the stream yielded up to its final."""
    stream, got = asr.stream(), Collected()
    reader = asyncio.create_task(collect(stream, got))
    try:
        await push(stream, pcm)
        stream.finish()
        await got.wait_for(1, final=True)
    finally:
        await stream.aclose()
        await reader
    return got


async def transcribe_after_a_partial(asr: StreamingAsr, pcm: Pcm) -> Collected:
    """Push two thirds, wait for a partial, push the rest, finish; what the stream yielded up to its final."""
    stream, got = asr.stream(), Collected()
    reader = asyncio.create_task(collect(stream, got))
    try:
        half = len(pcm) * 2 // 3 // PIECE * PIECE
        await push(stream, pcm[:half])
        await got.wait_for(1, final=False)
        await push(stream, pcm[half:])
        stream.finish()
        await got.wait_for(1, final=True)
    finally:
        await stream.aclose()
        async with asyncio.timeout(WAIT_S):
            await reader
    return got


class RecordingRunner:
    """A `JobRunner` that hands each job on to `inner` and records its priority, in submission order."""

    def __init__(self, inner: JobRunner) -> None:
        self.inner = inner
        self.priorities: list[Priority] = []

    async def run(self, priority: Priority, fn: Callable[[], T], *, key: Hashable | None = None) -> T:
        self.priorities.append(priority)
        return await self.inner.run(priority, fn, key=key)


@contextlib.contextmanager
def private_scheduler(name: str) -> Iterator[InferenceScheduler]:
    """An inference scheduler laid out like the shared one, closed (its workers joined) on exit.

    A test module's loaded models run on one of these rather than on the process-wide scheduler, which is
    never closed: a decode that a test abandons (a partial pass still running at `finish()`) would otherwise
    still hold a model when the test process exits, and a CTranslate2 model released by a daemon worker
    during interpreter shutdown aborts the process (std::terminate, exit status 134).
    """
    scheduler = InferenceScheduler(default_lanes(available_cores()), name=name)
    try:
        yield scheduler
    finally:
        scheduler.close()
