"""Twilio's request signature (`X-Twilio-Signature`): base64 HMAC-SHA1, keyed by the account's auth token,
of the URL Twilio requested followed by each POST parameter's name and value, sorted by name. A
WebSocket handshake is signed over its URL alone."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping


def signature(auth_token: str, url: str, params: Mapping[str, str] | None = None) -> str:
    fields = params or {}
    data = url + "".join(name + fields[name] for name in sorted(fields))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def valid(auth_token: str, given: str | None, url: str, params: Mapping[str, str] | None = None) -> bool:
    return bool(given) and hmac.compare_digest(signature(auth_token, url, params), given or "")
