"""The toolbox: every call validated, bounded in time, and any failure turned into an error result."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from alice_voice.clock import MonotonicClock
from alice_voice.tools import Toolbox, ToolContext, ToolError, ToolSpec
from alice_voice.tools.timers import SessionTimers

CONTEXT = ToolContext("session-1", SessionTimers(MonotonicClock(), lambda timer: None))
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}, "required": ["n"],
          "additionalProperties": False}


class Probe:
    def __init__(self, behaviour: str = "ok") -> None:
        self.spec = ToolSpec("probe", "A tool for tests.", SCHEMA)
        self.behaviour = behaviour
        self.calls: list[dict[str, Any]] = []
        self.called = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> str:
        self.calls.append(arguments)
        self.called.set()
        match self.behaviour:
            case "refuse":
                raise ToolError("no such order")
            case "raise":
                raise KeyError("bug")
            case "stall":
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    self.cancelled.set()
                    raise
        return f"n is {arguments['n']} for {context.session_id}"


@pytest.mark.asyncio
async def test_a_valid_call_returns_the_tools_result() -> None:
    probe = Probe()
    outcome = await Toolbox([(probe, 1.0)]).run("c1", "probe", '{"n": 3}', CONTEXT)
    assert (outcome.outcome, outcome.result, outcome.call_id) == ("ok", "n is 3 for session-1", "c1")
    assert probe.calls == [{"n": 3}]


@pytest.mark.parametrize(("arguments", "words"), [
    ('{"n": ', "not valid JSON"), ("[1, 2]", "expected a JSON object"), ('{"n": -1}', "n: -1 is less than"),
    ('{"n": "three"}', "'three' is not of type 'integer'"), ('{"n": 1, "x": 2}', "Additional properties"),
    ("", "'n' is a required property"),
])
@pytest.mark.asyncio
async def test_arguments_that_do_not_fit_never_reach_the_tool(arguments: str, words: str) -> None:
    probe = Probe()
    outcome = await Toolbox([(probe, 1.0)]).run("c1", "probe", arguments, CONTEXT)
    assert outcome.outcome == "invalid"
    assert words in outcome.result and outcome.result.startswith("Error: invalid arguments for probe")
    assert probe.calls == []


@pytest.mark.asyncio
async def test_an_unknown_tool_is_named_with_the_ones_there_are() -> None:
    outcome = await Toolbox([(Probe(), 1.0)]).run("c1", "teleport", "{}", CONTEXT)
    assert outcome.outcome == "unknown"
    assert "no tool called 'teleport'" in outcome.result and "probe" in outcome.result


@pytest.mark.parametrize(("behaviour", "outcome", "words"), [
    ("refuse", "error", "Error: no such order"), ("raise", "error", "probe failed (KeyError)"),
    ("stall", "timeout", "did not answer within 0.05 s"),
])
@pytest.mark.asyncio
async def test_a_failing_tool_is_an_error_result(behaviour: str, outcome: str, words: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    probe = Probe(behaviour)
    result = await Toolbox([(probe, 0.05)]).run("c1", "probe", '{"n": 1}', CONTEXT)
    assert (result.outcome, result.result.startswith("Error:")) == (outcome, True)
    assert words in result.result
    assert any(getattr(r, "session_id", None) == "session-1" and "probe" in r.getMessage() for r in caplog.records)
    if behaviour == "stall":
        assert probe.cancelled.is_set(), "the timed-out call was cancelled, not left running"


@pytest.mark.asyncio
async def test_cancelling_the_call_cancels_the_tool() -> None:
    probe = Probe("stall")
    call = asyncio.create_task(Toolbox([(probe, 10.0)]).run("c1", "probe", '{"n": 1}', CONTEXT))
    await asyncio.wait_for(probe.called.wait(), 5)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert probe.cancelled.is_set()


@pytest.mark.asyncio
async def test_a_schema_that_fails_on_the_arguments_is_an_invalid_call_not_a_crash() -> None:
    probe = Probe()
    probe.spec = ToolSpec("probe", "refers nowhere", {"type": "object", "properties": {"n": {"$ref": "#/nowhere"}}})
    outcome = await Toolbox([(probe, 1.0)]).run("c1", "probe", '{"n": 1}', CONTEXT)
    assert outcome.outcome == "invalid" and probe.calls == []


def test_a_tool_with_a_broken_schema_is_refused_when_added() -> None:
    probe = Probe()
    probe.spec = ToolSpec("probe", "broken", {"type": "objekt"})
    with pytest.raises(Exception, match="objekt"):
        Toolbox([(probe, 1.0)])
