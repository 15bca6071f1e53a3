"""Who may call: trusted networks, the digest challenge (RFC 3261 §22) and its stateless nonces."""

from __future__ import annotations

import hashlib

import pytest
from aiosipua import parse_auth

from alice_voice.transport.sip.caller_check import NONCE_TTL_S, REALM, CallerCheck, Credential

NOW = 1_800_000_000.0
CALLER = "192.0.2.7"
PBX = Credential("pbx", "s3cret")


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def answer(check: CallerCheck, *, username: str = "pbx", password: str = "s3cret", issued_at: float = NOW,
           uri: str = "sip:alice@example.com") -> str:
    """What a caller's user agent answers to a challenge (qop=auth), as baresip or a PBX computes it."""
    nonce = parse_auth(check.challenge(CALLER, now=issued_at)).params["nonce"]
    ha1, ha2 = md5(f"{username}:{REALM}:{password}"), md5(f"INVITE:{uri}")
    response = md5(f"{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}")
    return (f'Digest username="{username}", realm="{REALM}", nonce="{nonce}", uri="{uri}", response="{response}", '
            'algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee"')


@pytest.mark.parametrize(("trusted", "credential", "anyone", "source", "expected"), [
    (["10.0.0.0/8"], None, False, "10.1.2.3", "trusted"),
    (["10.0.0.0/8"], None, False, "192.0.2.7", "forbidden"),  # nothing to challenge with
    (["10.0.0.0/8"], PBX, False, "192.0.2.7", "challenge"),
    (["2001:db8::/32"], None, False, "2001:db8::5", "trusted"),
    ([], None, True, "203.0.113.9", "trusted"),  # development: anyone
    ([], PBX, False, "not an address", "challenge"),
])
def test_who_is_asked_for_what(trusted: list[str], credential: Credential | None, anyone: bool, source: str,
                               expected: str) -> None:
    assert CallerCheck(trusted, credential, anyone).verdict(source, "INVITE", None, NOW) == expected


def test_a_right_answer_is_taken_and_wrong_ones_are_refused() -> None:
    check = CallerCheck([], PBX)
    assert check.verdict("192.0.2.7", "INVITE", answer(check), NOW + 1) == "authenticated"
    assert check.verdict("192.0.2.7", "INVITE", answer(check, password="guess"), NOW + 1) == "forbidden"
    assert check.verdict("192.0.2.7", "INVITE", answer(check, username="root"), NOW + 1) == "forbidden"


def test_an_old_nonce_is_stale_and_a_foreign_one_is_challenged_again() -> None:
    check = CallerCheck([], PBX)
    assert check.verdict("192.0.2.7", "INVITE", answer(check), NOW + NONCE_TTL_S + 1) == "stale"
    assert "stale=true" in check.challenge(CALLER, stale=True, now=NOW)
    other_process = CallerCheck([], PBX)  # its nonces are signed with another secret
    assert check.verdict("192.0.2.7", "INVITE", answer(other_process), NOW + 1) == "challenge"
    assert check.verdict("198.51.100.4", "INVITE", answer(check), NOW + 1) == "challenge", "sniffed, sent elsewhere"
    assert check.verdict("192.0.2.7", "INVITE", answer(check).replace('nonce="', 'nonce="é'), NOW + 1) == "challenge"


def test_a_challenge_names_the_realm_and_asks_for_qop_auth() -> None:
    params = parse_auth(CallerCheck([], PBX).challenge(CALLER, now=NOW)).params
    assert params["realm"] == REALM and params["qop"] == "auth" and params["algorithm"] == "MD5"
