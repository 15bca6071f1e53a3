"""The gateway's SIP signalling: aiosipua's user agent server on UDP and on TCP (one port), guarded before
the library sees a request; what it reports goes out as signals, each call's dialog as a `SipDialog`.

The guard, for a new INVITE: at most `invites_per_s` from one address (a flood beyond is dropped unanswered:
answering would amplify it); a retransmission of an INVITE still being answered is not a second call; the
caller must be trusted or answer the digest challenge (`CallerCheck`: 401, 403); and it must carry an SDP
offer we can read (400, 415, 488). The library then sends 100 Trying and hands the call on.

What the library reports (a new call, a re-INVITE, BYE, CANCEL, a 2xx never acknowledged) is put on the
`signals` queue for the gateway's own task: no session is touched from inside the library's callbacks.
aiosipua is pinned (0.7.1): its hooks used here (`_handle_request`, `_on_message`, `_handle_options`,
`_send_error`, `_calls`, `IncomingCall._send_response`, the transports' `_dispatch`, `_connections` and
`_read_sip_message`) are its internal names, used in this package only (here, dialog.py and wire.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiosipua import (
    SipRequest,
    SipResponse,
    SipUAC,
    SipUAS,
    parse_sdp,
)
from aiosipua.dialog import DialogState
from aiosipua.message import missing_required_headers
from aiosipua.transport import SipTransport

from alice_voice.clock import Clock
from alice_voice.rate_limit import TokenBucket
from alice_voice.transport.sip.caller_check import CallerCheck
from alice_voice.transport.sip.dialog import SipDialog, warning
from alice_voice.transport.sip.retransmissions import Retransmissions
from alice_voice.transport.sip.wire import TcpTransport, UdpTransport

log = logging.getLogger("alice_voice.sip")
USER_AGENT = "Alice Voice"
INVITE_BURST = 20
_SOURCES_KEPT = 4096  # rate-limit buckets remembered (the oldest are forgotten)


@dataclass(frozen=True, slots=True)
class Invited:
    dialog: SipDialog


@dataclass(frozen=True, slots=True)
class Reinvited:
    dialog: SipDialog


@dataclass(frozen=True, slots=True)
class DialogGone:
    """The caller hung up (BYE) or gave up before the answer (CANCEL), or never acknowledged it."""

    call_id: str
    why: str


Signal = Invited | Reinvited | DialogGone
class GuardedUas(SipUAS):
    def __init__(self, transport: SipTransport, listener: SipListener) -> None:
        super().__init__(transport, user_agent=USER_AGENT, advertised_addr=listener.advertised,
                         uac=SipUAC(transport, advertised_addr=listener.advertised))
        self._listener = listener
        self.transfers: dict[str, asyncio.Future[tuple[int, str]]] = {}
        queue = listener.signals
        self.on_invite = lambda call: queue.put_nowait(Invited(SipDialog(call, self)))
        self.on_reinvite = lambda call: queue.put_nowait(Reinvited(SipDialog(call, self)))
        self.on_bye = lambda call, request: queue.put_nowait(DialogGone(call.call_id, "caller hung up"))
        self.on_cancel = lambda request, addr: queue.put_nowait(DialogGone(request.call_id or "", "cancelled"))
        self.on_ack_timeout = lambda call: queue.put_nowait(DialogGone(call.call_id, "no ACK"))
        self.on_session_expired = lambda call: queue.put_nowait(DialogGone(call.call_id, "session expired"))
        self.on_transfer_progress = self._transfer_progress

    def resend_until_answered(self, request: SipRequest, to: tuple[str, int]) -> None:
        if request.cseq is not None:
            self.resend_until(request.call_id or "", f"{request.cseq.seq} {request.cseq.method}", request, to)

    def resend_until(self, call_id: str, settled_by: str, message: SipRequest | SipResponse,
                     to: tuple[str, int]) -> None:
        if not self.transport.reliable:
            self._listener.retransmissions.start((call_id, settled_by), lambda: self.transport.send(message, to))

    def expect_transfer(self, call_id: str) -> asyncio.Future[tuple[int, str]]:
        future: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self.transfers[call_id] = future
        return future

    def _transfer_progress(self, call_id: str, status: int, reason: str) -> None:
        self._settle(call_id, status, reason)

    def _settle(self, call_id: str, status: int, reason: str) -> None:
        future = self.transfers.get(call_id)
        if future is not None and not future.done() and status >= 200:
            future.set_result((status, reason))

    def _on_message(self, msg: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        if isinstance(msg, SipResponse) and msg.cseq is not None:
            self._listener.retransmissions.stop((msg.call_id or "", f"{msg.cseq.seq} {msg.cseq.method}"))
            if msg.cseq.method == "REFER" and msg.status_code >= 300:  # the caller's side will not transfer
                self._settle(msg.call_id or "", msg.status_code, msg.reason_phrase)
        elif isinstance(msg, SipRequest) and msg.method.upper() == "ACK":
            self._listener.retransmissions.stop((msg.call_id or "", "ACK"))
        super()._on_message(msg, addr)

    def _handle_options(self, request: SipRequest, addr: tuple[str, int]) -> None:
        """A trunk's keep-alive: 503 while the gateway takes no calls (draining), so the trunk sends the next
        call to another replica before it has to be refused."""
        if self._listener.retry_after_s() is not None:
            self._send_error(request, 503, "Service Unavailable",
                             extra_headers={"Retry-After": str(self._listener.retry_after_s())})
            return
        super()._handle_options(request, addr)

    def _handle_request(self, request: SipRequest, addr: tuple[str, int]) -> None:
        if request.method.upper() == "INVITE":
            if self._claims_a_dialog(request):
                live = self._calls.get(request.call_id or "")
                if live is None or live.dialog.state != DialogState.CONFIRMED:  # (not one of ours: no new call)
                    self._send_error(request, 481, "Call/Transaction Does Not Exist")
                    return
            elif not self._guard(request, addr):
                return
            _sdp_content_type_as_the_library_reads_it(request)
        super()._handle_request(request, addr)

    @staticmethod
    def _claims_a_dialog(request: SipRequest) -> bool:
        """A To tag: a re-INVITE, which only a confirmed call of ours may get (never a way past the guard)."""
        try:
            return request.to_addr is not None and bool(request.to_addr.tag)
        except Exception:  # an unreadable To: the guard answers it
            return False

    def _guard(self, request: SipRequest, addr: tuple[str, int]) -> bool:
        """Whether a new INVITE goes on to the library; if not, it has been answered (or dropped)."""
        if not self._listener.allow_invite(addr[0]):
            return False
        pending = self._calls.get(request.call_id or "")
        if pending is not None and pending.dialog.state != DialogState.CONFIRMED:
            pending.trying()  # a retransmission while we answer: still working on it
            return False
        if missing := missing_required_headers(request):
            if "via" not in missing:
                self._send_error(request, 400, "Missing Required Header")
            return False
        try:
            request.cseq, request.from_addr, request.to_addr, request.via  # noqa: B018 (each parses on access)
        except Exception:
            self._send_error(request, 400, "Bad Request",
                             extra_headers={"Warning": warning("a From, To, Via or CSeq header cannot be read")})
            return False
        verdict = self._listener.check.verdict(addr[0], "INVITE", request.get_header("authorization"))
        if verdict in ("challenge", "stale"):
            challenge = self._listener.check.challenge(addr[0], stale=verdict == "stale")
            self._send_error(request, 401, "Unauthorized", extra_headers={"WWW-Authenticate": challenge})
            return False
        if verdict == "forbidden":
            log.warning("INVITE from %s refused: not a trusted address, and no valid credential", addr[0])
            self._send_error(request, 403, "Forbidden")
            return False
        if not request.body:
            self._send_error(request, 488, "Not Acceptable Here",
                             extra_headers={"Warning": warning("an INVITE needs an SDP offer")})
            return False
        if _media_type(request) != "application/sdp":
            self._send_error(request, 415, "Unsupported Media Type", extra_headers={"Accept": "application/sdp"})
            return False
        try:
            parse_sdp(request.text)
        except Exception:  # whatever the parser makes of garbage
            self._send_error(request, 400, "Bad Request",
                             extra_headers={"Warning": warning("the SDP offer cannot be read")})
            return False
        return True


def _media_type(request: SipRequest) -> str:
    return (request.content_type or "").split(";")[0].strip().lower()


def _sdp_content_type_as_the_library_reads_it(request: SipRequest) -> None:
    """aiosipua reads the offer only under exactly `application/sdp`; the header is case-insensitive and may
    carry parameters (`Application/SDP; charset=UTF-8`)."""
    if request.body and _media_type(request) == "application/sdp":
        request.headers.set_single("Content-Type", "application/sdp")


class SipListener:
    """UDP and TCP on `host:port`; new calls and the ends of dialogs come out of `signals`."""

    def __init__(self, host: str, port: int, check: CallerCheck, *, invites_per_s: float, clock: Clock,
                 advertised: tuple[str, int] | None = None,
                 retry_after_s: Callable[[], int | None] = lambda: None) -> None:
        """`retry_after_s`: when the gateway takes no calls now, how soon to try again; else None."""
        self.host, self.port = host, port
        self.retry_after_s = retry_after_s
        self.check = check
        self.advertised = advertised
        self.signals: asyncio.Queue[Signal] = asyncio.Queue()
        self.retransmissions = Retransmissions()
        self._invites_per_s, self._clock = invites_per_s, clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._servers = [GuardedUas(UdpTransport(local_addr=(host, port)), self),
                         GuardedUas(TcpTransport(local_addr=(host, port)), self)]
        # One table of calls and transactions for both: a PBX may send a TCP call's BYE over UDP (our
        # Contact names no transport), and it must find the call.
        self._servers[1]._calls = self._servers[0]._calls
        self._servers[1].transactions = self._servers[0].transactions

    async def start(self) -> None:
        for uas in self._servers:
            await uas.start()
        log.info("SIP listening on %s:%d (UDP and TCP)", self.host, self.port)

    async def stop(self) -> None:
        await self.retransmissions.close()
        for uas in self._servers:
            with contextlib.suppress(Exception):
                await uas.stop()

    @property
    def dialogs(self) -> int:
        """Calls the user agents still keep (answered, or being answered)."""
        return len(self._servers[0].active_calls)

    def allow_invite(self, source_ip: str) -> bool:
        now = self._clock.now()
        bucket = self._buckets.pop(source_ip, None) or TokenBucket(self._invites_per_s, INVITE_BURST, now)
        self._buckets[source_ip] = bucket  # (most recent last)
        while len(self._buckets) > _SOURCES_KEPT:
            self._buckets.popitem(last=False)
        return bucket.take(1, now)
