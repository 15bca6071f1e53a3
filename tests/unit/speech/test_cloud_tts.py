"""OpenAI and ElevenLabs TTS adapters against local fake servers speaking their real wire formats."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from alice_voice.config import Settings
from alice_voice.errors import ProviderAuthError, ProviderError, ProviderTimeout
from alice_voice.speech import elevenlabs_tts, openai_tts
from alice_voice.speech.http_pcm import SampleAssembler
from alice_voice.speech.protocols import PcmChunk
from fakes.elevenlabs import FakeElevenLabs
from fakes.openai_speech import FakeOpenAiSpeech
from fakes.pcm_fake import PcmFake, speech_pcm

KEY = "sk-test-0123456789"
TEXT = "Hello there, how are you today?"
STALL_TIMEOUT_S = 0.4


@dataclass(frozen=True)
class Provider:
    name: str
    fake: PcmFake
    settings: Callable[..., Settings]
    load: Callable[[Settings], Any]


def _openai_settings(url: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return Settings(**{"openai_base_url": f"{url}/v1", "openai_api_key": KEY, "tts_timeout_s": 5.0,
                           **overrides})
    return make


def _elevenlabs_settings(url: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return Settings(**{"elevenlabs_base_url": url, "elevenlabs_api_key": KEY, "tts_timeout_s": 5.0,
                           **overrides})
    return make


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, PcmFake]]:
    started = {"openai": FakeOpenAiSpeech(KEY).start(), "elevenlabs": FakeElevenLabs(KEY).start()}
    try:
        yield started
    finally:
        for fake in started.values():
            fake.stop()


@pytest.fixture(params=["openai", "elevenlabs"])
def provider(request: pytest.FixtureRequest, fakes: dict[str, PcmFake]) -> Provider:
    fake = fakes[request.param]
    fake.mode, fake.chunks_before_stall, fake.requests[:] = "ok", 2, []
    if request.param == "openai":
        return Provider("openai-tts", fake, _openai_settings(fake.url), openai_tts.load)
    return Provider("elevenlabs-tts", fake, _elevenlabs_settings(fake.url), elevenlabs_tts.load)


@pytest_asyncio.fixture
async def tts(provider: Provider) -> AsyncIterator[Any]:
    adapter = provider.load(provider.settings())
    yield adapter
    await adapter.aclose()


async def collect(tts: Any, text: str = TEXT) -> list[PcmChunk]:
    return [chunk async for chunk in tts.synthesize(text)]


def expected_samples(text: str = TEXT) -> np.ndarray:
    return np.frombuffer(speech_pcm(text, 24_000), dtype="<i2")


@pytest.mark.asyncio
async def test_streams_all_the_audio_in_several_chunks_at_24_khz(tts: Any) -> None:
    chunks = await collect(tts)
    assert len(chunks) > 1
    assert {c.rate for c in chunks} == {24_000}
    assert all(c.samples.dtype == np.int16 for c in chunks)
    np.testing.assert_array_equal(np.concatenate([c.samples for c in chunks]), expected_samples())
    assert [c.text for c in chunks] == [TEXT] + [""] * (len(chunks) - 1)


@pytest.mark.asyncio
async def test_a_reply_s_lead_text_is_synthesized_exactly_like_any_other(provider: Provider, tts: Any) -> None:
    """`lead` only ranks work on this machine's CPU; a remote provider sends the same request either way."""
    lead = [chunk async for chunk in tts.synthesize(TEXT, lead=True)]
    rest = [chunk async for chunk in tts.synthesize(TEXT, lead=False)]
    np.testing.assert_array_equal(np.concatenate([c.samples for c in lead]), expected_samples())
    np.testing.assert_array_equal(np.concatenate([c.samples for c in rest]), expected_samples())
    assert lead[0].text == rest[0].text == TEXT
    first, second = provider.fake.requests
    assert (first.path, first.query, first.body) == (second.path, second.query, second.body)


@pytest.mark.asyncio
async def test_sends_the_request_the_real_api_expects(provider: Provider) -> None:
    voice = "nova" if provider.name == "openai-tts" else "JBFqnCBsd6RMkjVDRZzb"
    adapter = provider.load(provider.settings(tts_voice=voice))
    try:
        await collect(adapter)
    finally:
        await adapter.aclose()
    [sent] = provider.fake.requests
    assert sent.method == "POST"
    assert sent.headers["content-type"] == "application/json"
    if provider.name == "openai-tts":
        assert sent.path == "/v1/audio/speech"
        assert sent.headers["authorization"] == f"Bearer {KEY}"
        assert sent.body == {"model": openai_tts.DEFAULT_MODEL, "input": TEXT, "voice": voice,
                             "response_format": "pcm"}
    else:
        assert sent.path == f"/v1/text-to-speech/{voice}/stream"
        assert sent.query == {"output_format": "pcm_24000"}
        assert sent.headers["xi-api-key"] == KEY
        assert sent.body == {"text": TEXT, "model_id": elevenlabs_tts.DEFAULT_MODEL_ID}


@pytest.mark.asyncio
async def test_server_error_is_a_retryable_provider_error_with_the_providers_message(
        provider: Provider, tts: Any) -> None:
    provider.fake.mode = "error"
    with pytest.raises(ProviderError) as caught:
        await collect(tts)
    assert type(caught.value) is ProviderError
    assert caught.value.provider == provider.name and caught.value.retryable
    assert "HTTP 500" in caught.value.message
    assert ("had an error while processing" in caught.value.message
            or "internal server error occurred" in caught.value.message)


@pytest.mark.asyncio
async def test_client_error_is_not_retryable_and_carries_the_message(provider: Provider) -> None:
    adapter = provider.load(provider.settings(tts_voice="no-such-voice"))
    try:
        with pytest.raises(ProviderError) as caught:
            await collect(adapter)
    finally:
        await adapter.aclose()
    assert not caught.value.retryable
    assert "no-such-voice" in caught.value.message


@pytest.mark.asyncio
async def test_wrong_key_is_an_auth_error(provider: Provider) -> None:
    overrides = ({"openai_api_key": "sk-wrong-key"} if provider.name == "openai-tts"
                 else {"elevenlabs_api_key": "sk-wrong-key"})
    adapter = provider.load(provider.settings(**overrides))
    try:
        with pytest.raises(ProviderAuthError) as caught:
            await collect(adapter)
    finally:
        await adapter.aclose()
    assert "HTTP 401" in caught.value.message
    assert "Incorrect API key" in caught.value.message or "Invalid API key" in caught.value.message
    assert not caught.value.retryable


@pytest.mark.asyncio
async def test_missing_key_fails_at_load_and_at_first_use_without_a_request(provider: Provider) -> None:
    field = "openai_api_key" if provider.name == "openai-tts" else "elevenlabs_api_key"
    with pytest.raises(ProviderAuthError, match=f"ALICE_{field.upper()}"):
        provider.load(provider.settings(**{field: None}))
    cls = openai_tts.OpenAiTts if provider.name == "openai-tts" else elevenlabs_tts.ElevenLabsTts
    adapter = cls(base_url=provider.fake.url, api_key=None)
    try:
        with pytest.raises(ProviderAuthError, match=f"ALICE_{field.upper()}"):
            await collect(adapter)
    finally:
        await adapter.aclose()
    assert provider.fake.requests == []


@pytest.mark.asyncio
async def test_no_headers_in_time_is_a_timeout(provider: Provider) -> None:
    provider.fake.mode = "stall_headers"
    adapter = provider.load(provider.settings(tts_timeout_s=STALL_TIMEOUT_S))
    started = time.monotonic()
    try:
        with pytest.raises(ProviderTimeout):
            await collect(adapter)
    finally:
        await adapter.aclose()
    assert STALL_TIMEOUT_S * 0.9 <= time.monotonic() - started < STALL_TIMEOUT_S + 2.0


@pytest.mark.asyncio
async def test_headers_then_silence_is_a_timeout(provider: Provider) -> None:
    provider.fake.mode, provider.fake.chunks_before_stall = "stall_body", 0
    adapter = provider.load(provider.settings(tts_timeout_s=STALL_TIMEOUT_S))
    started = time.monotonic()
    try:
        with pytest.raises(ProviderTimeout):
            await collect(adapter)
    finally:
        await adapter.aclose()
    assert STALL_TIMEOUT_S * 0.9 <= time.monotonic() - started < STALL_TIMEOUT_S + 2.0


@pytest.mark.asyncio
async def test_a_stream_that_stalls_yields_what_came_then_times_out(provider: Provider) -> None:
    provider.fake.mode = "stall_body"
    adapter = provider.load(provider.settings(tts_timeout_s=STALL_TIMEOUT_S))
    received: list[PcmChunk] = []
    try:
        with pytest.raises(ProviderTimeout):
            async for chunk in adapter.synthesize(TEXT):
                received.append(chunk)
    finally:
        await adapter.aclose()
    got = np.concatenate([c.samples for c in received])
    sent_samples = provider.fake.chunks_before_stall * provider.fake.chunk_bytes // 2
    assert len(got) == sent_samples
    np.testing.assert_array_equal(got, expected_samples()[:sent_samples])


@pytest.mark.asyncio
async def test_a_web_page_instead_of_audio_is_an_error(provider: Provider, tts: Any) -> None:
    provider.fake.mode = "garbage"
    with pytest.raises(ProviderError, match="expected raw PCM, got text/html"):
        await collect(tts)


@pytest.mark.asyncio
async def test_a_stray_trailing_byte_is_dropped(provider: Provider, tts: Any) -> None:
    provider.fake.mode = "odd_tail"
    chunks = await collect(tts)
    np.testing.assert_array_equal(np.concatenate([c.samples for c in chunks]), expected_samples())


@pytest.mark.asyncio
async def test_closing_mid_stream_leaves_the_client_usable(tts: Any) -> None:
    stream = tts.synthesize(TEXT)
    first = await anext(stream)
    await stream.aclose()
    assert first.text == TEXT and len(first.samples) > 0
    again = await collect(tts, "Thank you very much.")
    np.testing.assert_array_equal(np.concatenate([c.samples for c in again]),
                                  expected_samples("Thank you very much."))


@pytest.mark.asyncio
async def test_refused_connection_is_a_retryable_provider_error(provider: Provider) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    overrides = ({"openai_base_url": url} if provider.name == "openai-tts" else {"elevenlabs_base_url": url})
    adapter = provider.load(provider.settings(**overrides))
    try:
        with pytest.raises(ProviderError, match="request failed: ConnectError") as caught:
            await collect(adapter)
    finally:
        await adapter.aclose()
    assert caught.value.retryable


@pytest.mark.asyncio
async def test_empty_text_makes_no_request(provider: Provider, tts: Any) -> None:
    assert await collect(tts, "   ") == []
    assert provider.fake.requests == []


def test_sample_assembler_carries_an_odd_byte_to_the_next_piece() -> None:
    samples = np.array([1, -2, 300, -32768, 32767], dtype="<i2")
    raw = samples.tobytes()
    assembler = SampleAssembler()
    pieces = [assembler.push(raw[i:j]) for i, j in [(0, 3), (3, 4), (4, 9), (9, 10)]]
    assert [len(p) for p in pieces] == [1, 1, 2, 1]
    np.testing.assert_array_equal(np.concatenate(pieces), samples)
    assert assembler.pending_bytes == 0
