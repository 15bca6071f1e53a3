"""What a tool is, and what a call knows of the session it runs for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from alice_voice.tools.call_control import CallControl
from alice_voice.tools.spec import ToolSpec
from alice_voice.tools.timers import SessionTimers


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a call knows of the session it runs for; `call` only in a phone call."""

    session_id: str
    timers: SessionTimers
    call: CallControl | None = None


class Tool(Protocol):
    @property
    def spec(self) -> ToolSpec: ...

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> str:
        """The result as text for the model; raise `ToolError` for a clear failure."""
        ...
