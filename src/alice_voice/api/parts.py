"""The parts of this process the API reaches (`app.state.parts`), built once by `create_app`."""

from __future__ import annotations

from dataclasses import dataclass

from alice_voice.config import Settings
from alice_voice.gateway import AgentRuntime, Drain, Gateway, Housekeeping, SessionControl, Transports


@dataclass(frozen=True)
class Parts:
    settings: Settings
    gateway: Gateway  # the sessions
    drain: Drain
    housekeeping: Housekeeping
    control: SessionControl
    runtime: AgentRuntime
    transports: Transports
