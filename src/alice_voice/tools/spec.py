"""What a tool says of itself (its spec), how it refuses, and what a call comes to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """`read_only`: the call changes nothing, so it may run before the turn is certain (a speculative
    reply); any other tool waits until the user has finished."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: dict(NO_ARGUMENTS))
    read_only: bool = False
    phone_only: bool = False  # offered only in a phone call (transfer, hang up, key presses)
    filler: bool = True  # a slow call gets the filler ("One moment."); not one that waits for the caller

    def openai(self) -> dict[str, Any]:
        """The `tools[]` entry of an OpenAI chat completions request."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


class ToolError(Exception):
    """A tool's own clear refusal ("no timer called pasta"): its message goes to the model as the result."""


Outcome = Literal["ok", "error", "invalid", "unknown", "timeout", "cancelled"]


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """One call as it ended: `result` is what the model reads (the error's words when not ok)."""

    call_id: str
    name: str
    arguments: str  # as the model wrote them (JSON)
    outcome: Outcome
    result: str
    duration_ms: float

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"
