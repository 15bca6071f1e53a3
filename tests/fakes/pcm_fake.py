"""What the streaming-PCM fakes (OpenAI speech, ElevenLabs) share: the audio, the switches, the server.

Set `mode` before a request:
  ok             stream the audio in `chunk_bytes` pieces (odd on purpose: reads split samples)
  error          500 with the provider's own JSON error body
  stall_headers  never answer (no status line, no headers)
  stall_body     send the headers and `chunks_before_stall` pieces, then nothing
  garbage        200 with an HTML page instead of audio (a captive proxy, a wrong base URL)
  odd_tail       the audio followed by one stray byte
A wrong or missing API key always gets the provider's 401, whatever the mode.
Stalled handlers wait on an event that `stop()` sets, so the server shuts down cleanly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse

from fakes.local_server import LocalServer

Mode = Literal["ok", "error", "stall_headers", "stall_body", "garbage", "odd_tail"]
SECONDS_PER_CHAR = 0.06


def speech_pcm(text: str, rate: int) -> bytes:
    """Stand-in speech for `text`: s16le mono, a 220 Hz tone 60 ms per character (at least 0.2 s)."""
    n = int(rate * max(0.2, SECONDS_PER_CHAR * len(text)))
    t = np.arange(n) / rate
    return (8000 * np.sin(2 * np.pi * 220 * t)).astype("<i2").tobytes()


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class PcmFake:
    """Base of the fakes; subclasses build the app (`_app`) in their provider's wire format."""

    media_type = "audio/pcm"

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.mode: Mode = "ok"
        self.chunk_bytes = 4801
        self.chunks_before_stall = 2
        self.requests: list[Recorded] = []
        self._release = asyncio.Event()
        self._server: LocalServer | None = None

    def _app(self) -> Starlette:
        raise NotImplementedError

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return self._server.url

    def start(self) -> PcmFake:
        self._server = LocalServer(self._app()).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.call_soon(self._release.set)
            self._server.stop()

    async def _record(self, request: Request) -> Any:
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw
        self.requests.append(Recorded(request.method, request.url.path, dict(request.query_params),
                                      {k.lower(): v for k, v in request.headers.items()}, body))
        return body

    async def _audio(self, text: str, rate: int) -> Response:
        mode = self.mode
        if mode == "stall_headers":
            await self._release.wait()
            return Response(status_code=504)
        if mode == "garbage":
            return HTMLResponse("<html><body><h1>502 Bad Gateway</h1></body></html>")
        pcm = speech_pcm(text, rate) + (b"\x01" if mode == "odd_tail" else b"")
        stall_at = self.chunks_before_stall if mode == "stall_body" else None
        return StreamingResponse(self._pieces(pcm, stall_at), media_type=self.media_type)

    async def _pieces(self, pcm: bytes, stall_at: int | None) -> AsyncIterator[bytes]:
        for index, start in enumerate(range(0, len(pcm), self.chunk_bytes)):
            if index == stall_at:
                await self._release.wait()
                return
            yield pcm[start:start + self.chunk_bytes]
            await asyncio.sleep(0)  # a scheduling point, so each piece leaves in its own write
