"""What the gateway needs of any transport a session runs over (WebRTC, a WebSocket): events out to the
client and its messages in, whether it connected, when and why it ended, and a bounded close."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol


class EventSink(Protocol):
    """JSON events to the client (queued until the transport can send them) and its messages back."""

    on_message: Callable[[str | bytes], None]

    def send(self, event: dict[str, Any]) -> None: ...

    async def drain(self, timeout_s: float = 1.0) -> None: ...


class SessionTransport(Protocol):
    @property
    def events(self) -> EventSink: ...

    @property
    def connected(self) -> asyncio.Event: ...

    @property
    def ended(self) -> asyncio.Event: ...

    @property
    def end_reason(self) -> str: ...

    async def close(self) -> None:
        """Stop its tasks and the connection, bounded in time; safe to call twice."""
        ...
