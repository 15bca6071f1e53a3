"""The built-in tools: the time and date, arithmetic, and timers. Offline, instant, always there."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from alice_voice.tools.spec import ToolError, ToolSpec
from alice_voice.tools.timers import spoken_duration
from alice_voice.tools.tool import Tool, ToolContext

BUILTIN_TIMEOUT_S = 2.0
_MAX_EXPRESSION = 200
_MAX_POWER = 64
_MAX_BITS = 4096  # ~1200 digits: past this no one wants the number read out, and it would cost the loop


@dataclass(frozen=True, slots=True)
class FunctionTool:
    """A tool made of a spec and a plain function (the built-ins are instant: nothing to await)."""

    spec: ToolSpec
    function: Callable[[dict[str, Any], ToolContext], str]

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> str:
        return self.function(arguments, context)


# ---------- clock ----------
def _now(_: dict[str, Any], __: ToolContext) -> str:
    now = datetime.now().astimezone()
    return now.strftime("%A %d %B %Y, %H:%M, time zone %Z (UTC%z)")


# ---------- arithmetic ----------
_BINARY: dict[type[ast.operator], Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def evaluate(expression: str) -> Fraction:
    """+ - * / ** and parentheses over numbers, exactly (no names, calls or attributes: no eval)."""
    if len(expression) > _MAX_EXPRESSION:
        raise ToolError("the expression is too long")
    try:
        tree = ast.parse(expression.replace("^", "**").replace("\u00d7", "*").replace("\u00f7", "/"), mode="eval")
    except SyntaxError:
        raise ToolError(f"cannot read {expression!r} as arithmetic") from None
    return _value(tree.body)


def _value(node: ast.expr) -> Fraction:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _value(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        base, power = _value(node.left), _value(node.right)
        if power.denominator != 1 or abs(power) > _MAX_POWER:
            raise ToolError("only whole powers up to 64 are supported")
        if base == 0 and power < 0:
            raise ToolError("division by zero")
        if _bits(base) * abs(int(power)) > _MAX_BITS:
            raise ToolError("the result is too large to say")
        return base ** int(power)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Div) and right == 0:
            raise ToolError("division by zero")
        if _bits(left) + _bits(right) > _MAX_BITS:
            raise ToolError("the result is too large to say")
        return _BINARY[type(node.op)](left, right)
    raise ToolError("only numbers, + - * / ** and parentheses are allowed")


def _bits(value: Fraction) -> int:
    return max(value.numerator.bit_length(), value.denominator.bit_length())


def _calculate(arguments: dict[str, Any], _: ToolContext) -> str:
    value = evaluate(str(arguments["expression"]))
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.10g}"


# ---------- timers ----------
def _seconds(arguments: dict[str, Any]) -> float:
    return (float(arguments.get("hours", 0)) * 3600 + float(arguments.get("minutes", 0)) * 60
            + float(arguments.get("seconds", 0)))


def _set_timer(arguments: dict[str, Any], context: ToolContext) -> str:
    timer = context.timers.set(_seconds(arguments), str(arguments.get("label", "")))
    if timer.label:
        return f"The {timer.name} is set for {spoken_duration(timer.seconds)}."
    return f"A {timer.name} is set."


def _list_timers(_: dict[str, Any], context: ToolContext) -> str:
    timers = context.timers.active()
    if not timers:
        return "There are no timers."
    return " ".join(f"The {t.name} has {spoken_duration(context.timers.remaining_s(t)) or 'no time'} left."
                    for t in timers)


def _cancel_timer(arguments: dict[str, Any], context: ToolContext) -> str:
    cancelled = context.timers.cancel(str(arguments.get("label", "")), _seconds(arguments) or None)
    names = [f"the {t.name}" for t in cancelled]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{listed[0].upper()}{listed[1:]} {'is' if len(names) == 1 else 'are'} cancelled."


_DURATION = {"type": "number", "minimum": 0}
TIMER_LABEL = {"type": "string", "maxLength": 40,
               "description": "What the timer is for, as the user named it (e.g. 'pasta'); empty if unnamed."}

BUILTIN: tuple[Tool, ...] = (
    FunctionTool(ToolSpec("get_current_time", "The current local date, weekday and time.", read_only=True), _now),
    FunctionTool(ToolSpec(
        "calculate", "Exact arithmetic: + - * / ** and parentheses, e.g. '7 * 8' or '(3 + 4) / 2'.",
        {"type": "object", "properties": {"expression": {"type": "string", "maxLength": _MAX_EXPRESSION}},
         "required": ["expression"], "additionalProperties": False}, read_only=True), _calculate),
    FunctionTool(ToolSpec(
        "set_timer", "Start a timer in this call; the user is told when it is done. Give the duration in any "
                     "mix of hours, minutes and seconds.",
        {"type": "object", "properties": {"hours": _DURATION, "minutes": _DURATION, "seconds": _DURATION,
                                          "label": TIMER_LABEL},
         "anyOf": [{"required": ["hours"]}, {"required": ["minutes"]}, {"required": ["seconds"]}],
         "additionalProperties": False}), _set_timer),
    FunctionTool(ToolSpec("list_timers", "The timers running in this call and the time each has left.",
                          read_only=True), _list_timers),
    FunctionTool(ToolSpec(
        "cancel_timer", "Cancel the timer with this label, or of this duration; with neither, every timer.",
        {"type": "object", "properties": {"label": TIMER_LABEL, "hours": _DURATION, "minutes": _DURATION,
                                          "seconds": _DURATION}, "additionalProperties": False}), _cancel_timer),
)
