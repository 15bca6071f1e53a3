"""The OpenAI-compatible agent calling tools, against a local server that streams `tool_calls` the way the
real API does: the arguments split across chunks, several calls in one response, a second round."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from alice_voice.clock import MonotonicClock
from alice_voice.conversation.agents import Message
from alice_voice.conversation.agents.openai_compatible import OpenAiCompatibleAgent
from alice_voice.conversation.events import ServerEvent, ToolFinished, ToolStarted
from alice_voice.conversation.session.tool_calls import ReplyToolCalls, SessionTools
from alice_voice.metrics import Metrics
from alice_voice.tools import Toolbox, ToolContext
from alice_voice.tools.builtin import BUILTIN, BUILTIN_TIMEOUT_S
from alice_voice.tools.timers import SessionTimers
from fakes.openai_chat import DEFAULT_REPLY, FakeCall, FakeOpenAiChat

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeOpenAiChat]:
    with FakeOpenAiChat(api_key=None) as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeOpenAiChat) -> FakeOpenAiChat:
    fake_server.reset()
    fake_server.api_key = None
    return fake_server


@pytest_asyncio.fixture
async def agent(fake: FakeOpenAiChat) -> AsyncIterator[OpenAiCompatibleAgent]:
    agent = OpenAiCompatibleAgent(base_url=fake.base_url, model="fake-model", timeout_s=5.0, max_rounds=3)
    yield agent
    await agent.aclose()


class Turn:
    """A committed turn's tools: the built-ins, with timers on the real clock."""

    def __init__(self) -> None:
        self.events: list[ServerEvent] = []
        self.timers = SessionTimers(MonotonicClock(), lambda timer: None)
        self.metrics = Metrics()
        committed = asyncio.Event()
        committed.set()
        session = SessionTools(Toolbox((tool, BUILTIN_TIMEOUT_S) for tool in BUILTIN),
                               ToolContext("session-1", self.timers), self.metrics, MonotonicClock(),
                               filler_after_s=0)
        self.tools = ReplyToolCalls(session, committed, self.events.append, lambda: None)


async def test_a_call_split_across_chunks_is_run_and_its_result_answered(
        fake: FakeOpenAiChat, agent: OpenAiCompatibleAgent) -> None:
    fake.tool_rounds = [[FakeCall("calculate", json.dumps({"expression": "(17 + 4) * 3"}))]]
    fake.reply = ("It's", " sixty-three.")
    turn = Turn()
    said = [d async for d in agent.respond([], "What is seventeen plus four, times three?", turn.tools)]
    assert "".join(said) == "It's sixty-three."
    first, second = fake.requests
    assert [t["function"]["name"] for t in first.body["tools"]] == [t.spec.name for t in BUILTIN]
    assistant, result = second.body["messages"][-2:]
    assert assistant["tool_calls"][0]["function"] == {"name": "calculate",
                                                      "arguments": json.dumps({"expression": "(17 + 4) * 3"})}
    assert result == {"role": "tool", "tool_call_id": assistant["tool_calls"][0]["id"], "content": "63"}
    assert [type(e) for e in turn.events] == [ToolStarted, ToolFinished]
    assert isinstance(turn.events[1], ToolFinished) and turn.events[1].outcome == "ok"
    assert turn.events[1].result is None, "no results in events without LOG_CONTENT"


async def test_several_calls_in_one_response_and_a_second_round(
        fake: FakeOpenAiChat, agent: OpenAiCompatibleAgent) -> None:
    fake.tool_rounds = [
        [FakeCall("set_timer", '{"minutes": 10}'), FakeCall("set_timer", '{"minutes": 5, "label": "pasta"}')],
        [FakeCall("list_timers", "{}")],
    ]
    fake.arguments_piece = 3
    turn = Turn()
    said = "".join([d async for d in agent.respond([], "Two timers please", turn.tools)])
    assert said == "".join(DEFAULT_REPLY)
    assert len(fake.requests) == 3
    names = sorted(t.name for t in turn.timers.active())
    assert names == ["pasta timer", "ten-minute timer"]
    results = [m["content"] for m in fake.requests[2].body["messages"] if m["role"] == "tool"]
    assert results[:2] == ["A ten-minute timer is set.", "The pasta timer is set for five minutes."]
    assert "pasta timer has" in results[2] and "ten-minute timer has" in results[2]


async def test_rounds_are_bounded_and_the_last_offers_no_tools(
        fake: FakeOpenAiChat, agent: OpenAiCompatibleAgent) -> None:
    fake.tool_rounds = [[FakeCall("get_current_time", "{}")]] * 10  # a model that would call forever
    turn = Turn()
    said = "".join([d async for d in agent.respond([], "Time?", turn.tools)])
    assert said == "".join(DEFAULT_REPLY)
    assert len(fake.requests) == 4, "three rounds of calls, then an answer"
    assert "tools" not in fake.requests[-1].body


@pytest.mark.parametrize(("call", "outcome", "words"), [
    (FakeCall("calculate", '{"expression": "1 +'), "invalid", "not valid JSON"),
    (FakeCall("calculate", '{"expr": "1 + 1"}'), "invalid", "'expression' is a required property"),
    (FakeCall("launch_rocket", "{}"), "unknown", "no tool called 'launch_rocket'"),
    (FakeCall("calculate", '{"expression": "1 / 0"}'), "error", "division by zero"),
    (FakeCall("calculate", '{"expression": "__import__(\'os\')"}'), "error", "only numbers"),
])
async def test_a_bad_call_gets_an_error_result_and_the_model_answers(
        fake: FakeOpenAiChat, agent: OpenAiCompatibleAgent, call: FakeCall, outcome: str, words: str) -> None:
    fake.tool_rounds = [[call]]
    turn = Turn()
    said = "".join([d async for d in agent.respond([], "Do it", turn.tools)])
    assert said == "".join(DEFAULT_REPLY)
    [result] = [m for m in fake.requests[1].body["messages"] if m["role"] == "tool"]
    assert result["content"].startswith("Error:") and words in result["content"]
    finished = [e for e in turn.events if isinstance(e, ToolFinished)]
    assert [e.outcome for e in finished] == [outcome]
    assert turn.metrics.tool_errors.labels(tool="(unknown)" if outcome == "unknown" else call.name,
                                           outcome=outcome)._value.get() == 1


async def test_the_history_carries_earlier_calls_as_the_api_records_them(
        fake: FakeOpenAiChat, agent: OpenAiCompatibleAgent) -> None:
    fake.tool_rounds = [[FakeCall("set_timer", '{"minutes": 1}')]]
    turn = Turn()
    said = "".join([d async for d in agent.respond([], "A one minute timer", turn.tools)])
    history = [Message("user", "A one minute timer"), Message("assistant", said, turn.tools.records)]
    fake.tool_rounds = []
    _ = [d async for d in agent.respond(history, "Thanks", Turn().tools)]
    messages = fake.requests[-1].body["messages"]
    roles = [m["role"] for m in messages]
    assert roles == ["user", "assistant", "tool", "assistant", "user"]
    assert messages[1]["tool_calls"][0]["function"]["name"] == "set_timer"
    assert messages[2]["content"] == "A one-minute timer is set."
