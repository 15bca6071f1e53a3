"""Streamed reply text -> speakable chunks, as early as is safe.

The first chunk of a reply may be a clause (cut at a comma, semicolon, colon or dash once it holds a
few words) so speech synthesis can start early; later chunks are whole sentences. A period only ends a
sentence when what follows proves it: numbers ("3.14", "$4.50", "10:30", "1,000"), abbreviations ("Dr.",
"e.g.", "U.S.", "etc." mid-sentence) and ellipses followed by a lower-case word never split. Every
decision depends only on the text seen so far and waits for more when the next characters matter, so any
split of the same text into deltas yields the same chunks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TERMINATORS = ".!?…"
_CLOSERS = "\"')]}\u201d\u2019\u00bb"
_OPENERS = "\"'([{\u201c\u2018\u00ab"
_CLAUSE_MARKS = ",;:"
_SPACED_DASHES = "-\u2013"  # hyphen, en dash
_EM_DASH = "\u2014"

# Followed by a name or an example: a period after these never ends a sentence.
_NEVER_FINAL = frozenset({
    "mr", "mrs", "ms", "mx", "dr", "prof", "rev", "hon", "st", "mt", "ft", "gen", "gov", "sen", "rep",
    "capt", "lt", "col", "sgt", "vs", "cf", "e.g", "i.e", "approx", "fig", "vol", "ch", "pp",
})
# These may end a sentence: split only when the next word starts with a capital letter.
_MAYBE_FINAL = frozenset({
    "etc", "inc", "ltd", "co", "corp", "jr", "sr", "est", "dept", "ave", "blvd", "rd", "no", "a.m", "p.m",
})
_DOTTED = re.compile(r"^(?:[a-z]\.)+[a-z]$")
_WORD = re.compile(r"\w")


class _Wait(Exception):
    """The text so far cannot decide this position: more characters are needed."""


@dataclass
class SentenceChunker:
    """One per reply. `push` takes text deltas and returns the chunks now safe to speak; `flush` the rest."""

    min_clause_words: int = 4
    _buffer: str = field(default="", init=False)
    _scan: int = field(default=0, init=False)
    _emitted: bool = field(default=False, init=False)

    def push(self, delta: str) -> list[str]:
        self._buffer += delta
        chunks: list[str] = []
        while (cut := self._find_cut()) is not None:
            chunk, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:].lstrip()
            self._scan = 0
            if _WORD.search(chunk):
                chunks.append(chunk)
                self._emitted = True
        return chunks

    def flush(self) -> list[str]:
        """Everything still buffered; the chunker is then ready for a new reply."""
        rest = self._buffer.strip()
        self._buffer, self._scan, self._emitted = "", 0, False
        return [rest] if _WORD.search(rest) else []

    def _find_cut(self) -> int | None:
        """Index just past the earliest boundary, or None (no boundary yet, or one still undecided)."""
        text = self._buffer
        i = self._scan
        try:
            while i < len(text):
                cut, i = self._boundary_at(text, i)
                if cut is not None:
                    return cut
        except _Wait:
            pass
        self._scan = i
        return None

    def _boundary_at(self, text: str, i: int) -> tuple[int | None, int]:
        """(cut, next index to examine) for the character at `i`; raises `_Wait` if undecidable yet."""
        char = text[i]
        if char == "\n":
            return i + 1, i + 1
        if char in _TERMINATORS:
            return _sentence_end(text, i)
        if not self._emitted and self._clause_mark(text, i):
            cut = i + 1
            return (cut, cut) if _word_count(text[:cut]) >= self.min_clause_words else (None, cut)
        return None, i + 1

    @staticmethod
    def _clause_mark(text: str, i: int) -> bool:
        char = text[i]
        if char == _EM_DASH:
            return True
        spaced_dash = char in _SPACED_DASHES and i > 0 and text[i - 1].isspace()
        if char not in _CLAUSE_MARKS and not spaced_dash:
            return False
        return _char_at(text, i + 1).isspace()


def _sentence_end(text: str, start: int) -> tuple[int | None, int]:
    end = start
    while _char_at(text, end) in _TERMINATORS:
        end += 1
    after = end
    while _char_at(text, after) in _CLOSERS:
        after += 1
    if not _char_at(text, after).isspace():
        return None, after
    run = text[start:end]
    if "?" in run or "!" in run:
        return after, after
    # An ellipsis is usually a pause inside a sentence; it ends one only when a capital follows.
    verdict = "maybe" if len(run) > 1 or "…" in run else _period_verdict(text, start)
    if verdict == "final" or (verdict == "maybe" and _next_word_char(text, after).isupper()):
        return after, after
    return None, after


def _period_verdict(text: str, period: int) -> str:
    """'final', 'never' or 'maybe' for a lone period followed by whitespace."""
    begin = period
    while begin > 0 and not text[begin - 1].isspace():
        begin -= 1
    token = text[begin:period].lstrip(_OPENERS).lower()
    if token in _NEVER_FINAL or (len(token) == 1 and token.isalpha()):
        return "never"
    if token.isdigit() and not text[:begin].strip():
        return "never"  # a list number such as "1. First"
    if token in _MAYBE_FINAL or _DOTTED.match(token):
        return "maybe"
    return "final"


def _char_at(text: str, index: int) -> str:
    if index >= len(text):
        raise _Wait
    return text[index]


def _next_word_char(text: str, index: int) -> str:
    while _char_at(text, index).isspace():
        index += 1
    return text[index]


def _word_count(text: str) -> int:
    return sum(1 for word in text.split() if _WORD.search(word))
