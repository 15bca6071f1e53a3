"""Local agreement over successive partial hypotheses of one utterance."""

from __future__ import annotations

from alice_voice.speech.stable_prefix import StablePrefix, agreed_words


def feed(tracker: StablePrefix, *hypotheses: str) -> list[tuple[str, str]]:
    return [tracker.update(h) for h in hypotheses]


def test_agreement_ignores_case_and_punctuation() -> None:
    assert agreed_words(["What", "time,", "is"], ["what", "time", "is", "it?"]) == 3
    assert agreed_words(["Hello", "there."], ["hello,", "they're"]) == 1
    assert agreed_words([], ["anything"]) == 0
    assert agreed_words(["in", "five"], ["in", "Boston"]) == 1


def test_first_hypothesis_has_nothing_stable() -> None:
    assert StablePrefix().update("What time") == ("What time", "")


def test_stable_prefix_is_where_the_last_two_hypotheses_agree() -> None:
    results = feed(StablePrefix(), "What", "What time.", "What time is", "What time is it?")
    assert [stable for _, stable in results] == ["", "What", "What time", "What time is"]
    assert results[-1][0] == "What time is it?"


def test_stable_text_is_always_a_prefix_of_the_text() -> None:
    tracker = StablePrefix()
    for hypothesis in ["turn", "Turn on", "turn on the kitchen", "Turn on the kitchen lights.",
                       "Turn on the kitchen lights."]:
        text, stable = tracker.update(hypothesis)
        assert text.startswith(stable)


def test_stable_prefix_never_shrinks_when_a_later_hypothesis_disagrees() -> None:
    tracker = StablePrefix()
    feed(tracker, "in the morning", "in the morning please")
    assert tracker.stable_words == 3
    text, stable = tracker.update("in five minutes please")
    assert stable == "in the morning"
    # The published words are kept; the rest comes from the new hypothesis.
    assert text == "in the morning please"


def test_disagreement_after_the_stable_prefix_does_not_grow_it() -> None:
    tracker = StablePrefix()
    feed(tracker, "set a", "set a timer for ten")
    text, stable = tracker.update("set a time for ten minutes")
    assert (text, stable) == ("set a time for ten minutes", "set a")


def test_spelling_of_stable_words_follows_the_newest_hypothesis() -> None:
    tracker = StablePrefix()
    feed(tracker, "hello there", "Hello there.")
    text, stable = tracker.update("Hello there, how are you")
    assert stable == "Hello there,"
    assert text == "Hello there, how are you"


def test_final_resets_and_seeds_the_next_agreement() -> None:
    tracker = StablePrefix()
    feed(tracker, "what time", "what time is")
    tracker.finalize("What time is it?")
    assert tracker.stable_words == 0
    # A speculative final followed by more audio: the next partial agrees with the final's words.
    text, stable = tracker.update("What time is it in Tokyo")
    assert stable == "What time is it"
    assert text == "What time is it in Tokyo"


def test_final_may_contradict_the_published_prefix() -> None:
    tracker = StablePrefix()
    feed(tracker, "seven times", "seven times eight")
    tracker.finalize("Several times a day")
    text, stable = tracker.update("Several times a day now")
    assert stable == "Several times a day"
    assert text.startswith(stable)
