"""A phone call's control in a conversation, on the virtual clock: the call ends only once the reply that
asked for it has been heard whole, a caller who talks over it keeps the call, keys go to a digit collection
while one waits (else they are typed turns), and the call tools are offered in phone calls only."""

from __future__ import annotations

import json

import pytest

from alice_voice.conversation.policy import actions as act
from alice_voice.conversation.policy.screening import ScreeningRules
from alice_voice.conversation.session.ports import CallOpening
from alice_voice.tools import Toolbox
from alice_voice.tools.call_control import LineAbilities, TransferTargets, call_tools
from fakes.scripted import ScriptedAgent
from speech_fixtures import tone
from support.session_harness import SessionHarness
from support.virtual_time import VIRTUAL_TIME

pytestmark = [pytest.mark.asyncio, VIRTUAL_TIME]
GOODBYE = "Thanks for calling and have a lovely rest of your day goodbye"
PHONE = LineAbilities(transfer=True)


def phone_tools() -> Toolbox:
    return Toolbox((tool, 60.0) for tool in call_tools(TransferTargets({"sales": "+15551230000"})))


@pytest.mark.parametrize(("asked", "call", "ended", "transferred_to"), [
    ("bye", ("end_call", "{}"), ["hung_up"], []),
    ("sales please", ("transfer_call", json.dumps({"target": "sales"})), ["transferred"], ["+15551230000"]),
    ("sales please", ("transfer_call", json.dumps({"target": "billing"})), [], []),  # not a configured target
])
async def test_the_call_ends_once_the_reply_that_asked_has_been_heard(
        asked: str, call: tuple[str, str], ended: list[str], transferred_to: list[str]) -> None:
    agent = ScriptedAgent(replies={asked: GOODBYE}, tool_calls={asked: [call]})
    async with SessionHarness(agent=agent, tools=phone_tools(), phone_line=PHONE) as s:
        s.say(asked, 500)
        s.pause(300)
        await s.run_until_event("tts.started")
        assert s.port.ended == [], "not while the reply is being said"
        await s.run_until_event("tts.stopped", reason="done")
        await s.run(100)
        assert s.port.ended == ended and s.port.transferred_to == transferred_to
        if ended:  # the client is told why, and the policy ended it after the last frame went out
            assert s.types("session.ending")[-1:] == ["session.ending"]
            [end] = s.done(act.EndSession)
            assert end == act.EndSession(ended[0], "".join(transferred_to))


async def test_a_caller_who_talks_over_the_goodbye_keeps_the_call() -> None:
    agent = ScriptedAgent(replies={"bye": GOODBYE}, tool_calls={"bye": [("end_call", "{}")]})
    async with SessionHarness(agent=agent, tools=phone_tools(), phone_line=PHONE) as s:
        s.say("bye", 500)
        s.pause(300)
        await s.run_until_event("tts.started")
        await s.run(400)
        s.say("wait one more thing", 900)
        s.pause(1500)
        await s.run_until_event("tts.stopped", reason="barge_in")
        await s.run(3000)
        assert s.port.ended == []


async def test_keys_go_to_a_waiting_collection_and_otherwise_are_typed_turns() -> None:
    asked = json.dumps({"max_digits": 4, "finish_on_key": "#", "timeout_s": 5})
    agent = ScriptedAgent(tool_calls={"Pressed 9.": [("collect_digits", asked)],
                                      "Pressed 5.": [("collect_digits", asked)]})
    async with SessionHarness(agent=agent, tools=phone_tools(), phone_line=PHONE) as s:
        s.actor.press_key("9")  # no collection: a typed turn, whose reply reads the keypad
        await s.run_until(lambda: s.actor.keypad.collecting)
        for key in "12#":
            s.actor.press_key(key)
        await s.run_until_event("tts.stopped", reason="done")
        assert [o.result for o in agent.outcomes] == ["The caller entered 12."]
        s.actor.press_key("5")  # the collection is over: a turn again
        await s.run_until(lambda: len(agent.calls) == 2)
        await s.run_until(lambda: s.actor.keypad.collecting)
        await s.run(5200)  # no key within its timeout
        await s.run_until_event("tts.stopped", reason="done")
    assert [text for text, _ in agent.calls] == ["Pressed 9.", "Pressed 5."]
    assert agent.outcomes[-1].result == "The caller entered no digits in time."


@pytest.mark.parametrize(("phone_line", "offered"), [
    (PHONE, ["end_call", "transfer_call", "collect_digits"]),
    (None, []),
])
async def test_call_tools_are_offered_in_phone_calls_only(phone_line: LineAbilities | None,
                                                          offered: list[str]) -> None:
    seen: list[list[str]] = []

    class Listing(ScriptedAgent):
        async def respond(self, history, text, tools):  # type: ignore[no-untyped-def,override]
            seen.append([spec.name for spec in tools.specs])
            async for delta in super().respond(history, text, tools):
                yield delta

    async with SessionHarness(agent=Listing(), tools=phone_tools(), phone_line=phone_line) as s:
        s.actor.handle_text("hello")
        await s.run_until_event("tts.stopped", reason="done")
    assert seen == [offered]


async def test_a_call_tool_outside_a_phone_call_is_refused_in_words() -> None:
    agent = ScriptedAgent(tool_calls={"hang up": [("end_call", "{}")]})
    async with SessionHarness(agent=agent, tools=phone_tools()) as s:
        s.actor.handle_text("hang up")
        await s.run_until_event("tts.stopped", reason="done")
        assert s.port.ended == []
    assert agent.outcomes[0].result == "Error: this conversation is not a phone call"


VOICEMAIL = "Please call us back"
GREETING = "Hi this is Alice about your appointment"


@pytest.mark.parametrize(("opening", "callee", "said", "screened", "ended"), [
    # Twilio's detection said who it was: nothing to wait for
    ("human", [], GREETING, [], []),
    ("machine", [], VOICEMAIL, [], ["hung_up"]),
    # no detection: the callee's first words tell
    ("unknown", [("say", "hello", 500)], GREETING, ["human"], []),
    ("unknown", [], GREETING, ["human"], []),  # silent: a person waiting (their hello came before the line)
    ("unknown", [("say", "you have reached sam leave a message", 2500), ("beep", "", 300)], VOICEMAIL,
     ["machine"], ["hung_up"]),  # the message as the beep ends (the line is not yet quiet for 1.5 s)
    ("unknown", [("say", "sam here out walking the dog in the park today so", 4600)], VOICEMAIL,
     ["machine"], ["hung_up"]),  # no beep: the message once the line has been quiet
])
async def test_an_outbound_call_greets_a_person_and_leaves_a_machine_the_message(
        opening: str, callee: list[tuple[str, str, int]], said: str, screened: list[str], ended: list[str]) -> None:
    async with SessionHarness(tools=phone_tools(), phone_line=PHONE) as s:
        s.actor.begin_call(CallOpening(opening, VOICEMAIL, GREETING, "Remind them of the appointment."))  # type: ignore[arg-type]
        for kind, words, ms in callee:
            if kind == "say":
                s.say(words, ms)
                s.pause(400)
            else:
                s.sound(tone(1000, ms))
        s.pause(3000)
        await s.run_until(lambda: any(m.role == "assistant" for m in s.actor.history), max_ms=15_000)  # played out
        await s.run(200)
        assert [e["answered_by"] for e in s.port.events if e["type"] == "call.screened"] == screened
        history = s.actor.history
        assert history[0].role == "system" and history[0].content == "Remind them of the appointment."
        assert [m.content for m in history if m.role == "assistant"] == [said]
        assert s.port.ended == ended
        assert s.agent.calls == [], "no agent answered the callee's first words"
        if any(kind == "beep" for kind, _, _ in callee):
            beep_ended = (2500 + 400 + 300) / 1000
            [started] = [e["at"] for e in s.port.events if e["type"] == "tts.started"]
            # after the beep, and sooner than a line quiet for 1.5 s would give it (the verdict waits for the
            # end of the turn, which the scripted VAD, a loudness threshold, extends over the beep)
            assert beep_ended <= started < beep_ended + ScreeningRules("", "").quiet_s, started
