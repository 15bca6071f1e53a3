"""OpenAI speech (`POST /audio/speech`, `response_format: "pcm"`): 24 kHz s16le mono, streamed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from alice_voice.compute import InferenceScheduler
from alice_voice.config import Settings
from alice_voice.errors import ProviderAuthError
from alice_voice.speech.http_pcm import PcmEndpoint, stream_pcm
from alice_voice.speech.protocols import PcmChunk

NAME = "openai-tts"
RATE = 24_000
DEFAULT_VOICE = "alloy"
DEFAULT_MODEL = "gpt-4o-mini-tts"
_MISSING_KEY = "no API key: set ALICE_OPENAI_API_KEY"


def _error_message(body: Any) -> str | None:
    # {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
    message = body["error"]["message"]
    return str(message) if message else None


class OpenAiTts:
    """Streams OpenAI TTS audio; one HTTP connection pool for the whole process."""

    name = NAME
    rate = RATE

    def __init__(self, *, base_url: str, api_key: str | None, voice: str = DEFAULT_VOICE,
                 model: str = DEFAULT_MODEL, timeout_s: float = 10.0) -> None:
        self._url = f"{base_url.rstrip('/')}/audio/speech"
        self._api_key = api_key
        self._voice = voice
        self._model = model
        self._endpoint = PcmEndpoint(NAME, RATE, timeout_s, _error_message)
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s))

    async def synthesize(self, text: str, *, lead: bool = False) -> AsyncIterator[PcmChunk]:
        if self._api_key is None:
            raise ProviderAuthError(NAME, _MISSING_KEY)
        if not text.strip():
            return
        request = self._client.build_request(
            "POST", self._url, headers={"Authorization": f"Bearer {self._api_key}"},
            json={"model": self._model, "input": text, "voice": self._voice, "response_format": "pcm"})
        # aclosing: closing this iterator closes the HTTP stream now, not when it is garbage-collected.
        async with contextlib.aclosing(stream_pcm(self._client, request, text, self._endpoint)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def aclose(self) -> None:
        await self._client.aclose()


def load(settings: Settings, compute: InferenceScheduler | None = None) -> OpenAiTts:
    if settings.openai_api_key is None:
        raise ProviderAuthError(NAME, _MISSING_KEY)
    return OpenAiTts(base_url=settings.openai_base_url, api_key=settings.openai_api_key.get_secret_value(),
                     voice=settings.tts_voice or DEFAULT_VOICE, timeout_s=settings.tts_timeout_s)
