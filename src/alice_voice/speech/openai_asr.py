"""OpenAI transcription (`POST /audio/transcriptions`) as an `AsrStream`: finals only, one request each.

The endpoint transcribes a whole file, so `finish()` posts everything pushed so far as a WAV and the
answer is the final; a later `finish()` after more audio posts it all again. Finals come out in the order
of their `finish()` calls; when a later one lands first, the earlier requests are cancelled, since the
later final covers their audio.
"""

from __future__ import annotations

import asyncio
import enum
import io
import logging
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import numpy as np
from pydantic import BaseModel, ValidationError

from alice_voice.audio.frames import Pcm
from alice_voice.compute import InferenceScheduler
from alice_voice.config import Settings
from alice_voice.errors import ProviderAuthError, ProviderError, ProviderTimeout
from alice_voice.speech.protocols import Transcript

log = logging.getLogger(__name__)

NAME = "openai-transcribe"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini-transcribe"
RATE = 16_000
_MISSING_KEY = "no API key: set ALICE_OPENAI_API_KEY"


class _Answer(BaseModel):
    text: str


class _End(enum.Enum):
    END = enum.auto()


@dataclass(frozen=True, slots=True)
class _Failure:
    samples: int
    error: ProviderError


_Event = Transcript | _Failure | _End
Transcribe = Callable[[Pcm], Awaitable[str]]


def wav_bytes(pcm16k: Pcm) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm16k.astype("<i2", copy=False).tobytes())
    return buffer.getvalue()


class OpenAiAsr:
    """OpenAI speech-to-text; one HTTP connection pool for the whole process, shared by all streams."""

    name = NAME

    def __init__(self, api_key: str, *, base_url: str = DEFAULT_BASE_URL, model: str = DEFAULT_MODEL,
                 language: str | None = None, timeout_s: float = 10.0) -> None:
        if not api_key:
            raise ProviderAuthError(NAME, _MISSING_KEY)
        self._timeout_s = timeout_s
        self._form = {"model": model, "response_format": "json"}
        if language:
            self._form["language"] = language
        self._client = httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {api_key}"},
                                         timeout=httpx.Timeout(timeout_s))

    def stream(self) -> OpenAiTranscriptionStream:
        return OpenAiTranscriptionStream(self.transcribe)

    async def transcribe(self, pcm16k: Pcm) -> str:
        """The text of one whole utterance of 16 kHz audio."""
        files = {"file": ("audio.wav", wav_bytes(pcm16k), "audio/wav")}
        try:
            async with asyncio.timeout(self._timeout_s):
                response = await self._client.post("audio/transcriptions", data=self._form, files=files)
        except (TimeoutError, httpx.TimeoutException):
            raise ProviderTimeout(NAME, f"no transcription within {self._timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise ProviderError(NAME, f"request failed: {type(exc).__name__}: {exc}",
                                retryable=True) from None
        if not response.is_success:
            raise _status_error(response)
        try:
            return _Answer.model_validate_json(response.content).text.strip()
        except ValidationError:
            raise ProviderError(NAME, "the answer held no transcript text") from None

    async def aclose(self) -> None:
        await self._client.aclose()


class OpenAiTranscriptionStream:
    """One utterance: audio is kept until `aclose`; each `finish` transcribes all of it."""

    def __init__(self, transcribe: Transcribe) -> None:
        self._transcribe = transcribe
        self._chunks: list[Pcm] = []
        self._pushed = 0
        self._requests: dict[int, asyncio.Task[None]] = {}  # finish point -> its request
        self._events: asyncio.Queue[_Event] = asyncio.Queue()
        self._answered = -1  # samples of the latest final yielded
        self._last_final: Transcript | None = None
        self._error: ProviderError | None = None
        self._closed = False

    def push(self, pcm16k: Pcm) -> None:
        if self._closed or self._error is not None or not len(pcm16k):
            return
        self._chunks.append(pcm16k.astype(np.int16, copy=True))  # the caller may reuse its buffer
        self._pushed += len(pcm16k)

    def finish(self) -> None:
        samples = self._pushed
        if self._closed or self._error is not None or samples in self._requests:
            return
        if samples == 0 or (self._last_final is not None and self._last_final.samples == samples):
            # Nothing new to transcribe: answer at once.
            last = self._last_final if samples else None
            self._events.put_nowait(last or Transcript("", "", final=True, samples=0))
            return
        audio = np.concatenate(self._chunks)
        self._chunks = [audio]
        self._requests[samples] = asyncio.get_running_loop().create_task(
            self._request(audio, samples), name="openai-transcribe")

    def __aiter__(self) -> AsyncIterator[Transcript]:
        return self._iterate()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._events.put_nowait(_End.END)
        requests = list(self._requests.values())
        for task in requests:
            task.cancel()
        if requests:
            await asyncio.wait(requests)

    async def _request(self, audio: Pcm, samples: int) -> None:
        try:
            text = await self._transcribe(audio)
        except ProviderError as exc:
            self._events.put_nowait(_Failure(samples, exc))
        except Exception as exc:  # e.g. a closed client: the consumer must hear of it, not wait forever
            log.exception("openai transcription request broke")
            error = ProviderError(NAME, f"unexpected {type(exc).__name__}: {exc}")
            self._events.put_nowait(_Failure(samples, error))
        else:
            final = Transcript(text, text, final=True, samples=samples)
            if self._last_final is None or samples >= self._last_final.samples:
                self._last_final = final
            self._events.put_nowait(final)
        finally:
            self._requests.pop(samples, None)

    async def _iterate(self) -> AsyncIterator[Transcript]:
        while True:
            # No timeout here: every request carries its own, so each finish() is answered in time.
            event = await self._events.get()
            if isinstance(event, Transcript):
                if event.samples < self._answered:
                    continue  # an earlier finish, already covered by a later final
                self._answered = event.samples
                self._cancel_before(event.samples)
                yield event
                continue
            if isinstance(event, _Failure) and event.samples < self._answered:
                continue
            # Put the error or the end back: a later iteration must see it too, not wait forever.
            self._events.put_nowait(event)
            if isinstance(event, _Failure):
                self._error = event.error
                raise event.error
            return

    def _cancel_before(self, samples: int) -> None:
        for point, task in list(self._requests.items()):
            if point < samples:
                task.cancel()


def _status_error(response: httpx.Response) -> ProviderError:
    status = response.status_code
    message = f"HTTP {status}: {_error_message(response)}"
    if status in (401, 403):
        return ProviderAuthError(NAME, message)
    return ProviderError(NAME, message, retryable=status == 429 or status >= 500)


def _error_message(response: httpx.Response) -> str:
    # OpenAI: {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = None
    if isinstance(message, str) and message:
        return message
    return response.text.strip()[:200] or "no error message"


def load(settings: Settings, compute: InferenceScheduler | None = None) -> OpenAiAsr:
    key = settings.openai_api_key
    if key is None or not key.get_secret_value():
        raise ProviderAuthError(NAME, _MISSING_KEY)
    return OpenAiAsr(key.get_secret_value(), base_url=settings.openai_base_url,
                     timeout_s=settings.asr_timeout_s)
