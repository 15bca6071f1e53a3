"""Fake OpenAI speech API: `POST /v1/audio/speech` on the real wire format, raw PCM only.

Checks what the real API checks: `Authorization: Bearer <key>` (401 with OpenAI's error body otherwise),
a JSON body with exactly the known fields, `model`, `input` and `voice` present and valid. It answers
only `response_format: "pcm"` (24 kHz s16le mono); anything else is a 400 here. Switches: see pcm_fake.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fakes.pcm_fake import PcmFake

RATE = 24_000
MODELS = frozenset({"tts-1", "tts-1-hd", "gpt-4o-mini-tts"})
VOICES = frozenset({"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer",
                    "verse", "marin", "cedar"})
FIELDS = frozenset({"model", "input", "voice", "response_format", "speed", "instructions", "stream_format"})
SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"


def error(status: int, message: str, kind: str, code: str | None = None, param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status)


class FakeOpenAiSpeech(PcmFake):
    def _app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/audio/speech", self._speech, methods=["POST"])])

    async def _speech(self, request: Request) -> Response:
        body = await self._record(request)
        rejected = self._check_auth(request.headers.get("authorization")) or _check_body(body)
        if rejected is not None:
            return rejected
        if self.mode == "error":
            return error(500, SERVER_ERROR, "server_error")
        return await self._audio(body["input"], RATE)

    def _check_auth(self, header: str | None) -> JSONResponse | None:
        if header is None or not header.startswith("Bearer "):
            return error(401, "You didn't provide an API key. You need to provide your API key in an "
                              "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                         "invalid_request_error")
        key = header.removeprefix("Bearer ")
        if key != self.api_key:
            return error(401, f"Incorrect API key provided: {key[:3]}***{key[-3:]}.", "invalid_request_error",
                         "invalid_api_key")
        return None


def _check_body(body: Any) -> JSONResponse | None:
    if not isinstance(body, dict):
        return error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        return error(400, f"Unrecognized request argument supplied: {unknown[0]}", "invalid_request_error")
    for field in ("model", "input", "voice"):
        if not isinstance(body.get(field), str) or not body[field]:
            return error(400, f"Missing required parameter: '{field}'.", "invalid_request_error",
                         param=field)
    if body["model"] not in MODELS:
        return error(404, f"The model '{body['model']}' does not exist", "invalid_request_error",
                     "model_not_found")
    if body["voice"] not in VOICES:
        return error(400, f"Invalid value for 'voice': '{body['voice']}'.", "invalid_request_error",
                     param="voice")
    if body.get("response_format", "mp3") != "pcm":
        return error(400, "This fake speaks only response_format 'pcm'.", "invalid_request_error",
                     param="response_format")
    return None
