"""The Agent interface: conversation history and the user's text in, streamed reply text out; the tools
it may call come with each turn (`TurnTools`), since whether a call may run yet depends on the turn."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from alice_voice.config import Settings
from alice_voice.conversation.messages import Message
from alice_voice.tools import ToolOutcome, ToolSpec

__all__ = ["Agent", "Message", "NoTools", "TurnTools", "load_agent"]


class TurnTools(Protocol):
    """The tools of this turn. `call` never raises but for cancellation: a failure is an error result.
    A tool that changes things waits inside `call` until the turn is certain (the user has finished)."""

    @property
    def specs(self) -> Sequence[ToolSpec]: ...

    async def call(self, call_id: str, name: str, arguments: str) -> ToolOutcome: ...


class NoTools:
    specs: Sequence[ToolSpec] = ()

    async def call(self, call_id: str, name: str, arguments: str) -> ToolOutcome:
        return ToolOutcome(call_id, name, arguments, "unknown", f"Error: there is no tool called {name!r}.", 0.0)


class Agent(Protocol):
    """`respond` streams text deltas; cancel by closing the iterator. Failures raise `ProviderError`."""

    name: str

    def respond(self, history: Sequence[Message], text: str, tools: TurnTools) -> AsyncIterator[str]: ...


_AGENTS = {"local": "local", "openai": "openai_compatible"}


def load_agent(settings: Settings) -> Agent:
    """The configured agent, built once per process (agents keep no per-session state)."""
    module = importlib.import_module(f"alice_voice.conversation.agents.{_AGENTS[settings.agent]}")
    agent: Agent = module.load(settings)
    return agent
