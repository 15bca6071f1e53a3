"""Whisper tiny.en (CTranslate2, int8) as a streaming recognizer.

Each pass re-decodes the utterance so far on a SHORT encoder window (the audio padded to >= 10 s, not
Whisper's 30 s), with timestamps on, and cuts the text at the first timestamp past the real audio, so a
pass costs in proportion to the utterance instead of a fixed 30 s (recipes/fast-models.md, section a).
Greedy, no temperature fallback.

Two instances of the model run: finals (and an utterance's first partial) on one whose CTranslate2 threads
run at normal OS priority, later partials on one built inside the scheduler's background lane, whose
threads inherit that lane's lower priority, so the kernel lets a final or an end-of-turn question preempt
a partial pass already running. CTranslate2
decodes in its own threads, so that is the only way to give its work a priority; it costs a second copy
of the weights (~40 MB).

Long audio: past ~12 s tiny.en tends to stop early, leaving the last segment unterminated and 2-8 s of
speech untranscribed, so (as Whisper's own long-form loop does) such a segment is dropped and decoding
resumes from its start. Utterances longer than `max_window_s` are cut at a quiet point: the text of the
part before the cut is frozen and decoding goes on in a new window.
"""

from __future__ import annotations

import asyncio
import functools
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import ctranslate2
import numpy as np
import tokenizers

from alice_voice.audio.frames import SPEECH_RATE, Pcm, block_rms, rms
from alice_voice.compute import InferenceScheduler, JobRunner, Priority, Superseded
from alice_voice.config import Settings
from alice_voice.speech.decode_stream import Decode, DecodeStream, Heard, StreamTiming, partial_pressure
from alice_voice.speech.whisper_models import WhisperSize, whisper_model

PROVIDER = "whisper"
_FRAME = SPEECH_RATE // 50  # 20 ms
_TEN_MS = SPEECH_RATE // 100
_ENCODER_FRAMES_PER_S = 50  # 100 mel frames a second, halved by the encoder's strided convolution


class WindowDecoder(Protocol):
    """Blocking decode of one window of 16 kHz int16 audio ("" for no speech); with `ground`, also the
    text less the trailing words the audio does not hold. `ground(heard)` finds those words later, for a
    window decoded without (a partial a final reuses)."""

    def hear(self, pcm: Pcm, *, ground: bool = False) -> Heard: ...

    def ground(self, heard: Heard) -> Heard: ...


class WhisperEngine:
    """The loaded model. Thread-safe: CTranslate2 runs up to `threads` decodes at once, 1 core each."""

    def __init__(self, model_dir: str, threads: int = 1, *, language: str | None = None, min_window_s: float = 10.0,
                 no_speech_threshold: float = 0.8, max_passes: int = 4, loud_rms: float = 100.0) -> None:
        """`language`: for a multilingual model, the language it is told it hears (it then transcribes)."""
        from faster_whisper.feature_extractor import FeatureExtractor

        self._model = ctranslate2.models.Whisper(model_dir, device="cpu", compute_type="int8",
                                                 intra_threads=1, inter_threads=threads)
        self._tokenizer = tokenizers.Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self._features = FeatureExtractor(feature_size=80)
        # tiny.en takes no language or task token; leaving out <|notimestamps|> turns timestamps on.
        self._prompt = [self._token("<|startoftranscript|>")]
        if language is not None:
            self._prompt += [self._token(f"<|{language}|>"), self._token("<|transcribe|>")]
        self._first_timestamp = self._token("<|notimestamps|>") + 1
        self._min_window = int(min_window_s * SPEECH_RATE)
        self._no_speech_threshold = no_speech_threshold
        self._max_passes = max_passes
        self._loud_rms = loud_rms

    def _token(self, name: str) -> int:
        token = self._tokenizer.token_to_id(name)
        if token is None:
            raise ValueError(f"tokenizer has no {name}")
        return int(token)

    def transcribe(self, pcm: Pcm) -> str:
        return self.hear(pcm).text

    def hear(self, pcm: Pcm, *, ground: bool = False) -> Heard:
        pieces: list[int] = []
        last_pass: _LastPass | None = None
        offset = 0
        for _ in range(self._max_passes):
            window = pcm[offset:]
            if not len(window):
                break
            encoded, frames, result = self._generate(window)
            # Only a near-certain "no speech" is dropped: speech scored <= 0.51 here, silence and noise >= 0.95.
            if result.no_speech_prob >= self._no_speech_threshold:
                break
            parsed = _parse(result.sequences_ids[0], self._first_timestamp, len(window) / SPEECH_RATE)
            if parsed.resume_at is None:
                last = parsed.complete + parsed.tail
                last_pass = _LastPass(encoded, frames, list(pieces), last, window)
                pieces += last
                break
            # Like Whisper's own long-form loop: drop the unterminated segment, decode again from its start.
            pieces += parsed.complete
            offset += int(parsed.resume_at * SPEECH_RATE)
        heard = Heard(self._text(pieces), kept=last_pass)
        return self.ground(heard) if ground else heard

    def ground(self, heard: Heard) -> Heard:
        """`heard` with its grounded text, from the last pass it kept (one alignment: ~10 ms). Any engine
        holding the same weights can ground another's decode."""
        if heard.grounded is not None:
            return heard
        kept = heard.kept
        if not isinstance(kept, _LastPass):
            return Heard(heard.text, heard.text)
        tokens = kept.before + self._heard_part(kept.encoded, kept.frames, kept.tokens, kept.window)
        return Heard(heard.text, self._text(tokens))

    def _text(self, tokens: list[int]) -> str:
        text = str(self._tokenizer.decode(tokens)).strip()
        return text if any(ch.isalnum() for ch in text) else ""

    def _heard_part(self, encoded: Any, frames: int, tokens: list[int], window: Pcm) -> list[int]:
        """`tokens` less the trailing words the decoder placed where the audio is silent.

        Whisper finishes the sentence it hears: "set a timer for" comes out "set a timer for it.". The
        decoder's own cross-attention alignment (as faster-whisper's word timestamps use it), over the whole
        padded window, starts such a word at or after the end of the last loud 10 ms of the window; a word
        that was said starts before it. Measured on 340 cut and 340 finished synthesized utterances (four
        voices, and a held-out set of three): invented trailing words 4.4 % -> 0.6 % (held out 3.3 % -> 0),
        one real word lost in 340, no finished utterance changed; ~10 ms a final. The other failure, the
        last word misheard as one that can end a sentence ("the" -> "that"), the alignment cannot see."""
        sound_end = last_loud_s(window, self._loud_rms)
        if not tokens or sound_end is None:
            return tokens
        path = np.asarray(self._model.align(encoded, self._prompt, [tokens], frames)[0].alignments)
        first_frame = np.diff(path[:, 0], prepend=-1).astype(bool)
        starts_s = path[first_frame, 1] / _ENCODER_FRAMES_PER_S  # where each token starts
        keep = len(tokens)
        for k in reversed(self._word_starts(tokens)):
            if starts_s[k] < sound_end:
                break
            keep = k
        return tokens[:keep]

    def _word_starts(self, tokens: list[int]) -> list[int]:
        """The index of each word's first token (a token opening with a space that is not bare punctuation,
        as faster-whisper splits words; punctuation stays with the word before it)."""
        starts = []
        for k, token in enumerate(tokens):
            piece = str(self._tokenizer.decode([token]))
            if k == 0 or (piece.startswith(" ") and piece.strip() not in string.punctuation):
                starts.append(k)
        return starts

    def warm(self) -> None:
        noise = np.random.default_rng(0).normal(0, 300, SPEECH_RATE).astype(np.int16)
        self.hear(np.concatenate([np.zeros(SPEECH_RATE // 2, np.int16), noise]), ground=True)

    def _generate(self, pcm: Pcm) -> tuple[Any, int, Any]:
        """The encoder's output (kept for the alignment), the window's mel frames, and the greedy decode."""
        audio = pcm.astype(np.float32) / 32768.0
        # One second of padding past the audio gives the last word room; the window is then floored to
        # whole seconds of mel frames, as the encoder expects.
        padded = np.zeros(max(len(audio) + SPEECH_RATE, self._min_window), np.float32)
        padded[:len(audio)] = audio
        mel = self._features(padded, padding=0)
        frames = min(3000, mel.shape[1] // 100 * 100)
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None, :, :frames], np.float32))
        max_tokens = int(len(audio) / SPEECH_RATE * 5) + 28
        encoded = self._model.encode(features)
        result = self._model.generate(encoded, [self._prompt], beam_size=1, max_length=max_tokens,
                                      return_no_speech_prob=True)[0]
        return encoded, frames, result


def last_loud_s(pcm: Pcm, loud_rms: float) -> float | None:
    """Where (s) the last 10 ms of `pcm` at least `loud_rms` loud ends; None if none is."""
    loud = np.flatnonzero(block_rms(pcm, _TEN_MS) >= loud_rms)
    return None if len(loud) == 0 else (int(loud[-1]) + 1) * _TEN_MS / SPEECH_RATE


@dataclass(frozen=True, slots=True)
class _LastPass:
    """What grounding a decode needs of its last pass: the encoder output, the window's mel frames, the
    text tokens before the pass and of it, and the pass's audio."""

    encoded: Any
    frames: int
    before: list[int]
    tokens: list[int]
    window: Pcm


@dataclass(frozen=True, slots=True)
class _Parsed:
    complete: list[int]  # text tokens of segments closed by a timestamp inside the audio
    tail: list[int]  # text after the last such timestamp
    resume_at: float | None  # where to decode again (s), when the tail is cut short and long


_RESUME_MIN_S = 3.0  # measured: past ~12 s tiny.en ends the last segment early, dropping 2-8 s of speech


def _parse(tokens: list[int], first_timestamp: int, audio_s: float) -> _Parsed:
    """Split a timestamped sequence; text placed past the real audio (in the padding) is hallucinated."""
    limit = audio_s + 0.3
    complete: list[int] = []
    tail: list[int] = []
    last_end: float | None = None
    for token in tokens:
        if token < first_timestamp:
            tail.append(token)
            continue
        at = (token - first_timestamp) * 0.02
        if at > limit:
            return _Parsed(complete, tail, None)  # the tail reaches the end of the audio
        if tail:
            complete += tail
            tail = []
            last_end = at
    if tail and last_end is not None and audio_s - last_end >= _RESUME_MIN_S:
        return _Parsed(complete, tail, last_end)
    return _Parsed(complete, tail, None)


class _PcmBuffer:
    """Append-only int16 audio; views stay valid because samples are never overwritten."""

    def __init__(self) -> None:
        self._data = np.zeros(4 * SPEECH_RATE, np.int16)
        self._start = 0  # absolute index of self._data[0]
        self._end = 0

    def append(self, pcm: Pcm) -> None:
        used = self._end - self._start
        if used + len(pcm) > len(self._data):
            grown = np.zeros(max(2 * len(self._data), used + len(pcm)), np.int16)
            grown[:used] = self._data[:used]
            self._data = grown  # the old array lives on in any view taken of it
        self._data[used:used + len(pcm)] = pcm
        self._end += len(pcm)

    def view(self, start: int, end: int) -> Pcm:
        return self._data[start - self._start:end - self._start]

    def forget_before(self, start: int) -> None:
        self._data = self._data[start - self._start:].copy()
        self._start = start


def _quietest_frame(pcm: Pcm) -> int:
    frames = pcm[:len(pcm) // _FRAME * _FRAME].astype(np.float64).reshape(-1, _FRAME)
    return int(np.argmin((frames**2).mean(axis=1))) * _FRAME + _FRAME // 2


@dataclass(eq=False, slots=True)
class _PartialPass:
    """A partial decode the source owns (so a final may take it over), with the window it covers."""

    window_start: int
    task: asyncio.Task[Heard | None]
    started: bool = False  # set from the worker thread when the decode begins


class _WhisperSource:
    """One utterance's audio, cut into frozen segments and the current window.

    A final reuses the last partial when nothing loud was pushed after that partial's snapshot: the words
    are the same, and only their grounding (one alignment, ~10 ms) is left to do instead of a whole pass
    (~100-200 ms). It does so only once that partial has begun to run: one still queued (behind other
    callers' partials, at the background lane's low priority) is withdrawn and the final decoded afresh."""

    def __init__(self, asr: WhisperAsr) -> None:
        self._asr = asr
        self._key = object()
        self._buffer = _PcmBuffer()
        self._window_start = 0
        self._segments: list[asyncio.Task[str]] = []
        self._loud_from: int | None = None  # where the current window's first loud push starts
        self._loud_until = 0  # end of the last loud push
        self._partial_until = 0  # end of the last partial request
        self._last_pass: _PartialPass | None = None
        self._passes: set[asyncio.Task[Heard | None]] = set()

    def push(self, pcm: Pcm, end: int) -> None:
        self._buffer.append(pcm)
        if rms(pcm) >= self._asr.silence_rms:
            self._loud_until = end
            if self._loud_from is None:
                self._loud_from = end - len(pcm)
        if end - self._window_start > self._asr.max_window:
            self._cut(end)

    def request(self, end: int, priority: Priority) -> Decode | None:
        segments = tuple(self._segments)
        if priority is Priority.FINAL:
            reused = self._reusable()
            if reused is None and self._last_pass is not None:
                self._last_pass.task.cancel()  # the final covers its audio (a pass already running goes on)
            self._last_pass = None
            window = self._loud_window(end)
            return functools.partial(self._final, window, segments, reused)
        # Silence added since the last partial cannot change the text: spare the CPU (and a final arriving
        # in that silence does not wait behind a useless pass).
        if self._loud_until <= self._partial_until:
            return None
        self._partial_until = end
        window = self._loud_window(end)
        if window is None:
            return functools.partial(self._joined, Heard("", ""), segments)
        self._last_pass = self._start_partial(window, priority)
        return functools.partial(self._partial, self._last_pass.task, segments)

    async def aclose(self) -> None:
        for task in (*self._segments, *self._passes):
            task.cancel()
        await asyncio.gather(*self._segments, *self._passes, return_exceptions=True)

    def _loud_window(self, end: int) -> Pcm | None:
        loud = self._loud_from is not None and self._loud_from < end
        return self._buffer.view(self._window_start, end) if loud else None

    def _reusable(self) -> _PartialPass | None:
        last = self._last_pass
        if last is None or last.window_start != self._window_start or self._loud_until > self._partial_until:
            return None
        if last.task.done():
            return last if not last.task.cancelled() and last.task.exception() is None else None
        return last if last.started else None

    def _start_partial(self, window: Pcm, priority: Priority) -> _PartialPass:
        engine = self._asr.partial_engine if priority is Priority.PARTIAL else self._asr.engine

        def decode() -> Heard:
            run.started = True
            return engine.hear(window)

        async def decoded() -> Heard | None:
            try:  # a newer partial of this utterance replaces one still queued
                return await self._asr.compute.run(priority, decode, key=self._key)
            except Superseded:
                return None

        run = _PartialPass(self._window_start, asyncio.get_running_loop().create_task(decoded()))
        self._passes.add(run.task)
        run.task.add_done_callback(self._pass_done)
        return run

    def _pass_done(self, task: asyncio.Task[Heard | None]) -> None:
        self._passes.discard(task)
        if not task.cancelled():
            task.exception()  # (retrieved: the decode that awaits it reports it, if one still does)

    async def _partial(self, task: asyncio.Task[Heard | None], segments: tuple[asyncio.Task[str], ...]) -> Heard | None:
        heard = await asyncio.shield(task)  # (a final may take the pass over: cancelling this must not stop it)
        return None if heard is None else await self._joined(heard, segments)

    async def _final(self, window: Pcm | None, segments: tuple[asyncio.Task[str], ...],
                     reused: _PartialPass | None) -> Heard:
        heard = await reused.task if reused is not None else None
        if heard is not None:
            heard = await self._asr.compute.run(Priority.FINAL, functools.partial(self._asr.engine.ground, heard))
        elif window is not None and len(window):
            decode = functools.partial(self._asr.engine.hear, window, ground=True)  # only a turn's end reads it
            heard = await self._asr.compute.run(Priority.FINAL, decode)
        return await self._joined(heard or Heard("", ""), segments)

    @staticmethod
    async def _joined(heard: Heard, segments: tuple[asyncio.Task[str], ...]) -> Heard:
        """`heard` after the text of the frozen segments before its window."""
        # shield: a superseded or cancelled request must not cancel a segment other requests share.
        head = [await asyncio.shield(segment) for segment in segments]

        def joined(tail: str) -> str:
            return " ".join(part for part in (*head, tail) if part)

        return Heard(joined(heard.text), None if heard.grounded is None else joined(heard.grounded))

    def _cut(self, end: int) -> None:
        search_start = max(self._window_start, end - 3 * SPEECH_RATE)
        cut = search_start + _quietest_frame(self._buffer.view(search_start, end))
        window = self._loud_window(cut)
        self._segments.append(asyncio.get_running_loop().create_task(self._segment(window)))
        if self._loud_from is not None:
            self._loud_from = max(self._loud_from, cut)
        self._window_start = cut
        self._buffer.forget_before(cut)

    async def _segment(self, window: Pcm | None) -> str:
        if window is None:
            return ""
        heard = await self._asr.compute.run(Priority.FINAL, functools.partial(self._asr.engine.hear, window))
        return heard.text


class WhisperStream(DecodeStream):
    """One utterance on the shared model; cheap to create, one per utterance."""

    def __init__(self, asr: WhisperAsr) -> None:
        super().__init__(PROVIDER, _WhisperSource(asr), asr.timing)


class WhisperAsr:
    """Streaming Whisper (tiny.en, or base); `stream()` opens one utterance. `partial_engine` (default:
    `engine`) decodes the partials."""

    name = "whisper-tiny.en"

    def __init__(self, engine: WindowDecoder, compute: JobRunner, *, partial_engine: WindowDecoder | None = None,
                 partial_interval_ms: int = 320, first_partial_ms: int = 160, timeout_s: float = 10.0,
                 max_window_s: float = 25.0,
                 silence_rms: float = 100.0) -> None:
        self.engine = engine
        self.partial_engine = partial_engine or engine
        self.compute = compute
        self.timing = StreamTiming(partial_interval_ms * SPEECH_RATE // 1000, timeout_s, partial_pressure(compute),
                                   first_partial_ms * SPEECH_RATE // 1000)
        self.max_window = int(max_window_s * SPEECH_RATE)
        # Pushes quieter than this (RMS, int16; 100 is about -50 dBFS) never reach the model.
        self.silence_rms = silence_rms

    def stream(self) -> WhisperStream:
        return WhisperStream(self)


def load(settings: Settings, compute: InferenceScheduler, size: WhisperSize = "tiny.en") -> WhisperAsr:
    """Load and warm the model once per process (its runtime keeps it)."""
    model = whisper_model(size)
    model_dir = str(model.path)
    finals = WhisperEngine(model_dir, threads=compute.lane_threads(Priority.FINAL), language=model.language)
    # Built in the background lane: CTranslate2's threads inherit its lower OS priority.
    partials = compute.call(Priority.PARTIAL, lambda: WhisperEngine(
        model_dir, threads=compute.lane_threads(Priority.PARTIAL), language=model.language))
    for engine in (finals, partials):
        engine.warm()
    asr = WhisperAsr(finals, compute, partial_engine=partials, partial_interval_ms=settings.asr_partial_interval_ms,
                     first_partial_ms=settings.asr_first_partial_ms, timeout_s=settings.asr_timeout_s)
    asr.name = model.name
    return asr


def load_base(settings: Settings, compute: InferenceScheduler) -> WhisperAsr:
    return load(settings, compute, "base")
