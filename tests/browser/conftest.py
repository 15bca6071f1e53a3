"""Headless Debian Chromium driven by Playwright, with a synthesized WAV as its fake microphone.

Chromium loops the capture file, so each browser gets the file for what it should say over and over:
a spoken question with a long silence after it, silence only, or an acknowledgement ("Okay.") a few seconds
in, to fall on a reply that the test types as soon as the call is up.
"""

from __future__ import annotations

import contextlib
import tempfile
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page, Playwright, ViewportSize, async_playwright

import speech_fixtures as sf
from conftest import RunningGateway, make_settings, serve

CHROMIUM = "/usr/bin/chromium"
RATE = 48000
BASE_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
]
# No --use-fake-ui-for-media-stream: it would grant every prompt. The microphone is granted per origin with
# grant_permissions, and a test that clears the grants gets the real headless answer to a prompt: denied.
PHONE: ViewportSize = {"width": 390, "height": 760}


def write_wav(path: Path, pcm: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.astype(np.int16).tobytes())
    return path


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The trailing silence outlasts a whole turn, so the looped question does not barge into its own answer.
    pcm = np.concatenate([sf.silence(0.5, RATE), sf.synth("What is seven times eight?", sample_rate=RATE),
                          sf.silence(16.0, RATE)])
    return write_wav(tmp_path_factory.mktemp("mic") / "question48.wav", pcm)


# When the backchannel microphone says "Okay.", in seconds after it opened: late enough for a reply typed
# as soon as the call is up to be playing, early enough for a long reply (about 10 s) to be still playing.
OKAY_AT_S = 5.0


@pytest.fixture(scope="module")
def backchannel_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Said once: the trailing silence outlasts the test, so the loop never says it again.
    pcm = np.concatenate([sf.silence(OKAY_AT_S, RATE), sf.synth("Okay.", sample_rate=RATE), sf.silence(40.0, RATE)])
    return write_wav(tmp_path_factory.mktemp("mic") / "okay48.wav", pcm)


@pytest.fixture(scope="module")
def silence_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wav(tmp_path_factory.mktemp("mic") / "silence48.wav", sf.silence(2.0, RATE))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pw() -> AsyncIterator[Playwright]:
    async with async_playwright() as playwright:
        yield playwright


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def agent_gateway() -> AsyncIterator[RunningGateway]:
    async with serve(make_settings(default_mode="agent", preload_models=True)) as running:
        await running.app.state.runtime.resources()  # models loaded before any page connects
        yield running


@contextlib.asynccontextmanager
async def chromium(pw: Playwright, mic_wav: Path) -> AsyncIterator[BrowserContext]:
    with tempfile.TemporaryDirectory(prefix="alice-chromium-") as profile:
        context = await pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, viewport=PHONE,
            args=[*BASE_FLAGS, f"--use-file-for-fake-audio-capture={mic_wav}"],
            ignore_default_args=["--mute-audio"])
        try:
            yield context
        finally:
            await context.close()


async def open_client(context: BrowserContext, url: str, *, microphone: bool = True) -> tuple[Page, list[str]]:
    """The browser client at `url`, with the microphone granted (or every grant cleared: prompts are denied).

    Returns the page and the list its uncaught script errors are collected into.
    """
    if microphone:
        await context.grant_permissions(["microphone"], origin=url)
    else:
        await context.clear_permissions()
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{url}/")
    await page.wait_for_function("window.alice !== undefined", timeout=5000)
    return page, errors


@contextlib.asynccontextmanager
async def client_page(context: BrowserContext, url: str, *, microphone: bool = True) -> AsyncIterator[Page]:
    page, errors = await open_client(context, url, microphone=microphone)
    try:
        yield page
        assert not errors, f"uncaught errors on the page: {errors}"
    finally:
        await page.close()
