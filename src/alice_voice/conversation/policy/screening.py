"""Who answered an outbound call, when the provider did not say: a person or an answering machine. Pure.

The callee speaks first. A person says a word or two ("Hello?") and waits; a machine plays a greeting that
goes on, is long, or says what greetings say ("you've reached", "leave a message", "after the tone"). So
the callee's words are gathered, turn by turn, until they say "machine" (their words, their length, or a
beep), or until the callee has been quiet for `human_quiet_s` after speaking (or silent for `silent_s`
from the answer: their "Hello?" came before the line did): a person, who is then greeted. For a machine
the message waits until its beep has ended, or until it has been quiet for `quiet_s` (a machine without a
beep), and the call ends once the message has been heard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

_MACHINE_WORDS = re.compile(
    r"\b(leave (me |us )?(a |your )?(message|name|number)|after the (tone|beep)|at the (tone|beep)"
    r"|(not |un)available|can'?t (come to|take|get to) the (phone|call)|can'?t take your call"
    r"|voice ?mail|mailbox|you'?ve reached|you have reached|record your message|not here right now"
    r"|get back to you|return your call)\b", re.IGNORECASE)


class AnsweredBy(Enum):
    HUMAN = "human"
    MACHINE = "machine"


class Due(Enum):
    GREETING = "greeting"  # a person: quiet after a few words
    MESSAGE = "message"  # a machine: its beep has ended, or it has gone quiet


@dataclass(frozen=True, slots=True)
class ScreeningRules:
    greeting: str  # said to a person ("" : the person's words are answered like any turn)
    voicemail: str  # left on a machine
    machine_after_s: float = 4.0  # a greeting longer than this is a machine's
    human_quiet_s: float = 1.0  # quiet this long after a few words: a person, waiting for an answer
    silent_s: float = 3.0  # nothing at all this long after the answer: a person waiting (a machine speaks)
    quiet_s: float = 1.5  # a machine that has not beeped has been quiet this long: leave the message


def judge(words: str, speech_s: float, rules: ScreeningRules) -> AnsweredBy | None:
    """MACHINE if the words or their length say so; None: not yet known."""
    if speech_s >= rules.machine_after_s or _MACHINE_WORDS.search(words):
        return AnsweredBy.MACHINE
    return None


class Screening:
    def __init__(self, rules: ScreeningRules, answered_at: float) -> None:
        self.rules = rules
        self.answered_at = answered_at
        self.verdict: AnsweredBy | None = None
        self.beeped = False
        self.words: list[str] = []  # the callee's turns so far
        self._first_voice: float | None = None
        self._last_voice: float | None = None

    @property
    def awaiting_beep(self) -> bool:
        return self.verdict is AnsweredBy.MACHINE

    def beep(self) -> bool:
        """A beep ended: a machine's. True if the message is due now (its words were judged already)."""
        self.beeped = True
        if self.verdict is AnsweredBy.MACHINE:
            return True
        self.verdict = AnsweredBy.MACHINE
        return False

    def turn(self, words: str) -> AnsweredBy | None:
        """One more turn of the callee's; the verdict if it is now known."""
        self.words.append(words)
        if self.verdict is None and (self.beeped or judge(" ".join(self.words), self.speech_s, self.rules)):
            self.verdict = AnsweredBy.MACHINE
        return self.verdict

    @property
    def speech_s(self) -> float:
        if self._first_voice is None or self._last_voice is None:
            return 0.0
        return self._last_voice - self._first_voice

    def heard(self, voiced: bool, arrival: float, idle: bool = True) -> Due | None:
        """A frame of the line; what is due now, if anything (a greeting only while no turn of the callee's
        is under way: `idle`)."""
        if voiced:
            self._first_voice = self._first_voice if self._first_voice is not None else arrival
            self._last_voice = arrival
            return None
        if self._last_voice is None and arrival - self.answered_at >= self.rules.silent_s and idle:
            self.verdict = AnsweredBy.HUMAN
            return Due.GREETING
        if self._last_voice is None or not self.words:
            return None
        quiet = arrival - self._last_voice
        if self.verdict is AnsweredBy.MACHINE:
            return Due.MESSAGE if quiet >= self.rules.quiet_s else None
        if quiet >= self.rules.human_quiet_s and idle:
            self.verdict = AnsweredBy.HUMAN
            return Due.GREETING
        return None
