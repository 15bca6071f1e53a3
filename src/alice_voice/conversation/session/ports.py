"""What a session is to the gateway (`Conversation`), what the conversation needs of the gateway
(`SessionPort`), and what every session of a process shares (`Resources`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from alice_voice.audio.frames import PcmFrame
from alice_voice.audio.playout import FrameSource
from alice_voice.clock import Clock
from alice_voice.compute import JobRunner
from alice_voice.config import Settings
from alice_voice.conversation.agents import Agent
from alice_voice.conversation.events import ServerEvent
from alice_voice.metrics import Metrics
from alice_voice.speech.registry import SpeechModels
from alice_voice.tools import Toolbox
from alice_voice.tools.call_control import LineAbilities
from alice_voice.tracing import TurnTracer


@dataclass(frozen=True, slots=True)
class CallOpening:
    """How a call this gateway placed begins: who answered, if the provider could tell (a machine gets the
    voicemail, then the call ends; a person the greeting; "unknown": the callee's first words tell), and
    what the agent is told of the call (`brief`)."""

    answered_by: Literal["human", "machine", "unknown"]
    voicemail: str
    greeting: str = ""
    brief: str = ""


class Conversation(Protocol):
    """Tone or agent. The transport pulls `source` each tick and hands in audio with `deliver_audio`;
    both only move data, so they are safe to call from a library's callback."""

    @property
    def source(self) -> FrameSource: ...

    def deliver_audio(self, frame: PcmFrame) -> None: ...

    def handle_text(self, text: str) -> None: ...

    def press_key(self, key: str) -> None:
        """A key of the caller's keypad (DTMF)."""
        ...

    def announce(self, text: str) -> None:
        """Say `text` of the gateway's own accord, when the caller is not speaking."""
        ...

    def begin_call(self, opening: CallOpening) -> None:
        """An outbound call was answered."""
        ...

    def request_stop(self) -> None:
        """Stop speaking, without waiting to hear whether anything was playing (a client message)."""
        ...

    async def stop_tts(self) -> bool:
        """Stop speaking; True if something was playing."""
        ...

    async def run(self) -> None:
        """The session's work, until cancelled; it cleans up after itself when cancelled."""
        ...

    async def aclose(self) -> None:
        """Release what `run` would have (for a session that never ran)."""
        ...


class SessionPort(Protocol):
    """The gateway's side of one session: the client's events and the session record."""

    @property
    def phone_line(self) -> LineAbilities | None:
        """The session's phone line; None when it is no phone call (a browser, a program)."""
        ...

    def emit(self, event: ServerEvent) -> None: ...

    def set_state(self, state: str) -> None: ...

    def turn_done(self, timings: dict[str, float]) -> None: ...

    def end(self, reason: str, transfer_to: str = "") -> None:
        """Close the session (the conversation is over: the caller stayed silent, and was told; or it
        hung up, or put a phone caller through to `transfer_to`)."""
        ...


@dataclass(frozen=True)
class Resources:
    """What every session shares: loaded once per process."""

    settings: Settings
    models: SpeechModels
    agent: Agent
    compute: JobRunner
    metrics: Metrics
    clock: Clock
    tools: Toolbox = field(default_factory=Toolbox)  # the process's tools (empty: the agent gets none)
    tracer: TurnTracer = field(default_factory=TurnTracer)  # no-op unless OTEL_* configured a provider
