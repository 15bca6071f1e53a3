"""ICE host addresses. aioice offers every interface except 127.0.0.1; on a loopback-only setup (tests,
a single-host demo) that leaves no candidate at all, so the addresses can be pinned by a setting."""

from __future__ import annotations

import aioice.ice


def pin_host_addresses(addresses: list[str]) -> None:
    """Offer only these local addresses as host candidates (process-wide). Empty: aioice's default."""
    if addresses:
        pinned = list(addresses)
        aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: pinned
