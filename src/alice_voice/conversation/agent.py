"""The Agent interface: conversation history and the user's text in, streamed reply text out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["user", "assistant"]
    content: str


class Agent(Protocol):
    """`respond` streams text deltas; cancel by closing the iterator. Failures raise `ProviderError`."""

    name: str

    def respond(self, history: Sequence[Message], text: str) -> AsyncIterator[str]: ...
