"""A call's incoming RTP: the small reorder buffer, RFC 4733 key presses, and the receiver report's counts."""

from __future__ import annotations

import pytest
from aiortc.rtp import RtpPacket

from alice_voice.transport.sip.rtp_receiver import KeyPresses, ReceptionStats, ReorderBuffer


def packet(seq: int, timestamp: int = 0, payload: bytes = b"\xff" * 160, payload_type: int = 0) -> RtpPacket:
    return RtpPacket(payload_type=payload_type, sequence_number=seq % 65536, timestamp=timestamp, ssrc=7,
                     payload=payload)


@pytest.mark.parametrize(("arrivals", "released", "lost", "late"), [
    ([1, 2, 3], [1, 2, 3], 0, 0),  # in order: each at once
    ([1, 3, 2, 4], [1, 2, 3, 4], 0, 0),  # one swapped: held a packet, then both
    ([1, 3, 4, 5], [1, 3, 4, 5], 1, 0),  # 2 never comes: skipped once two more are waiting
    ([1, 2, 2, 3], [1, 2, 3], 0, 1),  # a duplicate
    ([1, 4, 5, 6, 2], [1, 4, 5, 6], 2, 1),  # 2 and 3 given up; 2 then arrives too late
    ([1, 4, 5, 2, 6], [1, 2, 4, 5, 6], 1, 0),  # 2 in time, 3 given up
    ([65534, 65535, 0, 1], [65534, 65535, 0, 1], 0, 0),  # across the wrap of the sequence number
    ([500, 501, 498, 502], [500, 501, 502], 0, 1),  # a little behind: late
    ([500, 501, 10, 11], [500, 501, 10, 11], 0, 0),  # far behind: the caller restarted its stream, followed
])
def test_reorder_buffer(arrivals: list[int], released: list[int], lost: int, late: int) -> None:
    buffer = ReorderBuffer(depth=2)
    out = [p.sequence_number for seq in arrivals for p in buffer.push(packet(seq))]
    assert (out, buffer.lost, buffer.late) == (released, lost, late)


def event(key: int, timestamp: int, end: bool = False) -> RtpPacket:
    return packet(0, timestamp, bytes([key, 0x80 if end else 0, 0, 160]), payload_type=101)


@pytest.mark.parametrize(("packets", "keys"), [
    ([event(1, 800), event(1, 800), event(1, 800, end=True), event(1, 800, end=True)], ["1"]),
    ([event(10, 800), event(11, 2400), event(15, 4000)], ["*", "#", "D"]),
    ([event(5, 800), event(5, 2400)], ["5", "5"]),  # the same key pressed twice: two timestamps
    ([event(16, 800)], []),  # flash: not a key
])
def test_key_presses(packets: list[RtpPacket], keys: list[str]) -> None:
    presses = KeyPresses()
    assert [k for p in packets if (k := presses.key(p)) is not None] == keys


def test_reception_stats_count_loss_and_jitter_for_the_report() -> None:
    stats = ReceptionStats()
    for seq in (10, 11, 13, 14):  # 12 lost
        stats.saw(packet(seq, timestamp=seq * 160), arrival_units=seq * 160 + (40 if seq == 13 else 0))
    report = stats.report()
    assert report is not None
    assert (report.ssrc, report.highest_sequence, report.packets_lost) == (7, 14, 1)
    assert report.fraction_lost == 256 // 5  # one in five
    assert report.jitter > 0
    assert stats.report().fraction_lost == 0  # type: ignore[union-attr]  (nothing new lost since)
