"""The offline agent's call control: what words ask for a transfer or a hang-up, when the call offers it."""

from __future__ import annotations

import pytest

from alice_voice.conversation.agents.local import normalize
from alice_voice.conversation.agents.local_calls import GOODBYE, phone_call
from alice_voice.tools.call_control import TransferTargets, call_tools

PHONE = [tool.spec for tool in call_tools(TransferTargets({"sales": "+15551230000", "billing": "+15551230001"}))]


@pytest.mark.parametrize(("words", "tool", "arguments", "saying"), [
    ("Put me through to billing, please.", "transfer_call", {"target": "billing"},
     "Of course. I'm putting you through to billing now."),
    ("Can I speak to a real person?", "transfer_call", {"target": "sales"},
     "Of course. I'm putting you through to sales now."),
    ("I'd like to talk to someone in sales.", "transfer_call", {"target": "sales"},
     "Of course. I'm putting you through to sales now."),
    ("That's all, goodbye.", "end_call", {}, GOODBYE),
    ("Okay bye!", "end_call", {}, GOODBYE),
    ("What time is it?", None, None, None),
])
def test_words_that_ask_for_call_control(words: str, tool: str | None, arguments: dict[str, str] | None,
                                         saying: str | None) -> None:
    request = phone_call(normalize(words), PHONE)
    if tool is None:
        assert request is None
    else:
        assert request is not None and (request.tool, request.arguments, request.saying) == (tool, arguments, saying)


def test_outside_a_phone_call_the_words_are_only_answered() -> None:
    assert phone_call(normalize("That's all, goodbye."), []) is None
    assert phone_call(normalize("Put me through to sales."), []) is None
