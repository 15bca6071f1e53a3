"""Our BYE, REFER and refusals are sent again over UDP, on RFC 3261's doubling timer, until answered."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from alice_voice.transport.sip import retransmissions
from alice_voice.transport.sip.retransmissions import Retransmissions

pytestmark = pytest.mark.asyncio


@pytest.fixture
def timer(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The intervals the retransmission timer waits, each passing at once."""
    waited: list[float] = []
    pass_at_once = asyncio.sleep

    async def wait(delay: float) -> None:
        waited.append(delay)
        await pass_at_once(0)

    monkeypatch.setattr(retransmissions.asyncio, "sleep", wait)
    yield waited


async def test_sent_again_at_t1_doubling_to_t2_for_64_t1(timer: list[float]) -> None:
    sent: list[int] = []
    resends = Retransmissions()
    resends.start(("call", "2 BYE"), lambda: sent.append(1))
    await asyncio.wait_for(resends._repeating[("call", "2 BYE")], timeout=2)
    assert timer == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]  # 31.5 s: the next would pass 32 s
    assert len(sent) == len(timer) and not resends._repeating


async def test_an_answer_stops_it_and_closing_stops_all(timer: list[float]) -> None:
    sent: list[str] = []
    resends = Retransmissions()
    resends.start(("a", "ACK"), lambda: sent.append("a"))
    resends.start(("b", "1 REFER"), lambda: sent.append("b"))
    resends.stop(("a", "ACK"))  # its ACK came
    await asyncio.sleep(0)
    await resends.close()
    assert "a" not in sent and not resends._repeating
