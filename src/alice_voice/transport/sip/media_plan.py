"""The SDP offer/answer of a call (RFC 3264), through aiosipua: G.711 μ-law or A-law (the offerer's first
choice of the two), telephone-event (RFC 4733) when offered, 20 ms packets, plain RTP/AVP (no SRTP); and
whether the offer puts the call on hold (sendonly or inactive, or the old `c=0.0.0.0`)."""

from __future__ import annotations

from dataclasses import dataclass

from aiosipua import SdpMessage, SdpNegotiationError, negotiate_sdp

from alice_voice.audio.g711 import Law

PCMU, PCMA = 0, 8
PACKET_MS = 20
_LAWS: dict[int, Law] = {PCMU: "mulaw", PCMA: "alaw"}


class NotAcceptable(Exception):
    """An offer Alice cannot answer (488 Not Acceptable Here), and why."""


@dataclass(frozen=True, slots=True)
class MediaPlan:
    law: Law
    payload_type: int
    event_payload_type: int | None  # telephone-event's, when the caller offered it
    remote: tuple[str, int]  # where the SDP says to send (until the caller's own packets say otherwise)
    held: bool  # the caller put the call on hold: send nothing, expect nothing


def answer_offer(offer: SdpMessage, local_ip: str, rtp_port: int, advertised_ip: str | None = None,
                 codecs: list[int] | None = None, version: int = 1, session: str = "1") -> tuple[MediaPlan, SdpMessage]:
    """`codecs`: the payload types Alice takes, best first (a re-offer: only the one agreed). `session` and
    `version`: the `o=` line's, one session for the call and its version one higher with every answer
    (RFC 3264 §8)."""
    audio = offer.audio
    remote = offer.rtp_address
    if audio is None or remote is None or audio.port == 0:
        raise NotAcceptable("the offer has no audio stream")
    if audio.proto.upper() != "RTP/AVP":
        raise NotAcceptable(f"{audio.proto} is not offered here: plain RTP/AVP only")
    event = next((codec.payload_type for codec in audio.codecs if codec.encoding_name.lower() == "telephone-event"
                  and (codec.clock_rate or 8000) == 8000), None)
    try:
        answer, chosen = negotiate_sdp(offer, local_ip, rtp_port, supported_codecs=codecs or [PCMU, PCMA],
                                       dtmf_payload_type=event or 0, advertised_ip=advertised_ip,
                                       session_name="Alice Voice")
    except SdpNegotiationError as exc:
        raise NotAcceptable("no common codec: PCMU or PCMA (G.711) only") from exc
    answer.origin.session_id, answer.origin.session_version = session, str(version)
    for media in answer.media:
        if media.port and "ptime" in media.attributes:
            media.attributes["ptime"] = [str(PACKET_MS)]  # what we send; we take any length
    held = audio.direction in ("sendonly", "inactive") or remote[0] in ("0.0.0.0", "::")
    return MediaPlan(_LAWS[chosen], chosen, event, remote, held), answer
