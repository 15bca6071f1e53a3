"""What the fake ASR servers "hear": one word per `word_ms` of audio, from a fixed list.

The words depend only on how much audio arrived, so a test computes the transcript it must get back
with `words_for(samples)` instead of hard-coding it.
"""

from __future__ import annotations

RATE = 16_000
WORD_MS = 200
VOCABULARY = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
              "kilo", "lima", "mike", "november", "oscar", "papa")


def word(index: int) -> str:
    return VOCABULARY[index % len(VOCABULARY)]


def word_samples(word_ms: int = WORD_MS) -> int:
    return RATE * word_ms // 1000


def words_for(samples: int, word_ms: int = WORD_MS) -> str:
    """The transcript of `samples` of 16 kHz audio: one word per whole `word_ms` heard."""
    return " ".join(word(i) for i in range(samples // word_samples(word_ms)))
