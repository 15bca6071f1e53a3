"""The conversation's history: what each side said, as the agent is given it. Pure.

A place in the history is taken by the id of the message before it (`mark()`), not by its index: the
history keeps only its last `max_messages`, and trimming the front moves every index, while an id stays.
A reply cut over the caller's next words goes back where it was cut, before those words, however long
the conversation has been; a turn repaired after a pause read as an end drops what followed its place.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from alice_voice.conversation.messages import Message

Place = int | None
"""After the message with this id (None: before every message)."""


@dataclass(frozen=True, slots=True)
class _Entry:
    id: int
    message: Message


class History:
    def __init__(self, max_messages: int) -> None:
        self._max = max_messages
        self._entries: list[_Entry] = []
        self._ids = itertools.count(1)

    @property
    def messages(self) -> tuple[Message, ...]:
        return tuple(entry.message for entry in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def mark(self) -> Place:
        """The place after the last message."""
        return self._entries[-1].id if self._entries else None

    def before(self, message_id: int | None) -> tuple[Message, ...]:
        """The messages before the one with `message_id` (all of them for None, or if it is gone)."""
        for index, entry in enumerate(self._entries):
            if entry.id == message_id:
                return tuple(e.message for e in self._entries[:index])
        return self.messages

    def append(self, message: Message) -> int:
        """Add `message` at the end; returns its id."""
        return self._put(len(self._entries), message)

    def insert(self, place: Place, message: Message) -> None:
        """Put `message` at a place marked earlier (a cut reply, where it was cut)."""
        self._put(self._index_after(place), message)

    def _put(self, index: int, message: Message) -> int:
        entry = _Entry(next(self._ids), message)
        self._entries.insert(index, entry)
        del self._entries[:-self._max]
        return entry.id

    def drop_from(self, message_id: int) -> None:
        """Forget the message with `message_id` and everything after it (the caller's turn goes on: it and
        what followed it are void). What was put before it, even later (the heard part of a reply cut just
        before it, inserted where it was cut), stays."""
        for index, entry in enumerate(self._entries):
            if entry.id == message_id:
                del self._entries[index:]
                return
        if self._entries and message_id < self._entries[0].id:  # trimmed off the front: all came after it
            self._entries.clear()

    def _index_after(self, place: Place) -> int:
        if place is None:
            return 0
        for index, entry in enumerate(self._entries):
            if entry.id == place:
                return index + 1
        # Gone: trimmed off the front (older than every message kept: the front), or dropped with a
        # repaired turn (newer than some: the end).
        return 0 if self._entries and place < self._entries[0].id else len(self._entries)
