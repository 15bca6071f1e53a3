"""Control of a phone call, as tools: hang up, put the caller through to a person, read the keypad.

The tools say what is to happen; the session decides when. A call ends (hung up or transferred) once the
reply that asked for it has been heard whole, so the goodbye or the handover is never cut off mid-word;
a caller who talks over it keeps the call. They change things, so like every such tool they never run
for a turn the caller may still be in. A transfer goes only to a configured target (by its name), or to
any number when the deployment allows it: never to whatever number a caller dictates otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from alice_voice.config import phone_address
from alice_voice.tools.spec import ToolError, ToolSpec

CallEndReason = Literal["hung_up", "transferred"]
DIGIT_KEYS = "0123456789*#"
MAX_DIGITS = 32
MAX_DIGIT_WAIT_S = 30.0
CALL_TOOL_TIMEOUT_S = 90.0  # a digit collection waits for the caller: each key restarts its own timeout


@dataclass(frozen=True, slots=True)
class CallEnding:
    reason: CallEndReason
    target: str = ""  # a transfer's number (E.164) or SIP address


@dataclass(frozen=True, slots=True)
class DigitsWanted:
    max_digits: int
    finish_on_key: str  # "#", "*", or "" (only the count or the timeout ends it)
    timeout_s: float  # for the first key, and again after each


@dataclass(frozen=True, slots=True)
class LineAbilities:
    """What a session's phone line can do beyond hanging up."""

    transfer: bool


class CallControl(Protocol):
    """The session's phone call, as its tools see it."""

    @property
    def can_transfer(self) -> bool: ...

    def end_after_reply(self, ending: CallEnding) -> None:
        """End the call once the reply now being said has been heard (at once if nothing is being said)."""
        ...

    async def collect_digits(self, wanted: DigitsWanted) -> str:
        """The keys pressed, without the finishing key; "" if none came in time."""
        ...


@dataclass(frozen=True, slots=True)
class TransferTargets:
    """Who a caller may be put through to: `named` ("sales" -> "+15551230000"), and with `any_number`
    any number or SIP address the model gives."""

    named: Mapping[str, str] = field(default_factory=dict)
    any_number: bool = False  # (the settings have checked every named address)

    def resolve(self, target: str) -> str:
        wanted = target.strip().lower()
        for name, address in self.named.items():
            if name.lower() == wanted:
                return address
        if self.any_number and phone_address(target.strip()):
            return target.strip()
        known = ", ".join(self.named) or "none"
        raise ToolError(f"there is no transfer target called {target!r} (targets: {known})")


def _call(context_call: CallControl | None) -> CallControl:
    if context_call is None:
        raise ToolError("this conversation is not a phone call")
    return context_call


class _ContextCall(Protocol):
    @property
    def call(self) -> CallControl | None: ...


class EndCallTool:
    spec: ClassVar[ToolSpec] = ToolSpec(
        "end_call", "Hang up the phone call once this reply has been heard. Say your goodbye in this same "
                    "reply; use it when the caller is done ('that's all, bye').", phone_only=True)

    async def call(self, arguments: dict[str, Any], context: _ContextCall) -> str:
        _call(context.call).end_after_reply(CallEnding("hung_up"))
        return "The call ends once your goodbye has been heard."


@dataclass(frozen=True, slots=True)
class TransferCallTool:
    targets: TransferTargets

    @property
    def spec(self) -> ToolSpec:
        names = list(self.targets.named)
        target: dict[str, Any] = {"type": "string", "maxLength": 64,
                                  "description": "Who to put the caller through to"
                                                 + (f": one of {', '.join(names)}" if names else "")
                                                 + (" (or a phone number in E.164 form)" if self.targets.any_number
                                                    else "") + "."}
        if names and not self.targets.any_number:
            target["enum"] = names
        return ToolSpec(
            "transfer_call", "Put the caller through to a person. Tell them first, in this same reply, who you "
                             "are putting them through to; the transfer happens once that has been heard.",
            {"type": "object", "properties": {"target": target}, "required": ["target"],
             "additionalProperties": False}, phone_only=True)

    async def call(self, arguments: dict[str, Any], context: _ContextCall) -> str:
        call = _call(context.call)
        if not call.can_transfer:
            raise ToolError("transfers are not set up for this line")
        address = self.targets.resolve(str(arguments["target"]))
        call.end_after_reply(CallEnding("transferred", address))
        return f"The caller is put through to {arguments['target']} once your handover has been heard."


class CollectDigitsTool:
    spec: ClassVar[ToolSpec] = ToolSpec(
        "collect_digits", "Read digits the caller types on their phone's keypad (an account number, a menu "
                          "choice). Ask for them first in this same reply, e.g. 'enter your account number, "
                          "then the pound key'. Returns the digits, or says that none came.",
        {"type": "object", "properties": {
            "max_digits": {"type": "integer", "minimum": 1, "maximum": MAX_DIGITS},
            "finish_on_key": {"type": "string", "enum": ["#", "*", ""],
                              "description": "The key that ends the entry (default '#'); '' for none."},
            "timeout_s": {"type": "number", "minimum": 1, "maximum": MAX_DIGIT_WAIT_S,
                          "description": "How long to wait for each key (default 8)."}},
         "required": ["max_digits"], "additionalProperties": False},
        phone_only=True, filler=False)

    async def call(self, arguments: dict[str, Any], context: _ContextCall) -> str:
        wanted = DigitsWanted(int(arguments["max_digits"]), str(arguments.get("finish_on_key", "#")),
                              float(arguments.get("timeout_s", 8.0)))
        digits = await _call(context.call).collect_digits(wanted)
        return f"The caller entered {digits}." if digits else "The caller entered no digits in time."


def call_tools(targets: TransferTargets) -> tuple[EndCallTool | TransferCallTool | CollectDigitsTool, ...]:
    """The call-control tools a deployment offers: a transfer only when it has somewhere to send one."""
    transfer = (TransferCallTool(targets),) if targets.named or targets.any_number else ()
    return (EndCallTool(), *transfer, CollectDigitsTool())
