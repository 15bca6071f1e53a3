"""Shared by the streaming-ASR integration tests: push audio like a receive loop, collect transcripts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from alice_voice.audio.frames import Pcm
from alice_voice.speech.protocols import AsrStream, StreamingAsr, Transcript

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
