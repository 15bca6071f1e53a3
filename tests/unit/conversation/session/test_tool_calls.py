"""One reply's tool calls: the turn gate, one filler for calls running at once, the agent's deadline
paused while calls run, and the records a cut reply leaves."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from alice_voice.clock import MonotonicClock
from alice_voice.conversation.events import ServerEvent, ToolFinished, ToolStarted
from alice_voice.conversation.session.tool_calls import ReplyToolCalls, SessionTools
from alice_voice.metrics import Metrics
from alice_voice.tools import Toolbox, ToolContext, ToolSpec
from alice_voice.tools.timers import SessionTimers

pytestmark = pytest.mark.asyncio


class Gated:
    def __init__(self, name: str, read_only: bool) -> None:
        self.spec = ToolSpec(name, name, read_only=read_only)
        self.release = asyncio.Event()
        self.running = asyncio.Event()
        self.started = 0

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> str:
        self.started += 1
        self.running.set()
        await self.release.wait()
        return "done"


def calls_for(*tools: Gated, committed: bool = True, filler_s: float = 0.0) -> tuple[ReplyToolCalls, dict[str, Any]]:
    seen: dict[str, Any] = {"events": [], "fillers": 0, "busy": [], "filled": asyncio.Event()}
    gate = asyncio.Event()
    if committed:
        gate.set()
    seen["gate"] = gate
    timers = SessionTimers(MonotonicClock(), lambda timer: None)
    session = SessionTools(Toolbox((t, 5.0) for t in tools), ToolContext("s", timers), Metrics(), MonotonicClock(),
                           filler_s)

    def filler() -> None:
        seen["fillers"] += 1
        seen["filled"].set()

    events: list[ServerEvent] = seen["events"]
    return ReplyToolCalls(session, gate, events.append, filler, seen["busy"].append), seen


async def test_calls_running_at_once_get_one_filler_and_pause_the_agents_deadline_together() -> None:
    a, b = Gated("a", read_only=True), Gated("b", read_only=True)
    tools, seen = calls_for(a, b, filler_s=0.01)
    running = [asyncio.create_task(tools.call(f"c{i}", t.spec.name, "{}")) for i, t in enumerate((a, b))]
    await asyncio.wait_for(asyncio.gather(a.running.wait(), b.running.wait(), seen["filled"].wait()), 5)
    a.release.set()
    b.release.set()
    outcomes = await asyncio.gather(*running)
    assert [o.outcome for o in outcomes] == ["ok", "ok"]
    assert seen["fillers"] == 1
    assert seen["busy"] == [True, True, False], "busy while any call runs, idle once both are done"
    assert [type(e) for e in seen["events"]] == [ToolStarted, ToolStarted, ToolFinished, ToolFinished]


async def test_a_tool_that_changes_things_waits_for_the_turn_and_a_cut_records_it_as_cancelled() -> None:
    book = Gated("book", read_only=False)
    tools, seen = calls_for(book, committed=False)
    call = asyncio.create_task(tools.call("c1", "book", "{}"))
    for _ in range(20):
        await asyncio.sleep(0)
    assert book.started == 0 and seen["events"] == [] and tools.records == ()
    seen["gate"].set()
    await asyncio.wait_for(book.running.wait(), 5)
    [running] = tools.records
    assert running.outcome == "cancelled" and "may or may not" in running.result, "a cut now records this"
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    [finished] = [e for e in seen["events"] if isinstance(e, ToolFinished)]
    assert finished.outcome == "cancelled" and seen["busy"] == [True, False]
