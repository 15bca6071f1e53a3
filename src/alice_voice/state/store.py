"""Session records and the store interface; the in-process store used when no Redis URL is set."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

SessionState = Literal["connecting", "listening", "user_speaking", "thinking", "speaking", "paused", "ended"]


def hash_token(token: str) -> str:
    """The store keeps only this digest of a session's bearer token."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, token_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), token_hash)


class SessionRecord(BaseModel):
    """What any process can read about a session (the owner process writes it)."""

    session_id: str
    owner: str = Field(description="Id of the gateway process that holds the peer connection.")
    mode: Literal["agent", "tone"]
    transport: Literal["webrtc", "websocket", "twilio", "sip"] = "webrtc"
    state: SessionState = "connecting"
    created_at: float = Field(description="Unix seconds.")
    updated_at: float = Field(description="Unix seconds.")
    turn_count: int = 0
    last_turn: dict[str, float] | None = Field(None, description="Timings (ms) of the last completed turn.")
    call_id: str | None = Field(None, description="The outbound call it carries (GET "
                                "/api/telephony/twilio/calls/{call_id}: its status and who answered).")
    token_hash: str

    def public(self) -> dict[str, Any]:
        """The record as shown to clients: everything but the token digest."""
        return self.model_dump(exclude={"token_hash"})


class CallStatus(BaseModel):
    status: str
    at: float = Field(description="Unix seconds, when this gateway heard of it.")


class OutboundCall(BaseModel):
    """A call this gateway placed: what it is for, and what Twilio has said of it since."""

    call_id: str
    call_sid: str = ""
    to: str
    greeting: str | None = None
    brief: str | None = None
    voicemail: str
    machine_detection: bool
    status: str = "queued"
    history: list[CallStatus] = Field(default_factory=list)
    answered_by: str | None = Field(None, description="Twilio's answering-machine detection: human, "
                                    "machine_end_beep, machine_end_silence, machine_end_other, fax or unknown.")
    detection_ms: float | None = None
    session_id: str | None = None
    created_at: float


CALL_TTL_S = 24 * 3600.0  # a placed call's record outlives the call: its outcome can be read afterwards


class SessionStore(Protocol):
    """Records keyed by session id, each with a TTL that the owner refreshes while the session lives.

    Every method raises `StoreUnavailable` when the backing store cannot be reached.
    """

    kind: str

    async def create(self, record: SessionRecord, ttl_s: float) -> None: ...

    async def get(self, session_id: str) -> SessionRecord | None: ...

    async def update(self, record: SessionRecord, ttl_s: float) -> None:
        """Write the record and refresh its TTL (creates it again if it had expired)."""
        ...

    async def delete(self, session_id: str) -> bool: ...

    async def ttl_s(self, session_id: str) -> float | None: ...

    async def claim(self, key: str, ttl_s: float) -> bool:
        """True for the first claim of `key` within `ttl_s`, False for every other (across processes when
        the store is shared): what makes a one-time ticket single-use."""
        ...

    async def put_call(self, call: OutboundCall) -> None: ...

    async def get_call(self, call_id: str) -> OutboundCall | None: ...

    async def ping(self) -> bool: ...

    async def aclose(self) -> None: ...


class MemoryStore:
    """In-process store: a dict with expiry times, for a single gateway process."""

    kind = "memory"

    def __init__(self) -> None:
        self._records: dict[str, tuple[SessionRecord, float]] = {}
        self._claims: dict[str, float] = {}  # key -> expiry
        self._calls: dict[str, OutboundCall] = {}

    def _live(self, session_id: str) -> SessionRecord | None:
        item = self._records.get(session_id)
        if item is None:
            return None
        if item[1] <= time.monotonic():
            del self._records[session_id]
            return None
        return item[0]

    async def create(self, record: SessionRecord, ttl_s: float) -> None:
        self._records[record.session_id] = (record.model_copy(), time.monotonic() + ttl_s)

    async def get(self, session_id: str) -> SessionRecord | None:
        record = self._live(session_id)
        return record.model_copy() if record else None

    async def update(self, record: SessionRecord, ttl_s: float) -> None:
        await self.create(record, ttl_s)

    async def delete(self, session_id: str) -> bool:
        return self._live(session_id) is not None and self._records.pop(session_id, None) is not None

    async def ttl_s(self, session_id: str) -> float | None:
        return self._records[session_id][1] - time.monotonic() if self._live(session_id) else None

    async def claim(self, key: str, ttl_s: float) -> bool:
        now = time.monotonic()
        self._claims = {k: until for k, until in self._claims.items() if until > now}
        if key in self._claims:
            return False
        self._claims[key] = now + ttl_s
        return True

    async def put_call(self, call: OutboundCall) -> None:
        oldest = time.time() - CALL_TTL_S
        self._calls = {k: c for k, c in self._calls.items() if c.created_at > oldest}
        self._calls[call.call_id] = call.model_copy(deep=True)

    async def get_call(self, call_id: str) -> OutboundCall | None:
        call = self._calls.get(call_id)
        return call.model_copy(deep=True) if call else None

    async def ping(self) -> bool:
        await asyncio.sleep(0)
        return True

    async def aclose(self) -> None:
        self._records.clear()

    def __len__(self) -> int:
        return sum(1 for sid in list(self._records) if self._live(sid))
