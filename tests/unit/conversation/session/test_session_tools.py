"""Tools in a conversation, on the virtual clock: no side effect on a speculative or dropped turn, a
filler while a tool is slow, a barge-in that cancels a call and a history that records it, timers told
when the caller is not speaking."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from alice_voice.conversation.policy import actions as act
from alice_voice.tools import Toolbox, ToolContext, ToolSpec
from alice_voice.tools.builtin import BUILTIN
from fakes.scripted import ScriptedAgent, ScriptedEndOfTurn
from support.session_harness import SessionHarness
from support.virtual_time import VIRTUAL_TIME

pytestmark = [pytest.mark.asyncio, VIRTUAL_TIME]
LONG = "Here is a long answer with many words so that it plays for several seconds on end"


class Recorder:
    """A tool that records its calls; `gate` (when set) holds each call until released."""

    def __init__(self, name: str, read_only: bool, gate: asyncio.Event | None = None) -> None:
        self.spec = ToolSpec(name, f"{name} for tests", read_only=read_only)
        self.gate = gate
        self.calls: list[tuple[dict[str, Any], str]] = []
        self.cancelled = 0

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> str:
        self.calls.append((arguments, context.session_id))
        if self.gate is not None:
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return f"{self.spec.name} done."


def toolbox(*tools: Any) -> Toolbox:
    return Toolbox((tool, 5.0) for tool in tools)


async def test_a_dropped_speculative_turn_runs_no_tool_that_changes_things() -> None:
    book = Recorder("book_table", read_only=False)
    agent = ScriptedAgent(tool_calls={"book a table": [("book_table", "{}")],
                                      "book a table for two": [("book_table", "{}")]})
    async with SessionHarness(agent=agent, tools=toolbox(book), end_of_turn=ScriptedEndOfTurn(0.1, 1.0)) as s:
        s.say("book a table", 600)
        s.pause(300)  # the speculative reply starts, held: its call waits for the turn to be certain
        s.say("for two", 500)
        await s.run(1500)
        assert [c.reason for c in s.done(act.CutReply) if isinstance(c, act.CutReply)] == ["speech_resumed"]
        assert book.calls == [], "the dropped turn's call never ran"
        assert s.types("tool.started") == []
        s.pause(1500)
        await s.run_until_event("tts.stopped", reason="done")
    assert book.calls == [({}, "harness")], "the committed turn's call ran, once"
    assert s.types("tool.started", "tool.finished") == ["tool.started", "tool.finished"]
    reply = s.actor.history[-1]
    assert reply.content == "book_table done." and [o.name for o in reply.tool_calls] == ["book_table"]


async def test_a_read_only_tool_runs_while_the_turn_is_still_speculative() -> None:
    lookup = Recorder("lookup", read_only=True)
    agent = ScriptedAgent(tool_calls={"where is my order": [("lookup", "{}")]})
    async with SessionHarness(agent=agent, tools=toolbox(lookup), end_of_turn=ScriptedEndOfTurn(0.1, 1.0)) as s:
        s.say("where is my order", 700)
        s.pause(160)  # silence: the speculative final is in, the turn is not yet over
        await s.run(860)
        assert not s.done(act.CommitReply)
        assert lookup.calls == [({}, "harness")], "it ran before the turn was certain"
        s.pause(1500)
        await s.run_until_event("tts.stopped", reason="done")
        assert "".join(e["delta"] for e in s.events("agent.text")) == "lookup done."


async def test_a_slow_tool_gets_the_filler_once_and_the_answer_follows() -> None:
    gate = asyncio.Event()
    slow = Recorder("slow_lookup", read_only=True, gate=gate)
    agent = ScriptedAgent(tool_calls={"check it": [("slow_lookup", "{}"), ("slow_lookup", "{}")]})
    async with SessionHarness(agent=agent, tools=toolbox(slow)) as s:  # the filler after TOOL_FILLER_MS, 1 s
        s.say("check it", 500)
        s.pause(1500)
        await s.run_until_event("tts.started")
        assert "".join(e["delta"] for e in s.events("agent.text")) == "One moment. "
        gate.set()
        await s.run_until_event("tts.stopped", reason="done")
    said = "".join(e["delta"] for e in s.events("agent.text"))
    assert said == "One moment. slow_lookup done. slow_lookup done.", "the filler is said once per reply"
    assert s.tts.calls[0] == ("One moment.", True)


async def test_talking_over_a_reply_cancels_its_running_call_and_the_history_says_so() -> None:
    gate = asyncio.Event()
    transfer = Recorder("transfer_money", read_only=False, gate=gate)
    agent = ScriptedAgent(replies={"send it": LONG}, tool_calls={"send it": [("transfer_money", "{}")]})
    async with SessionHarness(agent=agent, tools=toolbox(transfer)) as s:
        s.say("send it", 500)
        s.pause(1500)
        await s.run_until_event("tts.started")  # the filler plays while the call hangs
        s.say("no wait stop", 600)
        s.pause(1200)
        await s.run_until_event("tts.stopped", reason="barge_in")
        await s.run(200)
    assert transfer.cancelled == 1
    assert [e["outcome"] for e in s.events("tool.finished")] == ["cancelled"]
    replied = [m for m in s.actor.history if m.role == "assistant"]
    assert [o.outcome for o in replied[0].tool_calls] == ["cancelled"]
    assert "may or may not have taken effect" in replied[0].tool_calls[0].result


async def test_a_timer_is_told_when_due_and_waits_for_the_caller_to_finish() -> None:
    agent = ScriptedAgent(tool_calls={"set a timer": [("set_timer", '{"seconds": 3}')]})
    async with SessionHarness(agent=agent, tools=toolbox(*BUILTIN)) as s:
        s.say("set a timer", 500)
        s.pause(1500)
        await s.run_until_event("tts.stopped", reason="done")
        assert "".join(e["delta"] for e in s.events("agent.text")) == "A three-second timer is set."
        set_at = s.events("tool.finished")[0]["at"]
        s.pause(400)
        s.say("and tell me a long story", 3000)  # still talking when the timer is due
        s.pause(1500)
        await s.run_until_event("agent.text", delta="Your three-second timer is done.")
    user_done = s.events("vad.speech_stopped")[-1]["at"]
    reminder = s.events("agent.text", )[-1]["at"]
    assert reminder - set_at > 3.0
    assert reminder > user_done, "not over the caller's words"
    starts = [a.text for a in s.done(act.StartReply) if isinstance(a, act.StartReply)]
    assert starts[-2:] == ["and tell me a long story", "Your three-second timer is done."], \
        "the caller's turn is answered first, then the reminder"


async def test_a_tool_slower_than_the_agents_deadline_is_not_taken_for_a_silent_agent() -> None:
    gate = asyncio.Event()
    slow = Recorder("slow_lookup", read_only=True, gate=gate)
    agent = ScriptedAgent(tool_calls={"check it": [("slow_lookup", "{}")]})
    async with SessionHarness(agent=agent, tools=toolbox(slow), agent_timeout_s=0.5, tool_filler_ms=0) as s:
        s.say("check it", 500)
        s.pause(1500)
        await s.run_until(lambda: bool(slow.calls))
        # The tool answers after six times the agent's deadline (virtual time: no real waiting).
        asyncio.get_running_loop().call_later(3, gate.set)
        await s.run_until_event("tts.stopped", reason="done")
    assert s.types("error") == []
    assert "".join(e["delta"] for e in s.events("agent.text")) == "slow_lookup done."
