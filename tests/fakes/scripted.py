"""Scripted providers for the virtual-clock session harness: they satisfy the provider protocols with
no model, no thread and no network, and do exactly what a test tells them.

Speech is a code, not a sound: `ScriptedVoice` fills each utterance's 20 ms frames with a constant level
(1000 + the utterance's number), so the VAD is a loudness threshold and the recognizer can tell, from the
samples it was pushed, which utterance's words it has heard and how many of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from alice_voice.audio.frames import Pcm
from alice_voice.compute import Priority
from alice_voice.conversation.agents import Message, TurnTools
from alice_voice.errors import ProviderError
from alice_voice.speech.protocols import PcmChunk, Transcript
from alice_voice.tools import ToolOutcome

T = TypeVar("T")
RATE = 16_000
FRAME = 320  # 20 ms
SPEECH_LEVEL = 1000


class InlineCompute:
    """A `JobRunner` that runs each job at once, in the caller, and records its priority."""

    def __init__(self) -> None:
        self.priorities: list[Priority] = []

    async def run(self, priority: Priority, fn: Callable[[], T], *, key: Hashable | None = None) -> T:
        self.priorities.append(priority)
        return fn()


@dataclass
class _Utterance:
    words: list[str]
    samples: int


class ScriptedVoice:
    """Turns text into coded "speech" the scripted recognizer can read back."""

    def __init__(self) -> None:
        self.utterances: list[_Utterance] = []

    def speak(self, text: str, ms: int) -> Pcm:
        code = SPEECH_LEVEL + len(self.utterances)
        samples = ms * RATE // 1000
        self.utterances.append(_Utterance(text.split(), samples))
        return np.full(samples, code, np.int16)

    def heard(self, pcm: Pcm) -> str:
        """The words of every utterance in `pcm`, each cut in proportion to how much of it is there."""
        spoken = pcm[(pcm >= SPEECH_LEVEL) & (pcm < SPEECH_LEVEL + len(self.utterances))]
        codes, counts = np.unique(spoken, return_counts=True)
        words: list[str] = []
        for code, count in sorted(zip(codes.tolist(), counts.tolist(), strict=True)):
            utterance = self.utterances[code - SPEECH_LEVEL]
            words += utterance.words[:round(len(utterance.words) * min(1.0, count / utterance.samples))]
        return " ".join(words)


class ScriptedVad:
    """Speech where most of the frame is loud: probability 0.95, else 0.02."""

    frame_samples = 512
    name = "scripted-vad"

    def __init__(self) -> None:
        self.closed = False

    def stream(self) -> ScriptedVad:
        return self

    def prob(self, frame: Pcm) -> float:
        return 0.95 if float((np.abs(frame.astype(np.int32)) > 200).mean()) > 0.5 else 0.02

    def reset(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


class ScriptedEndOfTurn:
    """Answers from `answers` in turn (the last one repeats; an exception is raised, as a broken model
    would); records the audio length of each question."""

    name = "scripted-eot"

    def __init__(self, *answers: float | Exception) -> None:
        self.answers = list(answers) or [1.0]
        self.asked: list[int] = []

    def prob_complete(self, turn_audio_16k: Pcm) -> float:
        self.asked.append(len(turn_audio_16k))
        answer = self.answers[min(len(self.asked), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


@dataclass
class ScriptedAsrStream:
    voice: ScriptedVoice
    partial_every: int
    fail_with: Exception | None = None
    pushed: list[Pcm] = field(default_factory=list)
    closed: bool = False
    _count: int = 0
    _next_partial: int = 0
    _out: asyncio.Queue[Transcript | Exception | None] = field(default_factory=asyncio.Queue)

    def push(self, pcm16k: Pcm) -> None:
        self.pushed.append(pcm16k)
        self._count += len(pcm16k)
        if self.fail_with is not None:
            self._out.put_nowait(self.fail_with)
            self.fail_with = None
        elif self._count >= self._next_partial:
            self._next_partial = self._count + self.partial_every
            text = self._text()
            if text:
                self._out.put_nowait(Transcript(text, text, final=False, samples=self._count))

    def finish(self) -> None:
        text = self._text()
        self._out.put_nowait(Transcript(text, text, final=True, samples=self._count))

    def _text(self) -> str:
        return self.voice.heard(np.concatenate(self.pushed)) if self.pushed else ""

    def __aiter__(self) -> AsyncIterator[Transcript]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Transcript]:
        while (item := await self._out.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item

    async def aclose(self) -> None:
        self.closed = True
        self._out.put_nowait(None)


class ScriptedAsr:
    """Opens streams that read `voice`'s coded speech; a partial every `partial_ms` of audio."""

    name = "scripted-asr"

    def __init__(self, voice: ScriptedVoice, partial_ms: int = 160) -> None:
        self.voice = voice
        self.partial_every = partial_ms * RATE // 1000
        self.streams: list[ScriptedAsrStream] = []
        self.fail_next: Exception | None = None

    def stream(self) -> ScriptedAsrStream:
        stream = ScriptedAsrStream(self.voice, self.partial_every, self.fail_next)
        self.fail_next = None
        self.streams.append(stream)
        return stream


class ScriptedAgent:
    """Replies `replies[text]` (default: "You said <text>."), streamed word by word; records every call.

    `tool_calls[text]`: (tool, JSON arguments) to call first, in order, as a model would; their outcomes
    are kept in `outcomes`, and the default reply is then their results joined."""

    name = "scripted-agent"

    def __init__(self, replies: dict[str, str] | None = None,
                 tool_calls: dict[str, list[tuple[str, str]]] | None = None) -> None:
        self.replies = replies or {}
        self.tool_calls = tool_calls or {}
        self.calls: list[tuple[str, list[Message]]] = []
        self.outcomes: list[ToolOutcome] = []
        self.fail_next: Exception | None = None

    async def respond(self, history: Sequence[Message], text: str, tools: TurnTools) -> AsyncIterator[str]:
        self.calls.append((text, list(history)))
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        results = []
        for n, (name, arguments) in enumerate(self.tool_calls.get(text, [])):
            outcome = await tools.call(f"call_{len(self.calls)}_{n}", name, arguments)
            self.outcomes.append(outcome)
            results.append(outcome.result)
        reply = self.replies.get(text, " ".join(results) if results else f"You said {text}.")
        for i, word in enumerate(reply.split()):
            yield word if i == 0 else f" {word}"


class ScriptedTts:
    """`ms_per_word` of a constant 48 kHz level per word of each sentence, one chunk per sentence."""

    name = "scripted-tts"
    rate = 48_000

    def __init__(self, ms_per_word: int = 200) -> None:
        self.ms_per_word = ms_per_word
        self.calls: list[tuple[str, bool]] = []
        self.fail_next: Exception | None = None
        self.hold: asyncio.Event | None = None  # if set, synthesis waits for it (a slow engine)

    async def synthesize(self, text: str, *, lead: bool = False) -> AsyncIterator[PcmChunk]:
        self.calls.append((text, lead))
        if self.hold is not None:
            await self.hold.wait()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        samples = len(text.split()) * self.ms_per_word * self.rate // 1000
        yield PcmChunk(np.full(samples, 3000, np.int16), self.rate, text)


SOUND_FRAME = np.full(960, 1000, np.int16)
_FRAME_48K = 960


class ScriptedFrames:
    """A frame source for a pacer: silence until `sound` is set (`play` also says it is playable); then
    that frame."""

    def __init__(self) -> None:
        self.sound: Pcm | None = None
        self.playable = asyncio.Event()
        self.fail = False

    def next_frame(self, sent_at: float) -> Pcm:
        if self.fail:
            raise RuntimeError("a defect in the source")
        return self.sound if self.sound is not None else np.zeros(_FRAME_48K, np.int16)

    def confirm_played(self, frames: int) -> None:
        return None

    def play(self, sound: Pcm = SOUND_FRAME) -> None:
        self.sound = sound
        self.playable.set()



def provider_error(message: str = "scripted failure") -> ProviderError:
    return ProviderError("scripted", message)

