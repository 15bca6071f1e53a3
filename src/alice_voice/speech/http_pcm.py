"""Raw s16le PCM from a streamed HTTP response (OpenAI, ElevenLabs): timeouts, error mapping, framing.

Every wait sits under an `asyncio.timeout`: the response headers and the first audio share one
deadline, then each later read gets its own, so a provider that never answers and one that stalls
mid-stream both end in `ProviderTimeout`. The error body is read under a timeout too.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from alice_voice.audio.frames import Pcm
from alice_voice.errors import ProviderAuthError, ProviderError, ProviderTimeout
from alice_voice.speech.protocols import PcmChunk

log = logging.getLogger(__name__)

ErrorMessage = Callable[[Any], str | None]
"""The provider's own message out of its parsed JSON error body; None when it has none."""


@dataclass(frozen=True, slots=True)
class PcmEndpoint:
    """How to read one provider's streamed PCM: its name for errors, sample rate, timeout, error shape."""

    provider: str
    rate: int
    timeout_s: float
    error_message: ErrorMessage


class SampleAssembler:
    """Bytes in arbitrary pieces -> whole little-endian int16 samples; an odd byte waits for its pair."""

    def __init__(self) -> None:
        self._carry = b""

    def push(self, data: bytes) -> Pcm:
        data = self._carry + data
        whole = len(data) // 2 * 2
        self._carry = data[whole:]
        return np.frombuffer(data[:whole], dtype="<i2").astype(np.int16)

    @property
    def pending_bytes(self) -> int:
        return len(self._carry)


async def stream_pcm(client: httpx.AsyncClient, request: httpx.Request, text: str,
                     endpoint: PcmEndpoint) -> AsyncGenerator[PcmChunk, None]:
    """Yield PCM as it arrives. `text` rides on the first chunk (where its speech starts).

    The first audio must arrive within one timeout of the request; after that, each read gets its own.
    """
    loop = asyncio.get_running_loop()
    first_audio_deadline = loop.time() + endpoint.timeout_s
    response = await _open(client, request, endpoint, first_audio_deadline)
    try:
        await _check_is_audio(response, endpoint)
        assembler = SampleAssembler()
        chunks = response.aiter_bytes()
        label, yielded = text, False
        while True:
            deadline = loop.time() + endpoint.timeout_s if yielded else first_audio_deadline
            if (data := await _next(chunks, endpoint, deadline)) is None:
                break
            samples = assembler.push(data)
            if len(samples):
                yield PcmChunk(samples=samples, rate=endpoint.rate, text=label)
                label, yielded = "", True
        if not yielded:
            raise ProviderError(endpoint.provider, "the response held no audio", retryable=True)
        if assembler.pending_bytes:
            log.warning("%s: audio ended on half a sample; dropped the odd byte", endpoint.provider)
    finally:
        await response.aclose()


async def _open(client: httpx.AsyncClient, request: httpx.Request, endpoint: PcmEndpoint,
                deadline: float) -> httpx.Response:
    provider = endpoint.provider
    try:
        async with asyncio.timeout_at(deadline):
            response = await client.send(request, stream=True)
    except (TimeoutError, httpx.TimeoutException):
        raise ProviderTimeout(provider, f"no response within {endpoint.timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise ProviderError(provider, f"request failed: {type(exc).__name__}", retryable=True) from exc
    if response.is_success:
        return response
    try:
        raise _status_error(response.status_code, await _read_body(response, endpoint), endpoint)
    finally:
        await response.aclose()


async def _next(chunks: AsyncIterator[bytes], endpoint: PcmEndpoint, deadline: float) -> bytes | None:
    try:
        async with asyncio.timeout_at(deadline):
            return await anext(chunks)
    except StopAsyncIteration:
        return None
    except (TimeoutError, httpx.TimeoutException):
        raise ProviderTimeout(endpoint.provider, f"audio stalled for {endpoint.timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise ProviderError(endpoint.provider, f"audio stream broke: {type(exc).__name__}",
                            retryable=True) from exc


async def _check_is_audio(response: httpx.Response, endpoint: PcmEndpoint) -> None:
    """A 2xx carrying JSON or a web page (a proxy, a wrong base URL) must not be played as noise."""
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json" or content_type.startswith("text/"):
        detail = _message(await _read_body(response, endpoint), endpoint)
        raise ProviderError(endpoint.provider, f"expected raw PCM, got {content_type}: {detail}")


async def _read_body(response: httpx.Response, endpoint: PcmEndpoint) -> bytes:
    try:
        async with asyncio.timeout(endpoint.timeout_s):
            return await response.aread()
    except (TimeoutError, httpx.HTTPError):
        return b""


def _status_error(status: int, body: bytes, endpoint: PcmEndpoint) -> ProviderError:
    message = _message(body, endpoint)
    if status in (401, 403):
        return ProviderAuthError(endpoint.provider, f"HTTP {status}: {message}")
    retryable = status == 429 or status >= 500
    return ProviderError(endpoint.provider, f"HTTP {status}: {message}", retryable=retryable)


def _message(body: bytes, endpoint: PcmEndpoint) -> str:
    try:
        found = endpoint.error_message(json.loads(body))
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        found = None
    if found:
        return found
    return body.decode(errors="replace").strip()[:200] or "no error message"
