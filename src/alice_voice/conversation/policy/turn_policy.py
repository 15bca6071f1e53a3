"""The conversation's rules, in one pure policy: typed inputs in, actions out. No I/O, clock or asyncio.

The states and every change between them are drawn in policy/states.py. The rules:

- A turn: speech opens the utterance's ASR stream; silence asks for a speculative final and, as it grows,
  the end-of-turn model (policy/endpointing.py); the final starts the reply, held; the end of the turn
  commits it (it plays). Speech resuming before the end cuts the held reply unheard.
- Barge-in: the first voiced frame over a playing reply pauses it; what the caller says decides
  (policy/overlap.py): an acknowledgement resumes it where it paused, anything else cuts it (the history
  keeps what was heard) and is the next turn; an onset that never becomes speech (a cough) resumes it.
- How long a pause must last to end a turn depends on the evidence (policy/endpointing.py): the audio model
  and the words' completeness agreeing end it at once; words cut mid-sentence wait up to a ceiling (and
  start no speculative reply); anything else waits the fallback.
- Turn repair: speech within `turn_rejoin_ms` of an end of turn, while the reply to it has only begun,
  continues that turn: the reply is cut, the caller's half-turn leaves the history, and the ASR decodes
  both halves as one utterance. Until that window has passed the reply is not settled: its tools that
  change things wait. Speech within `same_utterance_ms` of the caller's last word is the same utterance,
  whatever its words ("Thanks, that's all for now. | Goodbye!"): one utterance, one reply.
- A provider that fails ends the turn with an `error` event; the session listens again.
- A typed turn cuts whatever is playing and is answered at once; a stop request cuts the reply.
- The gateway's own words (policy/idle.py): an idle caller is prompted, then said goodbye to; a timer
  that is done is said when the caller is not speaking. The tool calls a reply made stay in the history
  with it, even when it was cut.
- The agent is asked for a reply only once the history holds what was heard of every reply cut before it
  (policy/replies.py), and history places survive trimming (policy/history.py).

The parts: `Endpointing` (when speech starts and ends), `Utterance` (the ASR stream), `ReplyLedger` (the
replies and their cuts), `TalkOver` (one stretch of speech over a reply), `History`, `Idle`, `TurnReports`.
This class keeps the dispatch, the caller's turn, and the state, changed only through `_enter`.
"""

from __future__ import annotations

from alice_voice.conversation import events as ev
from alice_voice.conversation.messages import Message
from alice_voice.conversation.policy import actions as act
from alice_voice.conversation.policy import inputs as inp
from alice_voice.conversation.policy.config import PolicyConfig
from alice_voice.conversation.policy.endpointing import (
    AskEndOfTurn,
    Endpointing,
    Event,
    Onset,
    OnsetLost,
    Phase,
    SilenceStarted,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
)
from alice_voice.conversation.policy.history import History
from alice_voice.conversation.policy.idle import Due, Idle
from alice_voice.conversation.policy.overlap import Overlap, TalkOver, Verdict
from alice_voice.conversation.policy.replies import Reply, ReplyLedger
from alice_voice.conversation.policy.reports import TurnReports
from alice_voice.conversation.policy.screening import AnsweredBy, Screening, ScreeningRules
from alice_voice.conversation.policy.screening import Due as CallDue
from alice_voice.conversation.policy.states import TRANSITIONS, InvalidTransition, TurnState
from alice_voice.conversation.policy.utterance import Rejoinable, Utterance
from alice_voice.conversation.timings import TurnTimings
from alice_voice.errors import AliceError

__all__ = ["TurnPolicy", "TurnState"]


class TurnPolicy:
    """One session's conversation; `handle()` each input, carry out the returned actions in order."""

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self.state = TurnState.LISTENING
        self.history = History(config.max_history)
        self._endpointing = Endpointing(config.endpointing)
        self._utterance = Utterance(config.endpointing.frame_samples)
        self._replies = ReplyLedger()
        self._talk_over: TalkOver | None = None
        self._idle = Idle(config.idle)
        self._reports = TurnReports()
        self._out: list[act.Action] = []
        self._frames_end = 0  # frames heard so far
        # the caller's turn
        self._turn: TurnTimings | None = None
        self._final: str | None = None
        self._turn_ended = False
        self._rejoinable: Rejoinable | None = None  # the last turn, which the caller may still go on with
        self._settle_at: float | None = None  # when the current reply's turn can no longer go on
        self._onset: float | None = None  # first voiced frame of a possible barge-in (the reply is paused)
        self._screening: Screening | None = None  # an outbound call's callee, until known to be a person

    def handle(self, item: inp.Input) -> list[act.Action]:
        self._out = []
        before = self.state
        match item:
            case inp.Heard():
                self._heard(item)
            case inp.TranscriptIn():
                self._transcript(item)
            case inp.EndOfTurnAnswer():
                self._end_of_turn_answer(item)
            case inp.ReplyProgress():
                self._replies.progress(item)
            case inp.ReplyFailed():
                self._reply_failed(item)
            case inp.ReplyCut():
                self._out += self._replies.cut_answered(item, self.history, self._reports, self._idle)
            case inp.PlayoutMark():
                self._playout_mark(item)
            case inp.TextIn():
                self._text(item)
            case inp.StopRequested():
                self._stop(item)
            case inp.AsrFailed():
                self._asr_failed(item)
            case inp.ReminderDue():
                self._idle.remind(item.text)
                self._say_reminders()
            case inp.CallEndRequested():
                self._call_end_requested(item)
            case inp.Announce():
                self._announce(item)
            case inp.Screen():
                self._screening = Screening(ScreeningRules(item.greeting, item.voicemail), item.at)
            case inp.BeepHeard() if self._screening is not None:
                self._beep_heard(self._screening, item.at)
            case inp.Brief():
                self.history.append(Message("system", item.text))
        if self.state is not before:
            self._out += [act.SetState(self.state.value), act.Emit(ev.TurnStateChanged(state=self.state.value))]
        return self._out

    def _enter(self, state: TurnState) -> None:
        if state is not self.state and state not in TRANSITIONS[self.state]:
            raise InvalidTransition(f"{self.state.value} -> {state.value}")
        self.state = state

    # ---------- hearing ----------
    def _heard(self, heard: inp.Heard) -> None:
        self._frames_end = heard.index + 1
        for event in self._endpointing.on_frame(heard.index, heard.arrival, heard.prob, heard.loudness):
            self._endpoint(event, heard)
        if self._endpointing.phase is Phase.SPEAKING and self._utterance.open:
            self._out += self._utterance.feed(heard.index + 1)  # this frame, and a pause that did not end it
            if self._talk_over is not None:
                self._settle_talk_over(self._talk_over.judge.still_speaking(heard.arrival))
        self._settle_if_due(heard.arrival)
        self._screening_heard(heard)
        self._say_reminders()
        self._watch_idle(heard.at)

    def _endpoint(self, event: Event, heard: inp.Heard) -> None:
        match event:
            case Onset():
                if self.config.barge_in_pause and self._audible():
                    self._onset = event.arrival
                    self._out.append(act.PausePlayout())
                    self._enter(TurnState.PAUSED)
            case OnsetLost():
                if self._onset is not None:
                    self._onset = None
                    self._reports.forget_silence()
                    if self.state is TurnState.PAUSED and self._audible():  # (not stopped meanwhile)
                        self._out += [act.ResumePlayout(), act.Measure("replies_resumed", 1)]
                        self._enter(TurnState.SPEAKING)
            case SpeechStarted():
                self._speech_started(event, heard.index + 1)
            case SilenceStarted():
                self._emit(ev.SpeechStopped())
                if self._turn is not None:
                    self._turn.user_end = event.last_speech_arrival
                self._out += self._utterance.finish()
            case SpeechResumed():
                self._speech_resumed()
            case AskEndOfTurn():
                self._out.append(act.AskEndOfTurn(event.ask_id, self._utterance.first_frame, heard.index + 1,
                                                  event.pad_ms))
            case TurnEnded():
                self._turn_over(event, heard.at)

    def _speech_started(self, event: SpeechStarted, end: int) -> None:
        self._emit(ev.SpeechStarted())
        reply = self._replies.current
        if reply is not None and self.config.overlap.enabled and self._audible():
            self._begin_talk_over(event, end, reply)
            return
        if reply is not None and not reply.held and self._turn is not None:
            self._turn.barge_in_speech = self._onset or event.first_arrival
        self._onset = None
        rejoin = self._rejoin_now(event.first_arrival)
        if reply is not None:
            self._cut(reply, "rejoin" if rejoin else "superseded" if reply.held else "barge_in")
            if not reply.held:
                self._out.append(act.Measure("turn_repairs" if rejoin else "interruptions", 1))
        if rejoin is not None:
            self.history.drop_from(rejoin.message)  # the caller's cut-short turn goes on: it is not over yet
        self._new_turn(event.first_arrival)
        if rejoin is not None and self._utterance.open:
            self._utterance.go_on()
            self._out += self._utterance.feed(end, first=event.keep_from)
        else:
            self._out += self._utterance.start(event.keep_from, end)

    def _new_turn(self, first_arrival: float, state: TurnState = TurnState.USER_SPEAKING) -> None:
        self._enter(state)
        self._final, self._turn_ended, self._utterance.prefix = None, False, ""
        self._idle.reset()
        self._turn = TurnTimings(user_start=first_arrival)
        self._utterance.partial = ""

    def _speech_resumed(self) -> None:
        self._emit(ev.SpeechStarted())
        self._utterance.go_on()
        self._out.append(act.WithdrawEndOfTurn())
        if self.state is TurnState.USER_SPEAKING:
            self._final = None
            reply = self._replies.current
            if reply is not None and reply.held:
                self._cut(reply, "speech_resumed")

    def _end_of_turn_answer(self, answer: inp.EndOfTurnAnswer) -> None:
        if answer.prob is None:  # the model failed (the executor logged why): ask again, or the fallback ends it
            self._endpointing.on_failed_answer(answer.ask_id)
            return
        for event in self._endpointing.on_answer(answer.ask_id, answer.prob):
            if isinstance(event, TurnEnded):
                self._turn_over(event, answer.at)

    def _turn_over(self, event: TurnEnded, at: float) -> None:
        self._out += self._utterance.finish()  # already asked when silence began, unless speech resumed since
        self._out.append(act.WithdrawEndOfTurn())  # a question still pending (the fallback ended it) is moot
        if self._turn is not None:
            self._turn.user_end, self._turn.turn_ended = event.last_speech_arrival, at
            self._turn.patience = self._endpointing.patience_ms(event.reason) / 1000
            self._out.append(act.Measure("end_of_turn_ms", (at - event.last_speech_arrival) * 1000))
        if self._talk_over is not None:
            self._turn_ended = True  # what it was is for its final to say
            return
        if self.state is not TurnState.USER_SPEAKING:
            return
        self._enter(TurnState.THINKING)
        self._turn_ended = True
        if self._final is None:
            return  # the final decode is not back yet
        reply = self._replies.current
        if reply is not None and reply.held:
            self._commit(self._final, at)
        else:
            self._commit_new(self._final, at)

    def _rejoin_now(self, speech_arrival: float) -> Rejoinable | None:
        """Did the caller just go on with the turn that was taken as ended? (A pause read as an end.)"""
        rejoin, self._rejoinable = self._rejoinable, None
        reply = self._replies.current
        window = self.config.turn_rejoin_ms / 1000
        if rejoin is None or reply is None or reply.held or reply.settled or speech_arrival - rejoin.ended > window:
            return None  # (a settled reply may have done what it was asked: it is answered, not repaired)
        return rejoin

    # ---------- speech over a playing reply ----------
    def _begin_talk_over(self, event: SpeechStarted, end: int, reply: Reply) -> None:
        """The reply waits, paused, while the caller's words are transcribed (see `TalkOver`)."""
        if self._onset is None:  # it did not pause on the onset (BARGE_IN_PAUSE off): it does now
            self._onset = event.first_arrival
            self._out.append(act.PausePlayout())
        if reply.turn is not None:
            reply.turn.barge_in_speech = self._onset
        before = self._rejoinable
        rejoin = self._rejoin_now(event.first_arrival)
        went_on_at_once = rejoin is not None and (
            event.first_arrival - rejoin.spoken_until) * 1000 <= self.config.same_utterance_ms
        judge = Overlap(event.first_arrival, self.config.overlap, rejoin.text if rejoin else None, went_on_at_once)
        self._talk_over = talk = TalkOver(judge, reply, rejoin, before, event.keep_from)
        self._new_turn(event.first_arrival, TurnState.PAUSED)
        if rejoin is not None and self._utterance.open:
            talk.skip = len(rejoin.text.split())
            self._utterance.go_on()
            self._out += self._utterance.feed(end, first=event.keep_from)
        else:
            self._out += self._utterance.start(event.keep_from, end)

    def _settle_talk_over(self, verdict: Verdict) -> None:
        """Not an acknowledgement: the reply is cut, and the caller's words are a turn (or go on with one)."""
        talk = self._talk_over
        if verdict in (Verdict.PENDING, Verdict.BACKCHANNEL) or talk is None:
            return
        self._talk_over = None
        held = talk.held_partial
        if verdict is Verdict.CONTINUATION and talk.rejoin is not None:
            self._cut(talk.reply, "rejoin")
            self.history.drop_from(talk.rejoin.message)  # the utterance the reply answered is not over yet
            self._utterance.prefix = "" if talk.skip else talk.rejoin.text
            self._out.append(act.Measure("turn_repairs", 1))
        else:
            self._cut(talk.reply, "barge_in")
            self._out.append(act.Measure("interruptions", 1))
            if talk.skip:
                self._decode_alone(talk)
                held = None
        self._enter(TurnState.THINKING if self._turn_ended else TurnState.USER_SPEAKING)
        if held is not None:
            self._emit(ev.TranscriptPartial(text=self._utterance.with_prefix(held.text),
                                            stable=self._utterance.with_prefix(held.stable)))

    def _decode_alone(self, talk: TalkOver) -> None:
        """A turn of its own, decoded with the utterance before: decoded again, alone, from its first frame."""
        self._out += self._utterance.start(talk.first_frame, self._frames_end)
        if self._endpointing.phase is not Phase.SPEAKING:
            self._out += self._utterance.finish()

    def _resume_after_backchannel(self, talk: TalkOver, at: float) -> None:
        """An acknowledgement: the reply goes on where it paused; the caller's sound is no turn."""
        spoken_until = self._turn.user_end if self._turn is not None and self._turn.user_end else at
        self._emit(ev.Backchannel(text=talk.judge.text,  # the words it was decided on
                                  duration_ms=round((spoken_until - talk.judge.first_arrival) * 1000)))
        self._out += [act.ResumePlayout(), act.Measure("backchannels", 1), act.Measure("replies_resumed", 1),
                      *self._utterance.close(), act.WithdrawEndOfTurn()]
        self._talk_over = None
        self._endpointing.reset()
        self._onset = None
        self._reports.forget_silence()
        reply = talk.reply
        if reply.turn is not None:
            reply.turn.barge_in_speech = None
        self._turn, self._rejoinable = reply.turn, talk.rejoinable_before
        self._final, self._turn_ended, self._utterance.partial = None, False, ""
        self._enter(TurnState.SPEAKING)

    # ---------- transcripts ----------
    def _transcript(self, t: inp.TranscriptIn) -> None:
        if not self._utterance.hears(t):
            return  # from an utterance already closed
        if t.final:
            if self._utterance.is_final(t):  # else a speculative final that speech has since overtaken
                self._final_ready(" ".join(t.text.split()), t.complete, t.at)
            return
        text = t.text.strip()
        if not text or text == self._utterance.partial:
            return
        self._utterance.partial = text
        turn = self._turn
        if turn is not None and turn.first_partial is None:
            turn.first_partial = t.at
            self._out.append(act.Measure("first_partial_ms", (t.at - turn.user_start) * 1000))
        partial = ev.TranscriptPartial(text=text, stable=t.stable.strip())
        talk = self._talk_over
        if talk is not None:
            talk.held_partial = partial
            # Only the stable part counts: a first pass over 200 ms of "mm-hmm" can read "Amen" or a whole
            # sentence, which the next pass takes back.
            heard_ms = (t.at - talk.judge.first_arrival) * 1000  # (at most: the decode took some of it)
            self._settle_talk_over(talk.judge.heard_words(talk.own_words(partial.stable), heard_ms))
            return
        self._emit(ev.TranscriptPartial(text=self._utterance.with_prefix(text),
                                        stable=self._utterance.with_prefix(partial.stable)))

    def _final_ready(self, text: str, complete: float | None, at: float) -> None:
        if self._turn is not None:
            self._turn.final_ready = at
        talk = self._talk_over
        if talk is not None:
            spoken_until = self._turn.user_end if self._turn is not None and self._turn.user_end else at
            verdict = talk.judge.final(talk.own_words(text), (spoken_until - talk.judge.first_arrival) * 1000)
            if verdict is Verdict.BACKCHANNEL:
                self._resume_after_backchannel(talk, at)
                return
            self._settle_talk_over(verdict)
            if verdict is Verdict.INTERRUPTION and talk.skip:
                return  # its own final, decoded alone, follows
        text = self._utterance.with_prefix(text)
        waiting = self.state is TurnState.THINKING and self._replies.current is None
        if self.state is not TurnState.USER_SPEAKING and not waiting:
            return
        self._final = text
        if self._turn_ended:
            self._commit_new(text, at)
            return
        eot = self.config.endpointing
        cut_mid_sentence = eot.words_enabled and complete is not None and complete < eot.words_unfinished_below
        if self._replies.current is None and not cut_mid_sentence and self._screening is None:
            # (a reply to half a sentence would be void; a callee not yet screened is answered by no agent)
            self._start_reply(text, held=True, at=at)
        for event in self._endpointing.on_words(complete):  # the words' say on the turn's end
            if isinstance(event, TurnEnded):
                self._turn_over(event, at)

    def _asr_failed(self, failure: inp.AsrFailed) -> None:
        if failure.stream != self._utterance.stream:
            return
        self._out.append(act.Report(failure.error))
        if self._replies.current is not None:
            self._cut(self._replies.current, "superseded")
        self._out += [*self._utterance.close(), act.WithdrawEndOfTurn()]
        self._endpointing.reset()
        self._enter(TurnState.LISTENING)
        self._final, self._turn_ended = None, False

    # ---------- replies ----------
    def _audible(self) -> bool:
        return self._replies.current is not None and self._replies.current.audible

    def _start_reply(self, text: str, *, held: bool, at: float) -> None:
        if self._replies.current is not None:
            self._cut(self._replies.current, "superseded")
        reply = self._replies.new(held=held, turn=self._turn)
        if self._turn is not None:
            self._turn.reply_started = at
        self._out += self._replies.request(reply, text, self.history)

    def _commit_new(self, text: str, at: float) -> None:
        if self._screening is not None:
            self._screen(text, at)
            return
        self._start_reply(text, held=False, at=at)
        self._commit(text, at)

    def _commit(self, text: str, at: float) -> None:
        reply = self._replies.current
        if reply is None:
            return
        spoken = self._turn is not None and not self._turn.text_turn
        if spoken:
            self._emit(ev.TranscriptFinal(text=text))
        spoken_until = self._turn.user_end if self._turn is not None and self._turn.user_end is not None else at
        reply.answers = self.history.append(Message("user", text))
        self._rejoinable = Rejoinable(at, reply.answers, text, spoken_until) if spoken else None
        self._out.append(act.Measure("turns", 1))
        if reply.held:
            reply.held = False
            if reply.requested:
                self._out.append(act.CommitReply(reply.reply_id))
        # A spoken turn may still go on (turn repair) for `turn_rejoin_ms`: until then nothing that changes
        # things is done for it ("Please cancel my order, | ... | number five one two").
        self._settle_at = at + self.config.turn_rejoin_ms / 1000 if spoken and self.config.turn_rejoin_ms else None
        if self._settle_at is None:
            self._out += self._replies.settle(reply)
        if reply.error is not None:
            self._fail(reply, reply.error)

    def _settle_if_due(self, arrival: float) -> None:
        """Settle once a frame that arrived after the window is heard with no speech under way. (Arrival
        times, as `_rejoin_now` judges a repair: a frame handled late must not settle a reply its own
        onset is about to repair.)"""
        reply = self._replies.current
        if self._settle_at is None or reply is None or arrival <= self._settle_at:
            return
        if self._endpointing.quiet and self._talk_over is None:  # (not while speech may go on)
            self._settle_at = None
            self._out += self._replies.settle(reply)

    def _cut(self, reply: Reply, reason: act.CutReason) -> None:
        if self._talk_over is not None and reply is self._talk_over.reply:  # stopped, failed or replaced
            self._talk_over = None  # while the caller spoke over it
            if self.state is TurnState.PAUSED:
                self._enter(TurnState.USER_SPEAKING)
        self._out += self._replies.cut(reply, reason, self.history.mark())

    def _fail(self, reply: Reply, error: AliceError) -> None:
        self._out.append(act.Report(error))
        self._cut(reply, "error")
        if self.state in (TurnState.THINKING, TurnState.SPEAKING, TurnState.PAUSED):
            self._enter(TurnState.LISTENING)

    def _reply_failed(self, failure: inp.ReplyFailed) -> None:
        reply = self._replies.of(failure.reply_id)
        if reply is None:
            return
        if reply.held:
            reply.error = failure.error  # reported if the turn is confirmed, dropped if it is not
        else:
            self._fail(reply, failure.error)

    def _playout_mark(self, mark: inp.PlayoutMark) -> None:
        if mark.kind == "silenced":
            if self._onset is not None or self._reports.waiting:  # else a silence nobody waits for
                self._out += self._reports.silenced(mark.at)
            return
        reply = self._replies.of(mark.reply_id)
        if reply is None:
            return
        if mark.kind == "first_frame":
            self._out += self._replies.first_frame(reply, mark.at)
            if self.state is TurnState.THINKING:
                self._enter(TurnState.SPEAKING)
            return
        self._out += self._replies.played_out(reply, mark.started, self.history, self._reports)
        self._onset = None
        if self._talk_over is not None:  # it ended as the caller began over it: their words are a turn
            talk, self._talk_over = self._talk_over, None
            if talk.skip:
                self._decode_alone(talk)
            self._enter(TurnState.THINKING if self._turn_ended else TurnState.USER_SPEAKING)
        elif self.state in (TurnState.THINKING, TurnState.SPEAKING, TurnState.PAUSED):
            self._enter(TurnState.LISTENING)
        if reply.ends is not None:
            self._emit(ev.SessionEnding(reason=reply.ends.reason))
            self._out.append(reply.ends)
        else:
            self._idle.reply_ended(mark.at)

    # ---------- an outbound call's first words ----------
    @property
    def listening_for_beep(self) -> bool:
        return self._screening is not None

    def _screen(self, text: str, at: float) -> None:
        """A turn of a callee not yet known to be a person: gathered, not answered (a machine's, let go)."""
        screening = self._screening
        assert screening is not None
        judged = screening.verdict is not None
        if screening.turn(text) is AnsweredBy.MACHINE and not judged:
            self._screened(screening, at)
        self._out += self._reports.finish(self._turn)
        self._final, self._turn_ended = None, False
        self._enter(TurnState.LISTENING)
        if screening.beeped and screening.verdict is AnsweredBy.MACHINE:  # (it beeped before these words)
            self._leave_voicemail()

    def _screening_heard(self, heard: inp.Heard) -> None:
        screening = self._screening
        if screening is None:
            return
        idle = self.state is TurnState.LISTENING and self._endpointing.phase is Phase.IDLE
        due = screening.heard(heard.prob >= self.config.endpointing.vad_threshold, heard.arrival, idle)
        if due is CallDue.MESSAGE:
            self._leave_voicemail()
        elif due is CallDue.GREETING:
            self._screening = None
            self._screened(screening, heard.at)
            self._greet(" ".join(screening.words), screening.rules.greeting, heard.at)

    def _screened(self, screening: Screening, at: float) -> None:
        assert screening.verdict is not None
        decided_ms = (at - screening.answered_at) * 1000
        human = screening.verdict is AnsweredBy.HUMAN
        self._emit(ev.CallScreened(answered_by=screening.verdict.value, decided_ms=round(decided_ms)))
        self._out += [act.Measure("answered_by_human" if human else "answered_by_machine", 1),
                      act.Measure("screening_ms", decided_ms)]

    def _beep_heard(self, screening: Screening, at: float) -> None:
        judged = screening.verdict is not None
        if screening.beep():
            self._leave_voicemail()
        elif not judged:
            self._screened(screening, at)

    def _greet(self, heard: str, greeting: str, at: float) -> None:
        """A person answered: the greeting answers their "Hello?" (or, without one, the agent does). Their
        turns were reported as they ended: this reply answers no turn of its own."""
        self._turn = None
        if not greeting:
            if heard:  # (a silent person, with no greeting to give: the next words are a turn like any)
                self._commit_new(heard, at)
            return
        reply = self._replies.new(held=False, turn=None)
        if heard:
            reply.answers = self.history.append(Message("user", heard))
        self._out += self._replies.request(reply, greeting, self.history, verbatim=True)
        self._out += self._replies.settle(reply)
        self._enter(TurnState.THINKING)

    def _leave_voicemail(self) -> None:
        """The machine has beeped, or gone quiet: the message, then the call ends."""
        screening, self._screening = self._screening, None
        assert screening is not None
        if self.state is TurnState.USER_SPEAKING:  # the beep, heard as a sound: it is no turn
            self._out += [*self._utterance.close(), act.WithdrawEndOfTurn()]
            self._endpointing.reset()
            self._enter(TurnState.LISTENING)
        if self.state is TurnState.LISTENING:
            self._say(screening.rules.voicemail, ends=act.EndSession("hung_up"))

    # ---------- the gateway's own words ----------
    def _watch_idle(self, at: float) -> None:
        if self._replies.current is not None or self.state is not TurnState.LISTENING:
            return
        due = self._idle.due(at)
        if due is Due.PROMPT:
            self._say(self._idle.rules.prompt)
        elif due is Due.FAREWELL:
            self._say(self._idle.rules.farewell, ends=act.EndSession("idle"))

    @property
    def _free_to_speak(self) -> bool:
        """No reply under way and the caller not speaking, nor starting to."""
        return self._replies.current is None and self.state is TurnState.LISTENING \
            and self._endpointing.phase is Phase.IDLE

    def _say_reminders(self) -> None:
        """A timer that is done is told at once, or when the caller has finished and the reply has ended."""
        if self._idle.reminding and self._free_to_speak:
            text = self._idle.take_reminders()
            self._say(text, reminder=text)

    def _say(self, text: str, *, ends: act.EndSession | None = None, reminder: str = "") -> None:
        """The gateway's own words, spoken like a reply (interruptible like one), answering no turn."""
        self._idle.spoke()
        reply = self._replies.new(held=False, turn=None, ends=ends, reminder=reminder)
        self._out += self._replies.request(reply, text, self.history, verbatim=True)
        self._enter(TurnState.THINKING)

    def _call_end_requested(self, request: inp.CallEndRequested) -> None:
        """The call ends once the reply that asked has been heard whole; a reply the caller talked over
        (gone by now) keeps the call: they had more to say."""
        reply = self._replies.current
        if reply is not None and not reply.held:
            reply.ends = act.EndSession(request.ending.reason, request.ending.target)

    def _announce(self, announce: inp.Announce) -> None:
        ends = act.EndSession("hung_up") if announce.hang_up_after else None
        if self._free_to_speak:
            self._say(announce.text, ends=ends)
        else:  # said as a reminder is: once the caller has finished and the reply has ended
            self._idle.remind(announce.text)

    # ---------- the client ----------
    def _text(self, text: inp.TextIn) -> None:
        self._idle.reset()
        reply = self._replies.current
        if reply is not None:
            self._cut(reply, "superseded" if reply.held else "barge_in")
        self._turn = TurnTimings(user_start=text.at, user_end=text.at, turn_ended=text.at, text_turn=True)
        self._enter(TurnState.THINKING)
        self._turn_ended, self._final = True, text.text
        self._commit_new(text.text, text.at)

    def _stop(self, stop: inp.StopRequested) -> None:
        reply = self._replies.current
        stopped = reply is not None and not reply.held
        if reply is not None and stopped:
            self._cut(reply, "stop_request")
            if self.state in (TurnState.THINKING, TurnState.SPEAKING, TurnState.PAUSED):
                self._enter(TurnState.LISTENING)
        if stop.request is not None:
            self._out.append(act.AnswerStop(stop.request, stopped))

    def _emit(self, event: ev.ServerEvent) -> None:
        self._out.append(act.Emit(event))
