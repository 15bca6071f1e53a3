"""What arrives on a call's RTP socket, made sense of: a small reorder buffer (a packet that skips ahead
waits for the missing ones for at most `REORDER_DEPTH` packets, so in-order audio costs no delay), RFC 4733
telephone-events as key presses, and the counts RTCP receiver reports carry (RFC 3550 §6.4.1)."""

from __future__ import annotations

from dataclasses import dataclass

from aiortc.rtp import RtcpReceiverInfo, RtpPacket

REORDER_DEPTH = 2  # 40 ms: what a network may reorder by; a later packet is taken as lost
RESYNC_BEHIND = 100  # a packet this far behind is a new stream (the caller's side restarted it), not a late one
_HALF = 1 << 15
_KEYS = "0123456789*#ABCD"


def _ahead(seq: int, of: int) -> int:
    """How far `seq` is ahead of `of` in 16-bit sequence space (negative: behind)."""
    distance = (seq - of) % 65536
    return distance - 65536 if distance >= _HALF else distance


class ReorderBuffer:
    def __init__(self, depth: int = REORDER_DEPTH) -> None:
        self._depth = depth
        self._next: int | None = None
        self._ssrc: int | None = None
        self._held: dict[int, RtpPacket] = {}
        self.lost = 0
        self.late = 0

    def push(self, packet: RtpPacket) -> list[RtpPacket]:
        """The packets now in order (none, this one, or this one and those it freed)."""
        seq = packet.sequence_number
        if self._next is None or packet.ssrc != self._ssrc or _ahead(seq, self._next) < -RESYNC_BEHIND:
            self._next, self._ssrc, self._held = seq, packet.ssrc, {}  # a new stream: follow it
        if _ahead(seq, self._next) < 0 or seq in self._held:
            self.late += 1  # already played past, or a duplicate
            return []
        self._held[seq] = packet
        out = self._release()
        if len(self._held) > self._depth:  # waited long enough for the gap: skip it
            first = min(self._held, key=lambda held: _ahead(held, self._next or 0))
            self.lost += _ahead(first, self._next)
            self._next = first
            out += self._release()
        return out

    def _release(self) -> list[RtpPacket]:
        out = []
        while self._next is not None and self._next in self._held:
            out.append(self._held.pop(self._next))
            self._next = (self._next + 1) % 65536
        return out


class KeyPresses:
    """RFC 4733: an event is sent as several packets of one timestamp (and the end three times); the key
    is taken from its first packet, once."""

    def __init__(self) -> None:
        self._last_timestamp: int | None = None

    def key(self, packet: RtpPacket) -> str | None:
        if len(packet.payload) < 4 or packet.timestamp == self._last_timestamp:
            return None
        event = packet.payload[0]
        if event >= len(_KEYS):
            return None  # (flash, or a tone event we do not take)
        self._last_timestamp = packet.timestamp
        return _KEYS[event]


@dataclass
class ReceptionStats:
    """RFC 3550 A.3 and A.8: the loss and interarrival jitter a receiver report gives the sender."""

    ssrc: int = 0
    base_seq: int | None = None
    max_seq: int = 0
    cycles: int = 0
    received: int = 0
    expected_prior: int = 0
    received_prior: int = 0
    jitter: float = 0.0
    _transit: int | None = None

    def saw(self, packet: RtpPacket, arrival_units: int) -> None:
        """`arrival_units`: the arrival time in the payload's clock (8 kHz)."""
        seq = packet.sequence_number
        if self.base_seq is None:
            self.ssrc, self.base_seq, self.max_seq = packet.ssrc, seq, seq
        elif _ahead(seq, self.max_seq) > 0:
            if seq < self.max_seq:
                self.cycles += 65536
            self.max_seq = seq
        self.received += 1
        transit = arrival_units - packet.timestamp
        if self._transit is not None:
            self.jitter += (abs(transit - self._transit) - self.jitter) / 16
        self._transit = transit

    def report(self) -> RtcpReceiverInfo | None:
        if self.base_seq is None:
            return None
        highest = self.cycles + self.max_seq
        expected = highest - self.base_seq + 1
        lost = max(0, expected - self.received)
        interval_expected = expected - self.expected_prior
        interval_lost = interval_expected - (self.received - self.received_prior)
        self.expected_prior, self.received_prior = expected, self.received
        fraction = (interval_lost << 8) // interval_expected if interval_expected > 0 and interval_lost > 0 else 0
        return RtcpReceiverInfo(ssrc=self.ssrc, fraction_lost=min(fraction, 255), packets_lost=min(lost, 0x7FFFFF),
                                highest_sequence=highest & 0xFFFFFFFF, jitter=int(self.jitter), lsr=0, dlsr=0)
