"""Local agreement: the part of a re-decoded hypothesis that later hypotheses are not expected to change.

The stable prefix is the longest word prefix on which the last two consecutive hypotheses agree, compared
without case or punctuation. Once published it never shrinks within an utterance: if a later hypothesis
disagrees inside it, the published words are kept at the head of the text. Only a final resets it.
"""

from __future__ import annotations


def _norm(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum() or ch == "'")


def agreed_words(first: list[str], second: list[str]) -> int:
    """How many leading words the two word lists share, ignoring case and punctuation."""
    count = 0
    for a, b in zip(first, second, strict=False):
        if _norm(a) != _norm(b):
            break
        count += 1
    return count


class StablePrefix:
    """Tracks one utterance's stable prefix over successive partial hypotheses."""

    def __init__(self) -> None:
        self._stable = 0
        self._published: list[str] = []
        self._previous: list[str] | None = None

    @property
    def stable_words(self) -> int:
        return self._stable

    def update(self, hypothesis: str) -> tuple[str, str]:
        """Feed the next partial hypothesis; returns (text, stable_text), stable_text a prefix of text."""
        words = hypothesis.split()
        if agreed_words(self._published, words) < self._stable:
            # The hypothesis contradicts published words: keep them, and let it confirm nothing new.
            words = self._published + words[self._stable:]
        elif self._previous is not None:
            self._stable = max(self._stable, agreed_words(self._previous, words))
        self._previous = words
        self._published = words[:self._stable]
        return " ".join(words), " ".join(self._published)

    def finalize(self, text: str) -> None:
        """A final says what the utterance so far is; later partials agree against it afresh."""
        self._stable = 0
        self._published = []
        self._previous = text.split()
