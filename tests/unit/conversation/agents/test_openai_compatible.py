"""OpenAiCompatibleAgent against a real local server speaking the /v1/chat/completions streaming format."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio

from alice_voice.config import Settings
from alice_voice.conversation.agents import Message, NoTools
from alice_voice.conversation.agents import openai_compatible as llm_agent
from alice_voice.conversation.agents.openai_compatible import OpenAiCompatibleAgent, error_message
from alice_voice.errors import ProviderAuthError, ProviderError, ProviderTimeout
from fakes.openai_chat import DEFAULT_REPLY, INVALID_KEY, SERVER_ERROR, STREAM_ERROR, FakeOpenAiChat
from support.local_services import free_port

TIMEOUT_S = 0.5  # the agent of the tests of its timeout
PATIENT_S = 5.0  # the other tests' agent: a loaded 2-core machine must not turn their answers into timeouts
# Upper bound for "raised within the timeout": the timeout plus slack for a loaded 2-core machine.
LATE_S = TIMEOUT_S + 1.5
SYSTEM_PROMPT = "You are a test assistant."


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeOpenAiChat]:
    with FakeOpenAiChat() as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeOpenAiChat) -> FakeOpenAiChat:
    fake_server.reset()
    return fake_server


def make_agent(fake: FakeOpenAiChat, api_key: str | None = "test-key", system_prompt: str = SYSTEM_PROMPT,
               timeout_s: float = PATIENT_S) -> OpenAiCompatibleAgent:
    return OpenAiCompatibleAgent(base_url=fake.base_url, model="fake-model", api_key=api_key,
                                 system_prompt=system_prompt, timeout_s=timeout_s)


@pytest_asyncio.fixture
async def agent(fake: FakeOpenAiChat) -> AsyncIterator[OpenAiCompatibleAgent]:
    agent = make_agent(fake)
    yield agent
    await agent.aclose()


async def collect(agent: OpenAiCompatibleAgent, history: list[Message] | None = None,
                  text: str = "Hi!") -> list[str]:
    return [delta async for delta in agent.respond(history or [], text, NoTools())]


@pytest.mark.asyncio
async def test_streamed_reply_arrives_in_order_as_several_deltas(agent: OpenAiCompatibleAgent) -> None:
    deltas = await collect(agent)
    assert deltas == list(DEFAULT_REPLY)
    assert len(deltas) > 2


@pytest.mark.asyncio
async def test_events_split_across_network_chunks_and_data_lines_parse_the_same(
        fake: FakeOpenAiChat, agent: OpenAiCompatibleAgent) -> None:
    fake.reply = ("Three point one four", ", said \"Dr. Pi\"", " \u2014 caf\u00e9 \U0001f600", ".")
    fake.split_bytes, fake.multiline_data = 3, True
    assert await collect(agent) == list(fake.reply)


class OneByteAtATime(httpx.AsyncByteStream):
    def __init__(self, data: bytes) -> None:
        self._data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for index in range(len(self._data)):
            yield self._data[index:index + 1]


@pytest.mark.asyncio
async def test_crlf_events_read_one_byte_at_a_time_parse_the_same() -> None:
    # The local server cannot force TCP to deliver single bytes; an in-memory transport can.
    reply = ["Caf\u00e9", " \u2014 ok", "\n\nDone."]
    events = [{"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]} for text in reply]
    wire = ": comment\r\n\r\n" + "".join(f"data: {json.dumps(e, ensure_ascii=False)}\r\n\r\n" for e in events)
    wire += "data: [DONE]\r\n\r\n"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              stream=OneByteAtATime(wire.encode()))

    agent = OpenAiCompatibleAgent(base_url="http://llm.invalid/v1", model="m", timeout_s=PATIENT_S,
                                  transport=httpx.MockTransport(handler))
    try:
        assert await collect(agent) == reply
    finally:
        await agent.aclose()


@pytest.mark.asyncio
async def test_a_reply_that_is_not_an_event_stream_is_a_provider_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": "Hi"}}]})

    agent = OpenAiCompatibleAgent(base_url="http://llm.invalid/v1", model="m", timeout_s=PATIENT_S,
                                  transport=httpx.MockTransport(handler))
    try:
        with pytest.raises(ProviderError, match="expected an event stream"):
            await collect(agent)
    finally:
        await agent.aclose()


@pytest.mark.asyncio
async def test_history_system_prompt_model_and_key_reach_the_server(
        fake: FakeOpenAiChat, agent: OpenAiCompatibleAgent) -> None:
    history = [Message("system", "This call reminds Sam of an appointment."),  # an outbound call's brief
               Message("user", "What is two plus two?"), Message("assistant", "Four."),
               Message("user", "Say more."), Message("assistant", "")]
    await collect(agent, history, "And times three?")
    [request] = fake.requests
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.body["model"] == "fake-model"
    assert request.body["stream"] is True
    assert request.body["messages"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "system", "content": "This call reminds Sam of an appointment."},
        {"role": "user", "content": "What is two plus two?"},
        {"role": "assistant", "content": "Four."},
        {"role": "user", "content": "Say more."},
        {"role": "user", "content": "And times three?"},
    ]


@pytest.mark.asyncio
async def test_without_key_or_system_prompt_neither_is_sent(fake: FakeOpenAiChat) -> None:
    fake.api_key = None
    agent = make_agent(fake, api_key=None, system_prompt="")
    try:
        assert await collect(agent, [], "Hello") == list(DEFAULT_REPLY)
    finally:
        fake.api_key = "test-key"
        await agent.aclose()
    [request] = fake.requests
    assert "authorization" not in request.headers
    assert request.body["messages"] == [{"role": "user", "content": "Hello"}]


@pytest.mark.asyncio
async def test_server_error_raises_provider_error_with_the_servers_message(
        fake: FakeOpenAiChat, agent: OpenAiCompatibleAgent) -> None:
    fake.mode = "error_500"
    with pytest.raises(ProviderError) as caught:
        await collect(agent)
    assert type(caught.value) is ProviderError
    assert SERVER_ERROR["error"]["message"] in caught.value.message
    assert "500" in caught.value.message
    assert caught.value.retryable and caught.value.provider == agent.name


@pytest.mark.asyncio
async def test_wrong_key_raises_auth_error(fake: FakeOpenAiChat) -> None:
    agent = make_agent(fake, api_key="wrong-key")
    try:
        with pytest.raises(ProviderAuthError) as caught:
            await collect(agent)
    finally:
        await agent.aclose()
    assert INVALID_KEY["error"]["message"] in caught.value.message
    assert not caught.value.retryable


@pytest.mark.asyncio
async def test_revoked_key_raises_auth_error(fake: FakeOpenAiChat, agent: OpenAiCompatibleAgent) -> None:
    fake.mode = "unauthorized"
    with pytest.raises(ProviderAuthError):
        await collect(agent)


@pytest_asyncio.fixture
async def quick_agent(fake: FakeOpenAiChat) -> AsyncIterator[OpenAiCompatibleAgent]:
    agent = make_agent(fake, timeout_s=TIMEOUT_S)
    yield agent
    await agent.aclose()


@pytest.mark.asyncio
async def test_stall_after_the_first_chunk_times_out(fake: FakeOpenAiChat, quick_agent: OpenAiCompatibleAgent) -> None:
    agent = quick_agent
    fake.mode = "stall"
    received: list[str] = []
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        async for delta in agent.respond([], "Hi", NoTools()):
            received.append(delta)
    elapsed = time.monotonic() - started
    assert received == [DEFAULT_REPLY[0]]
    assert TIMEOUT_S * 0.9 <= elapsed < LATE_S
    await asyncio.wait_for(asyncio.to_thread(fake.stream_closed.wait, LATE_S), LATE_S + 1)
    assert fake.stream_closed.is_set()


@pytest.mark.asyncio
async def test_no_first_token_times_out(fake: FakeOpenAiChat, quick_agent: OpenAiCompatibleAgent) -> None:
    agent = quick_agent
    fake.mode, fake.stall_after = "stall", 0
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        await collect(agent)
    assert TIMEOUT_S * 0.9 <= time.monotonic() - started < LATE_S


@pytest.mark.asyncio
async def test_garbage_chunk_raises_provider_error(fake: FakeOpenAiChat, agent: OpenAiCompatibleAgent) -> None:
    fake.mode = "garbage"
    received: list[str] = []
    with pytest.raises(ProviderError) as caught:
        async for delta in agent.respond([], "Hi", NoTools()):
            received.append(delta)
    assert type(caught.value) is ProviderError
    assert "malformed JSON" in caught.value.message
    assert received == [DEFAULT_REPLY[0]]


@pytest.mark.asyncio
async def test_error_event_mid_stream_raises_provider_error(
        fake: FakeOpenAiChat, agent: OpenAiCompatibleAgent) -> None:
    fake.mode = "error_event"
    with pytest.raises(ProviderError) as caught:
        await collect(agent)
    assert STREAM_ERROR["error"]["message"] in caught.value.message


@pytest.mark.asyncio
async def test_closing_the_iterator_closes_the_stream(fake: FakeOpenAiChat, agent: OpenAiCompatibleAgent) -> None:
    fake.mode = "stall"
    stream = agent.respond([], "Hi", NoTools())
    assert await anext(stream) == DEFAULT_REPLY[0]
    started = time.monotonic()
    await stream.aclose()  # type: ignore[attr-defined]
    await asyncio.wait_for(asyncio.to_thread(fake.stream_closed.wait, LATE_S), LATE_S + 1)
    assert fake.stream_closed.is_set()
    assert time.monotonic() - started < LATE_S < PATIENT_S  # the server saw the close, not a timeout


@pytest.mark.asyncio
async def test_unreachable_server_raises_retryable_provider_error() -> None:
    agent = OpenAiCompatibleAgent(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", timeout_s=PATIENT_S)
    try:
        with pytest.raises(ProviderError) as caught:
            await collect(agent)
    finally:
        await agent.aclose()
    assert type(caught.value) is ProviderError
    assert caught.value.retryable


@pytest.mark.asyncio
async def test_load_builds_the_agent_from_settings(fake: FakeOpenAiChat) -> None:
    settings = Settings(llm_base_url=fake.base_url + "/", llm_model="from-settings", llm_api_key="test-key",
                        llm_system_prompt="Be brief.", agent_timeout_s=PATIENT_S)
    agent = llm_agent.load(settings)
    try:
        assert await collect(agent, [], "Yo") == list(DEFAULT_REPLY)
    finally:
        await agent.aclose()
    [request] = fake.requests
    assert request.body["model"] == "from-settings"
    assert request.body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert request.headers["authorization"] == "Bearer test-key"


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"error": {"message": "model not found", "type": "invalid_request_error"}}', "model not found"),
    (b'{"error": "model \\"x\\" not found"}', 'model "x" not found'),
    (b'{"detail": "Not Found"}', "Not Found"),
    (b"Bad Gateway", "Bad Gateway"),
    (b"", "no error message"),
])
def test_error_message_reads_the_common_server_shapes(body: bytes, expected: str) -> None:
    assert error_message(body) == expected
