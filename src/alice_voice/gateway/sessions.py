"""Sessions: opens and ends them, wiring transport <-> conversation <-> state.

Each session lives in this process (its owner). Its record in the store is refreshed while it lives;
the session ends when the client goes, the peer fails, it is deleted (here, or on another process that
asks the owner over the control bus), or it reaches its maximum age. Ending always closes the peer,
cancels the session's tasks and removes the record.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from starlette.websockets import WebSocket

from alice_voice.clock import SYSTEM_CLOCK, Clock
from alice_voice.compute import available_cores
from alice_voice.compute.load import CpuMeter, LoopLagMonitor
from alice_voice.config import Settings
from alice_voice.conversation.events import (
    ErrorEvent,
    SessionReady,
    StopTtsMessage,
    TextMessage,
    parse_client_message,
)
from alice_voice.conversation.session import Conversation, SessionPort
from alice_voice.conversation.tone import ToneConversation
from alice_voice.errors import (
    AliceError,
    AtCapacity,
    Forbidden,
    OwnerGone,
    SessionNotFound,
    ShuttingDown,
    TransportUnavailable,
    Unauthorized,
)
from alice_voice.gateway.admission import Admission
from alice_voice.gateway.live_session import LiveSession, RecordingPort, RecordWriter
from alice_voice.logs import SessionLogger, session_logger
from alice_voice.metrics import Metrics
from alice_voice.state.control import ControlAction, ControlChannel
from alice_voice.state.store import SessionRecord, SessionStore, hash_token, token_matches
from alice_voice.transport.media_socket import GOING_AWAY, Dialect, MediaSocket, SocketEvents, close_code
from alice_voice.transport.peer import EventChannel, Peer, ice_servers
from alice_voice.transport.session_transport import EventSink, SessionTransport

Mode = Literal["agent", "tone"]
_TASKS_CLOSE_S = 5.0
_DRAIN_RECHECK_S = 0.5
_CLOSE_S = 2.0
log = logging.getLogger("alice_voice.gateway")


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


ConversationFactory = Callable[[SessionPort, SessionLogger, float], Awaitable[Conversation]]
"""(port, log, seconds it may wait for the models) -> the session's conversation."""
TransportFactory = Callable[[EventSink, Conversation, SessionLogger], SessionTransport]
"""(the session's events, its conversation, log) -> the transport it runs over."""
TransportKind = Literal["webrtc", "websocket", "twilio"]


class Gateway:
    def __init__(self, settings: Settings, store: SessionStore, metrics: Metrics, *, control: ControlChannel,
                 clock: Clock = SYSTEM_CLOCK, agent_factory: ConversationFactory | None = None) -> None:
        self.settings = settings
        self.store = store
        self.control = control
        self.metrics = metrics
        self.clock = clock
        self.owner = process_id()
        credential = settings.ice_credential.get_secret_value() if settings.ice_credential else None
        self.ice_servers = ice_servers(settings.ice_servers, settings.ice_username, credential)
        self.sessions: dict[str, LiveSession] = {}
        self.store_up = True
        self.accepting = True
        self.draining = False
        self._drain: asyncio.Task[int] | None = None
        self._goodbye_said = False
        self.admission = Admission(budget_ms=settings.latency_budget_ms, eot_silence_ms=settings.eot_silence_ms,
                                   max_sessions=settings.max_sessions, cores=available_cores())
        self.loop_lag = LoopLagMonitor()
        self.loop_lag.on_lag = metrics.loop_lag_ms.observe
        self._agent_factory = agent_factory
        self._housekeeping: list[asyncio.Task[None]] = []
        self._opening = 0  # offers admitted and still waiting to build their session
        self._background: set[asyncio.Task[Any]] = set()
        metrics.capacity.set(settings.max_sessions)

    # ---------- lifecycle ----------
    async def start(self) -> None:
        self.store_up = await self.store.ping()
        self.metrics.store_up.set(int(self.store_up))
        await self.control.start(self.owner, self._on_control)
        self._housekeeping = [asyncio.create_task(self._keep_house(), name="gateway-housekeeping"),
                              asyncio.create_task(self._measure_load(), name="gateway-load"),
                              asyncio.create_task(self.loop_lag.run(), name="gateway-loop-lag")]

    async def drain(self, limit_s: float | None = None) -> int:
        """Stop taking sessions (503 `shutting_down` with `Retry-After`; `/health` says draining) and wait up
        to `limit_s` (DRAIN_LIMIT_S) for the live ones, and offers still opening, to end by themselves.
        Returns how many are left; they stay reachable over the control bus until `aclose`. One drain per
        process: a second call (SIGTERM after the admin endpoint) waits for the same one, on its deadline."""
        self.start_draining(limit_s)
        assert self._drain is not None
        return await asyncio.shield(self._drain)

    def start_draining(self, limit_s: float | None = None) -> None:
        """Begin the drain (at once: the next offer is refused) and let it run in the background."""
        if self._drain is None:
            self.draining, self.accepting = True, False
            limit = self.settings.drain_limit_s if limit_s is None else limit_s
            self._drain = asyncio.create_task(self._drained(limit), name="gateway-drain")

    async def _drained(self, limit_s: float) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        log.info("draining: %d live sessions, %d opening, up to %.0f s", len(self.sessions), self._opening, limit_s)
        while (self.sessions or self._opening) and loop.time() < deadline:
            ends = [asyncio.ensure_future(live.ended.wait()) for live in list(self.sessions.values())]
            # an offer still opening has no `ended` yet: look again shortly
            await asyncio.wait(ends or [asyncio.ensure_future(asyncio.sleep(_DRAIN_RECHECK_S))],
                               timeout=min(_DRAIN_RECHECK_S, max(0.0, deadline - loop.time())),
                               return_when=asyncio.FIRST_COMPLETED)
            for end in ends:
                end.cancel()
        log.info("drained: %d sessions left", len(self.sessions))
        return len(self.sessions)

    async def say_goodbye(self) -> None:
        """Tell every session the gateway is closing, once, and let the word leave (bounded): before the
        server stops, which would close WebSockets without a word."""
        if self._goodbye_said:
            return
        self._goodbye_said = True
        goodbye = ErrorEvent(code=ShuttingDown.code, message="the gateway is shutting down").to_dict()
        lives = list(self.sessions.values())
        for live in lives:
            live.transport.events.send(goodbye)
        await asyncio.gather(*(live.transport.events.drain() for live in lives))

    def require_admin(self, token: str | None) -> None:
        admin = self.settings.admin_key
        if not token:
            raise Unauthorized("missing bearer token")
        if admin is None or not secrets.compare_digest(token.encode(), admin.get_secret_value().encode()):
            raise Forbidden("the admin key is needed")

    async def close_sessions(self, reason: str = "shutdown") -> None:
        """Stop taking sessions, tell every session why, and end them all within `shutdown_grace_s`."""
        self.accepting = False
        lives = list(self.sessions.values())
        try:
            async with asyncio.timeout(self.settings.shutdown_grace_s):
                await self.say_goodbye()
                await asyncio.gather(*(self.end(live.id, reason) for live in lives), return_exceptions=True)
        except TimeoutError:
            log.warning("%d sessions did not close within %.1f s", len(self.sessions), self.settings.shutdown_grace_s)

    async def aclose(self, reason: str = "shutdown") -> None:
        """End every session (`close_sessions`), then stop the background work and the store, each bounded."""
        await self.close_sessions(reason)
        stopping: list[asyncio.Task[Any]] = [*self._housekeeping]
        if self._drain is not None and not self._drain.done():
            stopping.append(self._drain)  # stopped with the rest: the drain is moot now
        for task in stopping:
            task.cancel()
        await asyncio.gather(*stopping, return_exceptions=True)
        for name, closing in (("control bus", self.control.aclose()), ("session store", self.store.aclose())):
            try:
                async with asyncio.timeout(_CLOSE_S):
                    await closing
            except TimeoutError:
                log.warning("the %s did not close within %.0f s", name, _CLOSE_S)

    # ---------- opening ----------
    async def open(self, offer_sdp: str, mode: Mode | None) -> tuple[SessionRecord, str, str]:
        """Answer an offer: returns (record, bearer token, answer SDP), within `offer_timeout_s`."""
        answer = ""

        def peer(events: EventSink, conversation: Conversation, slog: SessionLogger) -> Peer:
            assert isinstance(events, EventChannel)
            return Peer(ice_servers=self.ice_servers, jitter_mode=self.settings.jitter_buffer, clock=self.clock,
                        events=events, source=conversation.source, deliver_audio=conversation.deliver_audio,
                        log=slog, metrics=self.metrics, peer_timeout_s=self.settings.peer_timeout_s,
                        connect_timeout_s=self.settings.ice_connect_timeout_s)

        async def connect(live: LiveSession) -> None:
            nonlocal answer
            assert isinstance(live.transport, Peer)
            answer = await live.transport.answer(offer_sdp)

        live, token = await self._open(mode, "webrtc", EventChannel, peer, connect)
        return live.record, token, answer

    async def open_socket(self, kind: Literal["websocket", "twilio"], dialect: Dialect, ws: WebSocket,
                          mode: Mode | None = None) -> tuple[LiveSession, str]:
        """A session over an accepted WebSocket (the PCM protocol, or Twilio Media Streams)."""
        def socket(events: EventSink, conversation: Conversation, slog: SessionLogger) -> MediaSocket:
            assert isinstance(events, SocketEvents)
            return MediaSocket(ws, dialect, events, source=conversation.source,
                               deliver_audio=conversation.deliver_audio, clock=self.clock, log=slog,
                               metrics=self.metrics, quiet_timeout_s=self.settings.peer_timeout_s)

        async def connect(live: LiveSession) -> None:
            assert isinstance(live.transport, MediaSocket)
            live.transport.start()

        return await self._open(mode, kind, SocketEvents, socket, connect)

    async def _open(self, mode: Mode | None, kind: TransportKind, new_events: Callable[[SessionLogger], EventSink],
                    new_transport: TransportFactory, connect: Callable[[LiveSession], Awaitable[None]]
                    ) -> tuple[LiveSession, str]:
        """Admit, build and connect a session within `offer_timeout_s`; returns it and its bearer token."""
        self._admit()
        deadline = self.clock.now() + self.settings.offer_timeout_s
        mode = mode or self.settings.default_mode
        session_id, token = secrets.token_urlsafe(12), secrets.token_urlsafe(24)
        now = time.time()
        record = SessionRecord(session_id=session_id, owner=self.owner, mode=mode, transport=kind, created_at=now,
                               updated_at=now, token_hash=hash_token(token))
        slog = session_logger("alice_voice.session", session_id)
        self._opening += 1  # counts against capacity while the models load, before the session exists
        try:
            live = await self._build_session(record, token, slog, deadline, new_events(slog), new_transport)
        finally:
            self._opening -= 1
        self.sessions[session_id] = live  # the slot is taken before anything else is awaited
        try:
            async with asyncio.timeout(max(0.0, deadline - self.clock.now())):
                await connect(live)
                await self.store.create(record, self.settings.session_ttl_s)
            live.recorded = True
            if live.closing:  # ended while being opened (e.g. shutdown)
                raise ShuttingDown("the session ended while it was being opened")
        except Exception as exc:
            if isinstance(live.transport, MediaSocket):  # the client learns why from the close frame
                live.transport.close_with(close_code(exc), getattr(exc, "message", "the session could not open"))
            if not live.closing:
                await self._dispose(live, "offer failed")
            if isinstance(exc, AliceError):
                raise
            if isinstance(exc, TimeoutError):
                raise TransportUnavailable("the connection could not be set up in time") from None
            slog.exception("could not set up the peer connection")  # the transport failed us: 503, not 500
            raise TransportUnavailable(f"could not set up the connection ({type(exc).__name__})") from exc
        except BaseException:
            if not live.closing:
                await self._dispose(live, "offer failed")
            raise
        live.answered_at = self.clock.now()
        self._start_tasks(live)
        self.metrics.sessions_total.labels(mode=mode, transport=kind).inc()
        self.metrics.active_sessions.set(len(self.sessions))
        slog.info("session opened (mode %s, over %s)", mode, kind)
        return live, token

    def _admit(self) -> None:
        if not self.accepting:
            raise ShuttingDown("the gateway is draining: try another" if self.draining else
                               "the gateway is shutting down", retry_after_s=self.settings.retry_after_s)
        verdict = self.admission.verdict(len(self.sessions) + self._opening)
        if verdict.admit:
            return
        self.metrics.offers_refused.labels(reason=verdict.reason).inc()
        log.warning("offer refused: %s (%d sessions, predicted first audio %.0f ms)", verdict.reason,
                    len(self.sessions), verdict.predicted_ttfa_ms)
        raise AtCapacity(f"at capacity ({verdict.reason.replace('_', ' ')}, {len(self.sessions)} sessions)",
                         retry_after_s=self.settings.retry_after_s)

    async def _build_session(self, record: SessionRecord, token: str, slog: SessionLogger, deadline: float,
                             events: EventSink, new_transport: TransportFactory) -> LiveSession:
        writer = RecordWriter(record)
        port = RecordingPort(events, writer, self.metrics, self._turn_done,
                             lambda reason: self._end_later(record.session_id, reason))
        if record.mode == "tone" or self._agent_factory is None:
            conversation: Conversation = ToneConversation()
        else:
            wait_s = max(0.0, deadline - self.clock.now())
            conversation = await self._agent_factory(port, slog, wait_s)
        live = LiveSession(writer, new_transport(events, conversation, slog), conversation, slog,
                           answered_at=self.clock.now())
        events.on_message = lambda raw: self._on_client_message(live, raw)
        ready = SessionReady(session_id=record.session_id, mode=record.mode).to_dict()
        if record.transport != "webrtc":  # no offer response carried it: the token comes with the greeting
            ready["token"] = token
        events.send(ready)
        return live

    def _turn_done(self, timings: dict[str, float]) -> None:
        if "first_audio_ms" in timings:
            self.admission.observe_turn(timings["first_audio_ms"])

    def _start_tasks(self, live: LiveSession) -> None:
        for coro, name in ((self._supervise(live), "supervise"), (self._write_record(live), "record"),
                           (self._converse(live), "conversation"), (self._observe_ice(live), "ice")):
            task = asyncio.create_task(coro, name=f"{name}-{live.id}")
            live.tasks.add(task)
            task.add_done_callback(live.tasks.discard)

    # ---------- running ----------
    async def _supervise(self, live: LiveSession) -> None:
        try:
            async with asyncio.timeout(self.settings.session_max_s):
                await live.transport.ended.wait()
            reason = live.transport.end_reason
        except TimeoutError:
            reason = "max duration"
        self._end_later(live.id, reason)

    async def _converse(self, live: LiveSession) -> None:
        """The conversation runs until the session ends; if it stops by itself, a defect ended it."""
        try:
            await live.conversation.run()
        except Exception:
            live.log.exception("the conversation failed")
        self._report(live, AliceError("the session failed and is closing"))
        self._end_later(live.id, "conversation failed")

    async def _observe_ice(self, live: LiveSession) -> None:
        await live.transport.connected.wait()
        if live.record.transport == "webrtc":
            self.metrics.ice_connect_ms.observe((self.clock.now() - live.answered_at) * 1000)
        live.writer.update(state="listening")

    async def _write_record(self, live: LiveSession) -> None:
        """Coalesces record changes: one write per burst of changes."""
        while True:
            await live.writer.dirty.wait()
            live.writer.dirty.clear()
            try:
                await self.store.update(live.record, self.settings.session_ttl_s)
            except AliceError as exc:
                live.log.warning("session record not written: %s", exc.message)

    def _on_client_message(self, live: LiveSession, raw: str | bytes) -> None:
        try:
            message = parse_client_message(raw)
            if isinstance(message, StopTtsMessage):
                live.conversation.request_stop()
            elif isinstance(message, TextMessage):
                live.conversation.handle_text(message.text)
        except AliceError as exc:
            live.log.info("client message rejected: %s", exc.code)
            self._report(live, exc)
        except Exception:  # never let it reach aiortc: an exception there closes the transport
            live.log.exception("client message could not be handled")
            self._report(live, AliceError("the message could not be handled"))

    def _report(self, live: LiveSession, exc: AliceError) -> None:
        self.metrics.errors_total.labels(code=exc.code).inc()
        live.transport.events.send(ErrorEvent(code=exc.code, message=exc.message).to_dict())

    # ---------- ending ----------
    async def end(self, session_id: str, reason: str) -> bool:
        live = self.sessions.get(session_id)
        if live is None or live.closing:
            return False
        await self._dispose(live, reason)
        return True

    def _end_later(self, session_id: str, reason: str) -> None:
        """End a session from one of its own tasks (which `end` cancels), without awaiting it there."""
        task = asyncio.create_task(self.end(session_id, reason))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _dispose(self, live: LiveSession, reason: str) -> None:
        live.closing = True
        current = asyncio.current_task()
        tasks = [t for t in live.tasks if t is not current]
        for task in tasks:
            task.cancel()
        # Bounded: a task that ignores its cancellation is logged and left, not waited for forever.
        _, stuck = await asyncio.wait(tasks, timeout=_TASKS_CLOSE_S) if tasks else (set(), set())
        if stuck:
            live.log.error("%d session tasks did not stop within %.0f s: %s", len(stuck), _TASKS_CLOSE_S,
                           sorted(t.get_name() for t in stuck))
        await live.conversation.aclose()  # its run() cleaned up already, unless it never ran
        if reason == "shutdown" and isinstance(live.transport, MediaSocket):
            live.transport.close_with(GOING_AWAY, "the gateway is shutting down")
        await live.transport.close()
        try:
            await self.store.delete(live.id)
        except AliceError as exc:
            live.log.warning("session record not deleted (it will expire): %s", exc.message)
        self.sessions.pop(live.id, None)
        self.metrics.active_sessions.set(len(self.sessions))
        self.metrics.sessions_ended.labels(reason=reason.split(":")[0].replace(" ", "_")).inc()
        live.ended.set()
        live.log.info("session ended: %s", reason)

    # ---------- housekeeping: load, TTLs, lost records, store health ----------
    async def _measure_load(self) -> None:
        cpu = CpuMeter()  # created here, on the event loop's thread, which it watches
        while True:
            await asyncio.sleep(1.0)
            sample = cpu.sample()
            if sample is not None:
                self.admission.observe_cpu(sample, len(self.sessions))
                self.metrics.cpu_busy.set(self.admission.busy)
            self.admission.settle()
            self.metrics.headroom_sessions.set(self.admission.verdict(len(self.sessions)).headroom)

    async def _keep_house(self) -> None:
        interval = max(0.05, self.settings.session_ttl_s / 3)
        while True:
            await asyncio.sleep(interval)
            await self._refresh_records()

    async def _refresh_records(self) -> None:
        """Rewrite every live session's record, refreshing its TTL; a record the store lost (Redis
        restarted without persistence, or was unreachable past the TTL) is written again."""
        try:
            for live in list(self.sessions.values()):
                if live.recorded and not live.closing:
                    await self.store.update(live.record, self.settings.session_ttl_s)
            up = await self.store.ping()
        except AliceError:
            up = False
        if up != self.store_up:
            log.warning("session store %s", "is back" if up else "is unreachable")
        self.store_up = up
        self.metrics.store_up.set(int(up))

    # ---------- control ----------
    async def authorize(self, session_id: str, token: str | None) -> SessionRecord:
        """404 for an unknown session (looked up first), 401 without a token, 403 with a wrong one."""
        live = self.sessions.get(session_id)
        record = live.record if live else await self.store.get(session_id)
        if record is None:
            raise SessionNotFound(f"no session {session_id!r}")
        if not token:
            raise Unauthorized("missing bearer token")
        admin = self.settings.admin_key
        if admin is not None and secrets.compare_digest(token.encode(), admin.get_secret_value().encode()):
            return record
        if not token_matches(token, record.token_hash):
            raise Forbidden("the token does not open this session")
        return record

    async def stop_tts(self, session_id: str) -> bool:
        """Stop the session's speech wherever its owner is; True if something was playing."""
        live = self.sessions.get(session_id)
        if live is not None:
            return await live.conversation.stop_tts()
        reply = await self._ask_owner("stop_tts", session_id)
        return bool(reply.get("stopped"))

    async def delete(self, session_id: str) -> None:
        """End the session here or on its owner; if the owner is gone, only its record is left to remove."""
        if await self.end(session_id, "deleted"):
            return
        try:
            await self._ask_owner("end", session_id)
        except OwnerGone:
            await self.store.delete(session_id)

    async def _ask_owner(self, action: ControlAction, session_id: str) -> dict[str, Any]:
        record = await self.store.get(session_id)
        if record is None:
            raise SessionNotFound(f"no session {session_id!r}")
        return await self.control.request(record.owner, action, session_id, self.settings.control_timeout_s)

    async def _on_control(self, action: str, session_id: str) -> dict[str, Any]:
        """A control request from another process for a session this one owns."""
        live = self.sessions.get(session_id)
        if live is None:
            raise SessionNotFound(f"session {session_id!r} is not here")
        if action == "stop_tts":
            return {"stopped": await live.conversation.stop_tts()}
        return {"ended": await self.end(session_id, "deleted")}

    async def health(self) -> dict[str, Any]:
        self.store_up = await self.store.ping()
        self.metrics.store_up.set(int(self.store_up))
        verdict = self.admission.verdict(len(self.sessions))
        recent_p95 = self.admission.recent_p95_ms()
        return {
            "status": "draining" if self.draining else "ok" if self.store_up and self.accepting else "degraded",
            "process": self.owner,
            "accepting": self.accepting,
            "store": {"kind": self.store.kind, "up": self.store_up},
            "sessions": {"active": len(self.sessions), "capacity": self.settings.max_sessions},
            "load": {"admitting": verdict.admit, "reason": verdict.reason, "headroom": verdict.headroom,
                     "predicted_first_audio_ms": round(min(verdict.predicted_ttfa_ms, 1e6), 1),
                     "budget_ms": self.settings.latency_budget_ms, "cpu_busy": round(self.admission.busy, 3),
                     "cpu_per_session": round(self.admission.session_cpu, 3),
                     "critical_job_ms": round(self.admission.job_ms, 1),
                     "recent_first_audio_p95_ms": None if recent_p95 is None else round(recent_p95, 1),
                     "cpu_others": round(self.admission.others_busy, 3),
                     "event_loop_busy": round(self.admission.loop_busy, 3),
                     "event_loop_lag_p99_ms": round(self.loop_lag.p99_ms(), 2)},
        }
