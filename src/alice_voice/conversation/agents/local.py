"""The embedded default agent: deterministic, instant and offline.

It answers what it can without a language model (time, date, arithmetic, greetings, thanks, jokes,
"repeat that", goodbye) and says honestly that it is offline otherwise. Input is recognizer output, so
matching ignores casing, punctuation and filler words; numbers in the reply are written as words so any
speech synthesizer reads them well.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from alice_voice.config import Settings
from alice_voice.conversation.agents import Message, TurnTools
from alice_voice.conversation.agents.local_calls import phone_call
from alice_voice.conversation.agents.local_timers import said, timer_call
from alice_voice.conversation.agents.numbers import integer_words, number_words, ordinal_words, parse_number

_TOKEN = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?|\.\d+|[a-z]+(?:'[a-z]+)?|[-+*/\u00d7\u00f7]")
_FILLERS = frozenset({"um", "umm", "uh", "uhh", "uhm", "er", "erm", "ah", "hmm", "hm", "mm", "please",
                      "alice"})
_CONTRACTIONS = {"what's": "what is", "it's": "it is", "that's": "that is", "how's": "how is",
                 "today's": "today", "who's": "who is", "i'm": "i am", "let's": "let us"}
_OPERATORS = {("plus",): "+", ("+",): "+", ("minus",): "-", ("-",): "-",
              ("times",): "*", ("x",): "*", ("*",): "*", ("\u00d7",): "*", ("multiplied", "by"): "*",
              ("divided", "by"): "/", ("over",): "/", ("/",): "/", ("\u00f7",): "/"}
_NEGATIVE = frozenset({"negative"})
_OPERATOR_WORDS = {"+": "plus", "-": "minus", "*": "times", "/": "divided by"}

_REPEAT = re.compile(r"\brepeat\b|\bsay (that|it) again\b|\bsay again\b|\bcome again\b|\bpardon\b"
                     r"|\bwhat did you (just )?say\b")
_TIME = re.compile(r"\bwhat time\b|\bthe time\b|\btime is it\b|\bcurrent time\b|^time$")
_DATE = re.compile(r"\bdate\b|\bwhat (day|year|month) is\b|\bwhat is today\b|\bwhich day\b|\bday is it\b"
                   r"|\bday of the week\b")
_JOKE = re.compile(r"\bjokes?\b|\bfunny\b|\bmake me laugh\b")
_HELP = re.compile(r"\bwhat (can|do) you do\b|\bwhat are you able\b|\bhelp\b|\bwho are you\b|\bwhat are you\b"
                   r"|\bwhat can i (ask|say)\b|\bwhat do you know\b")
_GOODBYE = re.compile(r"\bgood ?bye\b|\bbye\b|\bsee you\b|\bgood night\b|\bfarewell\b|\btalk to you later\b"
                      r"|\bthat is all\b")
_THANKS = re.compile(r"\bthanks?\b|\bthank you\b|\bcheers\b|\bappreciate it\b")
_GREETING = re.compile(r"\b(hello|hi|hey|hiya|howdy|greetings|good (morning|afternoon|evening))\b")
_HOW_ARE_YOU = re.compile(r"\bhow are you\b|\bhow is it going\b|\bhow are things\b")

JOKES = (
    "Why do programmers prefer dark mode? Because light attracts bugs.",
    "Why did the computer go to the doctor? It had a virus.",
    "Why was the computer cold? It left its Windows open.",
    "How many programmers does it take to change a light bulb? None, that's a hardware problem.",
    "Why did the robot go on vacation? It needed to recharge its batteries.",
    "I told my computer I needed a break. It said no problem, and went to sleep.",
)
NOT_HEARD = "Sorry, I didn't catch that."
NOTHING_TO_REPEAT = "I haven't said anything yet."
CAPABILITIES = ("I'm Alice, and right now I'm running offline. I can tell you the time and the date, "
                "do arithmetic like seven times eight, set timers, tell you a joke, or repeat what I just said.")
OFFLINE = ("I'm running offline, so I can't help with that. I can tell you the time or the date, "
           "do arithmetic, set a timer, or tell you a joke.")
GOODBYE = "Goodbye! Talk to you soon."
THANKS = "You're welcome!"
DIVISION_BY_ZERO = "You can't divide by zero, so there's no number I can give you for that."

_WORDS_PER_DELTA = 3
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class LocalAgent:
    """Fast-intent agent. Stateless: what it said before comes from `history`, so one instance serves all."""

    name = "local"

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or (lambda: datetime.now().astimezone())

    async def respond(self, history: Sequence[Message], text: str, tools: TurnTools) -> AsyncIterator[str]:
        tokens = normalize(text)
        timer = timer_call(tokens)
        call = phone_call(tokens, tools.specs)
        if timer is not None:  # the timer tools, like any agent's calls (a timer is set once the turn is sure)
            reply = said(await tools.call("local-1", timer.tool, json.dumps(timer.arguments)))
        elif call is not None:  # said first: the call ends once the reply, words and all, has been heard
            async for delta in _deltas(call.saying):
                yield delta
            outcome = await tools.call("local-1", call.tool, json.dumps(call.arguments))
            if not outcome.ok:
                async for delta in _deltas(" " + said(outcome)):
                    yield delta
            return
        else:
            reply = self.reply(history, text)
        async for delta in _deltas(reply):
            yield delta

    def reply(self, history: Sequence[Message], text: str) -> str:
        """The whole reply at once (what `respond` streams)."""
        tokens = normalize(text)
        if not tokens:
            return NOT_HEARD
        expression = find_expression(tokens)
        if expression is not None:
            return expression.answer()
        return self._intent_reply(history, " ".join(tokens))

    def _intent_reply(self, history: Sequence[Message], phrase: str) -> str:
        if _REPEAT.search(phrase):
            return _last_said(history) or NOTHING_TO_REPEAT
        if _TIME.search(phrase):
            return time_sentence(self._now())
        if _DATE.search(phrase):
            return date_sentence(self._now())
        if _JOKE.search(phrase):
            told = sum(1 for message in history if message.role == "assistant" and message.content in JOKES)
            return JOKES[told % len(JOKES)]
        if _HELP.search(phrase):
            return CAPABILITIES
        if _GOODBYE.search(phrase):
            return GOODBYE
        if _THANKS.search(phrase):
            return THANKS
        if _GREETING.search(phrase) or _HOW_ARE_YOU.search(phrase):
            return _greeting(phrase)
        return OFFLINE


async def _deltas(reply: str) -> AsyncIterator[str]:
    words = reply.split(" ")
    for start in range(0, len(words), _WORDS_PER_DELTA):
        group = " ".join(words[start:start + _WORDS_PER_DELTA])
        yield group if start == 0 else " " + group
        await asyncio.sleep(0)  # a real suspension point, so a consumer can cancel between deltas


def load(settings: Settings) -> LocalAgent:
    return LocalAgent()


def normalize(text: str) -> list[str]:
    """Lower-case tokens without punctuation, contractions spelled out and filler words dropped."""
    text = text.lower().replace("\u2019", "'").replace("\u2212", "-")
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)  # "fifty-six" is one number, not a subtraction
    tokens: list[str] = []
    for token in _TOKEN.findall(text):
        tokens.extend(_CONTRACTIONS.get(token, token).split())
    return [token for token in tokens if token not in _FILLERS]


def _last_said(history: Sequence[Message]) -> str | None:
    for message in reversed(history):
        if message.role == "assistant" and message.content.strip():
            return message.content.strip()
    return None


def _greeting(phrase: str) -> str:
    daypart = re.search(r"\bgood (morning|afternoon|evening)\b", phrase)
    opener = f"Good {daypart.group(1)}!" if daypart else "Hello!"
    if _HOW_ARE_YOU.search(phrase):
        return f"{opener} I'm doing well, thank you. How can I help?"
    return f"{opener} How can I help?"


# --- arithmetic ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Expression:
    """Operands and the binary operators between them, as heard."""

    operands: tuple[Fraction, ...]
    operators: tuple[str, ...]

    def spoken(self) -> str:
        parts = [number_words(self.operands[0])[0]]
        for operator, operand in zip(self.operators, self.operands[1:], strict=True):
            parts += [_OPERATOR_WORDS[operator], number_words(operand)[0]]
        return " ".join(parts)

    def value(self) -> Fraction:
        """Usual precedence: times and divided-by before plus and minus. Raises ZeroDivisionError."""
        sums = [self.operands[0]]
        signs: list[str] = []
        for operator, operand in zip(self.operators, self.operands[1:], strict=True):
            if operator == "*":
                sums[-1] *= operand
            elif operator == "/":
                sums[-1] /= operand
            else:
                sums.append(operand)
                signs.append(operator)
        total = sums[0]
        for sign, term in zip(signs, sums[1:], strict=True):
            total = total + term if sign == "+" else total - term
        return total

    def answer(self) -> str:
        try:
            result = self.value()
        except ZeroDivisionError:
            return DIVISION_BY_ZERO
        words, exact = number_words(result)
        spoken = self.spoken()
        return f"{spoken[0].upper()}{spoken[1:]} is {'' if exact else 'about '}{words}."


def find_expression(tokens: list[str]) -> Expression | None:
    """The first run of numbers joined by at least one operator ("7 x 8", "nine minus twelve")."""
    for start in range(len(tokens)):
        expression = _expression_at(tokens, start)
        if expression is not None:
            return expression
    return None


def _expression_at(tokens: list[str], start: int) -> Expression | None:
    first = _signed_number(tokens, start)
    if first is None:
        return None
    operands, operators, i = [first[0]], [], first[1]
    while (operator := _operator_at(tokens, i)) is not None:
        operand = _signed_number(tokens, operator[1])
        if operand is None:
            break
        operators.append(operator[0])
        operands.append(operand[0])
        i = operand[1]
    return Expression(tuple(operands), tuple(operators)) if operators else None


def _signed_number(tokens: list[str], start: int) -> tuple[Fraction, int] | None:
    sign, i = 1, start
    while i < len(tokens) and (tokens[i] in _NEGATIVE or tokens[i] in ("minus", "-")):
        sign, i = -sign, i + 1
    parsed = parse_number(tokens, i)
    return None if parsed is None else (sign * parsed[0], parsed[1])


def _operator_at(tokens: list[str], start: int) -> tuple[str, int] | None:
    for phrase, operator in _OPERATORS.items():
        if tuple(tokens[start:start + len(phrase)]) == phrase:
            return operator, start + len(phrase)
    return None


# --- time and date ------------------------------------------------------------------------------

def time_sentence(now: datetime) -> str:
    """"It's ten thirty in the morning." """
    hour, minute = now.hour, now.minute
    if minute == 0 and hour == 0:
        return "It's midnight."
    if minute == 0 and hour == 12:
        return "It's twelve noon."
    clock_hour = integer_words(hour % 12 or 12)
    if minute == 0:
        minutes = "o'clock"
    elif minute < 10:
        minutes = f"oh {integer_words(minute)}"
    else:
        minutes = integer_words(minute)
    return f"It's {clock_hour} {minutes} {_day_part(hour)}."


def _day_part(hour: int) -> str:
    if hour < 12:
        return "in the morning"
    if hour < 18:
        return "in the afternoon"
    return "in the evening" if hour < 21 else "at night"


def date_sentence(now: datetime) -> str:
    """"Today is Tuesday, March third, twenty twenty-six." """
    return (f"Today is {_WEEKDAYS[now.weekday()]}, {_MONTHS[now.month - 1]} {ordinal_words(now.day)}, "
            f"{year_words(now.year)}.")


def year_words(year: int) -> str:
    """2026 -> "twenty twenty-six", 2005 -> "two thousand five", 1900 -> "nineteen hundred"."""
    if 2000 <= year < 2010 or year < 1000:
        return integer_words(year)
    century, rest = divmod(year, 100)
    if rest == 0:
        return f"{integer_words(century)} hundred"
    rest_words = f"oh {integer_words(rest)}" if rest < 10 else integer_words(rest)
    return f"{integer_words(century)} {rest_words}"
