"""Speech over a playing reply, and what it turns out to be. Pure.

The reply pauses the moment the caller makes a sound (the turn policy does that). Then the caller's words
decide, as they arrive:

    backchannel    "mm-hmm", "yeah", "I see", or a hum decoded as nothing: the reply resumes where it paused;
                   also any sound shorter than `short_ms` with no word that stops a speaker in it ("wait",
                   "no", "what", a question): on a short sound the recognizer guesses ("mhm" can come out
                   as "and I can"), and a listener's short sounds are acknowledgements far more often
    continuation   the caller goes on with the utterance the reply answers, which had been taken as over at
                   a pause: the reply is dropped and both parts are answered as one
    interruption   anything else (more words, a question, "wait", "no", speech that goes on past
                   `max_ms`): the reply is cut, and what the caller says is the next turn

Continuation is only possible shortly after that utterance ended (the policy's rejoin window), and is
chosen when that utterance sounds unfinished ("I'd like a table for") or the new words start where no
sentence can ("...for two people", "...times eight"), and they do not open a new one ("Thanks, that's all");
and whatever the words, when the caller went on at once (`same_utterance`: within `same_utterance_ms` of
their last word, the pause between two sentences of one utterance: "Thanks, that's all for now. |
Goodbye!"): one utterance gets one reply, and its second sentence is neither an acknowledgement of the
begun reply nor a turn answered apart (only a plain acknowledgement, "mm-hmm", is still one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from alice_voice.conversation import events as ev
from alice_voice.conversation.policy.replies import Reply
from alice_voice.conversation.policy.utterance import Rejoinable
from alice_voice.conversation.policy.words import (
    goes_on,
    interrupts,
    is_backchannel,
    opens_anew,
    sounds_unfinished,
    words,
)

_MAX_WORDS_PER_S = 8.0  # beyond the fastest speech (~6 words a second in bursts)


class Verdict(Enum):
    PENDING = "pending"
    BACKCHANNEL = "backchannel"
    CONTINUATION = "continuation"
    INTERRUPTION = "interruption"


@dataclass(frozen=True, slots=True)
class OverlapRules:
    enabled: bool = True
    max_ms: int = 1500  # speech over a reply longer than this is never a backchannel
    short_ms: int = 700  # ... and shorter than this, one unless a word in it interrupts
    phrases: tuple[str, ...] = ()  # acknowledgements beyond the built-in ones
    max_words: int = 3


@dataclass
class Overlap:
    """One stretch of speech over a paused reply. `before`: the utterance it may continue, if it may."""

    first_arrival: float
    rules: OverlapRules
    before: str | None = None
    same_utterance: bool = False  # the caller went on at once after `before`: one utterance
    text: str = field(default="")

    def heard_words(self, text: str, heard_ms: float) -> Verdict:
        """The settled words of a partial transcript, `heard_ms` after the sound began: a word that
        interrupts, or more words than an acknowledgement has, decide it at once."""
        text = _as_heard(text, heard_ms)
        self.text = text
        if interrupts(text) or len(words(text)) > self.rules.max_words:
            return self._not_a_backchannel()
        return Verdict.PENDING

    def still_speaking(self, arrival: float) -> Verdict:
        if (arrival - self.first_arrival) * 1000 > self.rules.max_ms:
            return self._not_a_backchannel()
        return Verdict.PENDING

    def final(self, text: str, spoke_ms: float) -> Verdict:
        """All it said (`spoke_ms` long)."""
        text = _as_heard(text, spoke_ms)
        self.text = text
        if is_backchannel(text, self.rules.phrases, self.rules.max_words):
            return Verdict.BACKCHANNEL
        if self._continues():
            return Verdict.CONTINUATION
        short = spoke_ms <= self.rules.short_ms and len(words(text)) <= self.rules.max_words
        if short and not interrupts(text):
            return Verdict.BACKCHANNEL
        return Verdict.INTERRUPTION

    def _not_a_backchannel(self) -> Verdict:
        return Verdict.CONTINUATION if self._continues() else Verdict.INTERRUPTION

    def _continues(self) -> bool:
        if self.before is None:
            return False
        if self.same_utterance:
            return True
        if opens_anew(self.text):
            return False
        return sounds_unfinished(self.before) or goes_on(self.text)


@dataclass
class TalkOver:
    """One stretch of the caller's speech over a paused reply, everything about it, until its words say
    what it is. If it may continue the utterance before (`rejoin`), it is decoded on with that utterance,
    in its stream (Whisper hears a sentence's second half far better with its first), and its own words are
    those after the first `skip`; otherwise in a stream of its own, from `first_frame`."""

    judge: Overlap
    reply: Reply  # the reply talked over
    rejoin: Rejoinable | None
    rejoinable_before: Rejoinable | None  # what could be continued before it began (kept on a backchannel)
    first_frame: int
    skip: int = 0
    held_partial: ev.TranscriptPartial | None = None  # shown once it is known not to be an acknowledgement

    def own_words(self, text: str) -> str:
        """What the caller said over the reply, without the utterance before when decoded with it."""
        return " ".join(text.split()[self.skip:]) if self.skip else text


def _as_heard(text: str, ms: float) -> str:
    """The words, unless there are more than a sound `ms` long could hold: those the recognizer made up
    (Whisper read a lone 280 ms "yeah" as "It's not a good way to get it."), and the sound counts as one
    nobody made out."""
    return "" if len(words(text)) > 1 + _MAX_WORDS_PER_S * ms / 1000 else text
