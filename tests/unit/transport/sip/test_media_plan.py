"""The SDP answer: G.711 in the caller's order, telephone-event when offered, 20 ms, hold, and refusals."""

from __future__ import annotations

import pytest
from aiosipua import parse_sdp, serialize_sdp

from alice_voice.transport.sip.media_plan import NotAcceptable, answer_offer


def offer(formats: str, *rtpmaps: str, proto: str = "RTP/AVP", direction: str = "sendrecv",
          address: str = "192.0.2.10") -> str:
    lines = ["v=0", f"o=- 1 1 IN IP4 {address}", "s=-", f"c=IN IP4 {address}", "t=0 0",
             f"m=audio 40000 {proto} {formats}", *(f"a=rtpmap:{m}" for m in rtpmaps), "a=ptime:30", f"a={direction}"]
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize(("sdp", "law", "events", "held"), [
    (offer("0 8 101", "0 PCMU/8000", "8 PCMA/8000", "101 telephone-event/8000"), "mulaw", 101, False),
    (offer("8 0", "8 PCMA/8000", "0 PCMU/8000"), "alaw", None, False),
    (offer("9 8 96", "9 G722/8000", "8 PCMA/8000", "96 telephone-event/8000"), "alaw", 96, False),
    (offer("0", "0 PCMU/8000", direction="sendonly"), "mulaw", None, True),
    (offer("0", "0 PCMU/8000", address="0.0.0.0"), "mulaw", None, True),
])
def test_an_offer_is_answered(sdp: str, law: str, events: int | None, held: bool) -> None:
    plan, answer = answer_offer(parse_sdp(sdp), "127.0.0.1", 20000, advertised_ip="203.0.113.5")
    assert (plan.law, plan.event_payload_type, plan.held) == (law, events, held)
    text = serialize_sdp(answer)
    assert "m=audio 20000 RTP/AVP" in text and "c=IN IP4 203.0.113.5" in text and "a=ptime:20" in text
    assert ("telephone-event/8000" in text) == (events is not None)
    if events is not None:
        assert f"a=rtpmap:{events} telephone-event/8000" in text, "the offer's payload type, not ours"


@pytest.mark.parametrize("sdp", [
    offer("9 18", "9 G722/8000", "18 G729/8000"),
    offer("0", "0 PCMU/8000", proto="RTP/SAVP"),
    "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=video 4000 RTP/AVP 96\r\n",
])
def test_offers_without_plain_g711_audio_are_not_acceptable(sdp: str) -> None:
    with pytest.raises(NotAcceptable):
        answer_offer(parse_sdp(sdp), "127.0.0.1", 20000)


def test_every_answer_of_a_call_is_one_session_one_version_higher() -> None:
    sdp = parse_sdp(offer("0", "0 PCMU/8000"))
    first = serialize_sdp(answer_offer(sdp, "127.0.0.1", 20000, session="42")[1])
    again = serialize_sdp(answer_offer(sdp, "127.0.0.1", 20000, session="42", version=2)[1])
    assert "o=- 42 1 IN IP4 127.0.0.1" in first and "o=- 42 2 IN IP4 127.0.0.1" in again


def test_a_re_offer_keeps_the_codec_agreed() -> None:
    reoffer = parse_sdp(offer("8 0", "8 PCMA/8000", "0 PCMU/8000"))
    plan, _ = answer_offer(reoffer, "127.0.0.1", 20000, codecs=[0])
    assert (plan.law, plan.payload_type) == ("mulaw", 0)
