from __future__ import annotations

import numpy as np

from alice_voice.audio.trim import SilenceTrimmer

RATE = 24000


def tone(ms: int) -> np.ndarray:
    t = np.arange(RATE * ms // 1000)
    return (3000 * np.sin(2 * np.pi * 220 * t / RATE)).astype(np.int16)


def quiet(ms: int) -> np.ndarray:
    return np.zeros(RATE * ms // 1000, dtype=np.int16)


def ms(samples: np.ndarray) -> float:
    return len(samples) * 1000 / RATE


def feed(trimmer: SilenceTrimmer, pieces: list[np.ndarray], piece_samples: int = 1000) -> np.ndarray:
    """Push the audio in arbitrary small pieces, as a stream would arrive."""
    audio = np.concatenate(pieces)
    out = [trimmer.push(audio[i:i + piece_samples]) for i in range(0, len(audio), piece_samples)]
    return np.concatenate([*out, trimmer.end()])


def test_leading_silence_is_dropped_and_long_gaps_shortened() -> None:
    out = feed(SilenceTrimmer(RATE, lead_ms=20, gap_ms=200), [quiet(300), tone(500), quiet(750), tone(400), quiet(450)])
    first_sound = int(np.argmax(np.abs(out) > 100))
    assert ms(out[:first_sound]) <= 21  # (the sine starts at a zero crossing)
    loud = np.abs(out) > 100
    gaps = np.diff(np.flatnonzero(loud))
    assert 150 <= gaps.max() * 1000 / RATE <= 215  # the 750 ms pause became ~200 ms
    assert 900 - 20 <= ms(out) - ms(out[:first_sound]) <= 500 + 200 + 400 + 110 + 20


def test_short_pauses_inside_speech_are_untouched() -> None:
    speech = [tone(300), quiet(120), tone(300)]
    out = feed(SilenceTrimmer(RATE, lead_ms=0, gap_ms=200), speech)
    assert abs(ms(out) - (720 + 10)) <= 110  # only the end's tail rule applies


def test_all_silence_gives_nothing() -> None:
    assert len(feed(SilenceTrimmer(RATE), [quiet(1000)])) == 0
