"""The low-latency audio receive path: the one place that reaches into aiortc's receiver.

aiortc's audio receiver hard-codes `JitterBuffer(capacity=16, prefetch=4)`: every frame waits for four
newer ones (~80 ms on loopback), and after one lost packet the buffer can never emit two frames for one
packet, so the lag ratchets up to ~280 ms for the rest of the call. For Opus one RTP packet is one
complete frame, so the "immediate" buffer hands each packet to the decoder at once (~2 ms), dropping
late or duplicate packets instead of reordering them; a gap skips the lost 20 ms (Opus PLC is not
used). The trade-off: on a network with real jitter, packets reordered by more than a frame are lost
instead of waited for, and the caller hears nothing about it except a 20 ms gap. "prefetch0" waits for
one newer packet (~20 ms) and reorders within it; "aiortc" keeps the stock behaviour.

aiortc is pinned (1.16.0): the attribute is name-mangled, and `install` fails loudly if it moves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.utils import uint16_gt

JitterMode = Literal["immediate", "prefetch0", "aiortc"]
_ATTR = "_RTCRtpReceiver__jitter_buffer"


def _ignore(frames: int) -> None:
    return None


class ImmediateAudioJitterBuffer(JitterBuffer):  # type: ignore[misc]
    """One Opus packet in, one frame out, at once; older-than-newest packets are dropped.

    `on_lost(n)` is told of every frame that will not be decoded: a gap in the sequence numbers, or a
    packet that came too late.
    """

    def __init__(self, on_lost: Callable[[int], None] = _ignore) -> None:
        super().__init__(capacity=16, prefetch=0)
        self._last_seq: int | None = None
        self._on_lost = on_lost

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        seq = packet.sequence_number
        if self._last_seq is not None and not uint16_gt(seq, self._last_seq):
            self._on_lost(1)  # late or duplicate
            return False, None
        if self._last_seq is not None and (gap := (seq - self._last_seq - 1) % 65536):
            self._on_lost(gap)
        self._last_seq = seq
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)


def install(receiver: RTCRtpReceiver, mode: JitterMode, on_lost: Callable[[int], None] = _ignore) -> None:
    """Replace the audio receiver's jitter buffer; call before the first RTP packet arrives. `on_lost`
    counts frames lost on the way (the immediate buffer only: the others reorder and conceal)."""
    if mode == "aiortc":
        return
    if not hasattr(receiver, _ATTR):
        raise RuntimeError("aiortc internals changed: RTCRtpReceiver has no jitter buffer attribute")
    buffer = ImmediateAudioJitterBuffer(on_lost) if mode == "immediate" else JitterBuffer(capacity=16, prefetch=0)
    setattr(receiver, _ATTR, buffer)
