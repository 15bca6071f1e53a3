"""OpenAiAsr against a local fake of OpenAI's `POST /v1/audio/transcriptions` (multipart in, JSON out)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
import pytest_asyncio

from alice_voice.audio.frames import Pcm
from alice_voice.config import Settings
from alice_voice.errors import ProviderAuthError, ProviderError, ProviderTimeout
from alice_voice.speech import openai_asr
from alice_voice.speech.openai_asr import OpenAiAsr, OpenAiTranscriptionStream
from alice_voice.speech.protocols import Transcript
from fakes.heard_words import words_for
from fakes.openai_transcription import SERVER_ERROR, FakeOpenAiTranscription

KEY = "sk-test-0123456789"
TIMEOUT_S = 0.5
CHUNK = 320  # 20 ms at 16 kHz


def audio(ms: int) -> Pcm:
    return np.random.default_rng(ms).integers(-3000, 3000, 16 * ms, dtype=np.int16)


def push_ms(stream: OpenAiTranscriptionStream, ms: int) -> Pcm:
    pcm = audio(ms)
    for start in range(0, len(pcm), CHUNK):
        stream.push(pcm[start:start + CHUNK])
    return pcm


async def next_transcript(stream: OpenAiTranscriptionStream) -> Transcript:
    async with asyncio.timeout(3):
        return await anext(aiter(stream))


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAiTranscription]:
    with FakeOpenAiTranscription(KEY) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeOpenAiTranscription) -> FakeOpenAiTranscription:
    server.mode = "ok"
    server.requests.clear()
    return server


@pytest_asyncio.fixture
async def asr(fake: FakeOpenAiTranscription) -> AsyncIterator[OpenAiAsr]:
    model = OpenAiAsr(KEY, base_url=fake.base_url, timeout_s=TIMEOUT_S)
    yield model
    await model.aclose()


@pytest_asyncio.fixture
async def stream(asr: OpenAiAsr) -> AsyncIterator[OpenAiTranscriptionStream]:
    opened = asr.stream()
    yield opened
    await opened.aclose()


@pytest.mark.asyncio
async def test_finish_posts_the_audio_as_a_wav_and_yields_the_final(
        fake: FakeOpenAiTranscription, stream: OpenAiTranscriptionStream) -> None:
    push_ms(stream, 1000)
    stream.finish()
    final = await next_transcript(stream)

    assert final == Transcript(words_for(16000), words_for(16000), final=True, samples=16000)
    [request] = fake.requests
    assert request.fields == {"model": "gpt-4o-mini-transcribe", "response_format": "json"}
    assert request.filename == "audio.wav"
    assert request.samples == 16000


@pytest.mark.asyncio
async def test_a_later_finish_after_more_audio_posts_everything_again(
        fake: FakeOpenAiTranscription, stream: OpenAiTranscriptionStream) -> None:
    push_ms(stream, 500)
    stream.finish()
    first = await next_transcript(stream)
    push_ms(stream, 500)
    stream.finish()
    second = await next_transcript(stream)

    assert (first.final, first.samples, first.text) == (True, 8000, words_for(8000))
    assert (second.final, second.samples, second.text) == (True, 16000, words_for(16000))
    assert [r.samples for r in fake.requests] == [8000, 16000]


@pytest.mark.asyncio
async def test_finish_with_nothing_new_answers_at_once_without_a_request(
        fake: FakeOpenAiTranscription, stream: OpenAiTranscriptionStream) -> None:
    stream.finish()
    empty = await next_transcript(stream)
    push_ms(stream, 400)
    stream.finish()
    first = await next_transcript(stream)
    stream.finish()
    again = await next_transcript(stream)

    assert empty == Transcript("", "", final=True, samples=0)
    assert again == first and first.text == words_for(6400)
    assert len(fake.requests) == 1


@pytest.mark.asyncio
async def test_a_later_final_that_lands_first_supersedes_the_earlier_request() -> None:
    never = asyncio.Event()
    first_cancelled = asyncio.Event()

    async def transcribe(pcm: Pcm) -> str:
        if len(pcm) == 8000:  # the first request is slow
            try:
                await never.wait()
            except asyncio.CancelledError:
                first_cancelled.set()
                raise
        return words_for(len(pcm))

    stream = OpenAiTranscriptionStream(transcribe)
    push_ms(stream, 500)
    stream.finish()
    push_ms(stream, 500)
    stream.finish()
    final = await next_transcript(stream)
    async with asyncio.timeout(1):
        await first_cancelled.wait()  # cancelled by the later final, before any aclose()
    await stream.aclose()

    assert (final.samples, final.text) == (16000, words_for(16000))


@pytest.mark.asyncio
async def test_the_audio_sent_is_the_audio_pushed(asr: OpenAiAsr, fake: FakeOpenAiTranscription) -> None:
    pcm = audio(300)
    text = await asr.transcribe(pcm)

    assert text == words_for(len(pcm))
    wav = openai_asr.wav_bytes(pcm)
    assert np.array_equal(np.frombuffer(wav[44:], dtype="<i2"), pcm)  # 44-byte canonical WAV header


@pytest.mark.asyncio
async def test_load_reads_base_url_key_and_timeout_from_settings(fake: FakeOpenAiTranscription) -> None:
    settings = Settings(openai_base_url=fake.base_url, openai_api_key=KEY, asr_timeout_s=TIMEOUT_S)
    model = openai_asr.load(settings)
    try:
        stream = model.stream()
        push_ms(stream, 200)
        stream.finish()
        final = await next_transcript(stream)
        await stream.aclose()
    finally:
        await model.aclose()

    assert model.name == "openai-transcribe"
    assert (final.text, final.samples) == (words_for(3200), 3200)


def test_missing_key_is_an_auth_error_naming_the_setting() -> None:
    with pytest.raises(ProviderAuthError, match="ALICE_OPENAI_API_KEY"):
        openai_asr.load(Settings(openai_api_key=None))


@pytest.mark.asyncio
async def test_a_rejected_key_is_an_auth_error(fake: FakeOpenAiTranscription) -> None:
    model = OpenAiAsr("sk-wrong-key", base_url=fake.base_url, timeout_s=TIMEOUT_S)
    stream = model.stream()
    push_ms(stream, 200)
    stream.finish()
    with pytest.raises(ProviderAuthError) as raised:
        await next_transcript(stream)
    await stream.aclose()
    await model.aclose()

    assert "HTTP 401" in raised.value.message and "Incorrect API key" in raised.value.message
    assert not raised.value.retryable


@pytest.mark.asyncio
async def test_a_server_error_is_a_provider_error_with_the_servers_message(
        fake: FakeOpenAiTranscription, stream: OpenAiTranscriptionStream) -> None:
    fake.mode = "error"
    push_ms(stream, 200)
    stream.finish()
    with pytest.raises(ProviderError) as raised:
        await next_transcript(stream)

    assert type(raised.value) is ProviderError
    assert "HTTP 500" in raised.value.message and SERVER_ERROR in raised.value.message
    assert raised.value.retryable
    with pytest.raises(ProviderError):  # later iterations see the failure too instead of hanging
        await next_transcript(stream)


@pytest.mark.asyncio
async def test_a_stalled_server_is_a_timeout(fake: FakeOpenAiTranscription,
                                             stream: OpenAiTranscriptionStream) -> None:
    fake.mode = "stall"
    push_ms(stream, 200)
    stream.finish()
    started = time.monotonic()
    with pytest.raises(ProviderTimeout) as raised:
        await next_transcript(stream)
    waited = time.monotonic() - started

    assert TIMEOUT_S * 0.9 <= waited < TIMEOUT_S + 1.0
    assert "0.5 s" in raised.value.message
