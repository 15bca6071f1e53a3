"""The turn policy's rules as a table: each row is one rule of its docstring (policy/turn_policy.py) — what
happened before (`given`), one more input (`when`), and the actions that input must bring, in order
(`then`; others may come between them) and must not (`never`). The policy is driven as the executor
would drive it, with no executor: frames in 32 ms steps, finals for the stream it opened, answers to its
end-of-turn questions, and playout marks for its replies.

A random walk over the same steps checks that every change of state is one `TRANSITIONS` draws.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from alice_voice.conversation.agents import Message
from alice_voice.conversation.policy import PolicyConfig, TurnPolicy, TurnState
from alice_voice.conversation.policy import actions as act
from alice_voice.conversation.policy import inputs as inp
from alice_voice.conversation.policy.endpointing import EndpointingConfig
from alice_voice.conversation.policy.idle import IdleRules
from alice_voice.conversation.policy.states import TRANSITIONS
from alice_voice.errors import ProviderError
from support.session_harness import COMPLETENESS

FRAME_S = 0.032
LOUD, QUIET = (4000.0,) * 4, (10.0,) * 4


def summary(action: act.Action) -> str:
    """An action as the table reads it."""
    match action:
        case act.Emit():
            event = action.event.to_dict()
            detail = event.get("state") or event.get("reason") or ""
            return f"emit {event['type']}" + (f" {detail}" if detail else "")
        case act.StartReply():
            kind = "said" if action.verbatim else "held" if action.held else "live"
            return f"start {kind} reply {action.reply_id}" + (" settled" if action.settled else "")
        case act.SettleReply():
            return f"settle reply {action.reply_id}"
        case act.CutReply():
            return f"cut reply {action.reply_id}: {action.reason}"
        case act.CommitReply():
            return f"commit reply {action.reply_id}"
        case act.Measure():
            return f"measure {action.name}"
        case act.SetState():
            return f"state {action.state}"
        case act.Report():
            return f"report {action.error.code}"
        case _:
            return type(action).__name__


@dataclass
class Conversation:
    """A TurnPolicy and the executor's side of it, scripted."""

    policy: TurnPolicy
    index: int = -1
    log: list[list[act.Action]] = field(default_factory=list)
    stream: int = 0
    pushed: int = 0  # samples pushed to the stream, as the executor's ASR stream counts them
    finals_asked: int | None = None  # samples pushed when the last final was asked for
    asked: int = 0  # the last end-of-turn question
    reply: int = 0  # the last reply asked for
    agents_asked: list[tuple[Message, ...]] = field(default_factory=list)

    @property
    def t(self) -> float:
        return 100.0 + (self.index + 1) * FRAME_S

    def send(self, item: inp.Input) -> list[act.Action]:
        actions = self.policy.handle(item)
        self.log.append(actions)
        for action in actions:
            if isinstance(action, act.OpenAsr):
                self.stream, self.pushed, self.finals_asked = action.stream, (action.end - action.start) * 512, None
            elif isinstance(action, act.FeedAsr):
                self.pushed += (action.end - action.start) * 512
            elif isinstance(action, act.FinishAsr):
                self.finals_asked = self.pushed
            elif isinstance(action, act.AskEndOfTurn):
                self.asked = action.ask_id
            elif isinstance(action, act.StartReply):
                self.reply = action.reply_id
                self.agents_asked.append(action.history)
        cuts = [a for a in actions if isinstance(a, act.CutReply)]
        for cut in cuts:  # the executor answers a cut at once: nothing of it heard unless a test says so
            actions = actions + self.send(inp.ReplyCut(cut.reply_id, False, "", self.t))
        return actions

    def frames(self, n: int, *, voiced: bool) -> list[act.Action]:
        out: list[act.Action] = []
        for _ in range(n):
            self.index += 1
            out += self.send(inp.Heard(self.index, self.t, 0.9 if voiced else 0.05, LOUD if voiced else QUIET,
                                       self.t))
        return out


Step = Callable[[Conversation], list[act.Action]]


def speak(frames: int = 10) -> Step:
    return lambda c: c.frames(frames, voiced=True)


def pause(frames: int = 1) -> Step:
    return lambda c: c.frames(frames, voiced=False)


def final(text: str) -> Step:
    """The recognizer's final of everything pushed when the last final was asked for, scored by the
    completeness model as the executor scores it."""
    complete = COMPLETENESS.prob_complete(text) if text.strip() else None
    return lambda c: c.send(inp.TranscriptIn(c.stream, text, text, True, c.finals_asked or 0, c.t, complete))


def partial(text: str) -> Step:
    return lambda c: c.send(inp.TranscriptIn(c.stream, text, text, False, 0, c.t))


def model(prob: float) -> Step:
    return lambda c: c.send(inp.EndOfTurnAnswer(c.asked, prob, c.t))


def first_frame() -> Step:
    return lambda c: c.send(inp.PlayoutMark(c.reply, "first_frame", True, c.t))


def written(text: str) -> Step:
    return lambda c: c.send(inp.ReplyProgress(c.reply, "written", c.t, text))


def played_out() -> Step:
    return lambda c: c.send(inp.PlayoutMark(c.reply, "finished", True, c.t))


def typed(text: str) -> Step:
    return lambda c: c.send(inp.TextIn(text, c.t))


def stop() -> Step:
    return lambda c: c.send(inp.StopRequested(7, c.t))


def fails() -> Step:
    return lambda c: c.send(inp.ReplyFailed(c.reply, ProviderError("agent", "down"), c.t))


def asr_fails() -> Step:
    return lambda c: c.send(inp.AsrFailed(c.stream, ProviderError("asr", "down"), c.t))


def reminder(text: str) -> Step:
    return lambda c: c.send(inp.ReminderDue(text, c.t))


def idle(seconds: float) -> Step:
    return lambda c: c.frames(round(seconds / FRAME_S), voiced=False)


def silenced() -> Step:
    return lambda c: c.send(inp.PlayoutMark(c.reply, "silenced", True, c.t))


# a turn, ready to be answered: speech, the silence that asks for the final and the model, the final
TURN = [speak(), pause(8), final("what time is it")]
ANSWERED = [*TURN, model(0.9)]
PLAYING = [*ANSWERED, first_frame(), written("It is noon and a long answer follows.")]
LATER = [*PLAYING, pause(40)]  # past the window in which the caller may still go on with the turn


@dataclass(frozen=True)
class Rule:
    rule: str
    given: list[Step]
    when: Step
    then: list[str]
    never: list[str] = field(default_factory=list)
    config: dict[str, object] = field(default_factory=dict)


RULES = [
    Rule("speech starts a turn and opens its ASR stream", [], speak(2),
         ["emit vad.speech_started", "OpenAsr", "emit turn.state user_speaking"]),
    Rule("a blip shorter than the minimum speech starts nothing", [], speak(1), [],
         never=["OpenAsr", "emit vad.speech_started"]),
    Rule("silence asks for a speculative final at once", [speak()], pause(1),
         ["emit vad.speech_stopped", "FinishAsr"]),
    Rule("growing silence asks the end-of-turn model", [speak(), pause(1)], pause(7), ["AskEndOfTurn"]),
    Rule("the final starts the reply, held", [speak(), pause(8)], final("what time is it"),
         ["start held reply 1"], never=["CommitReply"]),
    Rule("the end of the turn commits the held reply", TURN, model(0.9),
         ["measure end_of_turn_ms", "emit transcript.final", "commit reply 1", "emit turn.state thinking"]),
    Rule("a model that says incomplete ends nothing", TURN, model(0.1), [], never=["commit reply 1"]),
    Rule("words cut mid-sentence start no speculative reply", [speak(), pause(8)], final("set a timer for"), [],
         never=["start held reply 1"]),
    Rule("with the words off (EOT_WORDS=false), words cut mid-sentence still start a speculative reply",
         [speak(), pause(8)], final("set a timer for"), ["start held reply 1"], config={"words": False}),
    Rule("words cut mid-sentence hold the turn whatever the model says", [speak(), pause(8), final("a table for")],
         pause(40), [], never=["start live reply 1", "emit turn.state thinking"]),
    Rule("words cut mid-sentence end the turn at the ceiling", [speak(), pause(8), final("set a timer for"),
                                                               pause(60)], pause(20),
         ["start live reply 1", "emit transcript.final", "emit turn.state thinking"]),
    Rule("a finished question that ends in a number ends at the model's first answer",
         [speak(), pause(8), final("where is my order four two seven")], model(0.9),
         ["measure end_of_turn_ms", "emit transcript.final", "commit reply 1"]),
    Rule("finished words the model hears as unfinished wait for the fallback", TURN, pause(12), [],
         never=["commit reply 1"]),
    Rule("the fallback silence ends a turn whatever the model says", TURN, pause(32),  # 8 + 32 frames: 1280 ms
         ["emit transcript.final", "commit reply 1"]),
    Rule("speech resuming before the end cuts the held reply unheard", TURN, speak(1),
         ["emit vad.speech_started", "WithdrawEndOfTurn", "cut reply 1: speech_resumed"],
         never=["emit tts.stopped barge_in"]),
    Rule("a final that speech has overtaken is not the utterance's", [speak(), pause(1), speak(2)],
         final("what time"), [], never=["start held reply 1"]),
    Rule("a spoken turn's reply is settled once the caller can no longer go on with the turn", PLAYING, pause(33),
         ["settle reply 1"]),
    Rule("a spoken turn's reply is not settled while the caller may still go on", PLAYING, pause(25), [],
         never=["settle reply 1"]),
    Rule("an onset under way as the window closes holds the settle: the caller may be going on",
         [*PLAYING, pause(31)], speak(3), [], never=["settle reply 1"]),
    Rule("a typed turn's reply is settled at once", [], typed("cancel my order"), ["start live reply 1",
                                                                                    "settle reply 1"]),
    Rule("the first audio is speaking", ANSWERED, first_frame(),
         ["measure first_audio_ms", "emit tts.started", "emit turn.state speaking"]),
    Rule("a reply played out joins the history and the session listens", PLAYING, played_out(),
         ["emit tts.stopped done", "FinishTurn", "emit turn.state listening"]),
    Rule("the first voiced frame over a playing reply pauses it", PLAYING, speak(1),
         ["PausePlayout", "emit turn.state paused"]),
    Rule("an onset that never becomes speech (a cough) resumes it", [*PLAYING, speak(1)], pause(1),
         ["ResumePlayout", "measure replies_resumed", "emit turn.state speaking"]),
    Rule("speech over the reply is transcribed while the reply waits", [*LATER, speak(1)], speak(1),
         ["emit vad.speech_started", "OpenAsr"], never=["cut reply 1: barge_in"]),
    Rule("an acknowledgement over the reply resumes it, unanswered", [*LATER, speak(3), pause(1)],
         final("mm-hmm"), ["emit backchannel", "ResumePlayout", "measure backchannels", "CloseAsr",
                           "emit turn.state speaking"], never=["start held reply 2", "start live reply 2"]),
    Rule("a word that stops a speaker cuts the reply at once", [*LATER, speak(3)], partial("wait"),
         ["cut reply 1: barge_in", "measure interruptions", "emit tts.stopped barge_in"]),
    Rule("a question over the reply is the next turn", [*LATER, speak(30), pause(8)],
         final("what day is it"), ["cut reply 1: barge_in", "emit tts.stopped barge_in", "start held reply 2"]),
    Rule("speech past backchannel_max_ms over the reply cuts it", [*LATER, speak(1)], speak(50),
         ["cut reply 1: barge_in"]),
    Rule("with overlap off, speech over the reply cuts it at once", LATER, speak(2),
         ["PausePlayout", "cut reply 1: barge_in", "OpenAsr"], config={"backchannels": False}),
    Rule("going on right after an end of turn repairs it: one utterance", [*PLAYING, pause(1)], speak(2),
         ["cut reply 1: rejoin", "measure turn_repairs", "FeedAsr"], never=["OpenAsr"],
         config={"backchannels": False}),
    Rule("a failing agent ends the turn with an error; the session listens", ANSWERED, fails(),
         ["report provider_error", "cut reply 1: error", "emit turn.state listening"]),
    Rule("a held reply's failure waits for its turn to be confirmed", TURN, fails(), [],
         never=["report provider_error"]),
    Rule("a recognizer failure drops the utterance; the session listens", [speak(), pause(1)], asr_fails(),
         ["report provider_error", "CloseAsr", "WithdrawEndOfTurn", "emit turn.state listening"]),
    Rule("a typed turn cuts the playing reply and is answered at once", PLAYING, typed("and tomorrow?"),
         ["cut reply 1: barge_in", "emit turn.state thinking", "emit tts.stopped barge_in",
          "start live reply 2 settled"]),
    Rule("a stop request cuts the reply; the session listens", PLAYING, stop(),
         ["cut reply 1: stop_request", "AnswerStop", "emit turn.state listening",
          "emit tts.stopped stop_request"]),
    Rule("a stop request with nothing playing is answered, nothing cut", [], stop(), ["AnswerStop"],
         never=["cut reply 1: stop_request"]),
    Rule("a timer that is done is said at once to a listening caller", [], reminder("Pasta is ready."),
         ["start said reply 1", "emit turn.state thinking"]),
    Rule("a timer that is done waits while the caller speaks", [speak()], reminder("Pasta is ready."), [],
         never=["start said reply 1"]),
    Rule("a silent caller is asked whether they are still there", [*PLAYING, played_out()], idle(1.1),
         ["start said reply 2"], config={"idle_prompt_s": 1.0}),
    Rule("the farewell, once said, ends the session", [*PLAYING, played_out(), idle(1.1), first_frame(),
                                                       played_out(), idle(1.1), first_frame()], played_out(),
         ["emit session.ending idle", "EndSession"], config={"idle_prompt_s": 1.0, "idle_end_s": 1.0}),
]


def conversation(config: dict[str, object]) -> Conversation:
    settings = {"backchannels": True, "idle_prompt_s": 20.0, "idle_end_s": 20.0, "words": True, **config}
    from alice_voice.conversation.policy.overlap import OverlapRules
    policy = PolicyConfig(endpointing=EndpointingConfig(words_enabled=bool(settings["words"])),
                          overlap=OverlapRules(enabled=bool(settings["backchannels"])),
                          idle=IdleRules(prompt_s=float(settings["idle_prompt_s"]),  # type: ignore[arg-type]
                                         end_s=float(settings["idle_end_s"])))  # type: ignore[arg-type]
    return Conversation(TurnPolicy(policy))


@pytest.mark.parametrize("rule", RULES, ids=[r.rule for r in RULES])
def test_rule(rule: Rule) -> None:
    c = conversation(rule.config)
    for step in rule.given:
        step(c)
    got = [summary(a) for a in rule.when(c)]
    position = 0
    for wanted in rule.then:
        assert wanted in got[position:], f"{wanted!r} not in order in {got}"
        position = got.index(wanted, position) + 1
    for unwanted in rule.never:
        assert unwanted not in got, f"{unwanted!r} in {got}"


# ---------- the history the agent is given ----------
def cut_with(c: Conversation, heard: str) -> None:
    """Answer the next cuts with `heard` (the reply had started playing)."""
    send = c.send

    def answering(item: inp.Input) -> list[act.Action]:
        if isinstance(item, inp.ReplyCut):
            item = inp.ReplyCut(item.reply_id, True, heard, item.at)
        return send(item)
    c.send = answering  # type: ignore[method-assign]


def test_a_reply_after_a_cut_is_asked_for_with_what_was_heard_of_the_cut_one() -> None:
    """A typed turn over a playing reply: the agent must know its own interrupted words (bug 1)."""
    c = conversation({})
    for step in PLAYING:
        step(c)
    cut_with(c, "It is noon")
    typed("and tomorrow?")(c)
    assert c.agents_asked[-1] == (Message("user", "what time is it"), Message("assistant", "It is noon"))


def test_a_question_over_the_reply_decided_at_its_final_is_asked_with_the_heard_part() -> None:
    c = conversation({})
    for step in [*LATER, speak(30), pause(8), model(0.9)]:  # the turn over the reply ends before its final
        step(c)
    cut_with(c, "It is")
    final("what day is it")(c)
    assert c.agents_asked[-1] == (Message("user", "what time is it"), Message("assistant", "It is"))


def test_a_repaired_turn_over_the_reply_keeps_the_heard_part_of_the_reply_it_cut() -> None:
    """Decided at its final, the question cut the reply and was committed in one step, before the cut's
    heard part was put in the history (before it); the caller then goes on: the repair drops the question
    and what followed it, not the heard part (it did: the repair dropped all after the place marked
    before the heard part went in; seen over Twilio as a lost "I'm Alice, and right now...")."""
    c = conversation({})
    for step in [*LATER, speak(30), pause(8), model(0.9)]:
        step(c)
    cut_with(c, "It is")
    final("what day is it")(c)
    assert c.policy.history.messages[-1] == Message("user", "what day is it")
    speak(10)(c)  # ... and goes on with it
    assert c.policy.history.messages == (Message("user", "what time is it"), Message("assistant", "It is"))


def exchange(c: Conversation, n: int) -> None:
    for step in [speak(), pause(8), final(f"question {n}"), model(0.9), first_frame(), written(f"Answer {n}."),
                 played_out()]:
        step(c)


def test_history_places_stay_right_after_a_hundred_exchanges() -> None:
    """The history keeps its last 40 messages; a repair and a cut reply find their places all the same
    (positions were list indices, which trimming moved: bug 2)."""
    c = conversation({"backchannels": False})
    for n in range(100):
        exchange(c, n)
    for step in [speak(), pause(8), final("book a table"), model(0.9), first_frame()]:  # a pause read as an end
        step(c)
    assert c.policy.history.messages[-1] == Message("user", "book a table")
    speak(3)(c)  # ... "two people": a turn repair
    assert c.policy.history.messages[-1] == Message("assistant", "Answer 99."), "the half-turn is gone"
    for step in [pause(8), final("book a table for two people"), model(0.9), first_frame()]:
        step(c)
    cut_with(c, "Booked")
    typed("thanks")(c)  # cuts the reply: what was heard goes where it was cut, before "thanks"
    booked = (Message("user", "book a table for two people"), Message("assistant", "Booked"))
    assert c.policy.history.messages[-3:] == (*booked, Message("user", "thanks"))
    assert c.agents_asked[-1][-2:] == booked


# ---------- every change of state is drawn ----------
STEPS: list[Step] = [speak(1), speak(3), pause(1), pause(8), pause(20), model(0.9), model(0.1), first_frame(),
                     written("Fine."), played_out(), typed("hi"), stop(), fails(), reminder("Tea."), silenced(),
                     partial("wait"), partial("mm-hmm")]


@pytest.mark.parametrize("seed", range(40))
def test_a_random_conversation_changes_state_only_as_drawn(seed: int) -> None:
    """The policy raises InvalidTransition on a change `TRANSITIONS` does not draw."""
    rng = random.Random(seed)
    c = conversation({"idle_prompt_s": 0.5, "idle_end_s": 0.5, "backchannels": seed % 2 == 0})
    seen: set[tuple[TurnState, TurnState]] = set()
    for _ in range(300):
        before = c.policy.state
        rng.choice([*STEPS, final("what is the time"), final("okay"), final("so the")])(c)
        seen.add((before, c.policy.state))
    assert all(after is before or after in TRANSITIONS[before] for before, after in seen)
