"""Fake ElevenLabs API: `POST /v1/text-to-speech/{voice_id}/stream` on the real wire format, PCM only.

Checks what the real API checks: the `xi-api-key` header (401 with ElevenLabs' error body otherwise),
a known voice id (404), a JSON body with a non-empty `text` (422, FastAPI-style detail list), and
`output_format=pcm_<rate>` in the query (the real default is MP3, which this fake does not make).
Switches: see pcm_fake.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fakes.pcm_fake import PcmFake

VOICE_IDS = frozenset({"21m00Tcm4TlvDq8ikWAM", "JBFqnCBsd6RMkjVDRZzb"})
PCM_RATES = {f"pcm_{rate}": rate for rate in (8000, 16000, 22050, 24000, 44100, 48000)}


def error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"detail": {"status": kind, "message": message}}, status_code=status)


def invalid(field: str, message: str) -> JSONResponse:
    return JSONResponse({"detail": [{"type": "missing", "loc": ["body", field], "msg": message}]},
                        status_code=422)


class FakeElevenLabs(PcmFake):
    def _app(self) -> Starlette:
        route = Route("/v1/text-to-speech/{voice_id}/stream", self._stream, methods=["POST"])
        return Starlette(routes=[route])

    async def _stream(self, request: Request) -> Response:
        body = await self._record(request)
        key = request.headers.get("xi-api-key")
        if key is None:
            return error(401, "needs_authorization", "Neither authorization header nor xi-api-key received.")
        if key != self.api_key:
            return error(401, "invalid_api_key", "Invalid API key")
        rejected = _check(request.path_params["voice_id"], request.query_params.get("output_format"), body)
        if rejected is not None:
            return rejected
        if self.mode == "error":
            return error(500, "internal_server_error", "An internal server error occurred.")
        return await self._audio(body["text"], PCM_RATES[request.query_params["output_format"]])


def _check(voice_id: str, output_format: str | None, body: Any) -> JSONResponse | None:
    if voice_id not in VOICE_IDS:
        return error(404, "voice_not_found", f"A voice with the voice_id {voice_id} was not found.")
    if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
        return invalid("text", "Field required")
    if (output_format or "mp3_44100_128") not in PCM_RATES:
        return invalid("output_format", "This fake makes only pcm_<rate> output.")
    return None
