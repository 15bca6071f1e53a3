"""One call's SIP dialog, as the gateway answers, refuses, hangs up and transfers it (through the user
agent that took it: `signalling.py`)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from aiosipua import IncomingCall, SdpMessage
from aiosipua.dialog import DialogState

from alice_voice.errors import ProviderError

if TYPE_CHECKING:
    from alice_voice.transport.sip.signalling import GuardedUas

TRANSFER_TIMEOUT_S = 10.0


class SipDialog:
    """One call's dialog, as the gateway answers and ends it."""

    def __init__(self, call: IncomingCall, uas: GuardedUas) -> None:
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


def warning(why: str) -> str:
    """A Warning header's value (RFC 3261 §20.43) saying `why`, quotes and line breaks taken out."""
    text = " ".join(why.replace('"', "'").split())[:200]
    return f'399 alice-voice "{text}"'
