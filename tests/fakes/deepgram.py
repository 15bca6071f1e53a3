"""Fake Deepgram live transcription: `wss://…/v1/listen` on 127.0.0.1, on the real wire protocol.

The handshake checks what Deepgram checks: `Authorization: Token <key>` (else HTTP 401 with Deepgram's
JSON error body and `dg-error` header) and the audio format in the query (`encoding=linear16`,
`sample_rate=16000`, `channels=1`; else HTTP 400). Then binary frames are s16le audio, and the answers
are `Results` messages computed from how much audio arrived (`heard_words`): an interim result each time
a word is heard, an `is_final` result every `words_per_segment` words. `Finalize` flushes the unsettled
audio as an `is_final`, `from_finalize` result (and, like Deepgram, says nothing when nothing is
unsettled); `KeepAlive` is recorded; `CloseStream` flushes, sends `Metadata` and closes with 1000.

Switches (set before the client connects), on `fake.behaviour`:
  fail_after_ms   once this much audio arrived, close with 1011 and a NET-0000 reason
  stall_after_ms  once this much audio arrived, stop answering anything (keeps reading)
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from fakes.heard_words import RATE, WORD_MS, word, word_samples

EXPECTED_QUERY = {"encoding": "linear16", "sample_rate": "16000", "channels": "1"}
ERROR_REASON = "NET-0000: The service has encountered an internal error."


@dataclass
class DeepgramBehaviour:
    api_key: str = "dg-test-key"
    word_ms: int = WORD_MS
    words_per_segment: int = 3
    fail_after_ms: int | None = None
    stall_after_ms: int | None = None


@dataclass
class ListenSession:
    """What one accepted connection sent."""

    query: dict[str, str]
    headers: Headers
    samples: int = 0
    controls: list[str] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class _Transcriber:
    """Audio counts in, Deepgram `Results` out."""

    def __init__(self, behaviour: DeepgramBehaviour) -> None:
        self._word = word_samples(behaviour.word_ms)
        self._per_segment = behaviour.words_per_segment
        self.received = 0
        self._words = 0
        self._segment: list[str] = []
        self._segment_start = 0

    def on_audio(self, samples: int) -> list[dict[str, Any]]:
        self.received += samples
        out = []
        while (self._words + 1) * self._word <= self.received:
            self._segment.append(word(self._words))
            self._words += 1
            boundary = self._words * self._word
            settled = len(self._segment) >= self._per_segment
            out.append(self._results(boundary, is_final=settled))
            if settled:
                self._segment, self._segment_start = [], boundary
        return out

    def flush(self, *, from_finalize: bool) -> dict[str, Any] | None:
        if self.received <= self._segment_start:
            return None
        message = self._results(self.received, is_final=True, from_finalize=from_finalize)
        self._segment, self._segment_start = [], self.received
        return message

    def _results(self, end: int, *, is_final: bool, from_finalize: bool = False) -> dict[str, Any]:
        start = self._segment_start
        words = [{"word": w, "start": start / RATE, "end": end / RATE, "confidence": 0.99,
                  "punctuated_word": w} for w in self._segment]
        return {"type": "Results", "channel_index": [0, 1], "duration": round((end - start) / RATE, 6),
                "start": round(start / RATE, 6), "is_final": is_final, "speech_final": from_finalize,
                "from_finalize": from_finalize,
                "channel": {"alternatives": [{"transcript": " ".join(self._segment), "confidence": 0.99,
                                              "words": words}]},
                "metadata": {"request_id": str(uuid.uuid4()), "model_uuid": str(uuid.uuid4()),
                             "model_info": {"name": "2-general-nova", "version": "fake", "arch": "nova-3"}}}


class FakeDeepgram:
    """`async with FakeDeepgram() as fake:` serves until the block ends; `fake.url` is the listen URL."""

    def __init__(self, behaviour: DeepgramBehaviour | None = None) -> None:
        self.behaviour = behaviour or DeepgramBehaviour()
        self.sessions: list[ListenSession] = []
        self.rejected: list[int] = []
        self.keepalive = asyncio.Event()
        self._accepted: dict[ServerConnection, ListenSession] = {}
        self._server: Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/v1/listen"

    async def __aenter__(self) -> FakeDeepgram:
        # serve() returns once the socket listens: the fake is ready. max_queue=None: with a bounded queue,
        # closing from inside the handler while audio frames are still queued would stop reading, and the
        # client's closing frame would never be read.
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._handshake,
                                   compression=None, max_queue=None)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._server is not None
        self._server.close()
        async with asyncio.timeout(5):
            await self._server.wait_closed()

    def _handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        query = dict(parse_qsl(url.query))
        if url.path != "/v1/listen":
            return self._reject(connection, HTTPStatus.NOT_FOUND, "Not Found", "Unknown path.")
        if request.headers.get("Authorization") != f"Token {self.behaviour.api_key}":
            return self._reject(connection, HTTPStatus.UNAUTHORIZED, "INVALID_AUTH", "Invalid credentials.")
        wrong = [f"{name}={query.get(name)}" for name, value in EXPECTED_QUERY.items()
                 if query.get(name) != value]
        if wrong:
            return self._reject(connection, HTTPStatus.BAD_REQUEST, "Bad Request",
                                f"This fake only takes 16 kHz linear16 mono; got {', '.join(wrong)}.")
        self._accepted[connection] = ListenSession(query, request.headers)
        self.sessions.append(self._accepted[connection])
        return None

    def _reject(self, connection: ServerConnection, status: HTTPStatus, code: str, message: str) -> Response:
        self.rejected.append(int(status))
        body = json.dumps({"err_code": code, "err_msg": message, "request_id": str(uuid.uuid4())})
        response = connection.respond(status, body)
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        response.headers["dg-error"] = message
        return response

    async def _handle(self, ws: ServerConnection) -> None:
        session = self._accepted.pop(ws)
        transcriber = _Transcriber(self.behaviour)
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    session.samples += len(message) // 2
                    await self._on_audio(ws, transcriber, len(message) // 2)
                elif await self._on_control(ws, session, transcriber, json.loads(message)["type"]):
                    return
        except ConnectionClosed:
            pass
        finally:
            session.closed.set()

    def _past(self, limit_ms: int | None, transcriber: _Transcriber) -> bool:
        return limit_ms is not None and transcriber.received * 1000 >= limit_ms * RATE

    async def _on_audio(self, ws: ServerConnection, transcriber: _Transcriber, samples: int) -> None:
        results = transcriber.on_audio(samples)
        if self._past(self.behaviour.fail_after_ms, transcriber):
            await ws.close(1011, ERROR_REASON)
        elif not self._past(self.behaviour.stall_after_ms, transcriber):
            for message in results:
                await ws.send(json.dumps(message))

    async def _on_control(self, ws: ServerConnection, session: ListenSession, transcriber: _Transcriber,
                          kind: str) -> bool:
        """Answer one control message; True when the connection is done."""
        session.controls.append(kind)
        if kind == "KeepAlive":
            self.keepalive.set()
        if self._past(self.behaviour.stall_after_ms, transcriber) or kind not in ("Finalize", "CloseStream"):
            return False
        flushed = transcriber.flush(from_finalize=kind == "Finalize")
        if flushed is not None:
            await ws.send(json.dumps(flushed))
        if kind == "Finalize":
            return False
        await ws.send(json.dumps({"type": "Metadata", "transaction_key": "deprecated",
                                  "request_id": str(uuid.uuid4()), "created": "2026-01-01T00:00:00.000Z",
                                  "duration": transcriber.received / RATE, "channels": 1}))
        await ws.close(1000)
        return True
