"""Request and response bodies of the HTTP contract (DESIGN.md section 4)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_SDP_CHARS = 32 * 1024


class OfferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS, description="The client's SDP offer (non-trickle).")
    type: Literal["offer"]
    mode: Literal["agent", "tone"] | None = Field(None, description="`tone`: a 440 Hz test tone instead of the agent.")


class OfferResponse(BaseModel):
    sdp: str
    type: Literal["answer"] = "answer"
    session_id: str
    token: str = Field(description="Bearer token for /api/voice/* calls on this session.")


class IceServer(BaseModel):
    urls: str
    username: str | None = None
    credential: str | None = None


class WebRtcConfig(BaseModel):
    ice_servers: list[IceServer] = Field(description="For the browser's RTCPeerConnection (empty: none).")


class StopTtsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: str = Field(min_length=1, max_length=128)


class StopTtsResponse(BaseModel):
    session_id: str
    stopped: bool = Field(description="True if speech was playing and was stopped.")
    detail: Literal["stopped", "nothing_playing"]


class SessionView(BaseModel):
    session_id: str
    owner: str
    mode: Literal["agent", "tone"]
    transport: Literal["webrtc", "websocket", "twilio", "sip"]
    state: str
    created_at: float
    updated_at: float
    turn_count: int
    last_turn: dict[str, float] | None
    call_id: str | None = None


class LiveResponse(BaseModel):
    live: bool = True


class DrainResponse(BaseModel):
    draining: bool = True
    sessions: int = Field(description="Live sessions when the drain began.")
    limit_s: float


class DeletedResponse(BaseModel):
    session_id: str
    deleted: bool = True


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class LoadView(BaseModel):
    """What admission sees: whether this process takes another caller, and why."""

    admitting: bool
    reason: Literal["ok", "max_sessions", "latency_budget", "event_loop"]
    headroom: int = Field(description="More callers this process can admit within its latency budget.")
    predicted_first_audio_ms: float = Field(description="First-audio latency predicted with one more caller.")
    budget_ms: int
    cpu_busy: float = Field(description="Busy share of the CPUs at normal priority, recent (0-1).")
    cpu_per_session: float = Field(description="Share of the CPUs one session has been measured to use.")
    cpu_others: float = Field(description="Busy share of the CPUs taken by everything but this process.")
    critical_job_ms: float = Field(description="Mean run of a reply's critical job (end of turn, final, first "
                                   "sentence), as it would take on an idle box.")
    recent_first_audio_p95_ms: float | None = Field(description="First-audio p95 of the last 30 s of turns "
                                                    "(null with fewer than 5 turns).")
    event_loop_busy: float = Field(description="Busy share of the event loop's thread, recent (0-1).")
    event_loop_lag_p99_ms: float


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded", "starting", "draining"]
    process: str
    accepting: bool
    store: dict[str, Any]
    sessions: dict[str, int]
    load: LoadView
    models: dict[str, str] = Field(default_factory=dict)
