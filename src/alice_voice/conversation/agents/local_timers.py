"""Timers for the offline agent: "set a timer for ten minutes", "how long is left on my timer", "cancel the
pasta timer" read into calls of the built-in timer tools, and their results said back."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from alice_voice.conversation.agents.numbers import parse_number
from alice_voice.tools import ToolOutcome

_UNIT_SECONDS = {"day": 86400, "days": 86400, "hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600,
                 "minute": 60, "minutes": 60, "min": 60, "mins": 60, "second": 1, "seconds": 1, "sec": 1, "secs": 1}
_ARTICLES = {"a": 1, "an": 1, "one": 1}
_NOT_LABELS = frozenset({"a", "an", "the", "my", "new", "another", "this", "that", *_UNIT_SECONDS})
_SET = re.compile(r"\b(set|start|make|create|put on|add)\b.*\btimer\b|\btimer (for|of)\b|\bremind me in\b"
                  r"|\bcount ?down\b")
_CANCEL = re.compile(r"\b(cancel|stop|delete|remove|clear|kill|turn off)\b.*\btimers?\b")
_LIST = re.compile(r"\btimers?\b")
_LABEL = re.compile(r"\b(?:called|named|labell?ed)\s+(?:the\s+)?([a-z]+)|"
                    r"\b(?:a|an|the|my)\s+([a-z]+)\s+timer\b")


@dataclass(frozen=True, slots=True)
class TimerCall:
    tool: str
    arguments: dict[str, Any]


def timer_call(tokens: list[str]) -> TimerCall | None:
    """The timer tool a request asks for, or None if it is not about timers."""
    phrase = " ".join(tokens)
    seconds = duration_seconds(tokens)
    if _CANCEL.search(phrase):  # "cancel the pasta timer", "the ninety second timer", "all timers"
        label = _label(phrase)
        return TimerCall("cancel_timer", {"label": label} if label or not seconds else {"seconds": seconds})
    if _SET.search(phrase) and seconds:
        label = _label(phrase)
        return TimerCall("set_timer", {"seconds": seconds, **({"label": label} if label else {})})
    if _LIST.search(phrase):
        return TimerCall("list_timers", {})
    return None


def duration_seconds(tokens: list[str]) -> int:
    """Every "<number> <unit>" in the words, added up ("one hour and ten minutes"); "half an hour" too."""
    total, i = 0, 0
    while i < len(tokens):
        if tokens[i:i + 3] == ["half", "an", "hour"] or tokens[i:i + 3] == ["a", "half", "hour"]:
            total, i = total + 1800, i + 3
            continue
        parsed = (_ARTICLES[tokens[i]], i + 1) if tokens[i] in _ARTICLES else parse_number(tokens, i)
        if parsed is not None:
            value, end = parsed
            if end < len(tokens) and tokens[end] in _UNIT_SECONDS:
                total += round(float(value) * _UNIT_SECONDS[tokens[end]])
                i = end + 1
                continue
        i += 1
    return total


def _label(phrase: str) -> str:
    for match in _LABEL.finditer(phrase):
        label = match.group(1) or match.group(2)
        if label and not (set(label.split()) & _NOT_LABELS) and parse_number(label.split(), 0) is None:
            return label
    return ""


def said(outcome: ToolOutcome) -> str:
    """What the offline agent says about the call's outcome."""
    if outcome.ok:
        return f"Okay. {outcome.result}" if outcome.name == "set_timer" else outcome.result
    if outcome.outcome == "unknown":
        return "Sorry, timers aren't available here."
    return f"Sorry, {outcome.result.removeprefix('Error: ').rstrip('.')}."
