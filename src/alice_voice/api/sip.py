"""Calls from a PBX or a SIP trunk: each INVITE that passes the listener's guard becomes a session like any
other (admission and drain, the store record, control from any process, metrics), answered when it is up.

An INVITE is answered 180 Ringing at once, then 200 OK with the SDP answer once the session is open (the
models loaded, the call's media sockets bound); a refusal is a SIP status: 488 for an offer without G.711
(with the reason in a Warning), 503 with Retry-After at capacity, draining or shutting down (a trunk then
tries another replica), 500 for a failure. CANCEL before the answer, a BYE, or a 2xx never acknowledged
ends the session; ending the session (DELETE, drain's end, the agent's goodbye) sends BYE. A re-INVITE
puts the call on hold or takes it off (answered with the same port and codec).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from alice_voice.config import Settings
from alice_voice.errors import AliceError
from alice_voice.gateway import Gateway
from alice_voice.metrics import Metrics
from alice_voice.transport.sip.call import SipCall
from alice_voice.transport.sip.caller_check import CallerCheck, Credential
from alice_voice.transport.sip.dialog import SipDialog, warning
from alice_voice.transport.sip.media_plan import NotAcceptable, answer_offer
from alice_voice.transport.sip.rtp_socket import RtpSocket, port_range
from alice_voice.transport.sip.signalling import DialogGone, Invited, Reinvited, SipListener

log = logging.getLogger("alice_voice.sip")
_STOP_S = 5.0


class SipService:
    def __init__(self, settings: Settings, gateway: Gateway) -> None:
        self._settings, self._gateway = settings, gateway
        credential = Credential(settings.sip_username, settings.sip_password.get_secret_value()) \
            if settings.sip_username and settings.sip_password else None
        check = CallerCheck(settings.sip_trusted_networks, credential, settings.sip_allow_anyone)
        self.host = settings.sip_host or settings.host
        self._public = settings.sip_public_address
        port = settings.sip_port or 5060
        self.listener = SipListener(self.host, port, check, invites_per_s=settings.sip_invites_per_s,
                                    clock=gateway.clock, advertised=(self._public, port) if self._public else None,
                                    retry_after_s=self._refusing)
        self.calls: dict[str, SipCall] = {}  # live calls by SIP Call-ID
        self._answering: dict[str, asyncio.Task[None]] = {}  # each call's answering task, until it ends
        self._serving: asyncio.Task[None] | None = None

    def _refusing(self) -> int | None:
        refusal = self._gateway.refusal
        return None if refusal is None else refusal.retry_after_s or self._settings.retry_after_s

    @property
    def metrics(self) -> Metrics:
        return self._gateway.metrics

    async def start(self) -> None:
        await self.listener.start()
        self._serving = asyncio.create_task(self._serve(), name="sip-signals")

    async def aclose(self) -> None:
        """After the gateway has ended its sessions (each sent its BYE): stop answering, then listening."""
        tasks = [*self._answering.values(), *([self._serving] if self._serving else [])]
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=_STOP_S) if tasks else None
        await self.listener.stop()

    async def _serve(self) -> None:
        signals = self.listener.signals
        while True:
            signal = await signals.get()
            try:
                match signal:
                    case Invited(dialog):
                        self._spawn(dialog)
                    case Reinvited(dialog):
                        self._renegotiate(dialog)
                    case DialogGone(call_id, why):
                        self._gone(call_id, why)
            except Exception:  # (a TCP connection gone under an answer, a defect): the next call must still get in
                log.exception("SIP: %s failed", type(signal).__name__)

    def _spawn(self, dialog: SipDialog) -> None:
        call_id = dialog.call_id
        task = asyncio.create_task(self._answer(dialog), name=f"sip-call-{call_id[:16]}")
        self._answering[call_id] = task

        def done(finished: asyncio.Task[None]) -> None:
            if self._answering.get(call_id) is finished:
                del self._answering[call_id]
            failed = not finished.cancelled() and finished.exception() is not None
            if failed:
                log.error("SIP call %s failed", call_id, exc_info=finished.exception())
            if self._gateway.refusal is not None:
                dialog.fail_if_unanswered(503, "Service Unavailable")  # (shutting down while it opened)
            else:
                dialog.fail_if_unanswered(500, "Server Internal Error")
            dialog.forget()
        task.add_done_callback(done)

    async def _answer(self, dialog: SipDialog) -> None:
        try:
            if dialog.offer is None:
                raise NotAcceptable("an INVITE needs an SDP offer")
            answer_offer(dialog.offer, self.host, 0)  # refused before anything is spent on it
        except NotAcceptable as exc:
            self._refuse(dialog, 488, "Not Acceptable Here", str(exc))
            return
        dialog.ringing()
        try:
            socket = await RtpSocket.bind(self.host, port_range(self._settings.sip_rtp_ports),
                                          dialog.offer.rtp_address or ("0.0.0.0", 0))
        except OSError as exc:
            log.error("SIP call from %s refused: %s", dialog.caller, exc)
            self._refuse(dialog, 503, "Service Unavailable", "no free media port",
                         {"Retry-After": str(self._settings.retry_after_s)})
            return
        plan, answer = answer_offer(dialog.offer, self.host, socket.port, self._public, session=dialog.sdp_session)
        socket.remote = plan.remote
        socket.caller_hosts.update({plan.remote[0], dialog.source[0]})
        call = SipCall(socket, plan, dialog, clock=self._gateway.clock, metrics=self.metrics,
                       quiet_timeout_s=self._settings.peer_timeout_s)
        try:
            live, _, _ = await self._gateway.open(lambda: call, None, call)
        except AliceError as exc:  # (admission has counted its own refusals)
            socket.close()
            if exc.status == 503:
                self._refuse(dialog, 503, "Service Unavailable", exc.message,
                             {"Retry-After": str(exc.retry_after_s or self._settings.retry_after_s)}, counted=True)
            else:
                self._refuse(dialog, 500, "Server Internal Error", exc.message, counted=True)
            return
        except BaseException:  # cancelled (CANCEL, shutdown) while the session opened: open() has closed it
            socket.close()
            raise
        if dialog.terminated:  # the caller gave up as the session opened: no 200 after the 487
            await asyncio.shield(self._gateway.end(live.id, "cancelled"))
            return
        self.calls[dialog.call_id] = call
        try:
            dialog.answer(answer)
            live.log.info("SIP call from %s answered (%s, %s:%d)", dialog.caller, plan.law, *plan.remote)
            await live.ended.wait()
        finally:
            self.calls.pop(dialog.call_id, None)
            if not live.ended.is_set():  # cancelled while live (CANCEL crossing our 200, or shutdown)
                await asyncio.shield(self._gateway.end(live.id, "caller hung up"))

    def _refuse(self, dialog: SipDialog, status: int, reason: str, why: str,
                headers: dict[str, str] | None = None, *, counted: bool = False) -> None:
        log.info("SIP call from %s refused: %d %s", dialog.caller, status, why)
        dialog.reject(status, reason, {**(headers or {}), "Warning": warning(why)})
        if not counted:
            self.metrics.offers_refused.labels(reason=f"sip_{status}").inc()

    def _renegotiate(self, dialog: SipDialog) -> None:
        call = self.calls.get(dialog.call_id)
        if call is None or dialog.offer is None:
            dialog.decline_offer("a re-INVITE needs an SDP offer")
            return
        try:  # the codec agreed stays: the call's coder and the caller's decoder are built for it
            call.sdp_version += 1
            plan, answer = answer_offer(dialog.offer, self.host, call.local_port, self._public,
                                        codecs=[call.payload_type], version=call.sdp_version,
                                        session=dialog.sdp_session)
        except NotAcceptable as exc:
            dialog.decline_offer(str(exc))  # the call goes on as it was
            return
        call.renegotiated(plan)
        dialog.answer(answer)

    def _gone(self, call_id: str, why: str) -> None:
        call = self.calls.get(call_id)
        if call is not None:
            call.caller_hung_up() if why != "no ACK" else call.media_lost(why)
            return
        answering = self._answering.get(call_id)
        if answering is not None:
            answering.cancel()  # CANCEL before our 200: the library has answered 487


def sip_service(settings: Settings, gateway: Gateway) -> SipService | None:
    return SipService(settings, gateway) if settings.sip_port is not None else None


async def stop_quietly(service: SipService | None) -> None:
    if service is not None:
        with contextlib.suppress(Exception):
            await service.aclose()
