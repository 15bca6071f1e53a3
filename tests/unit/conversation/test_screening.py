"""Telling a person from an answering machine by the callee's first words, and leaving the message once
the machine has beeped or gone quiet (rules tables; the policy's part on the virtual clock in
session/test_phone_call.py)."""

from __future__ import annotations

import numpy as np
import pytest

from alice_voice.audio.beep import BeepDetector
from alice_voice.conversation.policy.screening import AnsweredBy, Due, Screening, ScreeningRules, judge
from speech_fixtures import tone

RULES = ScreeningRules(greeting="Hi, this is Alice.", voicemail="Please call us back.")


@pytest.mark.parametrize(("words", "speech_s", "answered_by"), [
    ("Hello?", 0.6, None),  # not yet: a person waits for an answer, a machine goes on
    ("Hello, this is Sam speaking.", 1.8, None),
    ("Hi, you've reached Sam. Leave a message.", 3.0, AnsweredBy.MACHINE),  # its words
    ("The person you are calling is not available.", 2.9, AnsweredBy.MACHINE),
    ("Please record your message after the tone.", 2.5, AnsweredBy.MACHINE),
    ("I can't come to the phone right now", 2.0, AnsweredBy.MACHINE),
    ("Hello, Sam here, I'm out walking the dog in the park", 4.4, AnsweredBy.MACHINE),  # its length
])
def test_what_words_say_of_who_answered(words: str, speech_s: float, answered_by: AnsweredBy | None) -> None:
    assert judge(words, speech_s, RULES) is answered_by


# (frame voiced?, arrival s, a turn's words ending at that frame or "")
Line = list[tuple[bool, float, str]]


@pytest.mark.parametrize(("line", "due", "verdict"), [
    ([(True, 0.0, ""), (True, 0.5, "Hello?"), (False, 1.2, ""), (False, 1.5, "")], (Due.GREETING, 1.5), "human"),
    ([(True, 0.0, ""), (True, 0.5, "Hello?"), (False, 1.4, "")], None, None),  # quiet 0.9 s only
    ([(False, 1.0, ""), (False, 2.9, ""), (False, 3.0, "")], (Due.GREETING, 3.0), "human"),  # silent: waiting
    ([(True, 0.0, ""), (True, 0.3, "Hi."), (False, 0.9, ""), (True, 1.0, ""),  # "Hi, | you've reached..."
      (True, 3.0, "You've reached Sam."), (False, 4.0, ""), (False, 4.5, "")], (Due.MESSAGE, 4.5), "machine"),
    ([(True, 0.0, ""), (True, 4.2, "Sam here I'm out with the dog"), (False, 5.0, ""), (False, 5.7, "")],
     (Due.MESSAGE, 5.7), "machine"),
])
def test_a_person_is_quiet_after_a_few_words_and_a_machine_goes_on(
        line: Line, due: tuple[Due, float] | None, verdict: str | None) -> None:
    screening = Screening(RULES, answered_at=0.0)
    happened = []
    for voiced, arrival, words in line:
        found = screening.heard(voiced, arrival)
        if found is not None:
            happened.append((found, arrival))
        if words:  # (a turn's words come once its frames have been heard)
            screening.turn(words)
    assert happened == ([due] if due else [])
    assert (screening.verdict.value if screening.verdict else None) == verdict


def test_a_greeting_waits_while_the_callee_is_in_a_turn() -> None:
    screening = Screening(RULES, answered_at=0.0)
    screening.heard(True, 0.5)
    screening.turn("Hello?")
    assert screening.heard(False, 2.0, idle=False) is None
    assert screening.heard(False, 2.1, idle=True) is Due.GREETING


def test_a_beep_makes_a_machine_and_is_the_message_s_cue() -> None:
    early = Screening(RULES, answered_at=0.0)
    assert early.beep() is False and early.verdict is AnsweredBy.MACHINE  # before its words were judged
    judged = Screening(RULES, answered_at=0.0)
    judged.turn("You've reached Sam.")
    assert judged.beep() is True


@pytest.mark.parametrize(("sound", "beeps"), [
    (np.concatenate([tone(1000, 400), np.zeros(320, np.int16)]), 1),
    (np.concatenate([tone(440, 200), np.zeros(320, np.int16)]), 1),
    (np.concatenate([tone(1000, 100), np.zeros(320, np.int16)]), 0),  # too short for a beep
    (np.concatenate([tone(4000, 400), np.zeros(320, np.int16)]), 0),  # past the band
    (np.concatenate([tone(1000, 400, level=100.0), np.zeros(320, np.int16)]), 0),  # line noise
    (np.random.default_rng(0).normal(0, 3000, 16_000).astype(np.int16), 0),  # noise is no tone
])
def test_a_beep_is_a_steady_pure_tone_said_when_it_ends(sound: np.ndarray, beeps: int) -> None:
    detector = BeepDetector()
    assert sum(detector.push(sound[i:i + 320]) for i in range(0, len(sound) - 319, 320)) == beeps
