"""Speaking one reply: agent text -> speakable chunks -> TTS -> 48 kHz -> playout.

The agent and the TTS run as two tasks joined by a queue, so the agent keeps streaming while a
sentence is synthesized. A held (speculative) reply prepares its audio but does not play, and keeps
its `agent.text` events, until `commit()`. Every wait on a provider has a deadline: a provider that
stalls ends the reply with `ProviderTimeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from alice_voice.audio.playout import Playout
from alice_voice.audio.resample import OutboundResampler
from alice_voice.audio.trim import SilenceTrimmer
from alice_voice.clock import Clock
from alice_voice.conversation.agent import Agent, Message
from alice_voice.conversation.events import AgentText, ServerEvent
from alice_voice.conversation.sentences import SentenceChunker
from alice_voice.errors import ProviderTimeout
from alice_voice.speech.protocols import StreamingTts

NOT_HEARD = "Sorry, I didn't catch that."
T = TypeVar("T")


@dataclass
class ReplyTimings:
    """Clock times (s) of the reply's stages; None until reached."""

    started: float
    agent_first_text: float | None = None
    tts_first_audio: float | None = None
    first_frame_sent: float | None = None


@dataclass(frozen=True, slots=True)
class ReplyDeadlines:
    agent_s: float
    tts_s: float


async def _within(iterator: AsyncIterator[T], deadline_s: float, provider: str) -> AsyncIterator[T]:
    """Each item of `iterator` must come within `deadline_s`."""
    while True:
        try:
            async with asyncio.timeout(deadline_s):
                item = await anext(iterator)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise ProviderTimeout(provider) from None
        yield item


@dataclass
class Reply:
    reply_id: int
    text: str
    history: Sequence[Message]
    agent: Agent
    tts: StreamingTts
    playout: Playout
    clock: Clock
    emit: Callable[[ServerEvent], None]
    deadlines: ReplyDeadlines
    held: bool
    spoken_text: str = ""
    timings: ReplyTimings = field(init=False)
    _held_events: list[ServerEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.timings = ReplyTimings(started=self.clock.now())
        self.playout.begin(self.reply_id, held=self.held)

    def commit(self) -> None:
        """Let the reply play and its text reach the client."""
        self.held = False
        self.playout.release(self.reply_id)
        events, self._held_events = self._held_events, []
        for event in events:
            self.emit(event)

    async def run(self) -> None:
        """Produce the whole reply into playout; raises the first failure (ProviderError for a provider)."""
        chunks: asyncio.Queue[str | None] = asyncio.Queue()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._write(chunks))
                group.create_task(self._speak(chunks))
        except BaseExceptionGroup as group:
            raise group.exceptions[0] from None  # the first failure is the one to report
        self.playout.end()

    async def _write(self, chunks: asyncio.Queue[str | None]) -> None:
        chunker = SentenceChunker()
        try:
            async for delta in self._agent_text():
                if self.timings.agent_first_text is None:
                    self.timings.agent_first_text = self.clock.now()
                self.spoken_text += delta
                self._send(AgentText(delta=delta))
                for chunk in chunker.push(delta):
                    chunks.put_nowait(chunk)
            for chunk in chunker.flush():
                chunks.put_nowait(chunk)
        finally:
            chunks.put_nowait(None)

    def _agent_text(self) -> AsyncIterator[str]:
        if not self.text.strip():
            return _one(NOT_HEARD)
        return _within(self.agent.respond(self.history, self.text), self.deadlines.agent_s, self.agent.name)

    async def _speak(self, chunks: asyncio.Queue[str | None]) -> None:
        """TTS in reply order; silence trimmed and audio resampled once, as one stream per reply."""
        resampler: OutboundResampler | None = None
        trimmer: SilenceTrimmer | None = None
        while (chunk := await chunks.get()) is not None:
            async for pcm in _within(self.tts.synthesize(chunk), self.deadlines.tts_s, self.tts.name):
                if self.timings.tts_first_audio is None:
                    self.timings.tts_first_audio = self.clock.now()
                resampler = resampler or OutboundResampler(pcm.rate)
                trimmer = trimmer or SilenceTrimmer(pcm.rate)
                self.playout.push(resampler.convert(trimmer.push(pcm.samples)), pcm.text)
        if resampler is not None and trimmer is not None:
            self.playout.push(resampler.convert(trimmer.end(), last=True), "")

    def _send(self, event: ServerEvent) -> None:
        if self.held:
            self._held_events.append(event)
        else:
            self.emit(event)


async def _one(text: str) -> AsyncIterator[str]:
    yield text

