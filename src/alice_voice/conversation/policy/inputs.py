"""What the turn policy is told: one typed input per thing that happened, each stamped with `at`, when it
happened on the session's clock (the policy never reads a clock). `PlayoutMark` is the playout's `Mark`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from alice_voice.audio.marks import Mark as PlayoutMark
from alice_voice.errors import AliceError
from alice_voice.tools.call_control import CallEnding
from alice_voice.tools.spec import ToolOutcome

__all__ = [
    "Announce",
    "AsrFailed",
    "BeepHeard",
    "Brief",
    "CallEndRequested",
    "EndOfTurnAnswer",
    "Heard",
    "Input",
    "PlayoutMark",
    "ReminderDue",
    "ReplyCut",
    "ReplyFailed",
    "ReplyProgress",
    "Screen",
    "StopRequested",
    "TextIn",
    "TranscriptIn",
]


@dataclass(frozen=True, slots=True)
class Heard:
    """The VAD's verdict on frame `index` (counted from the session's start), which arrived at `arrival`.

    `loudness`: the RMS of each equal sub-block of what the VAD heard (the frame less any echo).
    """

    index: int
    arrival: float
    prob: float
    loudness: tuple[float, ...]
    at: float


@dataclass(frozen=True, slots=True)
class TranscriptIn:
    """A hypothesis from ASR stream `stream`, covering its first `samples` pushed samples. A final carries
    `complete`: P(its words are a finished sentence), read from the words the audio holds (the completeness
    model); None for a partial, or a final with no words."""

    stream: int
    text: str
    stable: str
    final: bool
    samples: int
    at: float
    complete: float | None = None


@dataclass(frozen=True, slots=True)
class AsrFailed:
    stream: int
    error: AliceError
    at: float


@dataclass(frozen=True, slots=True)
class EndOfTurnAnswer:
    """The end-of-turn model's answer; `prob` is None when it failed to answer."""

    ask_id: int
    prob: float | None
    at: float


@dataclass(frozen=True, slots=True)
class ReplyProgress:
    """A reply reached a stage: its agent's first text, its TTS's first audio, or all its text written."""

    reply_id: int
    stage: Literal["agent_first_text", "tts_first_audio", "written"]
    at: float
    text: str = ""  # for "written": everything the agent said
    tools: tuple[ToolOutcome, ...] = ()  # for "written": the tool calls it made


@dataclass(frozen=True, slots=True)
class ReplyFailed:
    reply_id: int
    error: AliceError
    at: float


@dataclass(frozen=True, slots=True)
class ReplyCut:
    """A cut was carried out: whether the reply had started playing, and what of it was heard."""

    reply_id: int
    started: bool
    heard: str
    at: float
    tools: tuple[ToolOutcome, ...] = ()  # the calls it made before it was cut (they happened: remember them)


@dataclass(frozen=True, slots=True)
class TextIn:
    """A typed turn from the client."""

    text: str
    at: float


@dataclass(frozen=True, slots=True)
class StopRequested:
    """Stop speaking (the client's `stop_tts`, or a control request); `request` is answered if given."""

    request: int | None
    at: float


@dataclass(frozen=True, slots=True)
class ReminderDue:
    """A timer of the session is done: say `text` when the caller is not speaking."""

    text: str
    at: float


@dataclass(frozen=True, slots=True)
class CallEndRequested:
    """A tool of the reply being said asked to end the call (hang up, or put the caller through)."""

    ending: CallEnding
    at: float


@dataclass(frozen=True, slots=True)
class Announce:
    """Say `text` of the gateway's own accord (a call's opening line, a failed transfer), now if nobody is
    speaking, else when the caller has finished; `hang_up_after`: the call ends once it has been heard."""

    text: str
    hang_up_after: bool
    at: float


@dataclass(frozen=True, slots=True)
class Screen:
    """An outbound call the provider did not screen: the callee's first words tell a person (greeted with
    `greeting`) from an answering machine (left `voicemail` after its beep)."""

    greeting: str
    voicemail: str
    at: float


@dataclass(frozen=True, slots=True)
class BeepHeard:
    """A steady tone (an answering machine's beep) has just ended."""

    at: float


@dataclass(frozen=True, slots=True)
class Brief:
    """What the agent is told of this call before it begins (an outbound call's purpose); never said."""

    text: str
    at: float


Input = (Heard | TranscriptIn | AsrFailed | EndOfTurnAnswer | ReplyProgress | ReplyFailed | ReplyCut | PlayoutMark
         | TextIn | StopRequested | ReminderDue | CallEndRequested | Announce | Screen | BeepHeard | Brief)
