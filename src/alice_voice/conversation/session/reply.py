"""Producing one reply: agent text -> speakable chunks -> TTS -> trimmed, 48 kHz -> playout.

The agent and the TTS run as two tasks joined by a queue, so the agent keeps streaming while a sentence
is synthesized. A held (speculative) reply prepares its audio but does not play, and keeps its
`agent.text` events, until `commit()`. Every wait on a provider has a deadline: a provider that stalls
ends the reply with `ProviderTimeout`. The audio's trimming and resampling run through the scheduler,
at the priority of the sentence they belong to: the first sentence is what the caller is waiting for.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from alice_voice.audio.frames import Pcm
from alice_voice.audio.playout import Playout
from alice_voice.audio.resample import OutboundResampler
from alice_voice.audio.trim import SilenceTrimmer
from alice_voice.compute import JobRunner, Priority
from alice_voice.conversation.agents import Agent, Message, NoTools, TurnTools
from alice_voice.conversation.events import AgentText, ServerEvent
from alice_voice.conversation.sentences import SentenceChunker
from alice_voice.conversation.session.tool_calls import ReplyToolCalls, SessionTools
from alice_voice.errors import ProviderError, ProviderTimeout
from alice_voice.speech.protocols import PcmChunk, StreamingTts
from alice_voice.tools import ToolOutcome

NOT_HEARD = "Sorry, I didn't catch that."
T = TypeVar("T")
Stage = Literal["agent_first_text", "tts_first_audio", "written"]


@dataclass(frozen=True, slots=True)
class ReplyDeadlines:
    agent_s: float
    tts_s: float


@dataclass(frozen=True, slots=True)
class ReplyTools:
    """What every reply of a session uses."""

    agent: Agent
    tts: StreamingTts
    playout: Playout
    compute: JobRunner
    deadlines: ReplyDeadlines
    session_tools: SessionTools | None = None
    filler_text: str = "One moment."


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
    """One reply. `progress(stage, text)` reports its stages; `emit` its client events."""

    reply_id: int
    text: str
    history: Sequence[Message]
    tools: ReplyTools
    emit: Callable[[ServerEvent], None]
    progress: Callable[[Stage, str, tuple[ToolOutcome, ...]], None]
    held: bool
    verbatim: bool = False  # say `text` itself (the gateway's own words), not the agent's answer to it
    settled: bool = False  # its turn cannot go on: its tools that change things may run
    spoken_text: str = ""
    _held_events: list[ServerEvent] = field(default_factory=list)
    _committed: asyncio.Event = field(default_factory=asyncio.Event)
    _settled: asyncio.Event = field(default_factory=asyncio.Event)
    _chunker: SentenceChunker = field(default_factory=SentenceChunker)
    _chunks: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    _tool_calls: ReplyToolCalls | None = None
    _agent_wait: asyncio.Timeout | None = None  # the deadline of the agent's next delta, while it runs
    _tools_busy: bool = False

    def __post_init__(self) -> None:
        self.tools.playout.begin(self.reply_id, held=self.held)
        if not self.held:
            self._committed.set()
        if self.settled:
            self._settled.set()
        if self.tools.session_tools is not None and not self.verbatim:
            self._tool_calls = ReplyToolCalls(self.tools.session_tools, self._settled, self._send, self._filler,
                                              self._pace)

    @property
    def tool_records(self) -> tuple[ToolOutcome, ...]:
        return self._tool_calls.records if self._tool_calls is not None else ()

    def settle(self) -> None:
        """Its turn can no longer go on: its tools that change things may run."""
        self._settled.set()

    def commit(self) -> None:
        """Let the reply play and its text reach the client."""
        self.held = False
        self._committed.set()
        self.tools.playout.release(self.reply_id)
        events, self._held_events = self._held_events, []
        for event in events:
            self.emit(event)

    async def run(self) -> None:
        """Produce the whole reply into playout; raises the first failure."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._write())
                group.create_task(self._speak(self._chunks))
        except BaseExceptionGroup as group:
            raise group.exceptions[0] from None  # the first failure is the one to report
        self.tools.playout.end(self.reply_id)

    async def _write(self) -> None:
        try:
            async for delta in self._agent_text():
                self._say(delta)
            self._flush()
            self.progress("written", self.spoken_text, self.tool_records)
        finally:
            self._chunks.put_nowait(None)

    def _say(self, delta: str) -> None:
        if not self.spoken_text:
            self.progress("agent_first_text", "", ())
        self.spoken_text += delta
        self._send(AgentText(delta=delta))
        for chunk in self._chunker.push(delta):
            self._chunks.put_nowait(chunk)

    def _flush(self) -> None:
        for chunk in self._chunker.flush():
            self._chunks.put_nowait(chunk)

    def _filler(self) -> None:
        """Said while a tool is slow: what the agent said before the call goes first, whole."""
        self._flush()
        separator = " " if self.spoken_text and not self.spoken_text.endswith(" ") else ""
        self._say(separator + self.tools.filler_text + " ")
        self._flush()

    def _agent_text(self) -> AsyncIterator[str]:
        if self.verbatim:
            return _one(self.text)
        if not self.text.strip():
            return _one(NOT_HEARD)
        agent = self.tools.agent
        tools: TurnTools = self._tool_calls or NoTools()
        return self._agent_deltas(_blamed(agent.respond(self.history, self.text, tools), agent.name), agent.name)

    async def _agent_deltas(self, deltas: AsyncIterator[str], provider: str) -> AsyncIterator[str]:
        """Each delta within the agent's deadline, the time its tool calls take not counted (each tool is
        bounded by its own timeout, and the filler speaks for a slow one)."""
        while True:
            try:
                async with asyncio.timeout(None if self._tools_busy else self.tools.deadlines.agent_s) as wait:
                    self._agent_wait = wait
                    delta = await anext(deltas)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise ProviderTimeout(provider) from None
            finally:
                self._agent_wait = None
            yield delta

    def _pace(self, busy: bool) -> None:
        self._tools_busy = busy
        if self._agent_wait is not None:
            when = None if busy else asyncio.get_running_loop().time() + self.tools.deadlines.agent_s
            self._agent_wait.reschedule(when)

    async def _speak(self, chunks: asyncio.Queue[str | None]) -> None:
        """TTS in reply order; silence trimmed and audio resampled once, as one stream per reply."""
        tts, playout = self.tools.tts, self.tools.playout
        shaper: _Shaper | None = None
        lead = True
        while (chunk := await chunks.get()) is not None:
            synthesis = _blamed(tts.synthesize(chunk, lead=lead), tts.name)
            async for pcm in _within(synthesis, self.tools.deadlines.tts_s, tts.name):
                shaper = shaper or _Shaper(pcm.rate)
                audio = await self.tools.compute.run(_priority(lead), functools.partial(shaper.shape, pcm))
                if lead:
                    self.progress("tts_first_audio", "", ())
                    lead = False
                playout.push(self.reply_id, audio, pcm.text)
        if shaper is not None:
            playout.push(self.reply_id, await self.tools.compute.run(Priority.TTS, shaper.last), "")


    def _send(self, event: ServerEvent) -> None:
        if self.held:
            self._held_events.append(event)
        else:
            self.emit(event)


class _Shaper:
    """Trims a reply's TTS silence and resamples it to 48 kHz, keeping state across its chunks."""

    def __init__(self, rate: int) -> None:
        self._resampler = OutboundResampler(rate)
        # No lead-in: the reply's first frame sent is its first with sound, so the moment the gateway
        # counts as first audio is the moment the caller starts to hear it.
        self._trimmer = SilenceTrimmer(rate, lead_ms=0)

    def shape(self, chunk: PcmChunk) -> Pcm:
        return self._resampler.convert(self._trimmer.push(chunk.samples))

    def last(self) -> Pcm:
        return self._resampler.convert(self._trimmer.end(), last=True)


def _priority(lead: bool) -> Priority:
    return Priority.FIRST_TTS if lead else Priority.TTS


async def _blamed(iterator: AsyncIterator[T], provider: str) -> AsyncIterator[T]:
    """`iterator`, with any failure that is not already a ProviderError (an ONNX or engine error, a bug in
    a plug-in) turned into one that names the provider."""
    try:
        async for item in iterator:
            yield item
    except Exception as exc:
        raise ProviderError.wrap(exc, provider)  # noqa: B904 (wrap() keeps the cause)


async def _one(text: str) -> AsyncIterator[str]:
    yield text
