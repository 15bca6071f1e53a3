"""The built-in tools: arithmetic without eval, and a session's timers on its clock."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import pytest

from alice_voice.tools import Toolbox, ToolContext, ToolError
from alice_voice.tools.builtin import BUILTIN, evaluate
from alice_voice.tools.timers import SessionTimers, Timer, spoken_duration
from support.virtual_time import VIRTUAL_TIME, LoopClock


@pytest.mark.parametrize(("expression", "value"), [
    ("7 * 8", 56), ("(3 + 4) / 2", Fraction(7, 2)), ("2 ^ 10", 1024), ("-3 - -4", 1), ("0.1 + 0.2", Fraction(3, 10)),
    ("12 \u00d7 3 \u00f7 4", 9),
])
def test_arithmetic_is_exact(expression: str, value: Fraction) -> None:
    assert evaluate(expression) == value


@pytest.mark.parametrize(("expression", "words"), [
    ("1 / 0", "division by zero"), ("2 ** 1000", "whole powers up to 64"), ("__import__('os')", "only numbers"),
    ("x + 1", "only numbers"), ("1 +", "cannot read"), ("1" * 300, "too long"),
    ("(((9 ** 64) ** 64) ** 64) ** 64", "too large"), ("(2 ** 64) ** 64 * (2 ** 64) ** 64", "too large"),
])
def test_arithmetic_refuses_what_it_cannot_do(expression: str, words: str) -> None:
    with pytest.raises(ToolError, match=words):
        evaluate(expression)


def test_durations_are_spoken_in_words() -> None:
    assert spoken_duration(600) == "ten minutes"
    assert spoken_duration(0) == ""
    assert spoken_duration(3725) == "one hour, two minutes and five seconds"
    assert Timer(1, 600, "", 0).reminder == "Your ten-minute timer is done."
    assert Timer(1, 90, "", 0).reminder == "Your timer for one minute and thirty seconds is done."
    assert Timer(1, 300, "pasta", 0).reminder == "Your pasta timer is done."


@pytest.mark.asyncio
@VIRTUAL_TIME
async def test_timers_are_set_listed_cancelled_and_fall_due_on_the_sessions_clock() -> None:
    due: list[str] = []
    timers = SessionTimers(LoopClock(), lambda timer: due.append(timer.reminder))
    toolbox, context = Toolbox((tool, 1.0) for tool in BUILTIN), ToolContext("s", timers)

    async def call(name: str, arguments: str = "{}") -> str:
        outcome = await toolbox.run("c", name, arguments, context)
        return outcome.result

    assert await call("set_timer", '{"minutes": 10}') == "A ten-minute timer is set."
    assert await call("set_timer", '{"seconds": 30, "label": "tea"}') == "The tea timer is set for thirty seconds."
    await asyncio.sleep(20)
    assert await call("list_timers") == ("The tea timer has ten seconds left. "
                                         "The ten-minute timer has nine minutes and forty seconds left.")
    assert due == []
    await asyncio.sleep(10)
    assert due == ["Your tea timer is done."]
    assert await call("set_timer", '{"seconds": 90}') == "A timer for one minute and thirty seconds is set."
    await asyncio.sleep(89.6)
    assert await call("list_timers") == ("The timer for one minute and thirty seconds has no time left. "
                                         "The ten-minute timer has eight minutes left.")
    assert await call("cancel_timer", '{"minutes": 1.5}') == ("The timer for one minute and thirty seconds "
                                                               "is cancelled.")
    assert await call("cancel_timer", '{"seconds": 30}') == "Error: there is no thirty seconds timer"
    assert await call("cancel_timer", '{"label": "ten-minute"}') == "The ten-minute timer is cancelled."
    assert await call("cancel_timer") == "Error: there are no timers"
    await asyncio.sleep(600)
    assert due == ["Your tea timer is done."], "a cancelled timer never falls due"
    assert (await call("set_timer", "{}")).startswith("Error: invalid arguments")
    assert await call("set_timer", '{"hours": 30}') == "Error: a timer must run between one second and 24 hours"
