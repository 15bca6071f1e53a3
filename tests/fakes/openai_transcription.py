"""Fake OpenAI transcription: `POST /v1/audio/transcriptions` on the real wire format, via uvicorn.

Checks what the real API checks: `Authorization: Bearer <key>` (else 401 with OpenAI's error body), a
multipart/form-data body with a `file` part and a `model` field; it answers `response_format=json`
(the default) with `{"text": ...}`. The file must be a 16 kHz mono 16-bit WAV here, and the text is
computed from how much audio it holds (`heard_words`).

Set `mode` before a request: "ok"; "error" (500 with OpenAI's server_error body); "stall" (never answer;
stalled handlers wait on an event that `stop()` sets, so the server shuts down cleanly).
"""

from __future__ import annotations

import asyncio
import io
import re
import wave
from dataclasses import dataclass
from typing import Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fakes.heard_words import RATE, words_for
from fakes.local_server import LocalServer

Mode = Literal["ok", "error", "stall"]
MODELS = frozenset({"whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"})
SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"


@dataclass(frozen=True)
class Part:
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class TranscriptionRequest:
    """One accepted request: its form fields and the audio it carried."""

    fields: dict[str, str]
    filename: str | None
    samples: int


def error(status: int, message: str, kind: str, code: str | None = None,
          param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status)


def parse_multipart(content_type: str, body: bytes) -> dict[str, Part]:
    """multipart/form-data -> parts by name (python-multipart is not installed; the format is simple)."""
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/form-data") or found is None:
        raise ValueError("not multipart/form-data")
    parts: dict[str, Part] = {}
    for chunk in body.split(b"--" + found.group(1).encode())[1:-1]:
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        headers = {key.lower(): value for key, value in headers.items()}
        disposition = headers.get("content-disposition", "")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if name is None:
            raise ValueError("a part without a name")
        parts[name.group(1)] = Part(filename.group(1) if filename else None, headers.get("content-type"),
                                    data.removesuffix(b"\r\n"))
    return parts


def wav_samples(data: bytes) -> int:
    """Samples in a 16 kHz mono s16 WAV; ValueError for anything else."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (RATE, 1, 2):
                raise ValueError("this fake takes 16 kHz mono 16-bit WAV only")
            return int(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a WAV file: {exc}") from None


class FakeOpenAiTranscription:
    """`with FakeOpenAiTranscription(key) as fake:` serves until the block ends; `base_url` ends in /v1."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.mode: Mode = "ok"
        self.requests: list[TranscriptionRequest] = []
        self.unauthorized = 0
        self._release = asyncio.Event()
        self._server = LocalServer(Starlette(routes=[
            Route("/v1/audio/transcriptions", self._transcribe, methods=["POST"])]))

    @property
    def base_url(self) -> str:
        return f"{self._server.url}/v1"

    def __enter__(self) -> FakeOpenAiTranscription:
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.call_soon(self._release.set)
        self._server.stop()

    async def _transcribe(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            self.unauthorized += 1
            return error(401, "Incorrect API key provided: sk-wr***ey. You can find your API key at "
                              "https://platform.openai.com/account/api-keys.", "invalid_request_error",
                         "invalid_api_key")
        try:
            parts = parse_multipart(request.headers.get("content-type", ""), await request.body())
            recorded = _check(parts)
        except ValueError as exc:
            return error(400, str(exc), "invalid_request_error")
        self.requests.append(recorded)
        if self.mode == "stall":
            await self._release.wait()
            return error(504, "released at shutdown", "server_error")
        if self.mode == "error":
            return error(500, SERVER_ERROR, "server_error")
        return JSONResponse({"text": words_for(recorded.samples)})


def _check(parts: dict[str, Part]) -> TranscriptionRequest:
    if "file" not in parts or parts["file"].filename is None:
        raise ValueError("Missing required parameter: 'file'.")
    fields = {name: part.data.decode() for name, part in parts.items() if name != "file"}
    if fields.get("model") not in MODELS:
        raise ValueError(f"Invalid model: {fields.get('model')!r}.")
    if fields.get("response_format", "json") != "json":
        raise ValueError("This fake answers only response_format 'json'.")
    return TranscriptionRequest(fields, parts["file"].filename, wav_samples(parts["file"].data))
