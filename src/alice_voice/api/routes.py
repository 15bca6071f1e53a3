"""The HTTP contract of DESIGN.md section 4."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

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
from alice_voice.gateway import Gateway

router = APIRouter()
_bearer = HTTPBearer(auto_error=False, description="The session's token, or the admin key.")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 410, 413, 415, 422, 503)
}


async def gateway_of(request: Request) -> Gateway:  # async: no hop to the thread pool
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(gateway_of)]


def _token(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    return credentials.credentials if credentials else None


@router.post("/api/webrtc/offer", response_model=OfferResponse, responses=_ERRORS, tags=["webrtc"])
async def offer(body: OfferRequest, gateway: GatewayDep, response: Response) -> OfferResponse:
    """Open a session: the client's SDP offer in, the gateway's answer, session id and token out.

    The `Server-Timing` header carries the gateway's own offer -> answer time (`offer;dur=<ms>`).
    """
    started = time.perf_counter()
    record, token, answer = await gateway.open(body.sdp, body.mode)
    elapsed_ms = (time.perf_counter() - started) * 1000
    gateway.metrics.offer_ms.observe(elapsed_ms)
    response.headers["Server-Timing"] = f"offer;dur={elapsed_ms:.2f}"
    return OfferResponse(sdp=answer, session_id=record.session_id, token=token)


@router.get("/api/webrtc/config", response_model=WebRtcConfig, tags=["webrtc"])
async def webrtc_config(gateway: GatewayDep) -> WebRtcConfig:
    """The ICE servers a client should use: the same STUN/TURN servers as the gateway (with TURN credentials)."""
    return WebRtcConfig(ice_servers=[IceServer(urls=server.urls, username=server.username,
                                               credential=server.credential) for server in gateway.ice_servers])


@router.get("/api/voice/sessions/{session_id}", response_model=SessionView, responses=_ERRORS, tags=["sessions"])
async def get_session(session_id: str, gateway: GatewayDep, credentials: Bearer) -> SessionView:
    record = await gateway.authorize(session_id, _token(credentials))
    return SessionView(**record.public())


@router.delete("/api/voice/sessions/{session_id}", response_model=DeletedResponse, responses=_ERRORS,
               tags=["sessions"])
async def delete_session(session_id: str, gateway: GatewayDep, credentials: Bearer) -> DeletedResponse:
    """End a session, on whichever gateway process owns it."""
    await gateway.authorize(session_id, _token(credentials))
    await gateway.delete(session_id)
    return DeletedResponse(session_id=session_id)


@router.post("/api/voice/stop-tts", response_model=StopTtsResponse, responses=_ERRORS, tags=["sessions"])
async def stop_tts(body: StopTtsRequest, gateway: GatewayDep, credentials: Bearer) -> StopTtsResponse:
    """Stop the session's speech (2xx also when nothing was playing, saying so)."""
    await gateway.authorize(body.session_id, _token(credentials))
    stopped = await gateway.stop_tts(body.session_id)
    return StopTtsResponse(session_id=body.session_id, stopped=stopped,
                           detail="stopped" if stopped else "nothing_playing")


@router.get("/health", response_model=HealthResponse, tags=["ops"], responses={503: {"model": HealthResponse}})
async def health(gateway: GatewayDep, request: Request, response: Response) -> HealthResponse:
    """Readiness: 503 while the models load (`starting`) and while the process drains (`draining`), so a
    load balancer or readiness probe sends no caller to a process that would refuse or fail them."""
    view = await gateway.health()
    models = request.app.state.runtime.status()
    if models.get("state") == "loading" and view["status"] == "ok":
        view["status"] = "starting"
    if view["status"] in ("starting", "draining"):
        response.status_code = 503
    return HealthResponse(**view, models=models)


@router.get("/health/live", response_model=LiveResponse, tags=["ops"])
async def live() -> LiveResponse:
    """Liveness: the event loop answers (a draining process is alive)."""
    return LiveResponse()


@router.post("/api/admin/drain", response_model=DrainResponse, status_code=202, responses=_ERRORS, tags=["ops"])
async def drain(gateway: GatewayDep, credentials: Bearer) -> DrainResponse:
    """Stop taking sessions and let the live ones finish (DRAIN_LIMIT_S); the process keeps running.
    Needs the admin key. SIGTERM does the same, then exits."""
    gateway.require_admin(_token(credentials))
    gateway.start_draining()
    return DrainResponse(sessions=len(gateway.sessions), limit_s=gateway.settings.drain_limit_s)


@router.get("/metrics", tags=["ops"], response_class=Response)
async def metrics(gateway: GatewayDep) -> Response:
    return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(INDEX_HTML)
