"""What a transcript's words say, for the turn policy: acknowledgements, unfinished sentences, new starts."""

from __future__ import annotations

import pytest

from alice_voice.conversation.policy.overlap import Overlap, OverlapRules, Verdict
from alice_voice.conversation.policy.words import goes_on, is_backchannel, opens_anew, sounds_unfinished


@pytest.mark.parametrize("text", ["Mm-hmm.", "Uh-huh", "Yeah.", "Yep!", "Okay.", "OK", "Right.", "Sure.", "I see.",
                                  "Got it.", "Oh.", "Wow!", "Hmm", "", "...", "Um, uh", "Oh, okay.", "yeah yeah"])
def test_acknowledgements_and_sounds_decoded_as_nothing_are_backchannels(text: str) -> None:
    assert is_backchannel(text)


@pytest.mark.parametrize("text", ["Wait.", "No.", "Stop!", "What time is it?", "Uh-uh", "Yeah, but what about",
                                  "Tell me a joke", "okay okay okay okay"])
def test_anything_else_is_not(text: str) -> None:
    assert not is_backchannel(text)


def test_deployments_add_their_own_acknowledgements() -> None:
    assert not is_backchannel("Roger that.")
    assert is_backchannel("Roger that.", phrases=["roger that"])


@pytest.mark.parametrize(("text", "unfinished"), [
    ("I'd like a pizza with", True), ("The code is four two", True), ("The code is 4 2", True),
    ("What is 7 times 8?", False), ("What is seven times eight", False), ("My name is", True),
    ("Set a timer for", True), ("I want to", True), ("and um", True), ("Tell me a joke.", False),
    ("What time is it?", False), ("I would like to book a table", False), ("", False),
    ("What is seven times", True), ("Add 3 plus", True), ("It was the best of times.", False),
    ("That's a good point", False), ("I am thirty", False)])
def test_a_sentence_that_cannot_end_there_sounds_unfinished(text: str, unfinished: bool) -> None:
    assert sounds_unfinished(text) is unfinished


@pytest.mark.parametrize(("text", "on"), [("for two people", True), ("times eight", True), ("plus two", True),
                                          ("the lazy dog", True), ("Thanks, that's all", False), ("um yes", False),
                                          ("", False)])
def test_some_words_can_only_go_on_with_what_came_before(text: str, on: bool) -> None:
    assert goes_on(text) is on


@pytest.mark.parametrize(("text", "anew"), [("Thanks, that's all", True), ("What about tomorrow?", True),
                                            ("Stop", True), ("for two people", False), ("the lazy dog", False),
                                            ("John and I live in Boston", False), ("", False)])
def test_some_words_open_a_new_utterance(text: str, anew: bool) -> None:
    assert opens_anew(text) is anew


def test_an_overlap_decides_on_the_first_words_that_are_no_acknowledgement() -> None:
    rules = OverlapRules(max_ms=1000)
    overlap = Overlap(10.0, rules)
    assert overlap.heard_words("Yeah", 300) is Verdict.PENDING
    assert overlap.still_speaking(10.9) is Verdict.PENDING
    assert overlap.heard_words("and I can", 500) is Verdict.PENDING, "three words, none that interrupts: wait"
    assert overlap.heard_words("Yeah, but", 600) is Verdict.INTERRUPTION
    assert Overlap(10.0, rules).still_speaking(11.01) is Verdict.INTERRUPTION
    assert Overlap(10.0, rules).final("Okay.", 400) is Verdict.BACKCHANNEL
    # More words than the sound so far could hold are the recognizer's: they decide nothing yet.
    assert Overlap(0.0, rules).heard_words("It's not a good way", 200) is Verdict.PENDING
    assert Overlap(0.0, rules).heard_words("It's not a good way", 900) is Verdict.INTERRUPTION


@pytest.mark.parametrize(("before", "said", "verdict"), [
    ("Tell me a joke.", "Thanks, that's all for now.", Verdict.INTERRUPTION),
    ("Tell me a joke.", "about cats", Verdict.CONTINUATION),
    ("Tell me a joke.", "Kill me", Verdict.INTERRUPTION),
    ("I'd like a table for", "two people", Verdict.CONTINUATION),
    ("I'd like a table for", "What do you have?", Verdict.INTERRUPTION),  # the sentence was given up
    (None, "for two people", Verdict.INTERRUPTION),
])
def test_continuation_needs_a_sentence_to_continue_and_words_that_go_on_with_it(
        before: str | None, said: str, verdict: Verdict) -> None:
    assert Overlap(0.0, OverlapRules(), before).final(said, spoke_ms=900) is verdict


@pytest.mark.parametrize(("said", "spoke_ms", "verdict"), [
    ("and I can", 450, Verdict.BACKCHANNEL),  # what a short "mhm" can decode to
    ("Kill me.", 400, Verdict.BACKCHANNEL),
    ("No.", 300, Verdict.INTERRUPTION), ("Wait.", 350, Verdict.INTERRUPTION), ("Why?", 400, Verdict.INTERRUPTION),
    ("and I can", 900, Verdict.INTERRUPTION),  # too long for a sound nobody can make out
])
def test_a_short_sound_is_an_acknowledgement_unless_a_word_in_it_interrupts(said: str, spoke_ms: float,
                                                                          verdict: Verdict) -> None:
    assert Overlap(0.0, OverlapRules(short_ms=700)).final(said, spoke_ms) is verdict


@pytest.mark.parametrize(("said", "spoke_ms", "verdict"), [
    ("It's not a good way to get it.", 280, Verdict.BACKCHANNEL),  # Whisper on a lone "yeah"
    ("No, no, no, wait, stop.", 300, Verdict.BACKCHANNEL),  # five words in 300 ms: nobody said them
    ("No, no, wait.", 600, Verdict.INTERRUPTION),  # as fast as people go: taken at its word
    ("I did not ask for the weather at all", 1000, Verdict.INTERRUPTION),
])
def test_more_words_than_the_sound_could_hold_are_the_recognizer_s_invention(said: str, spoke_ms: float,
                                                                             verdict: Verdict) -> None:
    assert Overlap(0.0, OverlapRules(short_ms=700)).final(said, spoke_ms) is verdict
