"""The HTTP contract of DESIGN.md section 4."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from alice_voice.api.health import health_view
from alice_voice.api.parts import Parts
from alice_voice.api.schemas import (
    DeletedResponse,
    DrainResponse,
    ErrorResponse,
    HealthResponse,
    IceServer,
    LiveResponse,
    OfferRequest,
    OfferResponse,
    SessionView,
    StopTtsRequest,
    StopTtsResponse,
    WebRtcConfig,
)
from alice_voice.api.static_files import INDEX_HTML

router = APIRouter()
_bearer = HTTPBearer(auto_error=False, description="The session's token, or the admin key.")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 410, 413, 415, 422, 503)
}


async def parts_of(request: Request) -> Parts:  # async: no hop to the thread pool
    parts: Parts = request.app.state.parts
    return parts


PartsDep = Annotated[Parts, Depends(parts_of)]


def _token(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    return credentials.credentials if credentials else None


@router.post("/api/webrtc/offer", response_model=OfferResponse, responses=_ERRORS, tags=["webrtc"])
async def offer(body: OfferRequest, parts: PartsDep, response: Response) -> OfferResponse:
    """Open a session: the client's SDP offer in, the gateway's answer, session id and token out.

    The `Server-Timing` header carries the gateway's own offer -> answer time (`offer;dur=<ms>`).
    """
    started = time.perf_counter()
    live, peer, token = await parts.gateway.open(lambda: parts.transports.webrtc(body.sdp), body.mode)
    elapsed_ms = (time.perf_counter() - started) * 1000
    parts.gateway.metrics.offer_ms.observe(elapsed_ms)
    response.headers["Server-Timing"] = f"offer;dur={elapsed_ms:.2f}"
    return OfferResponse(sdp=peer.answer, session_id=live.id, token=token)


@router.get("/api/webrtc/config", response_model=WebRtcConfig, tags=["webrtc"])
async def webrtc_config(parts: PartsDep) -> WebRtcConfig:
    """The ICE servers a client should use: the same STUN/TURN servers as the gateway (with TURN credentials)."""
    return WebRtcConfig(ice_servers=[IceServer(urls=server.urls, username=server.username, credential=server.credential)
                                     for server in parts.transports.ice_servers])


@router.get("/api/voice/sessions/{session_id}", response_model=SessionView, responses=_ERRORS, tags=["sessions"])
async def get_session(session_id: str, parts: PartsDep, credentials: Bearer) -> SessionView:
    record = await parts.control.authorize(session_id, _token(credentials))
    return SessionView(**record.public())


@router.delete("/api/voice/sessions/{session_id}", response_model=DeletedResponse, responses=_ERRORS,
               tags=["sessions"])
async def delete_session(session_id: str, parts: PartsDep, credentials: Bearer) -> DeletedResponse:
    """End a session, on whichever gateway process owns it."""
    await parts.control.authorize(session_id, _token(credentials))
    await parts.control.delete(session_id)
    return DeletedResponse(session_id=session_id)


@router.post("/api/voice/stop-tts", response_model=StopTtsResponse, responses=_ERRORS, tags=["sessions"])
async def stop_tts(body: StopTtsRequest, parts: PartsDep, credentials: Bearer) -> StopTtsResponse:
    """Stop the session's speech (2xx also when nothing was playing, saying so)."""
    await parts.control.authorize(body.session_id, _token(credentials))
    stopped = await parts.control.stop_tts(body.session_id)
    return StopTtsResponse(session_id=body.session_id, stopped=stopped,
                           detail="stopped" if stopped else "nothing_playing")


@router.get("/health", response_model=HealthResponse, tags=["ops"], responses={503: {"model": HealthResponse}})
async def health(parts: PartsDep, response: Response) -> HealthResponse:
    """Readiness: 503 while the models or tools load (`starting`) and while the process drains
    (`draining`), so a load balancer or readiness probe sends no caller to a process that would refuse them."""
    view = await health_view(parts.gateway, parts.drain, parts.housekeeping, parts.runtime)
    if view.status in ("starting", "draining"):
        response.status_code = 503
    return view


@router.get("/health/live", response_model=LiveResponse, tags=["ops"])
async def live() -> LiveResponse:
    """Liveness: the event loop answers (a draining process is alive)."""
    return LiveResponse()


@router.post("/api/admin/drain", response_model=DrainResponse, status_code=202, responses=_ERRORS, tags=["ops"])
async def drain(parts: PartsDep, credentials: Bearer) -> DrainResponse:
    """Stop taking sessions and let the live ones finish (DRAIN_LIMIT_S); the process keeps running.
    Needs the admin key. SIGTERM does the same, then exits."""
    parts.control.require_admin(_token(credentials))
    parts.drain.start()
    return DrainResponse(sessions=len(parts.gateway.sessions), limit_s=parts.settings.drain_limit_s)


@router.get("/metrics", tags=["ops"], response_class=Response)
async def metrics(parts: PartsDep) -> Response:
    return Response(generate_latest(parts.gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(INDEX_HTML)
