"""Agent backed by any OpenAI-compatible `POST /chat/completions` with `stream: true`, tools included.

Works with OpenAI, Ollama, vLLM and the llama.cpp server. The reply arrives as server-sent events
(`data: {chat.completion.chunk}` ... `data: [DONE]`, read by httpx-sse); each chunk's
`choices[0].delta.content` is yielded as it comes. The turn's tools are offered in `tools`; when the model
answers with `tool_calls` (streamed in pieces: the id and name first, the JSON arguments split across
chunks, several calls by `index`), they are run through the turn's tools and their results sent back in a
new request, for at most `max_rounds` rounds; the last round offers no tools, so the model must answer.

The timeout bounds the wait for each round's first token and every stall between chunks. Opening a
request is retried (stamina: a few attempts, backing off) on errors the provider marks retryable (429,
5xx, a refused connection); nothing is retried once a reply has begun.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import stamina
from httpx_sse import EventSource, SSEError, aconnect_sse

from alice_voice.config import Settings
from alice_voice.conversation.agents import Message, TurnTools
from alice_voice.errors import ProviderAuthError, ProviderError, ProviderTimeout
from alice_voice.tools import ToolOutcome

_MAX_ERROR_BYTES = 4096
_MAX_ERROR_CHARS = 300
_OPEN_ATTEMPTS = 3


@dataclass
class _ToolCall:
    """One call as its pieces arrive."""

    call_id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    def message(self) -> dict[str, Any]:
        return {"id": self.call_id, "type": "function",
                "function": {"name": self.name, "arguments": "".join(self.arguments)}}


@dataclass
class _Round:
    """What one response said: its text and the tool calls it asked for."""

    text: list[str] = field(default_factory=list)
    calls: dict[int, _ToolCall] = field(default_factory=dict)


class OpenAiCompatibleAgent:
    """Streams replies from an OpenAI-compatible chat server. One HTTP client (and its pool) per agent."""

    name = "openai"

    def __init__(self, *, base_url: str, model: str, api_key: str | None = None, system_prompt: str = "",
                 timeout_s: float = 15.0, max_tokens: int | None = None, temperature: float | None = None,
                 max_rounds: int = 3, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._model = model
        self._system_prompt = system_prompt
        self._timeout_s = timeout_s
        self._max_rounds = max_rounds
        self._options: dict[str, Any] = {}
        if max_tokens is not None:
            self._options["max_tokens"] = max_tokens
        if temperature is not None:
            self._options["temperature"] = temperature
        headers = {"Accept": "text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        # asyncio.timeout is the real bound; httpx's own timeout is only a backstop.
        self._client = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(timeout_s * 2),
                                         transport=transport)

    async def respond(self, history: Sequence[Message], text: str, tools: TurnTools) -> AsyncIterator[str]:
        messages = self.messages(history, text)
        offered = [spec.openai() for spec in tools.specs]
        try:
            for round_no in range(self._max_rounds + 1):
                said = _Round()
                last = round_no == self._max_rounds  # offer no tools: the model must answer now
                async for delta in self._round(self.payload(messages, [] if last else offered), said):
                    yield delta
                if not said.calls or last:
                    return
                calls = [said.calls[i] for i in sorted(said.calls)]
                messages.append({"role": "assistant", "content": "".join(said.text) or None,
                                 "tool_calls": [call.message() for call in calls]})
                for outcome in await _run_all(tools, calls):
                    messages.append({"role": "tool", "tool_call_id": outcome.call_id, "content": outcome.result})
        except TimeoutError:
            raise ProviderTimeout(self.name, f"no reply within {self._timeout_s:g} s") from None
        except httpx.TimeoutException:
            raise ProviderTimeout(self.name, "the HTTP client timed out") from None
        except httpx.HTTPError as exc:
            raise ProviderError(self.name, f"request failed: {type(exc).__name__}", retryable=True) from exc

    def messages(self, history: Sequence[Message], text: str) -> list[dict[str, Any]]:
        """System prompt, then the history (tool calls as the API records them), then the user's new text."""
        messages: list[dict[str, Any]] = []
        if self._system_prompt:
            messages.append({"role": "system", "content": self._system_prompt})
        for message in history:
            if message.tool_calls:
                messages += _tool_messages(message.tool_calls)
            # An empty turn (e.g. a reply cut off before any audio played) is skipped: some servers reject it.
            if message.content:
                messages.append({"role": message.role, "content": message.content})
        messages.append({"role": "user", "content": text})
        return messages

    def payload(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self._model, "messages": messages, "stream": True, **self._options}
        if tools:
            body["tools"] = tools
        return body

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _round(self, payload: dict[str, Any], said: _Round) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        first_token_deadline = loop.time() + self._timeout_s
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout_at(first_token_deadline):
                source = await self._open(stack, payload)
            events = source.aiter_sse()
            stack.push_async_callback(events.aclose)  # close the stream at once, not when collected
            while True:
                deadline = loop.time() + self._timeout_s
                started = bool(said.text or said.calls)
                async with asyncio.timeout_at(deadline if started else min(deadline, first_token_deadline)):
                    try:
                        event = await anext(events, None)
                    except SSEError as exc:
                        raise ProviderError(self.name, f"expected an event stream: {exc}") from None
                if event is None or event.data.strip() == "[DONE]":
                    return
                content = self._read_chunk(event.data, said)
                if content:
                    said.text.append(content)
                    yield content

    async def _open(self, stack: contextlib.AsyncExitStack, payload: dict[str, Any]) -> EventSource:
        # Retries stop within half the first-token budget, so the caller hears the provider's own error.
        async for attempt in stamina.retry_context(on=_retryable, attempts=_OPEN_ATTEMPTS,
                                                   timeout=self._timeout_s / 2, wait_initial=0.1, wait_max=1.0,
                                                   wait_jitter=0.1):
            with attempt:
                opening = contextlib.AsyncExitStack()
                try:
                    source = await opening.enter_async_context(
                        aconnect_sse(self._client, "POST", self._url, json=payload))
                    await self._check_response(source.response)
                except BaseException:
                    await opening.aclose()
                    raise
                stack.push_async_exit(opening)
                return source
        raise AssertionError("unreachable: the last attempt raises")

    async def _check_response(self, response: httpx.Response) -> None:
        if response.is_success:
            return
        body = bytearray()
        async for part in response.aiter_bytes():
            body += part
            if len(body) >= _MAX_ERROR_BYTES:
                break
        message = f"HTTP {response.status_code}: {error_message(bytes(body))}"
        if response.status_code in (401, 403):
            raise ProviderAuthError(self.name, message)
        retryable = response.status_code == 429 or response.status_code >= 500
        raise ProviderError(self.name, message, retryable=retryable)

    def _read_chunk(self, data: str, said: _Round) -> str:
        """The chunk's text; its tool-call pieces are added to `said`."""
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            raise ProviderError(self.name, "malformed JSON in the event stream") from None
        if not isinstance(chunk, dict):
            raise ProviderError(self.name, "unexpected event in the stream")
        if "error" in chunk:
            raise ProviderError(self.name, error_message(data.encode()))
        choices = chunk.get("choices")
        if not choices:
            return ""  # e.g. a final usage-only chunk
        first = choices[0] if isinstance(choices, list) else None
        delta = first.get("delta") if isinstance(first, dict) else None
        if not isinstance(delta, dict):
            raise ProviderError(self.name, "unexpected chunk shape in the stream")
        for piece in delta.get("tool_calls") or ():
            self._add_call_piece(piece, said)
        content = delta.get("content")
        return content if isinstance(content, str) else ""

    def _add_call_piece(self, piece: Any, said: _Round) -> None:
        function = piece.get("function") if isinstance(piece, dict) else None
        index = piece.get("index", len(said.calls)) if isinstance(piece, dict) else None
        if not isinstance(index, int) or (function is not None and not isinstance(function, dict)):
            raise ProviderError(self.name, "unexpected tool call shape in the stream")
        call = said.calls.setdefault(index, _ToolCall(call_id=f"call_{index}"))
        if isinstance(piece.get("id"), str) and piece["id"]:
            call.call_id = piece["id"]
        function = function or {}
        if isinstance(function.get("name"), str):
            call.name += function["name"]
        if isinstance(function.get("arguments"), str):
            call.arguments.append(function["arguments"])


async def _run_all(tools: TurnTools, calls: list[_ToolCall]) -> list[ToolOutcome]:
    """The calls of one response, at once (they are independent by the API's contract), in their order."""
    async with asyncio.TaskGroup() as group:
        running = [group.create_task(tools.call(c.call_id, c.name, "".join(c.arguments))) for c in calls]
    return [task.result() for task in running]


def _tool_messages(outcomes: Sequence[ToolOutcome]) -> list[dict[str, Any]]:
    calls = [{"id": o.call_id, "type": "function", "function": {"name": o.name, "arguments": o.arguments}}
             for o in outcomes]
    return [{"role": "assistant", "content": None, "tool_calls": calls},
            *({"role": "tool", "tool_call_id": o.call_id, "content": o.result} for o in outcomes)]


def _retryable(exc: Exception) -> bool:
    # A refused connection or a 429/5xx answer: the request was not taken. A read that failed midway is not
    # retried (the server may have begun).
    return (isinstance(exc, ProviderError) and exc.retryable) or isinstance(exc, httpx.ConnectError)


def error_message(body: bytes) -> str:
    """The server's own words from an error body: OpenAI `{"error": {"message"}}`, Ollama `{"error"}`, text."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return text[:_MAX_ERROR_CHARS] or "no error message"
    found: object = parsed
    for key in ("error", "message"):
        if isinstance(found, dict) and key in found:
            found = found[key]
    if isinstance(found, dict) and "detail" in found:
        found = found["detail"]
    message = found if isinstance(found, str) else json.dumps(found)
    return message[:_MAX_ERROR_CHARS]


def load(settings: Settings) -> OpenAiCompatibleAgent:
    """No request at load: the server may start after the gateway, and the first turn reports failures."""
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return OpenAiCompatibleAgent(base_url=settings.llm_base_url, model=settings.llm_model, api_key=key,
                                 system_prompt=settings.llm_system_prompt, timeout_s=settings.agent_timeout_s,
                                 max_rounds=settings.tool_rounds)
