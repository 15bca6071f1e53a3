"""A call's two UDP sockets, RTP and RTCP (an even port and the next one, from the configured range).

What arrives is queued for the call's own reader task (bounded: a flood is dropped here, not buffered);
nothing of the call runs in the socket's callback. Symmetric RTP (RFC 4961): we send to where the SDP
says until the caller's first packet, then to the address that packet came from, which is the address a
NAT in front of the caller opened for us. Only a packet from the caller's addresses (the SDP's, or the one
its signalling came from, which is its NAT's) may decide, and the first one does; packets from anywhere
else are dropped (else anyone who guessed the port could take the call's audio: "RTP bleed").
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import Any

Address = tuple[str, int]
_QUEUED = 50  # one second of 20 ms packets


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue(_QUEUED)
        self.dropped = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.queue.full():
            self.dropped += 1
            return
        self.queue.put_nowait((data, (str(addr[0]), int(addr[1]))))

    def error_received(self, exc: Exception) -> None:  # an ICMP unreachable for what we sent: nothing to do
        return None


def port_range(spec: str) -> tuple[int, int]:
    """"20000-20999" -> (20000, 20999)."""
    low, high = (int(port) for port in spec.split("-"))
    return low, high


def _returning(inbox: _Inbox) -> Callable[[], _Inbox]:
    return lambda: inbox


class RtpSocket:
    def __init__(self, rtp: asyncio.DatagramTransport, rtcp: asyncio.DatagramTransport, rtp_inbox: _Inbox,
                 rtcp_inbox: _Inbox, port: int, remote: Address) -> None:
        self._rtp, self._rtcp = rtp, rtcp
        self.rtp_inbox, self.rtcp_inbox = rtp_inbox, rtcp_inbox
        self.port = port
        self.remote = remote
        self.remote_rtcp: Address = (remote[0], remote[1] + 1)
        self.latched = False
        self.caller_hosts: set[str] = {remote[0]}

    @classmethod
    async def bind(cls, host: str, ports: tuple[int, int], remote: Address) -> RtpSocket:
        """The first free pair of the range, tried from a random place (two calls opening at once rarely
        try the same pair). Raises OSError when none is free."""
        loop = asyncio.get_running_loop()
        low, high = (ports[0] + 1) // 2 * 2, ports[1] - 1
        pairs = list(range(low, high + 1, 2))
        start = random.randrange(len(pairs)) if pairs else 0
        for port in pairs[start:] + pairs[:start]:
            rtp_inbox, rtcp_inbox = _Inbox(), _Inbox()
            try:
                rtp, _ = await loop.create_datagram_endpoint(_returning(rtp_inbox), local_addr=(host, port))
            except OSError:
                continue
            try:
                rtcp, _ = await loop.create_datagram_endpoint(_returning(rtcp_inbox), local_addr=(host, port + 1))
            except OSError:
                rtp.close()
                continue
            except BaseException:  # (cancelled meanwhile: the first port must not stay bound)
                rtp.close()
                raise
            return cls(rtp, rtcp, rtp_inbox, rtcp_inbox, port, remote)
        raise OSError(f"no free RTP port pair in {ports[0]}-{ports[1]}")

    def from_caller(self, source: Address) -> bool:
        """Whether a packet from `source` is the caller's (and may be latched on)."""
        return source == self.remote if self.latched else source[0] in self.caller_hosts

    def move_to(self, remote: Address) -> None:
        """The caller's media moved (a re-INVITE with another address): latch again, there."""
        self.remote, self.remote_rtcp, self.latched = remote, (remote[0], remote[1] + 1), False
        self.caller_hosts.add(remote[0])

    def latch(self, source: Address) -> None:
        """The caller's packets come from `source`: send there from now on (once: see the module)."""
        if source != self.remote:
            self.remote, self.remote_rtcp = source, (source[0], source[1] + 1)
        self.latched = True

    def latch_rtcp(self, source: Address) -> None:
        self.remote_rtcp = source

    def send_rtp(self, packet: bytes) -> None:
        if not self._rtp.is_closing():
            self._rtp.sendto(packet, self.remote)

    def send_rtcp(self, packet: bytes) -> None:
        if not self._rtcp.is_closing():
            self._rtcp.sendto(packet, self.remote_rtcp)

    def close(self) -> None:
        for transport in (self._rtp, self._rtcp):
            with contextlib.suppress(Exception):
                transport.close()
