"""SentenceChunker: early, safe cuts, and the same chunks however the text is split into deltas."""

from __future__ import annotations

import random

import pytest

from alice_voice.conversation.sentences import SentenceChunker


def chunks_whole(text: str, **kwargs: int) -> list[str]:
    chunker = SentenceChunker(**kwargs)
    return chunker.push(text) + chunker.flush()


def chunks_by_char(text: str, **kwargs: int) -> list[str]:
    chunker = SentenceChunker(**kwargs)
    out = [chunk for char in text for chunk in chunker.push(char)]
    return out + chunker.flush()


def chunks_random(text: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    chunker = SentenceChunker()
    out: list[str] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + rng.randint(1, 9))
        out += chunker.push(text[start:end])
        start = end
    return out + chunker.flush()


CASES = [
    ("Sure. Seven times eight is fifty-six.", ["Sure.", "Seven times eight is fifty-six."]),
    ("Really? Yes! Okay.", ["Really?", "Yes!", "Okay."]),
    ("Pi is 3.14. Tau is 6.28.", ["Pi is 3.14.", "Tau is 6.28."]),
    ("It costs $4.50 today. Cheap.", ["It costs $4.50 today.", "Cheap."]),
    ("We have 1,000,000 users. Wow.", ["We have 1,000,000 users.", "Wow."]),
    ("Meet at 10:30 sharp. Bye.", ["Meet at 10:30 sharp.", "Bye."]),
    ("Dr. Smith and Mr. Jones met Mrs. Brown. They talked.",
     ["Dr. Smith and Mr. Jones met Mrs. Brown.", "They talked."]),
    ("Fruit, e.g. apples, i.e. red ones. Nice.", ["Fruit, e.g. apples, i.e. red ones.", "Nice."]),
    ("The U.S. economy grew. I live in the U.S. It is big.",
     ["The U.S. economy grew.", "I live in the U.S.", "It is big."]),
    ("Apples, pears, etc. are fruit. I like apples, pears, etc. Do you?",
     ["Apples, pears, etc. are fruit.", "I like apples, pears, etc.", "Do you?"]),
    ("Wait... let me think. Hmm\u2026 okay then. Done.", ["Wait... let me think.", "Hmm\u2026 okay then.", "Done."]),
    ("What...? Really?! Yes.", ["What...?", "Really?!", "Yes."]),
    ("He left... Then he came back.", ["He left...", "Then he came back."]),
    ("He said \"Hi.\" Then left. (Quietly.) End.", ["He said \"Hi.\"", "Then left.", "(Quietly.)", "End."]),
    ("J. R. R. Tolkien wrote it. Version 2.0 is out. Done.",
     ["J. R. R. Tolkien wrote it.", "Version 2.0 is out.", "Done."]),
    ("Visit example.com today. Thanks.", ["Visit example.com today.", "Thanks."]),
    ("Steps:\n1. Mix the flour.\n2. Bake it.", ["Steps:", "1. Mix the flour.", "2. Bake it."]),
    ("Line one\n\nLine two", ["Line one", "Line two"]),
    ("No. I don't think so. No. 5 is my pick.", ["No.", "I don't think so.", "No. 5 is my pick."]),
    ("See you at 9 a.m. tomorrow. Or at 10 a.m. Then lunch.",
     ["See you at 9 a.m. tomorrow.", "Or at 10 a.m.", "Then lunch."]),
    ("   ", []),
    ("", []),
    ("... !", []),
    ("no punctuation at all", ["no punctuation at all"]),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_whole_text_gives_the_expected_chunks(text: str, expected: list[str]) -> None:
    assert chunks_whole(text) == expected


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_character_by_character_gives_the_same_chunks(text: str, expected: list[str]) -> None:
    assert chunks_by_char(text) == expected


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize(("text", "expected"), CASES[:12])
def test_random_delta_splits_give_the_same_chunks(text: str, expected: list[str], seed: int) -> None:
    assert chunks_random(text, seed) == expected


CLAUSE_CASES = [
    ("Well, I think the answer, as far as I know, is yes. Then, again, no.",
     ["Well, I think the answer,", "as far as I know, is yes.", "Then, again, no."]),
    ("The first step of many; then the rest. Done.", ["The first step of many;", "then the rest.", "Done."]),
    ("Here is the whole plan: we go. Done.", ["Here is the whole plan:", "we go.", "Done."]),
    ("The most important step \u2014 breathing \u2014 comes first.",
     ["The most important step \u2014", "breathing \u2014 comes first."]),
    ("The most important step - breathing - comes first.",
     ["The most important step -", "breathing - comes first."]),
    ("Sure, I can do that.", ["Sure, I can do that."]),
    ("A well-known fifty-six item list here, yes.", ["A well-known fifty-six item list here,", "yes."]),
    ("The total was 1, 2, 3 and four, then five.", ["The total was 1,", "2, 3 and four, then five."]),
    ("Okay. Now, after the first sentence, commas never cut.",
     ["Okay.", "Now, after the first sentence, commas never cut."]),
]


@pytest.mark.parametrize(("text", "expected"), CLAUSE_CASES)
def test_first_chunk_may_be_a_clause_later_chunks_are_sentences(text: str, expected: list[str]) -> None:
    assert chunks_whole(text) == expected
    assert chunks_by_char(text) == expected


def test_min_clause_words_is_configurable() -> None:
    assert chunks_whole("Yes, of course.", min_clause_words=1) == ["Yes,", "of course."]
    assert chunks_whole("Well, I think the answer, is yes.", min_clause_words=10) == [
        "Well, I think the answer, is yes."]


def test_a_sentence_is_released_as_soon_as_the_next_character_proves_it() -> None:
    chunker = SentenceChunker()
    assert chunker.push("Hello there.") == []  # could still be "there.com" or "3.14"
    assert chunker.push(" ") == ["Hello there."]
    assert chunker.push("How are you?") == []
    assert chunker.push(" I") == ["How are you?"]


def test_an_ambiguous_abbreviation_waits_for_the_next_word() -> None:
    chunker = SentenceChunker()
    assert chunker.push("We like pears etc. ") == []
    assert chunker.push("Yes") == ["We like pears etc."]


def test_a_decimal_is_never_cut_even_when_the_point_ends_a_delta() -> None:
    chunker = SentenceChunker()
    assert chunker.push("Pi is 3.") == []
    assert chunker.push("14") == []
    assert chunker.push(". Next") == ["Pi is 3.14."]
    assert chunker.flush() == ["Next"]


def test_a_clause_is_released_once_the_space_after_the_comma_arrives() -> None:
    chunker = SentenceChunker()
    assert chunker.push("Seven times eight is fifty-six,") == []
    assert chunker.push(" which") == ["Seven times eight is fifty-six,"]


def test_flush_returns_the_rest_and_resets_for_a_new_reply() -> None:
    chunker = SentenceChunker()
    assert chunker.push("First one. And the rest") == ["First one."]
    assert chunker.flush() == ["And the rest"]
    assert chunker.flush() == []
    # A new reply may start with a clause again.
    assert chunker.push("Well, I think the answer, is yes.") == ["Well, I think the answer,"]
    assert chunker.flush() == ["is yes."]


def test_chunks_join_back_to_the_text() -> None:
    text = " ".join(text for text, _ in CASES + CLAUSE_CASES if text.strip(" .!"))
    chunks = chunks_by_char(text)
    assert " ".join(chunks).split() == text.split()
    assert len(chunks) > 30


def test_long_streams_are_processed_character_by_character() -> None:
    text = "Dr. Smith paid $4.50, e.g. at 10:30 a.m. in the U.S. Then he left... "
    chunks = chunks_by_char(text * 400)
    first = ["Dr. Smith paid $4.50,", "e.g. at 10:30 a.m. in the U.S.", "Then he left..."]
    later = ["Dr. Smith paid $4.50, e.g. at 10:30 a.m. in the U.S.", "Then he left..."]
    assert chunks == first + later * 399
