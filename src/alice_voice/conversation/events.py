"""DataChannel `events` (DESIGN.md section 4): one class per server event type; client messages parsed.

Server events serialize as {"type": ..., "t": <server wall-clock ms>, ...fields}; `t` is stamped when the
event is serialized for sending, so building an event reads no clock.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from alice_voice.clock import wall_ms
from alice_voice.errors import InvalidMessage

MAX_CLIENT_MESSAGE_BYTES = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerEvent:
    type: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "t": wall_ms(), **asdict(self)}


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionReady(ServerEvent):
    type: ClassVar[str] = "session.ready"
    session_id: str
    mode: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStarted(ServerEvent):
    type: ClassVar[str] = "vad.speech_started"


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStopped(ServerEvent):
    type: ClassVar[str] = "vad.speech_stopped"


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptPartial(ServerEvent):
    type: ClassVar[str] = "transcript.partial"
    text: str
    stable: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptFinal(ServerEvent):
    type: ClassVar[str] = "transcript.final"
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentText(ServerEvent):
    type: ClassVar[str] = "agent.text"
    delta: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TtsStarted(ServerEvent):
    type: ClassVar[str] = "tts.started"


@dataclass(frozen=True, slots=True, kw_only=True)
class TtsStopped(ServerEvent):
    type: ClassVar[str] = "tts.stopped"
    reason: Literal["done", "barge_in", "stop_request", "error"]
    heard: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Backchannel(ServerEvent):
    """The caller acknowledged ("mm-hmm", "okay") over the reply, which goes on: not a turn."""

    type: ClassVar[str] = "backchannel"
    text: str
    duration_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnStateChanged(ServerEvent):
    """The conversation's state, on every change: listening, user_speaking, thinking, speaking, paused."""

    type: ClassVar[str] = "turn.state"
    state: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallScreened(ServerEvent):
    """Who answered an outbound call (`answered_by`: human or machine), judged from their first words
    `decided_ms` after the call was answered."""

    type: ClassVar[str] = "call.screened"
    answered_by: str
    decided_ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEnding(ServerEvent):
    """The gateway is closing the session of its own accord (`reason`: "idle")."""

    type: ClassVar[str] = "session.ending"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolStarted(ServerEvent):
    """A tool call began (after waiting for the turn to be certain, for a tool that changes things).
    `arguments` only with LOG_CONTENT."""

    type: ClassVar[str] = "tool.started"
    call_id: str
    name: str
    arguments: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolFinished(ServerEvent):
    """`outcome`: ok, error, invalid, unknown, timeout or cancelled. `result` only with LOG_CONTENT."""

    type: ClassVar[str] = "tool.finished"
    call_id: str
    name: str
    outcome: str
    duration_ms: float
    result: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnMetrics(ServerEvent):
    type: ClassVar[str] = "turn.metrics"
    turn: int
    timings: dict[str, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorEvent(ServerEvent):
    type: ClassVar[str] = "error"
    code: str
    message: str


class StopTtsMessage(BaseModel):
    type: Literal["stop_tts"]


class TextMessage(BaseModel):
    type: Literal["text"]
    text: str = Field(min_length=1, max_length=2000)


class DtmfMessage(BaseModel):
    """A key of the caller's keypad: to a digit collection waiting for it, else a typed turn."""

    type: Literal["dtmf"]
    digit: str = Field(pattern=r"^[0-9*#A-D]$")


ClientMessage = Annotated[StopTtsMessage | TextMessage | DtmfMessage, Field(discriminator="type")]
_client_adapter: TypeAdapter[StopTtsMessage | TextMessage | DtmfMessage] = TypeAdapter(ClientMessage)


def parse_client_message(raw: str | bytes) -> StopTtsMessage | TextMessage | DtmfMessage:
    """Validate one client DataChannel message; raises InvalidMessage naming the problem."""
    if len(raw) > MAX_CLIENT_MESSAGE_BYTES:
        raise InvalidMessage(f"message too large ({len(raw)} bytes, limit {MAX_CLIENT_MESSAGE_BYTES})")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidMessage("message is not JSON") from None
    except RecursionError:
        raise InvalidMessage("message is nested too deeply") from None
    if not isinstance(data, dict) or "type" not in data:
        raise InvalidMessage("message must be a JSON object with a 'type'")
    try:
        return _client_adapter.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidMessage(f"invalid message ({where}): {first['msg']}") from None
