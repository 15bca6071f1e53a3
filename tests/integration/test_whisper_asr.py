"""Whisper tiny.en behind `StreamingAsr`, on synthesized speech pushed in 20 ms pieces (not paced).

Bounds come from measurement on this machine (corpus WER of the finals, digits read as words; greedy
decoding of the same audio is deterministic): Piper 0.011 and espeak en-us 0.125 ("Please tell me a short
so can out computers", "The quick round-fuck stump"), together 0.068, so <= 0.10; espeak en-us+f3 0.170
("Good morning Alice" heard as "Go to more in the air list"), so <= 0.35.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator

import numpy as np
import pytest

from alice_voice.audio.frames import Pcm
from alice_voice.compute import InferenceScheduler, Lane, Priority
from alice_voice.config import Settings
from alice_voice.errors import ProviderError
from alice_voice.speech import whisper_asr
from alice_voice.speech.decode_stream import Heard
from alice_voice.speech.protocols import Transcript
from speech_fixtures import LONG_SENTENCE, PROMPTS, silence, synth, trim, word_error_rate
from support.asr_harness import (
    PIECE,
    WAIT_S,
    Collected,
    RecordingRunner,
    collect,
    private_scheduler,
    push,
    transcribe,
    transcribe_after_a_partial,
)
from support.engines import shared_compute

pytestmark = pytest.mark.models

_NUMBERS = {"7": "seven", "8": "eight", "10": "ten"}


def spoken(text: str) -> str:
    """Whisper writes some numbers as digits; the references spell them out."""
    return " ".join(_NUMBERS.get(word.strip(".,?!"), word) for word in text.split())


def corpus_wer(pairs: list[tuple[str, str]]) -> float:
    errors = sum(word_error_rate(ref, spoken(hyp)) * len(ref.split()) for ref, hyp in pairs)
    return errors / sum(len(ref.split()) for ref, _ in pairs)


@pytest.fixture(scope="module")
def loaded() -> whisper_asr.WhisperAsr:
    return whisper_asr.load(Settings(), shared_compute())


@pytest.fixture(scope="module")
def asr(loaded: whisper_asr.WhisperAsr) -> Iterator[whisper_asr.WhisperAsr]:
    """The loaded engines on a scheduler that is closed when the module is done (see `private_scheduler`)."""
    settings = Settings()
    with private_scheduler("test-whisper") as compute:
        yield whisper_asr.WhisperAsr(loaded.engine, compute, partial_engine=loaded.partial_engine,
                                     partial_interval_ms=settings.asr_partial_interval_ms,
                                     timeout_s=settings.asr_timeout_s)


def test_load_names_the_model_and_builds_an_engine_for_finals_and_one_for_partials(
        loaded: whisper_asr.WhisperAsr) -> None:
    assert loaded.name == "whisper-tiny.en"
    assert loaded.timing.partial_interval == Settings().asr_partial_interval_ms * 16
    assert loaded.timing.final_timeout_s == Settings().asr_timeout_s
    assert loaded.compute is shared_compute(), "the scheduler it was given"
    assert isinstance(loaded.engine, whisper_asr.WhisperEngine)
    assert isinstance(loaded.partial_engine, whisper_asr.WhisperEngine)
    assert loaded.partial_engine is not loaded.engine
    # Both copies of the model hear the same thing (greedy decoding of the same audio is deterministic).
    pcm = synth("Good morning Alice.")
    assert loaded.partial_engine.transcribe(pcm) == loaded.engine.transcribe(pcm)


class _NamedEngine:
    """Passes each window on to `inner`, and records that this engine decoded one."""

    def __init__(self, name: str, inner: whisper_asr.WindowDecoder, log: list[str]) -> None:
        self._name, self._inner, self._log = name, inner, log

    def hear(self, pcm: Pcm, *, ground: bool = False) -> Heard:
        self._log.append(self._name)
        return self._inner.hear(pcm, ground=ground)

    def ground(self, heard: Heard) -> Heard:
        self._log.append(self._name)
        return self._inner.ground(heard)


class _CallLog:
    """Passes each call on to `inner` and records it as (method, samples or None, ground); `wait_for`
    blocks until a call matching a predicate has returned."""

    def __init__(self, inner: whisper_asr.WindowDecoder) -> None:
        self._inner = inner
        self.calls: list[tuple[str, int | None, bool]] = []
        self._done = threading.Condition()

    def hear(self, pcm: Pcm, *, ground: bool = False) -> Heard:
        heard = self._inner.hear(pcm, ground=ground)
        self._record(("hear", len(pcm), ground))
        return heard

    def ground(self, heard: Heard) -> Heard:
        grounded = self._inner.ground(heard)
        self._record(("ground", None, True))
        return grounded

    def _record(self, call: tuple[str, int | None, bool]) -> None:
        with self._done:
            self.calls.append(call)
            self._done.notify_all()

    async def wait_for(self, wanted: Callable[[tuple[str, int | None, bool]], bool]) -> None:
        def wait() -> None:
            with self._done:
                if not self._done.wait_for(lambda: any(wanted(c) for c in self.calls), WAIT_S):
                    raise TimeoutError(f"no such decode in {self.calls}")
        await asyncio.to_thread(wait)


@pytest.mark.asyncio
async def test_a_final_after_silence_grounds_the_last_partial_instead_of_decoding_again(
        asr: whisper_asr.WhisperAsr) -> None:
    speech = trim(synth("Set a timer for ten minutes."))  # (its own trailing silence cut)
    log = _CallLog(asr.engine)
    recording = whisper_asr.WhisperAsr(log, asr.compute, partial_engine=log)
    stream, got = recording.stream(), Collected()
    reader = asyncio.create_task(collect(stream, got))
    try:
        await push(stream, np.concatenate([speech, silence(1.0)]))
        await log.wait_for(lambda call: call[0] == "hear" and (call[1] or 0) >= len(speech))  # the last partial
        stream.finish()
        await got.wait_for(1, final=True)
    finally:
        await stream.aclose()
        await reader
    fresh = asr.engine.hear(np.concatenate([speech, silence(1.0)]), ground=True)
    final = got.finals[0]
    assert log.calls.count(("ground", None, True)) == 1, log.calls  # the final's only work
    assert not any(call[2] for call in log.calls if call[0] == "hear")  # no decode for the final
    assert (final.text, final.grounded_text) == (fresh.text, fresh.grounded)


@pytest.mark.asyncio
async def test_a_final_decodes_afresh_when_speech_came_after_the_last_partial(asr: whisper_asr.WhisperAsr) -> None:
    pcm = synth("What is the weather like tomorrow?")
    log = _CallLog(asr.engine)
    recording = whisper_asr.WhisperAsr(log, asr.compute, partial_engine=log)
    stream, got = recording.stream(), Collected()
    reader = asyncio.create_task(collect(stream, got))
    try:
        await push(stream, pcm)  # speech to the very end: the last partial's snapshot misses some of it
        stream.finish()
        await got.wait_for(1, final=True)
    finally:
        await stream.aclose()
        await reader
    assert ("hear", len(pcm), True) in log.calls
    assert ("ground", None, True) not in log.calls
    assert word_error_rate("what is the weather like tomorrow", got.finals[0].text) <= 0.15


@pytest.mark.asyncio
async def test_later_partials_run_on_the_partial_engine_and_the_first_partial_and_final_on_the_finals_one(
        asr: whisper_asr.WhisperAsr) -> None:
    decoded: list[str] = []
    runner = RecordingRunner(asr.compute)
    recording = whisper_asr.WhisperAsr(_NamedEngine("finals", asr.engine, decoded), runner,
                                       partial_engine=_NamedEngine("partials", asr.partial_engine, decoded))
    text = "Please tell me a short joke about computers."
    pcm = synth(text)
    got = await transcribe_after_a_partial(recording, pcm)

    priorities = runner.priorities
    assert priorities[0] is Priority.FIRST_PARTIAL and priorities[-1] is Priority.FINAL
    assert priorities.count(Priority.FINAL) == 1  # one window: no segment was cut
    assert Priority.PARTIAL in priorities  # once a partial was yielded
    first_partial_yielded = priorities.index(Priority.PARTIAL)
    assert set(priorities[:first_partial_yielded]) == {Priority.FIRST_PARTIAL}
    assert set(priorities[first_partial_yielded:-1]) == {Priority.PARTIAL}
    # The first partial (what the caller sees appear) and the final run on the normal-priority engine.
    # A later partial may be withdrawn before it runs (overtaken, or covered by the final), so only these hold:
    assert decoded[0] == "finals" and decoded[-1] == "finals"
    assert decoded.count("finals") <= priorities.count(Priority.FIRST_PARTIAL) + 1
    assert decoded.count("partials") <= priorities.count(Priority.PARTIAL)
    assert word_error_rate(text, got.finals[0].text) <= 0.15


@pytest.mark.asyncio
async def test_partials_come_before_the_final_and_stay_ordered(asr: whisper_asr.WhisperAsr) -> None:
    text = "Please tell me a short joke about computers."
    pcm = synth(text)
    stream, got = asr.stream(), Collected()
    reader = asyncio.create_task(collect(stream, got))
    half = len(pcm) * 2 // 3 // PIECE * PIECE
    await push(stream, pcm[:half])
    await got.wait_for(1, final=False)  # a partial while the user is still talking
    await push(stream, pcm[half:])
    stream.finish()
    await got.wait_for(1, final=True)
    await stream.aclose()
    async with asyncio.timeout(WAIT_S):
        await reader

    *partials, final = got.items
    assert partials and all(not t.final for t in partials)
    assert all(t.text.strip() and t.text.startswith(t.stable_text) for t in partials)
    assert [t.samples for t in got.items] == sorted(t.samples for t in got.items)
    assert final.final and final.samples == len(pcm) and final.stable_text == final.text
    assert word_error_rate(text, final.text) <= 0.15
    assert word_error_rate(text[:len(partials[0].text)], partials[0].text) <= 0.5


@pytest.mark.asyncio
async def test_final_word_error_rate_over_the_set(asr: whisper_asr.WhisperAsr) -> None:
    texts = [*PROMPTS, LONG_SENTENCE]
    results: dict[str, list[tuple[str, str]]] = {}
    trimmed: list[tuple[str | None, str]] = []
    for voice in ("piper", "espeak:en-us", "espeak:en-us+f3"):
        for text in texts:
            final = (await transcribe(asr, synth(text, voice))).finals[-1]
            results.setdefault(voice, []).append((text, final.text))
            if final.grounded_text != final.text:
                trimmed.append((final.grounded_text, final.text))
    assert corpus_wer(results["piper"] + results["espeak:en-us"]) <= 0.10
    assert corpus_wer(results["espeak:en-us+f3"]) <= 0.35
    # Finished sentences: the words the end of turn reads are all the words written (one slip allowed in 60).
    assert len(trimmed) <= 1, trimmed


@pytest.mark.parametrize(("said", "voice"), [("Set a timer for", "espeak:en-us"),
                                             ("I need a table for", "espeak:en-us"),
                                             ("Can you find the recipe for", "espeak:en-us")])
@pytest.mark.asyncio
async def test_a_final_leaves_out_of_its_grounded_text_the_words_added_after_the_speech(
        asr: whisper_asr.WhisperAsr, said: str, voice: str) -> None:
    final = (await transcribe(asr, np.concatenate([synth(said, voice), silence(0.1, noise_rms=30)]))).finals[-1]
    assert final.text.rstrip(".?!").lower() != said.lower()  # Whisper finished the sentence ("... for it.")
    assert final.grounded_text is not None and final.text.startswith(final.grounded_text)
    assert final.grounded_text.rstrip(",.?!").lower() == said.lower()


@pytest.mark.asyncio
async def test_speculative_finish_then_more_audio_gives_a_final_covering_all(
        asr: whisper_asr.WhisperAsr) -> None:
    first, second = "Set a timer", "for ten minutes."
    head = np.concatenate([synth(first), silence(0.3)])
    tail = synth(second)
    stream, got = asr.stream(), Collected()
    reader = asyncio.create_task(collect(stream, got))
    await push(stream, head)
    stream.finish()
    await got.wait_for(1, final=True)
    await push(stream, tail)  # the pause was not the end of the turn
    stream.finish()
    await got.wait_for(2, final=True)
    await stream.aclose()
    async with asyncio.timeout(WAIT_S):
        await reader

    early, late = got.finals
    assert early.samples == len(head) and late.samples == len(head) + len(tail)
    assert word_error_rate(first, early.text) <= 0.34
    assert word_error_rate(f"{first} {second}", spoken(late.text)) <= 0.15
    after_early = got.items[got.items.index(early) + 1:]
    assert all(t.samples > early.samples for t in after_early)


@pytest.mark.asyncio
async def test_utterance_longer_than_the_window_loses_nothing(asr: whisper_asr.WhisperAsr) -> None:
    texts = [*PROMPTS[:6], LONG_SENTENCE, *PROMPTS[6:]]
    pieces = [np.concatenate([synth(text), silence(0.4)]) for text in texts]
    pcm = np.concatenate(pieces)
    assert len(pcm) > asr.max_window  # about 30 s: at least one window cut
    final = (await transcribe(asr, pcm)).finals[-1]
    assert final.samples == len(pcm)
    assert word_error_rate(" ".join(texts), spoken(final.text)) <= 0.15


@pytest.mark.parametrize("noise_rms", [0.0, 30.0, 300.0])
@pytest.mark.asyncio
async def test_silence_and_low_noise_give_no_text(asr: whisper_asr.WhisperAsr, noise_rms: float) -> None:
    got = await transcribe(asr, silence(2.0, noise_rms=noise_rms, seed=3))
    assert [t.final for t in got.items] == [True]
    assert got.finals[0].text == ""


class _BrokenEngine:
    def hear(self, pcm: Pcm, *, ground: bool = False) -> Heard:
        raise RuntimeError("decoder crashed")

    def ground(self, heard: Heard) -> Heard:
        raise RuntimeError("decoder crashed")


@pytest.fixture
def one_thread() -> Iterator[InferenceScheduler]:
    scheduler = InferenceScheduler([Lane("all", 1, frozenset(Priority))], name="test-whisper")
    yield scheduler
    scheduler.close()


@pytest.mark.asyncio
async def test_decode_failure_surfaces_as_provider_error(one_thread: InferenceScheduler) -> None:
    stream = whisper_asr.WhisperAsr(_BrokenEngine(), one_thread).stream()
    stream.push(synth("What time is it?"))
    stream.finish()
    items: AsyncIterator[Transcript] = aiter(stream)
    with pytest.raises(ProviderError) as raised:
        async with asyncio.timeout(WAIT_S):
            await anext(items)
    assert raised.value.provider == "whisper"
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert "decoder crashed" in raised.value.message
    await stream.aclose()
