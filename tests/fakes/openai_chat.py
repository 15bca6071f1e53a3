"""A fake OpenAI-compatible chat server on 127.0.0.1 speaking the real streaming wire format.

`POST /v1/chat/completions` with `stream: true` answers `text/event-stream`: a keep-alive comment, a role
chunk, one `chat.completion.chunk` per scripted delta, a `finish_reason: "stop"` chunk and `data: [DONE]`.
The Authorization header is checked against `api_key`. Switches (`mode`): "ok", "error_500" (OpenAI-style
error JSON), "unauthorized" (401 even with the right key), "stall" (hang after `stall_after` content chunks
until the client gives up), "garbage" (a malformed JSON chunk after the first one), "error_event" (an
`{"error": ...}` event mid-stream). `split_bytes` sends every event in pieces of that many bytes and
`multiline_data` spreads each JSON object over two `data:` lines, as SSE allows.

Tool calls: `tool_rounds[k]` is what the k-th response to the user's last message asks for (k: how many
assistant `tool_calls` messages follow that message in the request), streamed as the API does it: a
`tool_calls` delta with the index, id, type and name and empty arguments, then the JSON arguments in
pieces of `arguments_piece` characters, several calls by index, and `finish_reason: "tool_calls"`. A
request without `tools` gets the text reply. Past the scripted rounds the text reply comes.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from fakes.local_server import LocalServer

Mode = Literal["ok", "error_500", "unauthorized", "stall", "garbage", "error_event"]

ErrorBody = dict[str, dict[str, Any]]

SERVER_ERROR: ErrorBody = {"error": {
    "message": "The server had an error while processing your request. Sorry about that!",
    "type": "server_error", "param": None, "code": None}}
INVALID_KEY: ErrorBody = {"error": {
    "message": "Incorrect API key provided. You can find your API key in your account.",
    "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
STREAM_ERROR: ErrorBody = {"error": {
    "message": "The model produced invalid content.", "type": "server_error", "param": None, "code": None}}
GARBAGE = b'data: {"id": "chatcmpl-fake0001", "choices": [{"delta": {"content": "oo\n\n'
DEFAULT_REPLY = ("Hello", " there", "! How", " can I", " help?")


@dataclass(frozen=True)
class FakeCall:
    name: str
    arguments: str  # JSON text, sent in pieces
    call_id: str = ""


@dataclass(frozen=True)
class ChatRequest:
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeOpenAiChat:
    """Start with `with FakeOpenAiChat() as fake:`; point a client at `fake.base_url`."""

    api_key: str | None = "test-key"
    reply: Sequence[str] = DEFAULT_REPLY
    mode: Mode = "ok"
    stall_after: int = 1
    split_bytes: int | None = None
    multiline_data: bool = False
    tool_rounds: Sequence[Sequence[FakeCall]] = ()
    tool_rounds_for: Callable[[str], Sequence[Sequence[FakeCall]]] | None = None  # by the user's last words
    arguments_piece: int = 7
    requests: list[ChatRequest] = field(default_factory=list)
    stream_closed: threading.Event = field(default_factory=threading.Event)
    _release: asyncio.Event | None = field(default=None, init=False)
    _server: LocalServer | None = field(default=None, init=False)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"{self._server.url}/v1"

    def reset(self) -> None:
        """Back to a healthy server with the default script and nothing recorded."""
        self.reply, self.mode, self.stall_after = DEFAULT_REPLY, "ok", 1
        self.split_bytes, self.multiline_data = None, False
        self.tool_rounds, self.tool_rounds_for, self.arguments_piece = (), None, 7
        self.requests.clear()
        self.stream_closed.clear()

    def start(self) -> FakeOpenAiChat:
        app = Starlette(routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])])
        self._server = LocalServer(app).start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        release = self._release
        if release is not None:
            self._server.call_soon(release.set)  # let stalled streams end so shutdown does not wait
        self._server.stop()
        self._server = None

    def __enter__(self) -> FakeOpenAiChat:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    async def _completions(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(ChatRequest(body, dict(request.headers)))
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse(INVALID_KEY, status_code=401)
        if self.mode == "unauthorized":
            return JSONResponse(INVALID_KEY, status_code=401)
        if self.mode == "error_500":
            return JSONResponse(SERVER_ERROR, status_code=500)
        if body.get("stream") is not True or not body.get("messages"):
            return JSONResponse({"error": {"message": "this fake only streams", "type": "invalid_request_error",
                                           "param": "stream", "code": None}}, status_code=400)
        if self._release is None:
            self._release = asyncio.Event()
        return StreamingResponse(self._stream(str(body.get("model", "")), self._calls_for(body)),
                                 media_type="text/event-stream")

    def _calls_for(self, body: dict[str, Any]) -> Sequence[FakeCall]:
        if not body.get("tools"):
            return ()
        messages = body["messages"]
        last_user = max(i for i, m in enumerate(messages) if m.get("role") == "user")
        asked = messages[last_user].get("content") or ""
        rounds = self.tool_rounds_for(asked) if self.tool_rounds_for is not None else self.tool_rounds
        done = sum(1 for m in messages[last_user:] if m.get("role") == "assistant" and m.get("tool_calls"))
        return rounds[done] if done < len(rounds) else ()

    async def _stream(self, model: str, calls: Sequence[FakeCall] = ()) -> AsyncIterator[bytes]:
        try:
            yield b": keep-alive\n\n"
            events = self._tool_call_events(model, calls) if calls else self._events(model)
            async for event in events:
                for piece in self._pieces(event):
                    yield piece
        finally:
            self.stream_closed.set()

    async def _events(self, model: str) -> AsyncIterator[bytes]:
        chunk_id, created = "chatcmpl-fake0001", int(time.time())
        yield self._event(_chunk(chunk_id, created, model, {"role": "assistant", "content": ""}, None))
        for index, text in enumerate(self.reply):
            if self.mode == "stall" and index == self.stall_after:
                assert self._release is not None
                await self._release.wait()  # until the client disconnects (cancelled) or the fake stops
                return
            if self.mode == "garbage" and index == 1:
                yield GARBAGE
                return
            if self.mode == "error_event" and index == 1:
                yield self._event(STREAM_ERROR)
                return
            yield self._event(_chunk(chunk_id, created, model, {"content": text}, None))
        yield self._event(_chunk(chunk_id, created, model, {}, "stop"))
        yield b"data: [DONE]\n\n"

    async def _tool_call_events(self, model: str, calls: Sequence[FakeCall]) -> AsyncIterator[bytes]:
        chunk_id, created = "chatcmpl-fake0002", int(time.time())
        yield self._event(_chunk(chunk_id, created, model, {"role": "assistant", "content": None}, None))
        for index, call in enumerate(calls):
            head = {"index": index, "id": call.call_id or f"call_fake{len(self.requests)}_{index}",
                    "type": "function", "function": {"name": call.name, "arguments": ""}}
            yield self._event(_chunk(chunk_id, created, model, {"tool_calls": [head]}, None))
            text, size = call.arguments, self.arguments_piece
            for start in range(0, len(text), size):
                piece = {"index": index, "function": {"arguments": text[start:start + size]}}
                yield self._event(_chunk(chunk_id, created, model, {"tool_calls": [piece]}, None))
        yield self._event(_chunk(chunk_id, created, model, {}, "tool_calls"))
        yield b"data: [DONE]\n\n"

    def _event(self, payload: dict[str, Any]) -> bytes:
        text = json.dumps(payload)
        if self.multiline_data:
            head, sep, tail = text.partition(", ")
            return f"data: {head}{sep.strip()}\ndata: {tail}\n\n".encode()
        return f"data: {text}\n\n".encode()

    def _pieces(self, event: bytes) -> list[bytes]:
        size = self.split_bytes or len(event)
        return [event[start:start + size] for start in range(0, len(event), size)]


def _chunk(chunk_id: str, created: int, model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": "fp_fake", "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                          "finish_reason": finish}]}
