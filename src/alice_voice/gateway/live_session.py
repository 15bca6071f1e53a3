"""One live session as its owner process holds it: its record (written back in bursts), the port its
conversation reports through, and the transport, conversation and tasks the gateway runs and ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alice_voice.conversation.events import ErrorEvent, ServerEvent
from alice_voice.conversation.session.ports import Conversation
from alice_voice.logs import SessionLogger
from alice_voice.metrics import Metrics
from alice_voice.state.store import SessionRecord
from alice_voice.tools.call_control import LineAbilities
from alice_voice.transport.phone_line import PhoneLine
from alice_voice.transport.session_transport import EventSink, SessionTransport


class RecordWriter:
    """A session's record as its owner sees it; changes are coalesced into one store write per burst."""

    def __init__(self, record: SessionRecord) -> None:
        self.record = record
        self.dirty = asyncio.Event()

    def update(self, **changes: Any) -> None:
        self.record = self.record.model_copy(update={**changes, "updated_at": time.time()})
        self.dirty.set()


class RecordingPort:
    """The conversation's side of its session (`SessionPort`): events to the client, state to the record."""

    def __init__(self, events: EventSink, writer: RecordWriter, metrics: Metrics,
                 on_turn: Callable[[dict[str, float]], None], on_end: Callable[[str, str], None],
                 line: PhoneLine | None = None) -> None:
        self._events, self._writer, self._metrics, self._on_turn = events, writer, metrics, on_turn
        self._on_end, self._line = on_end, line

    @property
    def phone_line(self) -> LineAbilities | None:
        return self._line.abilities if self._line is not None else None

    def emit(self, event: ServerEvent) -> None:
        if isinstance(event, ErrorEvent):
            self._metrics.errors_total.labels(code=event.code).inc()
        self._events.send(event.to_dict())

    def set_state(self, state: str) -> None:
        self._writer.update(state=state)

    def turn_done(self, timings: dict[str, float]) -> None:
        self._writer.update(turn_count=self._writer.record.turn_count + 1, last_turn=timings)
        self._on_turn(timings)

    def end(self, reason: str, transfer_to: str = "") -> None:
        self._on_end(reason, transfer_to)


@dataclass
class LiveSession:
    writer: RecordWriter
    transport: SessionTransport
    conversation: Conversation
    log: SessionLogger
    answered_at: float
    line: PhoneLine | None = None  # a phone call's line (hang up, transfer), beside its media
    runner: asyncio.Task[None] | None = None  # the session's own task group, once it runs
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    recorded: bool = False  # its record was created (housekeeping leaves offers in flight alone)
    closing: bool = False

    @property
    def record(self) -> SessionRecord:
        return self.writer.record

    @property
    def id(self) -> str:
        return self.record.session_id
