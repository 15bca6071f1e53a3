"""aiosipua's UDP and TCP transports, as the gateway runs them: UDP on a protocol uvloop's transport suits,
TCP bounded in connections and time and answering over the request's own connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiosipua import SipMessage, SipRequest, parse_via, stringify_via
from aiosipua.transport import TcpSipTransport, UdpSipTransport, _read_sip_message

log = logging.getLogger("alice_voice.sip")
TCP_CONNECTIONS, TCP_PER_SOURCE = 256, 16
TCP_IDLE_S = 120.0


class UdpTransport(UdpSipTransport):
    """aiosipua's UDP transport, on a protocol that takes uvloop's datagram transport too (the library's
    asserts asyncio's own class, which uvloop's is not)."""

    async def start(self) -> None:
        self._udp_transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Datagrams(self), local_addr=self.local_addr)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpTransport) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._owner._dispatch(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:  # an ICMP unreachable for what we sent
        log.debug("SIP over UDP: %s", exc)


class TcpTransport(TcpSipTransport):
    """aiosipua's TCP transport, bounded: at most `TCP_CONNECTIONS` open (`TCP_PER_SOURCE` from one address),
    and a connection that completes no message for `TCP_IDLE_S` is closed (a trunk's keeps its connection
    busy with OPTIONS, or opens a new one), so a client that sends half a message and waits holds nothing
    for long."""

    def _dispatch(self, data: bytes, addr: tuple[str, int]) -> None:
        """As the library's, but a request's answer goes back over its connection (RFC 3261 §18.2.2),
        whatever port its Via names: the top Via gets `received` and `rport` of the connection."""
        try:
            message = SipMessage.parse(data)
        except Exception:
            log.info("SIP over TCP: unreadable message from %s", addr[0])
            return
        if isinstance(message, SipRequest) and (vias := message.headers.get("via")):
            via = parse_via(vias[0])
            via.params["received"], via.params["rport"] = addr[0], str(addr[1])
            message.headers.remove("Via")
            for value in (stringify_via(via), *vias[1:]):
                message.headers.append("Via", value)
        if self.on_message is not None:
            try:
                self.on_message(message, addr)
            except Exception:
                log.exception("SIP over TCP: a message from %s failed", addr[0])

    async def _handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        addr = (str(peer[0]), int(peer[1])) if peer else ("0.0.0.0", 0)
        from_there = sum(1 for host, _ in self._connections if host == addr[0])
        if len(self._connections) >= TCP_CONNECTIONS or from_there >= TCP_PER_SOURCE:
            log.warning("SIP over TCP: connection from %s refused (%d open)", addr[0], len(self._connections))
            writer.close()
            return
        self._connections[addr] = (reader, writer)
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE_S):
                    data = await _read_sip_message(reader)
                if data is None:
                    break
                self._dispatch(data, addr)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            self._connections.pop(addr, None)
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await writer.wait_closed()
