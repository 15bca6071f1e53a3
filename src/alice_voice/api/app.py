"""create_app(settings): the FastAPI application, its lifespan, error handlers and static client."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from alice_voice import __version__
from alice_voice.api import sockets, telephony
from alice_voice.api.limits import BodyGuard, error_body
from alice_voice.api.parts import Parts, twilio_rest
from alice_voice.api.routes import router
from alice_voice.api.sip import sip_service, stop_quietly
from alice_voice.api.static_files import STATIC_DIR
from alice_voice.clock import SYSTEM_CLOCK, Clock
from alice_voice.compute import available_cores
from alice_voice.config import Settings
from alice_voice.errors import AliceError, BadRequest, InvalidBody, MethodNotAllowed, NotFound
from alice_voice.gateway import (
    AgentRuntime,
    ConversationFactory,
    Drain,
    Gateway,
    Housekeeping,
    SessionControl,
    SpeechEngines,
    Transports,
)
from alice_voice.metrics import Metrics
from alice_voice.state.control import control_bus
from alice_voice.state.redis_store import RedisStore
from alice_voice.state.store import MemoryStore, SessionStore

log = logging.getLogger("alice_voice.api")
_CLOSE_S = 2.0


_DESCRIPTION = """Real-time voice-agent gateway: WebRTC or WebSocket in, VAD -> ASR -> agent -> TTS, the same
transport out.

**WebSockets** (not listed below: OpenAPI describes HTTP only):

- `WS /api/voice/ws?rate=16000&mode=agent`: the plain PCM protocol. Binary messages both ways are 16-bit
  little-endian mono PCM at `rate` (8000, 16000, 24000 or 48000); the gateway sends a 20 ms frame every
  20 ms. Text messages are JSON: the gateway sends the DataChannel's events (`session.ready` first, with the
  session's `token`), the client sends `{"type": "text", "text"}` and `{"type": "stop_tts"}`. A malformed
  message gets an `error` event; more than 20, or over 250 messages a second, close the socket with 1008.
  A refused session is closed with 1013 (at capacity, shutting down) and the reason.
- `WS /api/telephony/twilio/stream`: Twilio Media Streams (signed with `X-Twilio-Signature`); see
  `POST /api/telephony/twilio/voice` for the TwiML that connects a call to it.
"""


def build_store(settings: Settings) -> SessionStore:
    return RedisStore(str(settings.redis_url)) if settings.redis_url else MemoryStore()


def _json_error(exc: AliceError, details: list[dict[str, str]] | None = None) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s is not None else None
    return JSONResponse(status_code=exc.status, content=error_body(exc, details), headers=headers)


def create_app(settings: Settings, *, store: SessionStore | None = None, clock: Clock = SYSTEM_CLOCK,
               agent_factory: ConversationFactory | None = None, engines: SpeechEngines | None = None,
               freeze_heap: bool = False) -> FastAPI:
    """`engines`: loaded models to share (tests); by default the app's runtime loads and owns its own.
    `freeze_heap`: the process's entry point asks for it (see AgentRuntime)."""
    metrics = Metrics()
    runtime = AgentRuntime(settings, metrics, clock, engines=engines, freeze_heap=freeze_heap)
    gateway = Gateway(settings, store if store is not None else build_store(settings), metrics, clock=clock,
                      agent_factory=agent_factory or runtime.new_conversation)
    parts = Parts(settings, gateway, Drain(gateway), Housekeeping(gateway, runtime.compute),
                  SessionControl(gateway, control_bus(str(settings.redis_url) if settings.redis_url else None)),
                  runtime, Transports(settings, clock, metrics), twilio_rest(settings), sip_service(settings, gateway))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _give_media_codec_its_own_threads(asyncio.get_running_loop())
        runtime.compute.add_observer(gateway.admission.observe_job)
        if settings.preload_models:
            runtime.start_loading()
        await parts.housekeeping.start()
        await parts.control.start()
        if parts.sip is not None:
            await parts.sip.start()
        try:
            yield
        finally:
            await _stop(parts)
            runtime.compute.remove_observer(gateway.admission.observe_job)
            await runtime.aclose()

    # No trailing-slash redirects: behind a proxy they point at the internal origin (Twilio would follow one
    # to http://127.0.0.1:8080/...); the telephony webhook answers with and without the slash instead.
    app = FastAPI(title="Alice Voice", version=__version__, lifespan=lifespan, description=_DESCRIPTION,
                  redirect_slashes=False)
    app.state.parts = parts
    app.state.gateway = gateway  # (tests and benchmarks reach the sessions here)
    app.state.runtime = runtime
    app.state.settings = settings
    app.include_router(router)
    app.include_router(sockets.router)
    app.include_router(telephony.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(BodyGuard, max_bytes=settings.max_body_bytes)
    _install_error_handlers(app)
    return app


async def _stop(parts: Parts) -> None:
    """End every session, then stop the background work, the control bus and the store, each bounded."""
    await parts.gateway.close_sessions("shutdown")  # (a SIP call's end sends its BYE)
    await stop_quietly(parts.sip)
    await parts.drain.aclose()
    await parts.housekeeping.aclose()
    if parts.twilio is not None:
        await parts.twilio.aclose()
    for name, closing in (("control bus", parts.control.aclose()), ("session store", parts.gateway.store.aclose())):
        try:
            async with asyncio.timeout(_CLOSE_S):
                await closing
        except TimeoutError:
            log.warning("the %s did not close within %.0f s", name, _CLOSE_S)


_codec_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def _give_media_codec_its_own_threads(loop: asyncio.AbstractEventLoop) -> None:
    """aiortc encodes every outgoing frame in the loop's default executor: give it threads of its own, which
    nothing else of ours uses (model work goes through the inference scheduler, model loading through its
    own thread). Once per loop; the loop shuts them down when it closes."""
    if loop not in _codec_loops:
        loop.set_default_executor(ThreadPoolExecutor(max_workers=available_cores(), thread_name_prefix="media-codec"))
        _codec_loops.add(loop)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AliceError)
    async def on_alice_error(request: Request, exc: AliceError) -> JSONResponse:
        if exc.status >= 500:
            log.warning("%s %s -> %s: %s", request.method, request.url.path, exc.status, exc.message)
        return _json_error(exc)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _json_error(BadRequest("the body is not valid JSON"))
        details = [{"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "problem": e["msg"]} for e in errors]
        first = details[0]
        return _json_error(InvalidBody(f"invalid {first['field']}: {first['problem']}"), details)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        known: dict[int, type[AliceError]] = {404: NotFound, 405: MethodNotAllowed}
        err = known.get(exc.status_code, BadRequest)(str(exc.detail))
        return _json_error(err)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, asyncio.CancelledError):
            raise exc
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _json_error(AliceError("internal error"))
