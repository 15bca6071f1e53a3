"""The turn state machine: events in, actions out. Pure: no I/O, no clock, no audio.

    listening ──speech──▶ user_speaking ──turn ended──▶ thinking ──first audio──▶ speaking ──done──▶ listening
                             ▲    │ silence: finish ASR (speculative final)                     │
                             │    │ final ready: start the reply, held (speculative)            │
                             │    │ speech resumed: cancel the held reply                       │
                             └────┴─────────────── speech while thinking/speaking: barge-in ◀───┘

The reply may be prepared while the end of turn is still being confirmed; it is committed (allowed to
play) only once the turn has ended, and cancelled if the user goes on talking.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class TurnState(StrEnum):
    LISTENING = "listening"
    USER_SPEAKING = "user_speaking"
    THINKING = "thinking"
    SPEAKING = "speaking"


CancelReason = Literal["barge_in", "stop_request", "speech_resumed", "superseded"]


@dataclass(frozen=True, slots=True)
class OpenAsr:
    """Start a new utterance (with the pre-roll)."""


@dataclass(frozen=True, slots=True)
class FinishAsr:
    """Ask for a final of the audio so far; speculative until the turn ends."""


@dataclass(frozen=True, slots=True)
class StartReply:
    text: str
    committed: bool


@dataclass(frozen=True, slots=True)
class CommitReply:
    """The held reply may play; the user's turn is final."""

    text: str


@dataclass(frozen=True, slots=True)
class CancelReply:
    reason: CancelReason


Action = OpenAsr | FinishAsr | StartReply | CommitReply | CancelReply
ReplyPhase = Literal["none", "held", "committed"]


class TurnMachine:
    """Tracks one session's turn and its reply; each method returns the actions to carry out, in order."""

    def __init__(self) -> None:
        self.state = TurnState.LISTENING
        self.reply: ReplyPhase = "none"
        self._final: str | None = None  # the latest final for the current utterance, if any
        self._turn_ended = False

    def speech_started(self) -> list[Action]:
        actions: list[Action] = []
        if self.reply != "none":
            actions.append(CancelReply("barge_in" if self.reply == "committed" else "superseded"))
        self.reply, self._final, self._turn_ended = "none", None, False
        self.state = TurnState.USER_SPEAKING
        return [*actions, OpenAsr()]

    def silence_started(self) -> list[Action]:
        return [FinishAsr()] if self.state is TurnState.USER_SPEAKING else []

    def speech_resumed(self) -> list[Action]:
        if self.state is not TurnState.USER_SPEAKING:
            return []
        self._final = None
        if self.reply == "held":
            self.reply = "none"
            return [CancelReply("speech_resumed")]
        return []

    def final_ready(self, text: str) -> list[Action]:
        """A final for everything heard so far (the caller drops stale finals)."""
        if self.state is not TurnState.USER_SPEAKING and not (self.state is TurnState.THINKING and
                                                               self.reply == "none"):
            return []
        self._final = text
        if self._turn_ended:
            return self._commit_new(text)
        if self.reply == "none":
            self.reply = "held"
            return [StartReply(text, committed=False)]
        return []

    def turn_ended(self) -> list[Action]:
        if self.state is not TurnState.USER_SPEAKING:
            return []
        self.state, self._turn_ended = TurnState.THINKING, True
        if self.reply == "held" and self._final is not None:
            self.reply = "committed"
            return [CommitReply(self._final)]
        if self._final is not None:
            return self._commit_new(self._final)
        return []  # waiting for the final decode

    def text_turn(self, text: str) -> list[Action]:
        actions: list[Action] = []
        if self.reply != "none":
            actions.append(CancelReply("barge_in" if self.reply == "committed" else "superseded"))
        self.state, self._turn_ended, self._final = TurnState.THINKING, True, text
        return [*actions, *self._commit_new(text)]

    def reply_audio_started(self) -> None:
        if self.reply == "committed":
            self.state = TurnState.SPEAKING

    def reply_finished(self) -> None:
        """The reply played out, failed, or had nothing to say."""
        if self.reply == "committed":
            self.reply, self.state = "none", TurnState.LISTENING

    def stop_requested(self) -> list[Action]:
        if self.reply != "committed":
            return []
        self.reply, self.state = "none", TurnState.LISTENING
        return [CancelReply("stop_request")]

    def _commit_new(self, text: str) -> list[Action]:
        self.reply = "committed"
        return [StartReply(text, committed=True), CommitReply(text)]
