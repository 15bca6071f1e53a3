"""Agent backed by any OpenAI-compatible `POST /chat/completions` with `stream: true`.

Works with OpenAI, Ollama, vLLM and the llama.cpp server. The reply arrives as server-sent events
(`data: {chat.completion.chunk}` ... `data: [DONE]`); each event's `choices[0].delta.content` is yielded as
it comes. The timeout bounds the wait for the first token and every stall between chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any, cast

import httpx

from alice_voice.config import Settings
from alice_voice.conversation.agents import Message
from alice_voice.errors import ProviderAuthError, ProviderError, ProviderTimeout

_MAX_ERROR_BYTES = 4096
_MAX_ERROR_CHARS = 300


class SseDecoder:
    """Server-sent events, one line at a time: returns an event's data when a blank line completes it."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        if not line:
            return self.end()
        if line.startswith(":"):
            return None  # comment, e.g. a keep-alive
        field, _, value = line.partition(":")
        if field == "data":
            self._data.append(value.removeprefix(" "))
        return None

    def end(self) -> str | None:
        """Data of an event still pending (also used at end of stream: some servers omit the blank line)."""
        if not self._data:
            return None
        data, self._data = "\n".join(self._data), []
        return data


class OpenAiCompatibleAgent:
    """Streams replies from an OpenAI-compatible chat server. One HTTP client (and its pool) per agent."""

    name = "openai"

    def __init__(self, *, base_url: str, model: str, api_key: str | None = None, system_prompt: str = "",
                 timeout_s: float = 15.0, max_tokens: int | None = None, temperature: float | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._model = model
        self._system_prompt = system_prompt
        self._timeout_s = timeout_s
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

    async def respond(self, history: Sequence[Message], text: str) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        first_token_deadline = loop.time() + self._timeout_s
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout_at(first_token_deadline):
                    request = self._client.stream("POST", self._url, json=self.payload(history, text))
                    response = await stack.enter_async_context(request)
                    await self._check_response(response)
                async for delta in self._deltas(response, first_token_deadline):
                    yield delta
        except TimeoutError:
            raise ProviderTimeout(self.name, f"no reply within {self._timeout_s:g} s") from None
        except httpx.TimeoutException:
            raise ProviderTimeout(self.name, "the HTTP client timed out") from None
        except httpx.HTTPError as exc:
            raise ProviderError(self.name, f"request failed: {type(exc).__name__}", retryable=True) from exc

    def payload(self, history: Sequence[Message], text: str) -> dict[str, Any]:
        """The request body: system prompt, then the history, then the user's new text."""
        messages: list[dict[str, str]] = []
        if self._system_prompt:
            messages.append({"role": "system", "content": self._system_prompt})
        # An empty turn (e.g. a reply cut off before any audio played) is skipped: some servers reject it.
        messages += [{"role": m.role, "content": m.content} for m in history if m.content]
        messages.append({"role": "user", "content": text})
        return {"model": self._model, "messages": messages, "stream": True, **self._options}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _check_response(self, response: httpx.Response) -> None:
        if response.is_success:
            content_type = response.headers.get("content-type", "")
            if not content_type.startswith("text/event-stream"):
                raise ProviderError(self.name, f"expected an event stream, got {content_type or 'no type'!r}")
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

    async def _deltas(self, response: httpx.Response, first_token_deadline: float) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        decoder = SseDecoder()
        seen_content = False
        # aiter_lines is an async generator; close it at once rather than when it is garbage-collected.
        async with contextlib.aclosing(cast(AsyncGenerator[str, None], response.aiter_lines())) as lines:
            while True:
                deadline = loop.time() + self._timeout_s
                async with asyncio.timeout_at(deadline if seen_content else min(deadline, first_token_deadline)):
                    line = await anext(lines, None)
                data = decoder.end() if line is None else decoder.feed(line)
                if data is not None:
                    if data.strip() == "[DONE]":
                        return
                    content = self._content(data)
                    if content:
                        seen_content = True
                        yield content
                if line is None:
                    return

    def _content(self, data: str) -> str:
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
        content = delta.get("content")
        return content if isinstance(content, str) else ""


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
                                 system_prompt=settings.llm_system_prompt, timeout_s=settings.agent_timeout_s)
