"""Provider interfaces (typing.Protocol). The pipeline sees only these, never a concrete provider.

Models are loaded once per process (`load()` in the registry); each session opens cheap per-stream
objects from them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from alice_voice.audio.frames import Pcm


# ---------- VAD ----------
class VadStream(Protocol):
    """Stateful per-session detector over fixed 16 kHz frames of `frame_samples` samples. Blocking; the
    session calls it from its hearing job, one frame at a time."""

    frame_samples: int

    def prob(self, frame: Pcm) -> float: ...

    def reset(self) -> None: ...

    def close(self) -> None:
        """Give the detector back to its model; the stream is unusable afterwards."""
        ...


class VadModel(Protocol):
    name: str

    def stream(self) -> VadStream: ...


# ---------- end of turn ----------
class EndOfTurnModel(Protocol):
    """Blocking CPU call; the caller runs it through the inference scheduler."""

    name: str

    def prob_complete(self, turn_audio_16k: Pcm) -> float: ...


class TextCompleteness(Protocol):
    """Whether words read as a finished utterance, from the words alone (a fast pure call)."""

    name: str

    def prob_complete(self, text: str) -> float: ...


# ---------- ASR ----------
@dataclass(frozen=True, slots=True)
class Transcript:
    """A hypothesis for the utterance so far.

    `stable_text` is the prefix of `text` that later hypotheses are not expected to change.
    `samples` is how many 16 kHz samples of pushed audio the hypothesis covers; a final answers the
    `finish()` call that was made when exactly that many samples had been pushed. `grounded_text` (a
    final's) is `text` less the trailing words the audio does not hold: a recognizer finishes the sentence it
    hears ("set a timer for" comes out "set a timer for it."), and the end of a turn must read only the words
    that were said; None where the recognizer cannot tell.
    """

    text: str
    stable_text: str
    final: bool
    samples: int
    grounded_text: str | None = None


class AsrStream(Protocol):
    """One utterance. `push` 16 kHz int16 audio; `finish` asks for a final of everything pushed so far.

    `finish` may be speculative: if more audio is pushed afterwards the utterance goes on, and a later
    `finish` yields a new final covering it all. Iterate for partials and finals; a provider failure is
    raised from the iterator as `ProviderError`.
    """

    def push(self, pcm16k: Pcm) -> None: ...

    def finish(self) -> None: ...

    def __aiter__(self) -> AsyncIterator[Transcript]: ...

    async def aclose(self) -> None: ...


class StreamingAsr(Protocol):
    name: str

    def stream(self) -> AsrStream: ...


# ---------- TTS ----------
@dataclass(frozen=True, slots=True)
class PcmChunk:
    """Synthesized mono int16 audio at `rate`; `text` is what it says (used to truncate on barge-in)."""

    samples: Pcm
    rate: int
    text: str


class StreamingTts(Protocol):
    name: str

    def synthesize(self, text: str, *, lead: bool = False) -> AsyncIterator[PcmChunk]:
        """Audio for `text`, first chunk as early as possible. Cancel by closing the iterator.

        `lead`: this is the start of a reply, which the caller is waiting to hear (an engine that runs on
        this machine's CPU synthesizes its first sentence at a higher priority; a remote one ignores it).
        """
        ...
