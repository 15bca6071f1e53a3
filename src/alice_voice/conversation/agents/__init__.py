"""The Agent interface: conversation history and the user's text in, streamed reply text out."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from alice_voice.config import Settings


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["user", "assistant"]
    content: str


class Agent(Protocol):
    """`respond` streams text deltas; cancel by closing the iterator. Failures raise `ProviderError`."""

    name: str

    def respond(self, history: Sequence[Message], text: str) -> AsyncIterator[str]: ...


_AGENTS = {"local": "local", "openai": "openai_compatible"}


def load_agent(settings: Settings) -> Agent:
    """The configured agent, built once per process (agents keep no per-session state)."""
    module = importlib.import_module(f"alice_voice.conversation.agents.{_AGENTS[settings.agent]}")
    agent: Agent = module.load(settings)
    return agent
