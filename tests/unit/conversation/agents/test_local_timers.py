"""The offline agent's timers: spoken requests read into the built-in timer tools, results said back."""

from __future__ import annotations

import asyncio

import pytest

from alice_voice.conversation.agents import NoTools
from alice_voice.conversation.agents.local import LocalAgent, normalize
from alice_voice.conversation.agents.local_timers import TimerCall, timer_call
from alice_voice.conversation.session.tool_calls import ReplyToolCalls, SessionTools
from alice_voice.metrics import Metrics
from alice_voice.tools import Toolbox, ToolContext
from alice_voice.tools.builtin import BUILTIN
from alice_voice.tools.timers import SessionTimers
from support.virtual_time import VIRTUAL_TIME, LoopClock


@pytest.mark.parametrize(("heard", "call"), [
    ("Set a timer for ten minutes.", TimerCall("set_timer", {"seconds": 600})),
    ("Could you start a timer for one hour and thirty minutes?", TimerCall("set_timer", {"seconds": 5400})),
    ("Remind me in half an hour.", TimerCall("set_timer", {"seconds": 1800})),
    ("Set a pasta timer for 8 minutes", TimerCall("set_timer", {"seconds": 480, "label": "pasta"})),
    ("Set a timer called eggs for three minutes.", TimerCall("set_timer", {"seconds": 180, "label": "eggs"})),
    ("How much time is left on my timer?", TimerCall("list_timers", {})),
    ("Cancel the pasta timer.", TimerCall("cancel_timer", {"label": "pasta"})),
    ("Cancel the ten minute timer.", TimerCall("cancel_timer", {"seconds": 600})),
    ("Cancel the ninety second timer.", TimerCall("cancel_timer", {"seconds": 90})),
    ("Stop all timers.", TimerCall("cancel_timer", {"label": ""})),
    ("What time is it?", None), ("Set the table for two", None),
])
def test_timer_requests_are_read_into_tool_calls(heard: str, call: TimerCall | None) -> None:
    assert timer_call(normalize(heard)) == call


@pytest.mark.asyncio
@VIRTUAL_TIME
async def test_the_offline_agent_sets_lists_and_cancels_timers_through_the_tools() -> None:
    clock, agent = LoopClock(), LocalAgent()
    timers = SessionTimers(clock, lambda timer: None)
    committed = asyncio.Event()
    committed.set()
    session = SessionTools(Toolbox((t, 1.0) for t in BUILTIN), ToolContext("s", timers), Metrics(), clock, 0)
    tools = ReplyToolCalls(session, committed, lambda _: None, lambda: None)

    async def ask(text: str) -> str:
        return "".join([d async for d in agent.respond([], text, tools)])

    assert await ask("Set a timer for ten minutes.") == "Okay. A ten-minute timer is set."
    await asyncio.sleep(60)
    assert await ask("How long is left on my timer?") == "The ten-minute timer has nine minutes left."
    assert await ask("Cancel the timer.") == "The ten-minute timer is cancelled."
    assert await ask("Cancel the timer.") == "Sorry, there are no timers."
    assert await ask("Set a timer for two days.") == "Sorry, a timer must run between one second and 24 hours."
    assert [o.name for o in tools.records][:3] == ["set_timer", "list_timers", "cancel_timer"]


@pytest.mark.asyncio
async def test_without_tools_the_offline_agent_says_timers_are_not_available() -> None:
    said = "".join([d async for d in LocalAgent().respond([], "Set a timer for five minutes.", NoTools())])
    assert said == "Sorry, timers aren't available here."
