"""Call control for the offline agent, in a phone call: "put me through to a person" becomes a transfer
and "that's all, bye" a goodbye that hangs up, when the call offers those tools (a browser session does
not: its "bye" is only answered)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alice_voice.conversation.agents.local_timers import TimerCall
from alice_voice.tools import ToolSpec

_TRANSFER = re.compile(r"\b(put|get) me through\b|\btransfer me\b|\bconnect me\b|\breal person\b|\boperator\b"
                       r"|\b(speak|talk) (to|with) (a|an|the|someone|somebody|your)\b.*\b(person|human|someone"
                       r"|somebody|agent|representative|staff|team|desk|department)\b"
                       r"|\b(speak|talk) (to|with) (someone|somebody)\b")
_HANG_UP = re.compile(r"\bgood ?bye\b|\bbye\b|\bhang up\b|\bthat is all\b|\bthat is it\b|\bend (the|this) call\b")
GOODBYE = "Goodbye! Thanks for calling."


@dataclass(frozen=True, slots=True)
class PhoneCallRequest(TimerCall):
    saying: str  # said before the call is made (the handover, the goodbye)


def phone_call(tokens: list[str], specs: Sequence[ToolSpec]) -> PhoneCallRequest | None:
    """The call-control tool the words ask for, if the call offers it."""
    phrase = " ".join(tokens)
    offered = {spec.name: spec for spec in specs}
    if "transfer_call" in offered and _TRANSFER.search(phrase):
        target = _target(phrase, offered["transfer_call"])
        if target:
            return PhoneCallRequest("transfer_call", {"target": target},
                                    f"Of course. I'm putting you through to {target} now.")
    if "end_call" in offered and _HANG_UP.search(phrase):
        return PhoneCallRequest("end_call", {}, GOODBYE)
    return None


def _target(phrase: str, spec: ToolSpec) -> str:
    """The named target the caller mentions, else the first one configured."""
    names: list[str] = _enum(spec.parameters)
    for name in names:
        if name.lower() in phrase:
            return name
    return names[0] if names else ""


def _enum(parameters: dict[str, Any]) -> list[str]:
    target = parameters.get("properties", {}).get("target", {})
    return [str(name) for name in target.get("enum", [])]
