"""LocalAgent: real answers to what it can do offline, tolerant of recognizer output, streamed in deltas."""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction

import pytest

from alice_voice.config import Settings
from alice_voice.conversation.agents import Message, NoTools
from alice_voice.conversation.agents import local as local_agent
from alice_voice.conversation.agents.local import (
    CAPABILITIES,
    DIVISION_BY_ZERO,
    GOODBYE,
    JOKES,
    NOT_HEARD,
    NOTHING_TO_REPEAT,
    OFFLINE,
    THANKS,
    LocalAgent,
    year_words,
)
from alice_voice.conversation.agents.numbers import integer_words, number_words, ordinal_words, parse_number
from alice_voice.conversation.sentences import SentenceChunker

TUESDAY_MORNING = datetime(2026, 3, 3, 10, 30)


def agent_at(moment: datetime = TUESDAY_MORNING) -> LocalAgent:
    return LocalAgent(now=lambda: moment)


async def streamed(agent: LocalAgent, text: str, history: list[Message] | None = None) -> list[str]:
    return [delta async for delta in agent.respond(history or [], text, NoTools())]


@pytest.mark.parametrize(("heard", "expected"), [
    ("What is seven times eight?", "Seven times eight is fifty-six."),
    ("What is 7 times 8?", "Seven times eight is fifty-six."),
    ("what's 12 plus 30", "Twelve plus thirty is forty-two."),
    ("7 x 8", "Seven times eight is fifty-six."),
    ("7x8", "Seven times eight is fifty-six."),
    ("What is 7\u00d78?", "Seven times eight is fifty-six."),
    ("seven multiplied by eight", "Seven times eight is fifty-six."),
    ("100 divided by 4", "One hundred divided by four is twenty-five."),
    ("twelve over four", "Twelve divided by four is three."),
    ("nine minus twelve", "Nine minus twelve is negative three."),
    ("What is 9-12?", "Nine minus twelve is negative three."),
    ("what is negative four plus two", "Negative four plus two is negative two."),
    ("-3 times -3", "Negative three times negative three is nine."),
    ("Um, Alice, what's 3.5 times 2, please?", "Three point five times two is seven."),
    ("what is three point one four times two", "Three point one four times two is six point two eight."),
    ("what is 0.1 plus 0.2", "Zero point one plus zero point two is zero point three."),
    ("what is 10 divided by 3", "Ten divided by three is about three point three three."),
    ("what is 1 divided by 8", "One divided by eight is zero point one two five."),
    ("what's fifty-six divided by seven", "Fifty-six divided by seven is eight."),
    ("what is one hundred and five minus five", "One hundred five minus five is one hundred."),
    ("a thousand minus one", "One thousand minus one is nine hundred ninety-nine."),
    ("What is 1,000,000 times 1,000?", "One million times one thousand is one billion."),
    ("what is 2 plus 3 times 4", "Two plus three times four is fourteen."),
    ("WHAT IS TWENTY ONE TIMES TWO?!", "Twenty-one times two is forty-two."),
])
def test_arithmetic_is_answered_in_words(heard: str, expected: str) -> None:
    assert agent_at().reply([], heard) == expected


@pytest.mark.parametrize("heard", ["What is five divided by zero?", "8 / 0", "one over zero point zero"])
def test_division_by_zero_is_answered_politely(heard: str) -> None:
    assert agent_at().reply([], heard) == DIVISION_BY_ZERO


@pytest.mark.parametrize(("moment", "expected"), [
    (datetime(2026, 3, 3, 10, 30), "It's ten thirty in the morning."),
    (datetime(2026, 3, 3, 9, 5), "It's nine oh five in the morning."),
    (datetime(2026, 3, 3, 15, 0), "It's three o'clock in the afternoon."),
    (datetime(2026, 3, 3, 19, 45), "It's seven forty-five in the evening."),
    (datetime(2026, 3, 3, 23, 59), "It's eleven fifty-nine at night."),
    (datetime(2026, 3, 3, 0, 0), "It's midnight."),
    (datetime(2026, 3, 3, 12, 0), "It's twelve noon."),
    (datetime(2026, 3, 3, 0, 20), "It's twelve twenty in the morning."),
])
def test_time_is_read_from_the_injected_clock(moment: datetime, expected: str) -> None:
    for heard in ("What time is it?", "Hey Alice, what's the time?", "time please"):
        assert agent_at(moment).reply([], heard) == expected


@pytest.mark.parametrize("heard", ["What's the date today?", "what day is it", "What is today's date?",
                                   "which day of the week is it"])
def test_date_is_read_from_the_injected_clock(heard: str) -> None:
    assert agent_at().reply([], heard) == "Today is Tuesday, March third, twenty twenty-six."
    new_year = agent_at(datetime(2031, 1, 1, 8, 0)).reply([], heard)
    assert new_year == "Today is Wednesday, January first, twenty thirty-one."


@pytest.mark.parametrize(("year", "expected"), [
    (2026, "twenty twenty-six"), (2005, "two thousand five"), (2000, "two thousand"),
    (1999, "nineteen ninety-nine"), (1900, "nineteen hundred"), (1905, "nineteen oh five"),
])
def test_years_are_said_the_way_people_say_them(year: int, expected: str) -> None:
    assert year_words(year) == expected


@pytest.mark.parametrize(("heard", "expected"), [
    ("Hello there, how are you today?", "Hello! I'm doing well, thank you. How can I help?"),
    ("Good morning Alice.", "Good morning! How can I help?"),
    ("hi", "Hello! How can I help?"),
    ("Thank you very much.", THANKS),
    ("thanks", THANKS),
    ("What can you do?", CAPABILITIES),
    ("Who are you?", CAPABILITIES),
    ("Goodbye!", GOODBYE),
    ("Thanks, bye.", GOODBYE),
    ("Turn on the kitchen lights.", OFFLINE),
    ("What is the weather like tomorrow?", OFFLINE),
    ("How far away is the moon?", OFFLINE),
    ("Set a timer for ten minutes.", OFFLINE),
    ("How many times have I asked?", OFFLINE),
    ("", NOT_HEARD),
    ("Um... uh?", NOT_HEARD),
])
def test_intents(heard: str, expected: str) -> None:
    assert agent_at().reply([], heard) == expected


def test_jokes_rotate_through_the_conversation_without_repeating() -> None:
    agent = agent_at()
    history: list[Message] = []
    told = []
    for heard in ["Tell me a joke.", "Please tell me a short joke about computers.", "another joke",
                  "Say something funny", "make me laugh", "one more joke"]:
        joke = agent.reply(history, heard)
        told.append(joke)
        history += [Message("user", heard), Message("assistant", joke)]
    assert told == list(JOKES)
    assert agent.reply(history, "joke") == JOKES[0]


def test_repeat_says_the_last_thing_said_again() -> None:
    history = [Message("user", "What time is it?"), Message("assistant", "It's ten thirty in the morning."),
               Message("user", "Tell me a joke."), Message("assistant", JOKES[2]), Message("user", "what?")]
    agent = agent_at()
    for heard in ["Can you repeat that please?", "say that again", "Sorry, what did you say?", "come again"]:
        assert agent.reply(history, heard) == JOKES[2]
    assert agent.reply([*history, Message("assistant", "  ")], "repeat that") == JOKES[2]
    assert agent.reply([], "Repeat that.") == NOTHING_TO_REPEAT


@pytest.mark.asyncio
async def test_reply_streams_as_several_word_group_deltas() -> None:
    agent = agent_at()
    deltas = await streamed(agent, "What can you do?")
    assert len(deltas) > 3
    assert "".join(deltas) == CAPABILITIES
    assert all(delta.startswith(" ") for delta in deltas[1:])
    chunker = SentenceChunker()
    chunks = [chunk for delta in deltas for chunk in chunker.push(delta)] + chunker.flush()
    assert len(chunks) > 1
    assert " ".join(chunks) == CAPABILITIES


@pytest.mark.asyncio
async def test_short_reply_streams_whole() -> None:
    assert "".join(await streamed(agent_at(), "thanks")) == THANKS


@pytest.mark.asyncio
async def test_closing_the_stream_stops_it() -> None:
    stream = agent_at().respond([], "What can you do?", NoTools())
    first = await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    assert CAPABILITIES.startswith(first)
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


def test_load_returns_the_local_agent() -> None:
    agent = local_agent.load(Settings())
    assert isinstance(agent, LocalAgent)
    assert agent.name == "local"
    assert agent.reply([], "What is 2 plus 2?") == "Two plus two is four."


@pytest.mark.parametrize(("number", "expected"), [
    (0, "zero"), (13, "thirteen"), (40, "forty"), (56, "fifty-six"), (105, "one hundred five"),
    (999, "nine hundred ninety-nine"), (1001, "one thousand one"),
    (123456, "one hundred twenty-three thousand four hundred fifty-six"), (2_000_000, "two million"),
    (-3, "negative three"),
])
def test_integer_words(number: int, expected: str) -> None:
    assert integer_words(number) == expected


@pytest.mark.parametrize(("number", "expected"), [
    (1, "first"), (2, "second"), (3, "third"), (5, "fifth"), (12, "twelfth"), (20, "twentieth"),
    (21, "twenty-first"), (22, "twenty-second"), (30, "thirtieth"), (31, "thirty-first"),
])
def test_ordinal_words(number: int, expected: str) -> None:
    assert ordinal_words(number) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (Fraction(7, 2), ("three point five", True)),
    (Fraction(-7, 2), ("negative three point five", True)),
    (Fraction(2, 3), ("zero point six seven", False)),
    (Fraction(1, 3000), ("zero point zero zero zero three three", False)),
    (Fraction(1, 10**9), ("almost zero", False)),
    (Fraction(12345 * 10**14), ("one point two three times ten to the power of eighteen", False)),
])
def test_number_words(value: Fraction, expected: tuple[str, bool]) -> None:
    assert number_words(value) == expected


@pytest.mark.parametrize(("words", "value", "used"), [
    ("seven", 7, 1), ("fifty six", 56, 2), ("one hundred and five", 105, 4), ("a hundred", 100, 2),
    ("two thousand five hundred and twelve", 2512, 6), ("three point one four", Fraction(314, 100), 4),
    ("point five", Fraction(1, 2), 2), ("1,000", 1000, 1), ("3.5", Fraction(7, 2), 1),
    ("5 million", 5_000_000, 2), ("nineteen hundred", 1900, 2), ("one two", 1, 1), ("eleven five", 11, 1),
])
def test_parse_number(words: str, value: Fraction | int, used: int) -> None:
    assert parse_number(words.split(), 0) == (Fraction(value), used)


@pytest.mark.parametrize("words", ["and", "time", "", "point"])
def test_parse_number_rejects_non_numbers(words: str) -> None:
    assert parse_number(words.split(), 0) is None
