"""What a transcript's words say about the turn, for the turn policy. Pure string rules, no model.

- `is_backchannel`: a short acknowledgement ("mm-hmm", "yeah", "okay", "I see") or a vocalisation the
  recognizer wrote as nothing or as a filler; said over a reply, it means "go on", not "stop".
- `sounds_unfinished`: the words stop where a sentence cannot ("a table for", "my name is", "four two"):
  a trailing article, preposition, conjunction, auxiliary or filler, an operator after a number ("seven
  times"), or a string of digits being read out.
- `opens_anew`: the words start a new utterance ("thanks", "what", "stop") rather than go on with the last.
- `goes_on`: the words start where a sentence cannot ("for two people"): they continue the last one.
- `interrupts`: a word that stops a speaker ("wait", "no", "sorry", "what"), or a question.

Recognizer text is normalised first: lower case, no punctuation, hyphens dropped ("Mm-hmm." -> "mmhmm").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_NOT_A_WORD = re.compile(r"[^a-z0-9' ]+")

FILLERS = frozenset({"uh", "um", "umm", "uhm", "er", "erm", "ah", "ahh", "eh", "hm", "hmm", "hmmm", "mm", "mmm",
                     "mmmm", "m"})
BACKCHANNEL_WORDS = frozenset({
    "mmhmm", "mhm", "mhmm", "uhhuh", "yeah", "yeh", "yep", "yup", "yes", "okay", "ok", "kay", "right", "sure",
    "oh", "wow", "ooh", "aha", "ahh", "ah", "cool", "nice", "alright", "exactly", "true", "indeed", "gotcha",
    "great", "fine", "totally", "absolutely", "uh", "um", "hm", "hmm", "mm", "mmm", "huh", "i", "see", "got",
    "it", "all", "that's", "makes", "sense", "interesting", "really", "good",
})
# Words that never end a sentence, so a pause after them is not the end of a turn.
_UNFINISHED = frozenset({
    "a", "an", "the", "my", "your", "his", "her", "our", "their", "its", "this", "that", "these", "those", "some",
    "any", "every", "each", "no", "of", "to", "for", "with", "in", "on", "at", "by", "from", "about", "into",
    "over", "under", "after", "before", "between", "through", "during", "without", "like", "than", "as",
    "and", "or", "but", "so", "because", "if", "when", "while", "although", "though", "unless", "until",
    "is", "are", "was", "were", "be", "been", "am", "i'm", "it's", "there's", "what's", "let's",
    "i'd", "i'll", "you're", "we're", "they're", "let", "want", "need", *FILLERS,
})
_NUMBER_WORDS = frozenset({"zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"})
# An operator after a number ("seven times", "3 point") waits for its operand; elsewhere the same word can
# end a sentence ("the best of times", "a good point").
_OPERATORS = frozenset({"plus", "minus", "times", "divided", "point"})
_NUMBERS = _NUMBER_WORDS | {"ten", "eleven", "twelve", "twenty", "thirty", "forty", "fifty", "sixty", "seventy",
                            "eighty", "ninety", "hundred", "thousand", "million"}
_OPENERS = frozenset({
    "thanks", "thank", "okay", "ok", "no", "yes", "yeah", "wait", "stop", "hello", "hi", "hey", "bye", "goodbye",
    "what", "what's", "how", "why", "when", "where", "who", "which", "can", "could", "would", "will", "do",
    "does", "is", "are", "please", "tell", "actually", "sorry", "never", "cancel", "forget", "alice", "hold",
    "set", "turn", "play", "let's", "i", "i'm", "i'd",
})
# Words that stop a speaker, whatever else the recognizer made of a short sound around them.
_INTERRUPTING = frozenset({
    "stop", "wait", "no", "nope", "hold", "hang", "sorry", "excuse", "pardon", "actually", "but", "what",
    "what's", "how", "why", "who", "where", "when", "which", "please", "hey", "alice", "cancel", "enough",
    "quiet", "shut", "repeat", "again", "uhuh",
})


def words(text: str) -> list[str]:
    return _NOT_A_WORD.sub(" ", text.lower().replace("-", "")).split()


def is_backchannel(text: str, phrases: Iterable[str] = (), max_words: int = 3) -> bool:
    """A short acknowledgement, or nothing but filler (what a hum or a breath decodes to)."""
    said = words(text)
    if not said or all(w in FILLERS for w in said):
        return True
    known = {" ".join(words(p)) for p in phrases} | set(BACKCHANNEL_WORDS)
    return len(said) <= max_words and (" ".join(said) in known or all(w in known for w in said))


def sounds_unfinished(text: str) -> bool:
    said = words(text)
    return bool(said) and (said[-1] in _UNFINISHED or _reading_digits(said) or _awaiting_operand(said))


def _awaiting_operand(said: list[str]) -> bool:
    return len(said) >= 2 and said[-1] in _OPERATORS and (said[-2] in _NUMBERS or said[-2].isdigit())


def _reading_digits(said: list[str]) -> bool:
    """"four two" or "4 2": digits read one by one may go on ("seven times eight" is one number each)."""
    def digit(word: str) -> bool:
        return word in _NUMBER_WORDS or (word.isdigit() and len(word) == 1)
    return len(said) >= 2 and digit(said[-1]) and digit(said[-2])


def interrupts(text: str) -> bool:
    """A word that stops a speaker ("wait", "no", "what", "sorry"), or a question."""
    return "?" in text or any(w in _INTERRUPTING for w in words(text))


def goes_on(text: str) -> bool:
    """The words start where a sentence cannot, so they continue one: "for two people", "times eight"."""
    said = words(text)
    return bool(said) and (said[0] in _UNFINISHED or said[0] in _OPERATORS) and said[0] not in FILLERS


def opens_anew(text: str) -> bool:
    said = words(text)
    return bool(said) and said[0] in _OPENERS
