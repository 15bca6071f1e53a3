"""ElevenLabs streaming TTS (`POST /v1/text-to-speech/{voice_id}/stream?output_format=pcm_24000`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx

from alice_voice.compute import InferenceScheduler
from alice_voice.config import Settings
from alice_voice.errors import ProviderAuthError
from alice_voice.speech.http_pcm import PcmEndpoint, stream_pcm
from alice_voice.speech.protocols import PcmChunk

NAME = "elevenlabs-tts"
RATE = 24_000
DEFAULT_VOICE_ID = "21m00Tcm4TlvDq8ikWAM"  # "Rachel", a premade voice every account has
DEFAULT_MODEL_ID = "eleven_flash_v2_5"  # their lowest-latency model
_MISSING_KEY = "no API key: set ALICE_ELEVENLABS_API_KEY"


def _error_message(body: Any) -> str | None:
    # {"detail": {"status": ..., "message": ...}}, or a validation list [{"loc", "msg", "type"}, ...]
    detail = body["detail"]
    if isinstance(detail, dict):
        return str(detail.get("message") or detail.get("status") or "") or None
    if isinstance(detail, list):
        return "; ".join(str(item.get("msg", item)) for item in detail) or None
    return str(detail) or None


class ElevenLabsTts:
    """Streams ElevenLabs audio as raw 24 kHz PCM; one HTTP connection pool for the whole process."""

    name = NAME
    rate = RATE

    def __init__(self, *, base_url: str, api_key: str | None, voice_id: str = DEFAULT_VOICE_ID,
                 model_id: str = DEFAULT_MODEL_ID, timeout_s: float = 10.0) -> None:
        self._url = f"{base_url.rstrip('/')}/v1/text-to-speech/{quote(voice_id, safe='')}/stream"
        self._api_key = api_key
        self._model_id = model_id
        self._endpoint = PcmEndpoint(NAME, RATE, timeout_s, _error_message)
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s))

    async def synthesize(self, text: str, *, lead: bool = False) -> AsyncIterator[PcmChunk]:
        if self._api_key is None:
            raise ProviderAuthError(NAME, _MISSING_KEY)
        if not text.strip():
            return
        request = self._client.build_request(
            "POST", self._url, params={"output_format": f"pcm_{RATE}"}, headers={"xi-api-key": self._api_key},
            json={"text": text, "model_id": self._model_id})
        # aclosing: closing this iterator closes the HTTP stream now, not when it is garbage-collected.
        async with contextlib.aclosing(stream_pcm(self._client, request, text, self._endpoint)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def aclose(self) -> None:
        await self._client.aclose()


def load(settings: Settings, compute: InferenceScheduler | None = None) -> ElevenLabsTts:
    if settings.elevenlabs_api_key is None:
        raise ProviderAuthError(NAME, _MISSING_KEY)
    return ElevenLabsTts(base_url=settings.elevenlabs_base_url,
                         api_key=settings.elevenlabs_api_key.get_secret_value(),
                         voice_id=settings.tts_voice or DEFAULT_VOICE_ID, timeout_s=settings.tts_timeout_s)
