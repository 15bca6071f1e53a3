"""The gateway's SIP signalling: aiosipua's user agent server on UDP and on TCP (one port), guarded before
the library sees a request, and every call's dialog as `SipDialog`.

The guard, for a new INVITE: at most `invites_per_s` from one address (a flood beyond is dropped unanswered:
answering would amplify it); a retransmission of an INVITE still being answered is not a second call; the
caller must be trusted or answer the digest challenge (`CallerCheck`: 401, 403); and it must carry an SDP
offer we can read (400, 415, 488). The library then sends 100 Trying and hands the call on.

What the library reports (a new call, a re-INVITE, BYE, CANCEL, a 2xx never acknowledged) is put on the
`signals` queue for the gateway's own task: no session is touched from inside the library's callbacks.
aiosipua is pinned (0.7.1): its hooks used here (`_handle_request`, `_on_message`, `_handle_options`,
`_send_error`, `_calls`, `IncomingCall._send_response`, the transports' `_dispatch`, `_connections` and
`_read_sip_message`) are its internal names, used in this module only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiosipua import (
    IncomingCall,
    SdpMessage,
    SipMessage,
    SipRequest,
    SipResponse,
    SipUAC,
    SipUAS,
    parse_sdp,
    parse_via,
    stringify_via,
)
from aiosipua.dialog import DialogState
from aiosipua.transport import SipTransport, TcpSipTransport, UdpSipTransport, _read_sip_message

from alice_voice.clock import Clock
from alice_voice.errors import ProviderError
from alice_voice.rate_limit import TokenBucket
from alice_voice.transport.sip.caller_check import CallerCheck

log = logging.getLogger("alice_voice.sip")
USER_AGENT = "Alice Voice"
INVITE_BURST = 20
TRANSFER_TIMEOUT_S = 10.0
_SOURCES_KEPT = 4096  # rate-limit buckets remembered (the oldest are forgotten)
TCP_CONNECTIONS, TCP_PER_SOURCE = 256, 16
TCP_IDLE_S = 120.0


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
T1, T2, RETRANSMIT_FOR_S = 0.5, 4.0, 32.0  # RFC 3261 §17: 500 ms doubling to 4 s, for 64 T1


class Retransmissions:
    """What aiosipua does not resend over UDP: our BYE and REFER until any answer comes (Timer E, RFC 3261
    §17.1.2.2), and a refusal of an INVITE until its ACK (Timer G, §17.2.1). A lost BYE would leave the
    call up at the PBX (which may have no media timeout); a lost 503 would keep a trunk from trying the
    next replica."""

    def __init__(self) -> None:
        self._repeating: dict[tuple[str, str], asyncio.Task[None]] = {}

    def start(self, key: tuple[str, str], send: Callable[[], None]) -> None:
        """`key`: (Call-ID, "<CSeq number> <method>" of the request, or "ACK" for a final answer)."""
        self.stop(key)
        self._repeating[key] = asyncio.get_running_loop().create_task(self._repeat(key, send))

    def stop(self, key: tuple[str, str]) -> None:
        task = self._repeating.pop(key, None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        tasks = list(self._repeating.values())
        self._repeating.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _repeat(self, key: tuple[str, str], send: Callable[[], None]) -> None:
        interval, waited = T1, 0.0
        try:
            while waited + interval <= RETRANSMIT_FOR_S:
                await asyncio.sleep(interval)  # (the protocol's timer)
                waited += interval
                with contextlib.suppress(Exception):
                    send()
                interval = min(2 * interval, T2)
        finally:
            if self._repeating.get(key) is asyncio.current_task():
                del self._repeating[key]


class SipDialog:
    """One call's dialog, as the gateway answers and ends it."""

    def __init__(self, call: IncomingCall, uas: _GuardedUas) -> None:
        self._call, self._uas = call, uas
        self.call_id = call.call_id
        self.caller = call.caller
        self.source = call.source_addr
        self.offer: SdpMessage | None = call.sdp_offer
        self.sdp_session = str(int.from_bytes(call.call_id.encode()[-8:].rjust(8, b"\0"), "big") % 2**31)
        caller_uri = call.invite.from_addr.uri if call.invite.from_addr else None
        # A number is put through by the caller's side (the PBX or trunk that sent the call): its domain.
        self.domain = caller_uri.host + (f":{caller_uri.port}" if caller_uri.port else "") if caller_uri else ""

    @property
    def terminated(self) -> bool:
        """Cancelled (the library has answered 487) or over."""
        return self._call.dialog.state == DialogState.TERMINATED

    def ringing(self) -> None:
        self._call.ringing()

    def answer(self, sdp: SdpMessage) -> None:
        self._call.accept(sdp)

    def reject(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        response = self._call._send_response(status, reason, extra_headers=headers)
        self._call.dialog.terminate()
        if response is not None:
            self._uas.resend_until(self.call_id, "ACK", response, self.source)

    def decline_offer(self, why: str) -> None:
        """488 to a re-INVITE: the call goes on as it was."""
        self._call._send_response(488, "Not Acceptable Here", extra_headers={"Warning": warning(why)})

    def fail_if_unanswered(self, status: int, reason: str) -> bool:
        """A final answer for an INVITE that got none (its answering failed or was stopped): the caller must
        not ring until its own timeout. True if one was sent."""
        if self._call.dialog.state != DialogState.EARLY:
            return False
        with contextlib.suppress(Exception):
            self.reject(status, reason)
        return True

    def hang_up(self) -> None:
        with contextlib.suppress(Exception):  # (a TCP connection already gone: nothing to tell)
            bye = self._call.hangup()
            if bye is not None:
                self._uas.resend_until_answered(bye, self.source)

    def forget(self) -> None:
        """The call is over for us (ended or refused): the library drops its dialog only when the caller's
        BYE, CANCEL or ACK comes, not after our own BYE or a refusal nobody acknowledged."""
        self._call._stop_retransmissions()
        if self._uas._calls.get(self.call_id) is self._call:
            del self._uas._calls[self.call_id]
            self._uas._remove_invite_transaction(self._call.invite)

    async def transfer(self, target: str) -> None:
        """REFER (RFC 3515) to `target` (a SIP URI, or a number at the caller's domain) and wait for
        the final NOTIFY; raises `ProviderError` if the REFER or the transfer fails, or no result comes."""
        uri = target if target.startswith("sip:") else f"sip:{target}@{self.domain or self.source[0]}"
        result = self._uas.expect_transfer(self.call_id)
        try:
            assert self._uas.uac is not None
            self._uas.resend_until_answered(self._uas.uac.send_refer(self._call.dialog, uri, self.source),
                                            self.source)
            async with asyncio.timeout(TRANSFER_TIMEOUT_S):
                status, reason = await result
        except TimeoutError:
            raise ProviderError("sip", "the transfer got no result in time", retryable=True) from None
        except ValueError as exc:  # (the dialog ended meanwhile)
            raise ProviderError("sip", f"no transfer: {exc}") from exc
        finally:
            self._uas.transfers.pop(self.call_id, None)
        if status >= 300:
            raise ProviderError("sip", f"the transfer failed: {status} {reason}".strip())


class _GuardedUas(SipUAS):
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
        if missing := [name for name in ("via", "from", "to", "call-id", "cseq") if not _has(request, name)]:
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


class UdpTransport(UdpSipTransport):
    """aiosipua's UDP transport, on a protocol that takes uvloop's datagram transport too (the library's
    asserts asyncio's own class, which uvloop's is not)."""

    async def start(self) -> None:
        self._udp_transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Datagrams(self), local_addr=self.local_addr)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpTransport) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._owner._dispatch(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:  # an ICMP unreachable for what we sent
        log.debug("SIP over UDP: %s", exc)


class TcpTransport(TcpSipTransport):
    """aiosipua's TCP transport, bounded: at most `TCP_CONNECTIONS` open (`TCP_PER_SOURCE` from one address),
    and a connection that completes no message for `TCP_IDLE_S` is closed (a trunk's keeps its connection
    busy with OPTIONS, or opens a new one), so a client that sends half a message and waits holds nothing
    for long."""

    def _dispatch(self, data: bytes, addr: tuple[str, int]) -> None:
        """As the library's, but a request's answer goes back over its connection (RFC 3261 §18.2.2),
        whatever port its Via names: the top Via gets `received` and `rport` of the connection."""
        try:
            message = SipMessage.parse(data)
        except Exception:
            log.info("SIP over TCP: unreadable message from %s", addr[0])
            return
        if isinstance(message, SipRequest) and (vias := message.headers.get("via")):
            via = parse_via(vias[0])
            via.params["received"], via.params["rport"] = addr[0], str(addr[1])
            message.headers.remove("Via")
            for value in (stringify_via(via), *vias[1:]):
                message.headers.append("Via", value)
        if self.on_message is not None:
            try:
                self.on_message(message, addr)
            except Exception:
                log.exception("SIP over TCP: a message from %s failed", addr[0])

    async def _handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        addr = (str(peer[0]), int(peer[1])) if peer else ("0.0.0.0", 0)
        from_there = sum(1 for host, _ in self._connections if host == addr[0])
        if len(self._connections) >= TCP_CONNECTIONS or from_there >= TCP_PER_SOURCE:
            log.warning("SIP over TCP: connection from %s refused (%d open)", addr[0], len(self._connections))
            writer.close()
            return
        self._connections[addr] = (reader, writer)
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE_S):
                    data = await _read_sip_message(reader)
                if data is None:
                    break
                self._dispatch(data, addr)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            self._connections.pop(addr, None)
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await writer.wait_closed()


def warning(why: str) -> str:
    """A Warning header's value (RFC 3261 §20.43) saying `why`, quotes and line breaks taken out."""
    text = " ".join(why.replace('"', "'").split())[:200]
    return f'399 alice-voice "{text}"'


def _media_type(request: SipRequest) -> str:
    return (request.content_type or "").split(";")[0].strip().lower()


def _sdp_content_type_as_the_library_reads_it(request: SipRequest) -> None:
    """aiosipua reads the offer only under exactly `application/sdp`; the header is case-insensitive and may
    carry parameters (`Application/SDP; charset=UTF-8`)."""
    if request.body and _media_type(request) == "application/sdp":
        request.headers.set_single("Content-Type", "application/sdp")


def _has(request: SipRequest, name: str) -> bool:
    return bool(request.headers.get(name))


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
        self._servers = [_GuardedUas(UdpTransport(local_addr=(host, port)), self),
                         _GuardedUas(TcpTransport(local_addr=(host, port)), self)]
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
