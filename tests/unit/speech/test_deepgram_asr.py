"""DeepgramAsr against a local fake Deepgram speaking the real `/v1/listen` WebSocket protocol."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio

from alice_voice.audio.frames import Pcm
from alice_voice.config import Settings
from alice_voice.errors import ProviderAuthError, ProviderError, ProviderTimeout
from alice_voice.speech import deepgram_asr
from alice_voice.speech.deepgram_asr import DeepgramAsr, DeepgramStream
from alice_voice.speech.protocols import Transcript
from fakes.deepgram import ERROR_REASON, DeepgramBehaviour, FakeDeepgram
from fakes.heard_words import words_for

KEY = "dg-test-key"
TIMEOUT_S = 0.5
CHUNK = 320  # 20 ms at 16 kHz


def audio(ms: int) -> Pcm:
    return np.random.default_rng(ms).integers(-3000, 3000, 16 * ms, dtype=np.int16)


def push_ms(stream: DeepgramStream, ms: int) -> None:
    pcm = audio(ms)
    for start in range(0, len(pcm), CHUNK):
        stream.push(pcm[start:start + CHUNK])


async def until_final(transcripts: AsyncIterator[Transcript]) -> tuple[list[Transcript], Transcript]:
    partials: list[Transcript] = []
    async with asyncio.timeout(3):
        async for transcript in transcripts:
            if transcript.final:
                return partials, transcript
            partials.append(transcript)
    raise AssertionError("the stream ended without a final")


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeDeepgram]:
    async with FakeDeepgram(DeepgramBehaviour(api_key=KEY)) as server:
        yield server


@pytest_asyncio.fixture
async def stream(fake: FakeDeepgram) -> AsyncIterator[DeepgramStream]:
    opened = DeepgramAsr(KEY, url=fake.url, timeout_s=TIMEOUT_S).stream()
    yield opened
    await opened.aclose()


@pytest.mark.asyncio
async def test_partials_grow_then_the_final_covers_all_audio(fake: FakeDeepgram,
                                                             stream: DeepgramStream) -> None:
    transcripts = aiter(stream)
    push_ms(stream, 1000)
    stream.finish()
    partials, final = await until_final(transcripts)

    assert final.text == final.stable_text == words_for(16000)
    assert final.samples == 16000
    assert partials and not any(p.final for p in partials)
    assert partials[0].text == words_for(3200)
    assert all(p.text.startswith(p.stable_text) for p in partials)
    assert any(p.stable_text and p.text != p.stable_text for p in partials), "an interim on a settled segment"
    assert [len(p.stable_text) for p in partials] == sorted(len(p.stable_text) for p in partials)
    assert [p.samples for p in partials] == sorted(p.samples for p in partials)
    assert all(0 < p.samples <= 16000 for p in partials)
    session = fake.sessions[0]
    assert session.headers["Authorization"] == f"Token {KEY}"
    assert session.query == {"model": "nova-3", "encoding": "linear16", "sample_rate": "16000",
                             "channels": "1", "interim_results": "true", "punctuate": "true"}
    assert session.samples == 16000
    assert session.controls == ["Finalize"]


@pytest.mark.asyncio
async def test_speculative_finish_then_more_audio_gives_a_new_final_on_one_connection(
        fake: FakeDeepgram, stream: DeepgramStream) -> None:
    transcripts = aiter(stream)
    push_ms(stream, 500)
    stream.finish()
    _, first = await until_final(transcripts)
    push_ms(stream, 500)
    stream.finish()
    partials, second = await until_final(transcripts)

    assert (first.samples, first.text) == (8000, words_for(8000))
    assert (second.samples, second.text) == (16000, words_for(16000))
    assert second.text.startswith(first.text) and len(second.text) > len(first.text)
    assert all(p.stable_text.startswith(first.text) for p in partials)
    assert len(fake.sessions) == 1


@pytest.mark.asyncio
async def test_a_final_needs_no_finalize_answer_when_a_settled_segment_covers_the_audio(
        fake: FakeDeepgram, stream: DeepgramStream) -> None:
    # 600 ms is exactly one settled segment: by the time Finalize arrives nothing is left to flush, and
    # Deepgram (like the fake) may then send no from_finalize result at all.
    transcripts = aiter(stream)
    push_ms(stream, 600)
    stream.finish()
    _, final = await until_final(transcripts)
    await stream.aclose()

    assert (final.text, final.samples) == (words_for(9600), 9600)
    assert fake.sessions[0].controls == ["Finalize", "CloseStream"]


@pytest.mark.asyncio
async def test_finish_without_new_audio_repeats_the_final_without_asking_the_server(
        fake: FakeDeepgram, stream: DeepgramStream) -> None:
    transcripts = aiter(stream)
    push_ms(stream, 500)
    stream.finish()
    _, first = await until_final(transcripts)
    stream.finish()
    async with asyncio.timeout(1):
        again = await anext(transcripts)
    await stream.aclose()

    assert again == first
    session = fake.sessions[0]
    async with asyncio.timeout(1):
        await session.closed.wait()
    # CloseStream leaves after everything queued before it: a second Finalize would show up here.
    assert session.controls == ["Finalize", "CloseStream"]
    with pytest.raises(StopAsyncIteration):
        await anext(transcripts)


@pytest.mark.asyncio
async def test_keepalive_while_no_audio_flows(fake: FakeDeepgram) -> None:
    stream = DeepgramAsr(KEY, url=fake.url, timeout_s=TIMEOUT_S, keepalive_s=0.05).stream()
    push_ms(stream, 20)
    async with asyncio.timeout(2):
        await fake.keepalive.wait()
    await stream.aclose()

    assert fake.sessions[0].controls[0] == "KeepAlive"
    assert fake.sessions[0].samples == 320


@pytest.mark.asyncio
async def test_load_reads_url_key_and_timeout_from_settings(fake: FakeDeepgram) -> None:
    model = deepgram_asr.load(Settings(deepgram_url=fake.url, deepgram_api_key=KEY, asr_timeout_s=TIMEOUT_S))
    stream = model.stream()
    push_ms(stream, 200)
    async with asyncio.timeout(2):
        first = await anext(aiter(stream))
    await stream.aclose()

    assert model.name == "deepgram"
    assert (first.text, first.final) == (words_for(3200), False)


@pytest.mark.asyncio
async def test_query_parameters_in_the_url_win_except_the_audio_format(fake: FakeDeepgram) -> None:
    url = f"{fake.url}?model=nova-2&endpointing=false&sample_rate=8000"
    stream = DeepgramAsr(KEY, url=url, timeout_s=TIMEOUT_S).stream()
    push_ms(stream, 200)
    async with asyncio.timeout(2):
        await anext(aiter(stream))
    await stream.aclose()

    query = fake.sessions[0].query
    assert (query["model"], query["endpointing"]) == ("nova-2", "false")
    assert query["sample_rate"] == "16000"
    assert (query["encoding"], query["interim_results"]) == ("linear16", "true")


def test_missing_key_is_an_auth_error_naming_the_setting() -> None:
    with pytest.raises(ProviderAuthError, match="ALICE_DEEPGRAM_API_KEY"):
        deepgram_asr.load(Settings(deepgram_api_key=None))
    with pytest.raises(ProviderAuthError, match="ALICE_DEEPGRAM_API_KEY"):
        DeepgramAsr("")


@pytest.mark.asyncio
async def test_a_rejected_key_is_an_auth_error_from_the_handshake(fake: FakeDeepgram) -> None:
    stream = DeepgramAsr("wrong-key", url=fake.url, timeout_s=TIMEOUT_S).stream()
    push_ms(stream, 100)
    with pytest.raises(ProviderAuthError) as raised:
        await until_final(aiter(stream))
    await stream.aclose()

    assert "HTTP 401" in raised.value.message and "Invalid credentials" in raised.value.message
    assert not raised.value.retryable
    assert fake.rejected == [401] and not fake.sessions


@pytest.mark.asyncio
async def test_another_handshake_rejection_is_a_provider_error_with_the_servers_message(
        fake: FakeDeepgram) -> None:
    stream = DeepgramAsr(KEY, url=fake.url.replace("/v1/", "/v2/"), timeout_s=TIMEOUT_S).stream()
    push_ms(stream, 100)
    with pytest.raises(ProviderError) as raised:
        await until_final(aiter(stream))
    await stream.aclose()

    assert type(raised.value) is ProviderError
    assert "HTTP 404" in raised.value.message and "Unknown path" in raised.value.message


@pytest.mark.asyncio
async def test_an_unreachable_server_is_a_retryable_provider_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = unused.getsockname()[1]
        stream = DeepgramAsr(KEY, url=f"ws://127.0.0.1:{port}/v1/listen", timeout_s=TIMEOUT_S).stream()
        push_ms(stream, 100)
        with pytest.raises(ProviderError) as raised:
            await until_final(aiter(stream))
        await stream.aclose()

    assert type(raised.value) is ProviderError
    assert "cannot connect" in raised.value.message and raised.value.retryable


@pytest.mark.asyncio
async def test_a_mid_stream_error_close_is_a_provider_error_with_code_and_reason(
        fake: FakeDeepgram, stream: DeepgramStream) -> None:
    fake.behaviour.fail_after_ms = 300
    push_ms(stream, 500)
    with pytest.raises(ProviderError) as raised:
        await until_final(aiter(stream))

    assert type(raised.value) is ProviderError
    assert "1011" in raised.value.message and ERROR_REASON in raised.value.message
    assert raised.value.retryable
    with pytest.raises(ProviderError):  # later iterations see the failure too instead of hanging
        async with asyncio.timeout(1):
            await anext(aiter(stream))


@pytest.mark.asyncio
async def test_no_final_after_finish_is_a_timeout(fake: FakeDeepgram, stream: DeepgramStream) -> None:
    fake.behaviour.stall_after_ms = 0
    push_ms(stream, 300)
    stream.finish()
    started = time.monotonic()
    with pytest.raises(ProviderTimeout) as raised:
        await until_final(aiter(stream))
    waited = time.monotonic() - started

    assert TIMEOUT_S * 0.9 <= waited < TIMEOUT_S + 1.0
    assert "0.5 s of finish()" in raised.value.message
    assert fake.sessions[0].controls == ["Finalize"]
