"""The process's sessions: one path opens every kind (admit, build, connect, record), each runs in a task
group of its own, and one path ends them.

A transport built by whoever accepted the connection (the offer's route, the socket's route) is handed
to `open`: the session is admitted (gateway/admission.py, and the drain's refusal), its conversation is
built (waiting for the models within the offer's deadline), the transport is attached and connected, and
its record is created in the store. The session then lives in its own TaskGroup (its supervisor, its
record writer, its conversation, its connection watch) until it ends: the client goes, the peer fails, it
is deleted (here, or on another process that asks the owner over the control bus), or it reaches its
maximum age. Ending cancels and awaits that group, then closes the conversation and the transport and
removes the record, each bounded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal, TypeVar

from alice_voice.clock import SYSTEM_CLOCK, Clock
from alice_voice.compute import available_cores
from alice_voice.config import Settings
from alice_voice.conversation.events import (
    DtmfMessage,
    ErrorEvent,
    SessionReady,
    StopTtsMessage,
    parse_client_message,
)
from alice_voice.conversation.session.ports import Conversation, SessionPort
from alice_voice.conversation.session.tone import ToneConversation
from alice_voice.errors import (
    AliceError,
    AtCapacity,
    ProviderError,
    ProviderTimeout,
    ShuttingDown,
    TransportUnavailable,
)
from alice_voice.gateway.admission import Admission
from alice_voice.gateway.live_session import LiveSession, RecordingPort, RecordWriter
from alice_voice.logs import SessionLogger, session_logger
from alice_voice.metrics import Metrics
from alice_voice.state.store import SessionRecord, SessionStore, hash_token
from alice_voice.tools.call_control import CallEnding
from alice_voice.transport.phone_line import PhoneLine
from alice_voice.transport.session_transport import SessionTransport, SessionWiring

Mode = Literal["agent", "tone"]
T = TypeVar("T", bound=SessionTransport)
_TASKS_CLOSE_S = 5.0
_CALL_CONTROL_S = 12.0  # the goodbye heard (bounded at 2 s) and the provider's answer (its own 10 s)
TRANSFER_FAILED = "I'm sorry, I couldn't put you through just now. Is there anything else I can do?"
log = logging.getLogger("alice_voice.gateway")


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


ConversationFactory = Callable[[SessionPort, SessionLogger, float], Awaitable[Conversation]]
"""(port, log, seconds it may wait for the models) -> the session's conversation."""


class Gateway:
    def __init__(self, settings: Settings, store: SessionStore, metrics: Metrics, *, clock: Clock = SYSTEM_CLOCK,
                 agent_factory: ConversationFactory | None = None) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.owner = process_id()
        self.sessions: dict[str, LiveSession] = {}
        self.opening = 0  # offers admitted and still building their session
        self.refusal: ShuttingDown | None = None  # set when the process takes no more sessions (drain, shutdown)
        self.admission = Admission(budget_ms=settings.latency_budget_ms, eot_silence_ms=settings.eot_silence_ms,
                                   max_sessions=settings.max_sessions, cores=available_cores())
        self._agent_factory = agent_factory
        self._ending: set[asyncio.Task[Any]] = set()
        metrics.capacity.set(settings.max_sessions)

    # ---------- opening ----------
    async def open(self, make_transport: Callable[[], T], mode: Mode | None = None,
                   line: PhoneLine | None = None) -> tuple[LiveSession, T, str]:
        """Admit a session, then build it, its transport (`make_transport`, made only once it is admitted),
        connect and record it, within `offer_timeout_s`; returns it, its transport and its bearer token. A
        refusal or failure is raised as an AliceError (a transport made has been told why, and closed).
        `line`: a phone call's, which the agent may hang up or transfer."""
        self._admit()
        transport = make_transport()
        deadline = self.clock.now() + self.settings.offer_timeout_s
        mode = mode or self.settings.default_mode
        session_id, token = secrets.token_urlsafe(12), secrets.token_urlsafe(24)
        now = time.time()
        record = SessionRecord(session_id=session_id, owner=self.owner, mode=mode, transport=transport.kind,
                               created_at=now, updated_at=now, token_hash=hash_token(token))
        slog = session_logger("alice_voice.session", session_id)
        self.opening += 1  # counts against capacity while the models load, before the session exists
        try:
            live = await self._build(record, token, transport, slog, deadline, line)
        except BaseException as exc:
            if isinstance(exc, AliceError):
                transport.refuse(exc)
            await transport.close()
            raise
        finally:
            self.opening -= 1
        self.sessions[session_id] = live  # the slot is taken before anything else is awaited
        try:
            async with asyncio.timeout(max(0.0, deadline - self.clock.now())):
                await transport.connect()
                await self.store.create(record, self.settings.session_ttl_s)
            live.recorded = True
            if live.closing:  # ended while being opened (e.g. shutdown)
                raise ShuttingDown("the session ended while it was being opened")
        except Exception as exc:
            error = self._opening_failed(exc, slog)
            transport.refuse(error)
            await self.end(session_id, "offer failed")
            raise error from (None if error is exc else exc)
        except BaseException:
            await self.end(session_id, "offer failed")
            raise
        live.answered_at = self.clock.now()
        live.runner = asyncio.create_task(self._run(live), name=f"session-{session_id}")
        self.metrics.sessions_total.labels(mode=mode, transport=transport.kind).inc()
        self.metrics.active_sessions.set(len(self.sessions))
        slog.info("session opened (mode %s, over %s)", mode, transport.kind)
        return live, transport, token

    def _admit(self) -> None:
        if self.refusal is not None:
            raise self.refusal
        verdict = self.admission.verdict(len(self.sessions) + self.opening)
        if verdict.admit:
            return
        self.metrics.offers_refused.labels(reason=verdict.reason).inc()
        log.warning("offer refused: %s (%d sessions, predicted first audio %.0f ms)", verdict.reason,
                    len(self.sessions), verdict.predicted_ttfa_ms)
        raise AtCapacity(f"at capacity ({verdict.reason.replace('_', ' ')}, {len(self.sessions)} sessions)",
                         retry_after_s=self.settings.retry_after_s)

    @staticmethod
    def _opening_failed(exc: Exception, slog: SessionLogger) -> AliceError:
        if isinstance(exc, AliceError):
            return exc
        if isinstance(exc, TimeoutError):
            return TransportUnavailable("the connection could not be set up in time")
        slog.exception("could not set up the connection")  # the transport failed us: 503, not 500
        return TransportUnavailable(f"could not set up the connection ({type(exc).__name__})")

    async def _build(self, record: SessionRecord, token: str, transport: SessionTransport, slog: SessionLogger,
                     deadline: float, line: PhoneLine | None) -> LiveSession:
        writer = RecordWriter(record)
        port = RecordingPort(transport.events, writer, self.metrics, self._turn_done,
                             lambda reason, target: self._conversation_over(record.session_id, reason, target),
                             line)
        if record.mode == "tone" or self._agent_factory is None:
            conversation: Conversation = ToneConversation()
        else:
            conversation = await self._agent_factory(port, slog, max(0.0, deadline - self.clock.now()))
        transport.attach(SessionWiring(conversation.source, conversation.deliver_audio, slog))
        live = LiveSession(writer, transport, conversation, slog, answered_at=self.clock.now(), line=line)
        transport.events.on_message = lambda raw: self._on_client_message(live, raw)
        ready = SessionReady(session_id=record.session_id, mode=record.mode).to_dict()
        if transport.kind != "webrtc":  # no offer response carried it: the token comes with the greeting
            ready["token"] = token
        transport.events.send(ready)
        return live

    def _turn_done(self, timings: dict[str, float]) -> None:
        if "first_audio_ms" in timings:  # the box's part: not the silence the caller was given to go on
            first_audio_ms = timings["first_audio_ms"] - timings.get("patience_ms", 0.0)
            self.admission.observe_turn(first_audio_ms)
            if self.admission.over_budget(first_audio_ms):
                self.metrics.budget_breaches.inc()

    # ---------- running ----------
    async def _run(self, live: LiveSession) -> None:
        """The session's own task group; it ends when a task of it asks (`_end_later`) or it is cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._supervise(live), name=f"supervise-{live.id}")
            group.create_task(self._write_record(live), name=f"record-{live.id}")
            group.create_task(self._converse(live), name=f"conversation-{live.id}")
            group.create_task(self._observe_connection(live), name=f"connection-{live.id}")

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
        self.report(live, AliceError("the session failed and is closing"))
        self._end_later(live.id, "conversation failed")

    async def _observe_connection(self, live: LiveSession) -> None:
        await live.transport.connected.wait()
        if live.transport.kind == "webrtc":
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
            elif isinstance(message, DtmfMessage):
                live.conversation.press_key(message.digit)
            else:
                live.conversation.handle_text(message.text)
        except AliceError as exc:
            live.log.info("client message rejected: %s", exc.code)
            self.report(live, exc)
        except Exception:  # never let it reach aiortc: an exception there closes the transport
            live.log.exception("client message could not be handled")
            self.report(live, AliceError("the message could not be handled"))

    def report(self, live: LiveSession, exc: AliceError) -> None:
        """Tell the session's client about a failure (an `error` event)."""
        self.metrics.errors_total.labels(code=exc.code).inc()
        live.transport.events.send(ErrorEvent(code=exc.code, message=exc.message).to_dict())

    # ---------- ending ----------
    async def end(self, session_id: str, reason: str) -> bool:
        """End a session of this process; False if it is not here (or already ending)."""
        live = self.sessions.get(session_id)
        if live is None or live.closing:
            return False
        live.closing = True
        runner = live.runner
        if runner is not None and runner is not asyncio.current_task():
            runner.cancel()
            # Bounded: a task that ignores its cancellation is logged and left, not waited for forever.
            await asyncio.wait({runner}, timeout=_TASKS_CLOSE_S)
            if not runner.done():
                live.log.error("the session's tasks did not stop within %.0f s", _TASKS_CLOSE_S)
        await live.conversation.aclose()  # its run() cleaned up already, unless it never ran
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
        return True

    def _end_later(self, session_id: str, reason: str) -> None:
        """End a session from one of its own tasks (which `end` cancels), without awaiting it there."""
        self._later(self.end(session_id, reason))

    def _later(self, ending: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(ending)
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    def _conversation_over(self, session_id: str, reason: str, transfer_to: str) -> None:
        if reason == "hung_up":
            self._later(self._finish_call(session_id, CallEnding("hung_up")))
        elif reason == "transferred":
            self._later(self._finish_call(session_id, CallEnding("transferred", transfer_to)))
        else:
            self._end_later(session_id, reason)

    async def _finish_call(self, session_id: str, ending: CallEnding) -> None:
        """The agent hung up or put the caller through, and it has been heard: the line does it (the
        provider's REST API), then the session ends. A transfer the provider refuses leaves the caller with
        Alice, told so; a hang-up it refuses still ends the media, which ends the call."""
        live = self.sessions.get(session_id)
        if live is None or live.closing:
            return
        if live.line is not None:
            try:
                async with asyncio.timeout(_CALL_CONTROL_S):
                    await live.line.finish(ending)
            except Exception as exc:  # refused, timed out, or a defect: the session must not hang on it
                error = ProviderTimeout("telephony") if isinstance(exc, TimeoutError) else (
                    exc if isinstance(exc, AliceError) else ProviderError.wrap(exc, "telephony"))
                live.log.warning("the call was not %s: %s", ending.reason.replace("_", " "), error.message)
                self.report(live, error)
                if ending.reason == "transferred":
                    live.conversation.announce(TRANSFER_FAILED)
                    return
        await self.end(session_id, ending.reason)

    async def close_sessions(self, reason: str = "shutdown") -> None:
        """Take no more sessions; tell every session the gateway is closing and end them all, within
        `shutdown_grace_s` (a WebSocket is closed with 1001)."""
        if self.refusal is None:
            self.refusal = ShuttingDown("the gateway is shutting down", retry_after_s=self.settings.retry_after_s)
        lives = list(self.sessions.values())
        goodbye = ErrorEvent(code=ShuttingDown.code, message="the gateway is shutting down")
        try:
            async with asyncio.timeout(self.settings.shutdown_grace_s):
                for live in lives:
                    live.transport.events.send(goodbye.to_dict())
                    live.transport.refuse(ShuttingDown(goodbye.message))
                await asyncio.gather(*(live.transport.events.drain() for live in lives))
                await asyncio.gather(*(self.end(live.id, reason) for live in lives), return_exceptions=True)
        except TimeoutError:
            log.warning("%d sessions did not close within %.1f s", len(self.sessions), self.settings.shutdown_grace_s)
