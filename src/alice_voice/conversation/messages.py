"""What was said in the conversation, as the agent is given it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from alice_voice.tools.spec import ToolOutcome


@dataclass(frozen=True, slots=True)
class Message:
    """`tool_calls`: what the assistant did before saying `content` (kept even when nothing was heard)."""

    role: Literal["user", "assistant", "system"]  # system: what the agent is told, never said (a call's brief)
    content: str
    tool_calls: tuple[ToolOutcome, ...] = ()
