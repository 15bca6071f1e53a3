"""The embedded TTS engines (hibari, Piper, espeak-ng) with their real models, behind `StreamingTts`; and the
sentence plumbing the in-process engines share, which runs each sentence as an inference-scheduler job."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from alice_voice.compute import InferenceScheduler, Priority
from alice_voice.config import Settings
from alice_voice.errors import ProviderError
from alice_voice.speech import espeak_tts, hibari_tts, piper_tts
from alice_voice.speech.protocols import PcmChunk
from alice_voice.speech.sentence_tts import synthesize_sentences
from fakes.scripted import InlineCompute
from support.engines import shared_compute

pytestmark = pytest.mark.models

RATES = {"hibari": 24_000, "piper": 22_050, "espeak": 22_050}
SENTENCES = ["Sure, I can help with that.", "What time works best for you tomorrow?",
             "I will send you a reminder an hour before."]
REPLY = " ".join(SENTENCES)


@pytest.fixture(scope="module")
def engines() -> Iterator[dict[str, Any]]:
    settings, compute = Settings(), shared_compute()
    yield {"hibari": hibari_tts.load(settings, compute), "piper": piper_tts.load(settings, compute),
           "espeak": espeak_tts.load(settings, compute)}


@pytest.fixture(scope="module")
def recorded() -> dict[str, tuple[Any, InlineCompute]]:
    """hibari and Piper on a `JobRunner` that records the priority of every sentence job."""
    hibari_jobs, piper_jobs = InlineCompute(), InlineCompute()
    return {"hibari": (hibari_tts.HibariTts(hibari_jobs), hibari_jobs),
            "piper": (piper_tts.PiperTts(piper_jobs), piper_jobs)}


@pytest.fixture(params=list(RATES))
def engine(request: pytest.FixtureRequest, engines: dict[str, Any]) -> tuple[str, Any]:
    return request.param, engines[request.param]


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def voiced_fraction(samples: np.ndarray, rate: int) -> float:
    frame = rate // 50
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame).astype(np.float64)
    return float(np.mean(np.sqrt(np.mean(frames**2, axis=1)) > 300))


async def timed(tts: Any, text: str) -> tuple[list[PcmChunk], list[float]]:
    chunks, times = [], []
    started = time.perf_counter()
    async for chunk in tts.synthesize(text):
        chunks.append(chunk)
        times.append(time.perf_counter() - started)
    return chunks, times


@pytest.mark.asyncio
async def test_audible_speech_at_the_declared_rate_and_a_plausible_length(engine: tuple[str, Any]) -> None:
    name, tts = engine
    text = "Please tell me a short joke about computers."
    chunks = [chunk async for chunk in tts.synthesize(text)]
    assert chunks and {c.rate for c in chunks} == {RATES[name]} and tts.rate == RATES[name]
    audio = np.concatenate([c.samples for c in chunks])
    assert audio.dtype == np.int16
    seconds, words = len(audio) / RATES[name], len(text.split())
    assert 0.2 * words <= seconds <= 0.7 * words + 0.5, seconds
    assert rms(audio) > 800
    assert voiced_fraction(audio, RATES[name]) > 0.3  # hibari pauses more: ~0.45-0.6 of frames
    assert chunks[0].text == text


@pytest.mark.asyncio
async def test_first_sentence_arrives_before_the_rest_is_synthesized(engine: tuple[str, Any]) -> None:
    _, tts = engine
    chunks, times = await timed(tts, REPLY)
    assert [c.text for c in chunks] == SENTENCES
    total_samples = sum(len(c.samples) for c in chunks)
    assert 0.15 < len(chunks[0].samples) / total_samples < 0.5
    # Each sentence is its own synthesis, so the first chunk waits for about a third of the work.
    assert times[0] < 0.9 * times[-1]


@pytest.mark.asyncio
async def test_closing_the_iterator_midway_stops_cleanly(engine: tuple[str, Any]) -> None:
    _, tts = engine
    stream = tts.synthesize(REPLY)
    first = await anext(stream)
    await stream.aclose()
    assert first.text == SENTENCES[0]
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    again = [chunk async for chunk in tts.synthesize("Thank you very much.")]
    assert [c.text for c in again] == ["Thank you very much."]


@pytest.mark.asyncio
async def test_cancelling_the_consumer_midway_propagates_and_leaves_the_engine_usable(
        engine: tuple[str, Any]) -> None:
    _, tts = engine
    got_first = asyncio.Event()

    async def consume() -> None:
        async for _ in tts.synthesize(REPLY):
            got_first.set()

    task = asyncio.create_task(consume())
    async with asyncio.timeout(10):
        await got_first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [c.text async for c in tts.synthesize("What can you do?")] == ["What can you do?"]


@pytest.mark.asyncio
async def test_espeak_kills_its_process_when_cancelled(monkeypatch: pytest.MonkeyPatch,
                                                        engines: dict[str, Any]) -> None:
    spawned: list[asyncio.subprocess.Process] = []
    started = asyncio.Event()
    real_exec = asyncio.create_subprocess_exec

    async def hanging_exec(*argv: str, **kwargs: Any) -> asyncio.subprocess.Process:
        assert argv[0] == "espeak-ng" and "--stdin" in argv
        proc = await real_exec("sleep", "30", **kwargs)  # an espeak that never finishes
        spawned.append(proc)
        started.set()
        return proc

    monkeypatch.setattr(espeak_tts.asyncio, "create_subprocess_exec", hanging_exec)
    task = asyncio.create_task(anext(engines["espeak"].synthesize("Hello there.")))
    async with asyncio.timeout(5):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [proc] = spawned
    assert proc.returncode is not None and proc.returncode < 0  # killed by a signal, and reaped


@pytest.mark.asyncio
async def test_hibari_loads_and_speaks_without_touching_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("hibari tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    tts = hibari_tts.load(Settings(), shared_compute())
    chunks = [chunk async for chunk in tts.synthesize("Good morning Alice.")]
    assert rms(np.concatenate([c.samples for c in chunks])) > 1000


@pytest.mark.asyncio
async def test_hibari_is_deterministic_and_safe_to_share_between_sessions(engines: dict[str, Any]) -> None:
    tts = engines["hibari"]

    async def audio(text: str) -> np.ndarray:
        return np.concatenate([c.samples async for c in tts.synthesize(text)])

    alone = [await audio(s) for s in SENTENCES]
    together = await asyncio.gather(*(audio(s) for s in SENTENCES * 2))
    for index, samples in enumerate(together):
        np.testing.assert_array_equal(samples, alone[index % len(SENTENCES)])


def test_voices_that_are_not_installed_fail_at_load() -> None:
    with pytest.raises(ProviderError, match="only 'heart'"):
        hibari_tts.load(Settings(tts_voice="emma"), shared_compute())
    with pytest.raises(ProviderError, match="only 'joe'"):
        piper_tts.load(Settings(tts_voice="en_US-amy-medium"), shared_compute())
    with pytest.raises(ProviderError, match="voice does not exist"):
        espeak_tts.load(Settings(tts_voice="nosuchvoice"), shared_compute())  # "no-x" would be Norwegian


async def wait_idle(scheduler: InferenceScheduler) -> None:
    """Until no job is queued or running, e.g. a sentence a test before abandoned midway. A job's observers
    are picked under the same lock that counts it finished, so an observer added after this returns sees
    only jobs submitted later."""
    idle = threading.Event()

    def check(*_: object) -> None:
        if scheduler.backlog(Priority) == 0:
            idle.set()

    scheduler.add_observer(check)
    try:
        check()
        assert await asyncio.to_thread(idle.wait, 10), "the scheduler never went idle"
    finally:
        scheduler.remove_observer(check)


@pytest.mark.parametrize("name", ["hibari", "piper"])
@pytest.mark.asyncio
async def test_loaded_engines_synthesize_on_the_scheduler_they_were_given(name: str,
                                                                            engines: dict[str, Any]) -> None:
    scheduler = shared_compute()
    await wait_idle(scheduler)
    seen: list[Priority] = []
    all_seen = threading.Event()

    def observe(priority: Priority, queued_s: float, run_s: float) -> None:  # in a worker thread
        seen.append(priority)
        if len(seen) == len(SENTENCES):
            all_seen.set()

    scheduler.add_observer(observe)
    try:
        texts = [c.text async for c in engines[name].synthesize(REPLY, lead=True)]
        assert await asyncio.to_thread(all_seen.wait, 10)
    finally:
        scheduler.remove_observer(observe)
    assert texts == SENTENCES
    assert seen == [Priority.FIRST_TTS, Priority.TTS, Priority.TTS]


@pytest.mark.parametrize("name", ["hibari", "piper"])
@pytest.mark.asyncio
async def test_the_lead_sentence_of_a_reply_runs_at_first_tts_and_the_rest_at_tts(
        name: str, recorded: dict[str, tuple[Any, InlineCompute]]) -> None:
    tts, jobs = recorded[name]
    jobs.priorities.clear()
    lead = [c.text async for c in tts.synthesize(REPLY, lead=True)]
    assert lead == SENTENCES
    assert jobs.priorities == [Priority.FIRST_TTS, Priority.TTS, Priority.TTS]
    jobs.priorities.clear()
    later = [c.text async for c in tts.synthesize(REPLY)]  # a later part of the reply: nobody waits on it
    assert later == SENTENCES
    assert jobs.priorities == [Priority.TTS] * 3


def fake_synth(pieces: dict[str, list[int]]) -> Callable[[str], list[np.ndarray]]:
    """Each sentence -> pieces of the given lengths (0: a piece with no audio), filled with the sentence's length."""
    def synth(sentence: str) -> list[np.ndarray]:
        return [np.full(n, len(sentence), np.int16) for n in pieces[sentence]]
    return synth


@pytest.mark.parametrize(("lead", "expected"), [
    (True, [Priority.FIRST_TTS, Priority.TTS, Priority.TTS]),
    (False, [Priority.TTS, Priority.TTS, Priority.TTS]),
])
@pytest.mark.asyncio
async def test_synthesize_sentences_runs_one_job_per_sentence_at_its_priority(
        lead: bool, expected: list[Priority]) -> None:
    jobs = InlineCompute()
    synth = fake_synth({"One.": [10], "Two two.": [0, 20, 5], "Three.": [0]})
    chunks = [c async for c in synthesize_sentences(["One.", "Two two.", "Three."], synth, 8000, jobs, lead=lead)]
    assert jobs.priorities == expected
    # A sentence's text rides on its first non-empty piece; a sentence with no audio yields nothing.
    assert [(len(c.samples), c.text, c.rate) for c in chunks] == [(10, "One.", 8000), (20, "Two two.", 8000),
                                                                   (5, "", 8000)]


@pytest.mark.asyncio
async def test_closing_synthesize_sentences_submits_no_further_sentence() -> None:
    jobs = InlineCompute()
    synth = fake_synth({"One.": [10], "Two.": [10]})
    stream = synthesize_sentences(["One.", "Two."], synth, 8000, jobs, lead=True)
    assert (await anext(stream)).text == "One."
    await stream.aclose()
    assert jobs.priorities == [Priority.FIRST_TTS]
