"""What the turn policy asks the executor to do, in order. Frame ranges are VAD frame indices [start, end)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from alice_voice.conversation.events import ServerEvent
from alice_voice.conversation.messages import Message
from alice_voice.errors import AliceError

CutReason = Literal["barge_in", "stop_request", "error", "rejoin", "speech_resumed", "superseded"]
Measurement = Literal["first_partial_ms", "first_audio_ms", "barge_in_ms", "end_of_turn_ms", "screening_ms", "turns",
                      "backchannels", "interruptions", "turn_repairs", "replies_resumed", "answered_by_human",
                      "answered_by_machine"]


@dataclass(frozen=True, slots=True)
class Emit:
    event: ServerEvent


@dataclass(frozen=True, slots=True)
class SetState:
    state: str


@dataclass(frozen=True, slots=True)
class OpenAsr:
    """Close any open stream and open stream `stream` with frames [start, end)."""

    stream: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class FeedAsr:
    stream: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class FinishAsr:
    """Ask for a final of everything fed so far (speculative until the turn ends)."""

    stream: int


@dataclass(frozen=True, slots=True)
class CloseAsr:
    stream: int


@dataclass(frozen=True, slots=True)
class AskEndOfTurn:
    """Run the end-of-turn model on the turn's audio, frames [start, end), followed by `pad_ms` more of the
    silence it ends with (asked early: that much of the pause has not come yet); a newer question replaces
    it."""

    ask_id: int
    start: int
    end: int
    pad_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class WithdrawEndOfTurn:
    """The pending question is out of date (speech resumed)."""


@dataclass(frozen=True, slots=True)
class StartReply:
    """Produce a reply to `text`; a held one prepares its audio but plays nothing until committed. Its tools
    that change things wait until it is `settled` (or a `SettleReply`)."""

    reply_id: int
    text: str
    history: tuple[Message, ...]
    held: bool
    verbatim: bool = False  # say `text` itself: the gateway's own words (an idle prompt), not the agent's
    settled: bool = False


@dataclass(frozen=True, slots=True)
class CommitReply:
    reply_id: int


@dataclass(frozen=True, slots=True)
class SettleReply:
    """The turn the reply answers can no longer go on (the rejoin window passed): its tools that change
    things may run."""

    reply_id: int


@dataclass(frozen=True, slots=True)
class CutReply:
    """Cancel the reply and drop its unplayed audio; answer with `ReplyCut`."""

    reply_id: int
    reason: CutReason


@dataclass(frozen=True, slots=True)
class PausePlayout:
    """Silence at the next tick, keeping what is queued (a barge-in not yet confirmed)."""


@dataclass(frozen=True, slots=True)
class ResumePlayout:
    pass


@dataclass(frozen=True, slots=True)
class Measure:
    name: Measurement
    value: float


@dataclass(frozen=True, slots=True)
class FinishTurn:
    """Report turn `number`'s latencies (ms): a `turn.metrics` event and the session record."""

    number: int
    timings: dict[str, float]
    marks: dict[str, float | bool | None] = field(default_factory=dict)  # the raw marks, for the trace


@dataclass(frozen=True, slots=True)
class Report:
    """A failure the client is told about (an `error` event), logged with the session id."""

    error: AliceError


@dataclass(frozen=True, slots=True)
class EndSession:
    """Close the session (its farewell has been heard); a phone call is put through to `transfer_to` first."""

    reason: str
    transfer_to: str = ""


@dataclass(frozen=True, slots=True)
class AnswerStop:
    request: int
    stopped: bool


Action = (Emit | SetState | OpenAsr | FeedAsr | FinishAsr | CloseAsr | AskEndOfTurn | WithdrawEndOfTurn | StartReply
          | CommitReply | SettleReply | CutReply | PausePlayout | ResumePlayout | Measure | FinishTurn | Report
          | AnswerStop | EndSession)
