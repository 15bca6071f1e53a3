"""Who may call: an address of a trusted network (a trunk's or a PBX's signalling), or a caller that
answers a digest challenge (RFC 3261 §22, MD5, qop=auth) with the configured credential.

Nonces are stateless: a time and its HMAC under a per-process secret, so a challenge costs no memory and a
flood of INVITEs cannot grow a table; a nonce is good for `NONCE_TTL_S` (then the caller is told `stale`
and answers again without asking its user).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from aiosipua import parse_auth

REALM = "alice-voice"
NONCE_TTL_S = 300.0
Verdict = Literal["trusted", "authenticated", "challenge", "stale", "forbidden"]


@dataclass(frozen=True, slots=True)
class Credential:
    username: str
    password: str


class CallerCheck:
    def __init__(self, trusted: list[str], credential: Credential | None, allow_anyone: bool = False) -> None:
        self._trusted = [ipaddress.ip_network(network, strict=False) for network in trusted]
        self._credential = credential
        self._allow_anyone = allow_anyone
        self._secret = secrets.token_bytes(32)

    def verdict(self, source_ip: str, method: str, authorization: str | None, now: float | None = None) -> Verdict:
        """What an INVITE from `source_ip` with this Authorization header gets."""
        if self._allow_anyone or self._is_trusted(source_ip):
            return "trusted"
        if self._credential is None:
            return "forbidden"  # no credential to challenge with: only trusted networks may call
        if not authorization:
            return "challenge"
        return self._check(source_ip, method, authorization, time.time() if now is None else now)

    def challenge(self, source_ip: str, stale: bool = False, now: float | None = None) -> str:
        """A WWW-Authenticate header value with a fresh nonce, good from `source_ip` only (a sniffed answer
        does not work from elsewhere)."""
        issued = f"{time.time() if now is None else now:.0f}"
        nonce = f"{issued}.{self._sign(issued, source_ip)}"
        return (f'Digest realm="{REALM}", nonce="{nonce}", algorithm=MD5, qop="auth"'
                + (", stale=true" if stale else ""))

    def _is_trusted(self, source_ip: str) -> bool:
        try:
            address = ipaddress.ip_address(source_ip)
        except ValueError:
            return False
        return any(address in network for network in self._trusted)

    def _check(self, source_ip: str, method: str, authorization: str, now: float) -> Verdict:
        assert self._credential is not None
        params = parse_auth(authorization, credentials=True).params
        nonce, response = params.get("nonce", ""), params.get("response", "")
        if (params.get("username") != self._credential.username or params.get("realm") != REALM
                or params.get("algorithm", "MD5").upper() != "MD5" or not response):
            return "forbidden"
        issued, _, signature = nonce.partition(".")
        if not hmac.compare_digest(signature.encode(), self._sign(issued, source_ip).encode()):
            return "challenge"  # a nonce we never gave, or gave another address (or another process): ask again
        expected = _digest(self._credential, method, params)
        if not hmac.compare_digest(expected.encode(), response.lower().encode()):
            return "forbidden"
        if now - float(issued) > NONCE_TTL_S:
            return "stale"
        return "authenticated"

    def _sign(self, issued: str, source_ip: str) -> str:
        return hmac.new(self._secret, f"{issued}|{source_ip}".encode(), hashlib.sha256).hexdigest()[:32]


def _digest(credential: Credential, method: str, params: dict[str, str]) -> str:
    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()  # (what SIP digest is; not a password store)

    ha1 = md5(f"{credential.username}:{REALM}:{credential.password}")
    ha2 = md5(f"{method}:{params.get('uri', '')}")
    if params.get("qop"):
        return md5(f"{ha1}:{params.get('nonce', '')}:{params.get('nc', '')}:{params.get('cnonce', '')}:"
                   f"{params['qop']}:{ha2}")
    return md5(f"{ha1}:{params.get('nonce', '')}:{ha2}")
