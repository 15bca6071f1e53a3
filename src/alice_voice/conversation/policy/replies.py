"""The reply ledger: which reply is current, the numbers that tell replies apart, and the replies being
cut, until the executor says what of each was heard. Pure.

Every input about a reply names its number, so news of a reply already replaced is ignored. A cut is
answered (`ReplyCut`) with what of the reply was heard, which belongs in the history where the reply was
cut: a new reply is not asked for while a cut is still unanswered, so the agent always knows what it had
said (the executor answers a cut at once: waiting costs nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from alice_voice.conversation import events as ev
from alice_voice.conversation.messages import Message
from alice_voice.conversation.policy import actions as act
from alice_voice.conversation.policy import inputs as inp
from alice_voice.conversation.policy.history import History, Place
from alice_voice.conversation.policy.idle import Idle
from alice_voice.conversation.policy.reports import TurnReports
from alice_voice.conversation.timings import TurnTimings
from alice_voice.errors import AliceError
from alice_voice.tools.spec import ToolOutcome

_HEARD_REASONS = ("barge_in", "stop_request", "rejoin")  # cuts the caller heard, or that undo a turn


@dataclass
class Reply:
    reply_id: int
    held: bool  # speculative: prepared, not played, until the turn is confirmed
    turn: TurnTimings | None  # the caller's turn it answers (None: the gateway's own words)
    audio_started: bool = False
    text: str = ""
    tools: tuple[ToolOutcome, ...] = ()
    error: AliceError | None = None  # a held reply's failure, reported if its turn is confirmed
    agent_first_text: float | None = None
    tts_first_audio: float | None = None
    ends: act.EndSession | None = None  # the session ends when it has been heard whole (a farewell, a goodbye)
    reminder: str = ""  # a timer's reminder: said again later if it is cut before a word of it is heard
    requested: bool = False  # its StartReply has gone out
    answers: int | None = None  # the history's id of the caller's message it answers, once that is in
    settled: bool = False  # its turn can no longer go on: its tools that change things may run

    @property
    def audible(self) -> bool:
        return not self.held and self.audio_started


@dataclass(frozen=True, slots=True)
class Cut:
    reason: act.CutReason
    turn: TurnTimings | None
    place: Place  # where what was heard of it belongs in the history
    reminder: str = ""


@dataclass(frozen=True, slots=True)
class _Request:
    reply: Reply
    text: str
    verbatim: bool


class ReplyLedger:
    def __init__(self) -> None:
        self.current: Reply | None = None
        self._numbered = 0
        self._cuts: dict[int, Cut] = {}
        self._waiting: _Request | None = None  # a reply to ask for once every cut is answered

    def new(self, *, held: bool, turn: TurnTimings | None, ends: act.EndSession | None = None,
            reminder: str = "") -> Reply:
        """Number a reply and make it current (the caller cut the one before)."""
        self._numbered += 1
        self.current = Reply(self._numbered, held, turn, ends=ends, reminder=reminder)
        return self.current

    def of(self, reply_id: int) -> Reply | None:
        """The current reply, if it is `reply_id`."""
        return self.current if self.current is not None and self.current.reply_id == reply_id else None

    def request(self, reply: Reply, text: str, history: History, *, verbatim: bool = False) -> list[act.Action]:
        """Ask for `reply`'s text and audio, at once unless a cut is unanswered."""
        self._waiting = _Request(reply, text, verbatim)
        return self._release(history)

    def cut(self, reply: Reply, reason: act.CutReason, place: Place) -> list[act.Action]:
        if reply is self.current:
            self.current = None
        if self._waiting is not None and self._waiting.reply is reply:
            self._waiting = None  # never asked for: nothing to cancel
        if not reply.requested:
            return []
        self._cuts[reply.reply_id] = Cut(reason, reply.turn, place, reply.reminder)
        return [act.CutReply(reply.reply_id, reason)]

    # ---------- what the executor says of a reply ----------
    def progress(self, progress: inp.ReplyProgress) -> None:
        reply = self.of(progress.reply_id)
        if reply is None:
            return
        if progress.stage == "agent_first_text":
            reply.agent_first_text = progress.at
        elif progress.stage == "tts_first_audio":
            reply.tts_first_audio = progress.at
        else:
            reply.text, reply.tools = progress.text, progress.tools

    def first_frame(self, reply: Reply, at: float) -> list[act.Action]:
        """Its first audio went out: the caller's wait for it is measured."""
        reply.audio_started = True
        actions: list[act.Action] = []
        turn = reply.turn
        if turn is not None:
            turn.first_audio_sent = at
            turn.agent_first_text, turn.tts_first_audio = reply.agent_first_text, reply.tts_first_audio
            if turn.user_end is not None:
                actions.append(act.Measure("first_audio_ms", (at - turn.user_end) * 1000))
        return [*actions, act.Emit(ev.TtsStarted())]

    def played_out(self, reply: Reply, started: bool, history: History, reports: TurnReports) -> list[act.Action]:
        """All of it was said (`started`: any of it went out): it joins the history whole."""
        self.current = None
        text = reply.text.strip()
        actions: list[act.Action] = [act.Emit(ev.TtsStopped(reason="done", heard=text))] if started else []
        history.append(Message("assistant", text, reply.tools))
        return [*actions, *reports.finish(reply.turn)]

    def cut_answered(self, cut: inp.ReplyCut, history: History, reports: TurnReports, idle: Idle) -> list[act.Action]:
        """What of a cut reply was heard: into the history where it was cut (its tool calls too: what they
        did happened, the model must know), reported; then a reply waiting for it is asked for."""
        why = self._cuts.pop(cut.reply_id, None)
        if why is None:
            return []
        actions: list[act.Action] = []
        if why.reminder and not cut.heard:
            idle.remind(why.reminder, first=True)  # not heard at all: told again when the caller is done
        if cut.tools and why.reason == "rejoin":
            history.append(Message("assistant", "", cut.tools))
        elif cut.tools and why.reason == "error":
            history.insert(why.place, Message("assistant", "", cut.tools))
        if why.reason == "error":
            if cut.started:
                actions.append(act.Emit(ev.TtsStopped(reason="error", heard=cut.heard)))
            actions += reports.finish(why.turn)
        elif why.reason in _HEARD_REASONS:
            stopped = ev.TtsStopped(reason="stop_request" if why.reason == "stop_request" else "barge_in",
                                    heard=cut.heard)
            actions.append(act.Emit(stopped))
            if (cut.heard or cut.tools) and why.reason != "rejoin":
                history.insert(why.place, Message("assistant", cut.heard, cut.tools))
            # a reply that had started playing is reported once the cut is heard as silence
            actions += reports.cut(why.turn) if cut.started else reports.finish(why.turn)
        return [*actions, *self._release(history)]

    def _release(self, history: History) -> list[act.Action]:
        request = self._waiting
        if request is None or self._cuts:
            return []
        self._waiting = None
        reply = request.reply
        reply.requested = True
        # The agent is given the history before the turn it answers (whose text comes with the request).
        return [act.StartReply(reply.reply_id, request.text, history.before(reply.answers), reply.held,
                               request.verbatim, reply.settled)]

    def settle(self, reply: Reply) -> list[act.Action]:
        """Its turn can no longer go on: what it would do may be done."""
        if reply.settled:
            return []
        reply.settled = True
        return [act.SettleReply(reply.reply_id)] if reply.requested else []
