"""Twilio's request signature (`X-Twilio-Signature`): base64 HMAC-SHA1, keyed by the account's auth token,
of the URL Twilio requested followed by each POST parameter's name and value, sorted by name. A
WebSocket handshake is signed over its URL alone, so the same signature opens any stream: the TwiML also
hands the stream a per-call ticket (`call_ticket`), checked when the stream's `start` names its call."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping


def signature(auth_token: str, url: str, params: Mapping[str, str] | None = None) -> str:
    fields = params or {}
    data = url + "".join(name + fields[name] for name in sorted(fields))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


TICKET_MAX_AGE_S = 60.0  # from the webhook's answer to the stream's start: a second or two in practice
_STAMP_DIGITS = 12  # unix seconds, for some millennia yet


def call_ticket(auth_token: str, call_sid: str, now: float) -> str:
    stamp = str(int(now))
    mac = hmac.new(auth_token.encode(), f"{stamp}.{call_sid}".encode(), hashlib.sha256).hexdigest()
    return f"{stamp}.{mac}"


def valid_ticket(auth_token: str, call_sid: str, ticket: str | None, now: float) -> bool:
    """The ticket the TwiML handed out for `call_sid`, at most `TICKET_MAX_AGE_S` old. (That it is used once
    is the caller's to check: `SessionStore.claim`.)"""
    stamp, _, _ = (ticket or "").partition(".")
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= _STAMP_DIGITS):
        return False
    if not 0 <= now - int(stamp) <= TICKET_MAX_AGE_S:
        return False
    return hmac.compare_digest(call_ticket(auth_token, call_sid, int(stamp)), ticket or "")


def valid(auth_token: str, given: str | None, url: str, params: Mapping[str, str] | None = None) -> bool:
    return bool(given) and hmac.compare_digest(signature(auth_token, url, params), given or "")
