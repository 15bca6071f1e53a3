"""What aiosipua does not resend over UDP: our in-dialog requests until any answer comes (Timer E, RFC 3261
§17.1.2.2), and a refusal of an INVITE until its ACK (Timer G, §17.2.1)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

T1, T2, RETRANSMIT_FOR_S = 0.5, 4.0, 32.0  # RFC 3261 §17: 500 ms doubling to 4 s, for 64 T1


class Retransmissions:
    """Our BYE and REFER resent until answered, a refusal until its ACK. A lost BYE would leave the
    call up at the PBX (which may have no media timeout); a lost 503 would keep a trunk from trying the
    next replica."""

    def __init__(self) -> None:
        self._repeating: dict[tuple[str, str], asyncio.Task[None]] = {}

    def start(self, key: tuple[str, str], send: Callable[[], None]) -> None:
        """`key`: (Call-ID, "<CSeq number> <method>" of the request, or "ACK" for a final answer)."""
        self.stop(key)
        self._repeating[key] = asyncio.get_running_loop().create_task(self._repeat(key, send))

    def stop(self, key: tuple[str, str]) -> None:
        task = self._repeating.pop(key, None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        tasks = list(self._repeating.values())
        self._repeating.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _repeat(self, key: tuple[str, str], send: Callable[[], None]) -> None:
        interval, waited = T1, 0.0
        try:
            while waited + interval <= RETRANSMIT_FOR_S:
                await asyncio.sleep(interval)  # (the protocol's timer)
                waited += interval
                with contextlib.suppress(Exception):
                    send()
                interval = min(2 * interval, T2)
        finally:
            if self._repeating.get(key) is asyncio.current_task():
                del self._repeating[key]
