"""The conversation's rules, in one pure policy: typed inputs in, actions out. No I/O, clock or asyncio.

    listening ──speech──▶ user_speaking ──turn ended──▶ thinking ──first audio──▶ speaking ──done──▶ listening
                             ▲    │ silence: finish the ASR (a speculative final)                │
                             │    │ final: start the reply, held (speculative)                   │
                             │    │ speech resumed: cut the held reply                           │
                             └────┴──────────── speech while thinking or speaking: barge-in ◀────┘

- Speculation: the reply is prepared while the end of turn is being confirmed and plays only once the
  turn has ended; speech resuming first cuts it unheard.
- Barge-in: the first voiced frame over a playing reply pauses it; speech confirmed (vad_min_speech_ms)
  cuts it, and the history keeps only what was heard; an onset that never becomes speech (a cough)
  resumes it where it paused.
- Turn repair: speech within `turn_rejoin_ms` of an end of turn, while the reply to it has only begun,
  continues that turn: the reply is cut, the user's half-turn leaves the history, and the ASR decodes both
  halves as one utterance.
- A provider that fails ends the turn with an `error` event; the session listens again.
- An idle caller: after a reply, a long silence gets a prompt, and a longer one a farewell, then the end.
- A timer that is done is said at once if the caller is listening, else when they have finished and the
  reply has ended. The tool calls a reply made stay in the history with it, even when it was cut.

Replies are numbered, and every input about a reply names it, so news of a reply already replaced is
ignored. When and how speech starts and ends is `Endpointing`'s concern, driven from here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from alice_voice.conversation import events as ev
from alice_voice.conversation.agents import Message
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
from alice_voice.conversation.policy.overlap import Overlap, Verdict
from alice_voice.conversation.policy.words import sounds_unfinished
from alice_voice.conversation.timings import TurnTimings
from alice_voice.errors import AliceError
from alice_voice.tools import ToolOutcome


class TurnState(StrEnum):
    LISTENING = "listening"
    USER_SPEAKING = "user_speaking"
    THINKING = "thinking"
    SPEAKING = "speaking"
    PAUSED = "paused"  # the reply waits while the caller makes a sound over it


@dataclass
class _Reply:
    reply_id: int
    held: bool
    turn: TurnTimings | None
    audio_started: bool = False
    text: str = ""
    tools: tuple[ToolOutcome, ...] = ()
    error: AliceError | None = None
    agent_first_text: float | None = None
    tts_first_audio: float | None = None
    farewell: bool = False  # the session ends when it has been said
    reminder: str = ""  # a timer's reminder: said again later if it is cut before a word of it is heard


@dataclass(frozen=True, slots=True)
class _Cut:
    reason: act.CutReason
    turn: TurnTimings | None
    history_len: int  # where what was heard of it belongs in the history (a typed turn may follow at once)
    reminder: str = ""


@dataclass(frozen=True, slots=True)
class _Rejoinable:
    ended: float
    history_len: int
    text: str


class TurnPolicy:
    """One session's conversation state; `handle()` each input, carry out the returned actions in order."""

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self.state = TurnState.LISTENING
        self.history: list[Message] = []
        self._endpointing = Endpointing(config.endpointing)
        self._frame = config.endpointing.frame_samples
        self._out: list[act.Action] = []
        # the utterance's ASR stream: its id (0: none), frames fed, samples pushed, the final awaited
        self._stream = 0
        self._streams_opened = 0
        self._fed = 0
        self._pushed = 0
        self._finish_at: int | None = None
        self._turn_start = 0
        # the user's turn
        self._turn: TurnTimings | None = None
        self._final: str | None = None
        self._turn_ended = False
        self._partial = ""
        self._turns_reported = 0
        self._rejoinable: _Rejoinable | None = None
        # the reply, and replies being cut
        self._reply: _Reply | None = None
        self._replies_started = 0
        self._cuts: dict[int, _Cut] = {}
        self._onset: float | None = None  # first voiced frame of a possible barge-in (the reply is paused)
        self._cut_turn: TurnTimings | None = None  # a cut turn waiting for its first silent frame
        self._silenced_at: float | None = None
        # speech over a paused reply, until its words say what it is
        self._overlap: Overlap | None = None
        self._overlapped: _Reply | None = None
        self._overlap_rejoin: _Rejoinable | None = None
        self._rejoinable_before: _Rejoinable | None = None
        self._held_partial: ev.TranscriptPartial | None = None
        self._overlap_from = 0  # its first frame (with the pre-roll)
        self._overlap_skip = 0  # words of the utterance before, when the overlap is decoded on with it
        self._prefix = ""  # the utterance a continuation goes on with, when it was decoded apart
        self._frames_end = 0  # frames heard so far
        # an idle caller: silence since a reply ended, and whether they were asked if they are still there
        self._idle_since: float | None = None
        self._idle_prompted = False
        self._reminders: list[str] = []  # timers that are done, to be said when the caller is not speaking

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
                self._progress(item)
            case inp.ReplyFailed():
                self._reply_failed(item)
            case inp.ReplyCut():
                self._reply_cut(item)
            case inp.PlayoutMark():
                self._playout_mark(item)
            case inp.TextIn():
                self._text(item)
            case inp.StopRequested():
                self._stop(item)
            case inp.AsrFailed():
                self._asr_failed(item)
            case inp.ReminderDue():
                self._reminders.append(item.text)
                self._say_reminders()
        if self.state is not before:
            self._out += [act.SetState(self.state.value), act.Emit(ev.TurnStateChanged(state=self.state.value))]
        return self._out

    # ---------- hearing ----------
    def _heard(self, heard: inp.Heard) -> None:
        self._frames_end = heard.index + 1
        for event in self._endpointing.on_frame(heard.index, heard.arrival, heard.prob, heard.loudness):
            self._endpoint(event, heard)
        if self._endpointing.phase is Phase.SPEAKING and self._stream:
            self._feed(self._fed, heard.index + 1)  # this frame, and a pause that turned out not to end it
            if self._overlap is not None:
                self._settle_overlap(self._overlap.still_speaking(heard.arrival))
        self._say_reminders()
        self._watch_idle(heard.at)

    def _endpoint(self, event: Event, heard: inp.Heard) -> None:
        match event:
            case Onset():
                if self.config.barge_in_pause and self._audible():
                    self._onset = event.arrival
                    self._out.append(act.PausePlayout())
                    self.state = TurnState.PAUSED
            case OnsetLost():
                if self._onset is not None:
                    self._onset = self._silenced_at = None
                    self._out += [act.ResumePlayout(), act.Measure("replies_resumed", 1)]
                    self.state = TurnState.SPEAKING
            case SpeechStarted():
                self._speech_started(event, heard.index + 1)
            case SilenceStarted():
                self._emit(ev.SpeechStopped())
                if self._turn is not None:
                    self._turn.user_end = event.last_speech_arrival
                self._finish_asr()
            case SpeechResumed():
                self._speech_resumed()
            case AskEndOfTurn():
                self._out.append(act.AskEndOfTurn(event.ask_id, self._turn_start, heard.index + 1))
            case TurnEnded():
                self._turn_over(event, heard.at)

    def _speech_started(self, event: SpeechStarted, end: int) -> None:
        self._emit(ev.SpeechStarted())
        reply = self._reply
        if reply is not None and self.config.overlap.enabled and self._audible():
            self._begin_overlap(event, end, reply)
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
            del self.history[rejoin.history_len:]  # the user's cut-short turn goes on: it is not over yet
        self._new_turn(event.first_arrival)
        if rejoin is not None and self._stream:
            self._finish_at = None
            self._feed(max(self._fed, event.keep_from), end)
        else:
            self._open_stream(event.keep_from, end)

    def _new_turn(self, first_arrival: float, state: TurnState = TurnState.USER_SPEAKING) -> None:
        self.state, self._final, self._turn_ended, self._prefix = state, None, False, ""
        self._idle_since, self._idle_prompted = None, False
        self._turn = TurnTimings(user_start=first_arrival)
        self._partial, self._held_partial = "", None

    # ---------- speech over a playing reply ----------
    def _begin_overlap(self, event: SpeechStarted, end: int, reply: _Reply) -> None:
        """The reply waits, paused, while the caller's words are transcribed: see policy/overlap.py. If they
        may continue the utterance before, they are decoded on with it, in its stream (Whisper hears a
        sentence's second half far better with its first); otherwise in a stream of their own."""
        if self._onset is None:  # it did not pause on the onset (BARGE_IN_PAUSE off): it does now
            self._onset = event.first_arrival
            self._out.append(act.PausePlayout())
        if reply.turn is not None:
            reply.turn.barge_in_speech = self._onset
        self._rejoinable_before = self._rejoinable
        rejoin = self._rejoin_now(event.first_arrival)
        self._overlap = Overlap(event.first_arrival, self.config.overlap, rejoin.text if rejoin else None)
        self._overlapped, self._overlap_rejoin, self._overlap_from = reply, rejoin, event.keep_from
        self._new_turn(event.first_arrival, TurnState.PAUSED)
        if rejoin is not None and self._stream:
            self._overlap_skip = len(rejoin.text.split())
            self._finish_at = None
            self._feed(max(self._fed, event.keep_from), end)
        else:
            self._overlap_skip = 0
            self._open_stream(event.keep_from, end)

    def _overlap_words(self, text: str) -> str:
        """What the caller said over the reply, without the utterance before when decoded with it."""
        return " ".join(text.split()[self._overlap_skip:]) if self._overlap_skip else text

    def _settle_overlap(self, verdict: Verdict) -> None:
        """Not an acknowledgement: the reply is cut, and the caller's words are a turn (or go on with one)."""
        reply, rejoin = self._overlapped, self._overlap_rejoin
        if verdict in (Verdict.PENDING, Verdict.BACKCHANNEL) or reply is None:
            return
        self._overlap = self._overlapped = None
        held, self._held_partial = self._held_partial, None
        if verdict is Verdict.CONTINUATION and rejoin is not None:
            self._cut(reply, "rejoin")
            del self.history[rejoin.history_len:]  # the utterance the reply answered is not over yet
            self._prefix = "" if self._overlap_skip else rejoin.text
            self._out.append(act.Measure("turn_repairs", 1))
        else:
            self._cut(reply, "barge_in")
            self._out.append(act.Measure("interruptions", 1))
            if self._overlap_skip:  # a turn of its own: decoded again, alone, from its first frame
                self._open_stream(self._overlap_from, self._frames_end)
                if self._endpointing.phase is not Phase.SPEAKING:
                    self._finish_asr()
                held = None
        self._overlap_skip = 0
        self.state = TurnState.THINKING if self._turn_ended else TurnState.USER_SPEAKING
        if held is not None:
            self._emit(ev.TranscriptPartial(text=self._with_prefix(held.text), stable=self._with_prefix(held.stable)))

    def _resume_after_backchannel(self, text: str, at: float) -> None:
        """An acknowledgement: the reply goes on where it paused; the caller's sound is no turn."""
        overlap, reply = self._overlap, self._overlapped
        assert overlap is not None and reply is not None
        spoken_until = self._turn.user_end if self._turn is not None and self._turn.user_end else at
        self._emit(ev.Backchannel(text=text, duration_ms=round((spoken_until - overlap.first_arrival) * 1000)))
        self._out += [act.ResumePlayout(), act.Measure("backchannels", 1), act.Measure("replies_resumed", 1),
                      act.CloseAsr(self._stream), act.WithdrawEndOfTurn()]
        self._overlap = self._overlapped = None
        self._stream, self._finish_at, self._overlap_skip = 0, None, 0
        self._endpointing.reset()
        self._onset = self._silenced_at = None
        if reply.turn is not None:
            reply.turn.barge_in_speech = None
        self._turn, self._rejoinable = reply.turn, self._rejoinable_before
        self._final, self._turn_ended, self._partial, self._held_partial = None, False, "", None
        self.state = TurnState.SPEAKING

    def _with_prefix(self, text: str) -> str:
        """The utterance a continuation goes on with, then the continuation, as one sentence: "What is 7?" and
        "Times 8?" make "What is 7 times 8?" (the recognizer punctuated each part as a whole)."""
        if not self._prefix or not text:
            return text or self._prefix
        head = self._prefix.rstrip(" .?!…")
        tail = text if text.startswith(("I ", "I'")) else text[0].lower() + text[1:]
        return f"{head} {tail}"

    def _speech_resumed(self) -> None:
        self._emit(ev.SpeechStarted())
        self._finish_at = None
        self._out.append(act.WithdrawEndOfTurn())
        if self.state is TurnState.USER_SPEAKING:
            self._final = None
            if self._reply is not None and self._reply.held:
                self._cut(self._reply, "speech_resumed")

    def _end_of_turn_answer(self, answer: inp.EndOfTurnAnswer) -> None:
        if answer.prob is None:  # the model failed (the executor logged why): ask again, or the fallback ends it
            self._endpointing.on_failed_answer(answer.ask_id)
            return
        for event in self._endpointing.on_answer(answer.ask_id, answer.prob):
            if isinstance(event, TurnEnded):
                self._turn_over(event, answer.at)

    def _turn_over(self, event: TurnEnded, at: float) -> None:
        self._finish_asr()  # already asked when silence began, unless speech resumed since
        self._out.append(act.WithdrawEndOfTurn())  # a question still pending (the fallback ended it) is moot
        if self._turn is not None:
            self._turn.user_end, self._turn.turn_ended = event.last_speech_arrival, at
            self._out.append(act.Measure("end_of_turn_ms", (at - event.last_speech_arrival) * 1000))
        if self._overlap is not None:
            self._turn_ended = True  # what it was is for its final to say
            return
        if self.state is not TurnState.USER_SPEAKING:
            return
        self.state, self._turn_ended = TurnState.THINKING, True
        if self._final is None:
            return  # the final decode is not back yet
        if self._reply is not None and self._reply.held:
            self._commit(self._final, at)
        else:
            self._commit_new(self._final, at)

    def _rejoin_now(self, speech_arrival: float) -> _Rejoinable | None:
        """Did the user just go on with the turn that was taken as ended? (A pause read as an end.)"""
        rejoin, self._rejoinable = self._rejoinable, None
        window = self.config.turn_rejoin_ms / 1000
        if rejoin is None or self._reply is None or self._reply.held or speech_arrival - rejoin.ended > window:
            return None
        return rejoin

    # ---------- the utterance's ASR stream ----------
    def _open_stream(self, start: int, end: int) -> None:
        self._streams_opened += 1
        self._stream = self._streams_opened
        self._out.append(act.OpenAsr(self._stream, start, end))
        self._fed, self._pushed, self._finish_at, self._turn_start = end, (end - start) * self._frame, None, start

    def _feed(self, start: int, end: int) -> None:
        if end > start:
            self._out.append(act.FeedAsr(self._stream, start, end))
            self._pushed += (end - start) * self._frame
            self._fed = end

    def _finish_asr(self) -> None:
        if self._stream and self._finish_at != self._pushed:
            self._finish_at = self._pushed
            self._out.append(act.FinishAsr(self._stream))

    def _transcript(self, t: inp.TranscriptIn) -> None:
        if t.stream != self._stream:
            return  # from an utterance already closed
        if t.final:
            if t.samples == self._finish_at:  # else a speculative final that speech has since overtaken
                self._final_ready(" ".join(t.text.split()), t.at)
            return
        text = t.text.strip()
        if not text or text == self._partial:
            return
        self._partial = text
        turn = self._turn
        if turn is not None and turn.first_partial is None:
            turn.first_partial = t.at
            self._out.append(act.Measure("first_partial_ms", (t.at - turn.user_start) * 1000))
        partial = ev.TranscriptPartial(text=text, stable=t.stable.strip())
        if self._overlap is not None:
            self._held_partial = partial  # shown once it is known not to be an acknowledgement
            # Only the stable part counts: a first pass over 200 ms of "mm-hmm" can read "Amen" or a whole
            # sentence, which the next pass takes back.
            heard_ms = (t.at - self._overlap.first_arrival) * 1000  # (at most: the decode took some of it)
            self._settle_overlap(self._overlap.heard_words(self._overlap_words(partial.stable), heard_ms))
            return
        self._emit(ev.TranscriptPartial(text=self._with_prefix(text), stable=self._with_prefix(partial.stable)))

    def _final_ready(self, text: str, at: float) -> None:
        if self._turn is not None:
            self._turn.final_ready = at
        if self._overlap is not None:
            reopens = self._overlap_skip > 0
            spoken_until = self._turn.user_end if self._turn is not None and self._turn.user_end else at
            verdict = self._overlap.final(self._overlap_words(text),
                                          (spoken_until - self._overlap.first_arrival) * 1000)
            if verdict is Verdict.BACKCHANNEL:
                self._resume_after_backchannel(self._overlap.text, at)  # the words it was decided on
                return
            self._settle_overlap(verdict)
            if verdict is Verdict.INTERRUPTION and reopens:
                return  # its own final, decoded alone, follows
        text = self._with_prefix(text)
        waiting = self.state is TurnState.THINKING and self._reply is None
        if self.state is not TurnState.USER_SPEAKING and not waiting:
            return
        self._final = text
        if self._turn_ended:
            self._commit_new(text, at)
            return
        if self._reply is None:
            self._start_reply(text, held=True, at=at)
        for event in self._endpointing.on_words(sounds_unfinished(text)):  # the words' say on the turn's end
            if isinstance(event, TurnEnded):
                self._turn_over(event, at)

    def _asr_failed(self, failure: inp.AsrFailed) -> None:
        if failure.stream != self._stream:
            return
        self._out.append(act.Report(failure.error))
        if self._reply is not None:
            self._cut(self._reply, "superseded")
        self._out += [act.CloseAsr(self._stream), act.WithdrawEndOfTurn()]
        self._stream, self._finish_at = 0, None
        self._endpointing.reset()
        self.state, self._final, self._turn_ended = TurnState.LISTENING, None, False

    # ---------- replies ----------
    def _audible(self) -> bool:
        return self._reply is not None and not self._reply.held and self._reply.audio_started

    def _start_reply(self, text: str, *, held: bool, at: float) -> None:
        if self._reply is not None:
            self._cut(self._reply, "superseded")
        self._replies_started += 1
        self._reply = _Reply(self._replies_started, held, self._turn)
        if self._turn is not None:
            self._turn.reply_started = at
        self._out.append(act.StartReply(self._replies_started, text, tuple(self.history), held))

    def _commit_new(self, text: str, at: float) -> None:
        self._start_reply(text, held=False, at=at)
        self._commit(text, at)

    def _commit(self, text: str, at: float) -> None:
        reply = self._reply
        if reply is None:
            return
        spoken = self._turn is not None and not self._turn.text_turn
        if spoken:
            self._emit(ev.TranscriptFinal(text=text))
        self._rejoinable = _Rejoinable(at, len(self.history), text) if spoken else None
        self._remember(Message("user", text))
        self._out.append(act.Measure("turns", 1))
        if reply.held:
            reply.held = False
            self._out.append(act.CommitReply(reply.reply_id))
        if reply.error is not None:
            self._fail(reply, reply.error)

    def _cut(self, reply: _Reply, reason: act.CutReason) -> None:
        if reply is self._reply:
            self._reply = None
        if reply is self._overlapped:  # stopped, failed or replaced while the caller spoke over it
            self._overlap = self._overlapped = None
            if self.state is TurnState.PAUSED:
                self.state = TurnState.USER_SPEAKING
        self._cuts[reply.reply_id] = _Cut(reason, reply.turn, len(self.history), reply.reminder)
        self._out.append(act.CutReply(reply.reply_id, reason))

    def _fail(self, reply: _Reply, error: AliceError) -> None:
        self._out.append(act.Report(error))
        self._cut(reply, "error")
        if self.state in (TurnState.THINKING, TurnState.SPEAKING):
            self.state = TurnState.LISTENING

    def _progress(self, progress: inp.ReplyProgress) -> None:
        reply = self._reply
        if reply is None or reply.reply_id != progress.reply_id:
            return
        if progress.stage == "agent_first_text":
            reply.agent_first_text = progress.at
        elif progress.stage == "tts_first_audio":
            reply.tts_first_audio = progress.at
        else:
            reply.text, reply.tools = progress.text, progress.tools

    def _reply_failed(self, failure: inp.ReplyFailed) -> None:
        reply = self._reply
        if reply is None or reply.reply_id != failure.reply_id:
            return
        if reply.held:
            reply.error = failure.error  # reported if the turn is confirmed, dropped if it is not
        else:
            self._fail(reply, failure.error)

    def _reply_cut(self, cut: inp.ReplyCut) -> None:
        why = self._cuts.pop(cut.reply_id, None)
        if why is None:
            return
        if why.reminder and not cut.heard:
            self._reminders.insert(0, why.reminder)  # not heard at all: told again when the caller is done
        if cut.tools and why.reason in ("error", "rejoin"):  # what its tools did happened: the model must know
            self._remember(Message("assistant", "", cut.tools), at=None if why.reason == "rejoin" else why.history_len)
        if why.reason == "error":
            if cut.started:
                self._emit(ev.TtsStopped(reason="error", heard=cut.heard))
            self._finish_turn(why.turn)
            return
        if why.reason not in ("barge_in", "stop_request", "rejoin"):
            return  # a held reply nobody heard of, or one replaced by another: nothing to report
        self._emit(ev.TtsStopped(reason="stop_request" if why.reason == "stop_request" else "barge_in",
                                 heard=cut.heard))
        if (cut.heard or cut.tools) and why.reason != "rejoin":
            self._remember(Message("assistant", cut.heard, cut.tools), at=why.history_len)
        if cut.started:
            self._cut_turn = why.turn  # its metrics go out once the cut is heard as silence
            self._settle_cut()  # at once if the reply was already paused on the onset
        else:
            self._finish_turn(why.turn)

    def _playout_mark(self, mark: inp.PlayoutMark) -> None:
        if mark.kind == "silenced":
            if self._onset is not None or self._cut_turn is not None:  # else a silence nobody waits for
                self._silenced_at = mark.at
                self._settle_cut()
            return
        reply = self._reply
        if reply is None or reply.reply_id != mark.reply_id:
            return
        if mark.kind == "first_frame":
            self._first_audio(reply, mark.at)
            return
        self._reply = None
        if mark.started:
            self._emit(ev.TtsStopped(reason="done", heard=reply.text.strip()))
        self._remember(Message("assistant", reply.text.strip(), reply.tools))
        if self.state in (TurnState.THINKING, TurnState.SPEAKING, TurnState.PAUSED):
            self.state = TurnState.LISTENING
        self._finish_turn(reply.turn)
        if reply.farewell:
            self._emit(ev.SessionEnding(reason="idle"))
            self._out.append(act.EndSession("idle"))
        else:
            self._idle_since = mark.at

    def _first_audio(self, reply: _Reply, at: float) -> None:
        reply.audio_started = True
        turn = reply.turn
        if turn is not None:
            turn.first_audio_sent = at
            turn.agent_first_text, turn.tts_first_audio = reply.agent_first_text, reply.tts_first_audio
            if turn.user_end is not None:
                self._out.append(act.Measure("first_audio_ms", (at - turn.user_end) * 1000))
        self._emit(ev.TtsStarted())
        if self.state is TurnState.THINKING:
            self.state = TurnState.SPEAKING

    def _settle_cut(self) -> None:
        """A cut reply's turn is reported once both the cut and its first silent frame are known."""
        turn, silenced = self._cut_turn, self._silenced_at
        if turn is None or silenced is None:
            return
        self._cut_turn = self._silenced_at = None
        if turn.barge_in_speech is not None:
            turn.barge_in_silenced = silenced
            self._out.append(act.Measure("barge_in_ms", (silenced - turn.barge_in_speech) * 1000))
        self._finish_turn(turn)

    # ---------- an idle caller ----------
    def _watch_idle(self, at: float) -> None:
        rules = self.config.idle
        if self._idle_since is None or self._reply is not None or self.state is not TurnState.LISTENING:
            return
        waited = at - self._idle_since
        if not self._idle_prompted and rules.prompt_s and waited >= rules.prompt_s:
            self._idle_prompted = True
            self._say(rules.prompt)
        elif (self._idle_prompted or not rules.prompt_s) and rules.end_s and waited >= rules.end_s:
            self._say(rules.farewell, farewell=True)

    def _say_reminders(self) -> None:
        """A timer that is done is told at once, or when the caller has finished and the reply has ended."""
        if self._reminders and self._reply is None and self.state is TurnState.LISTENING \
                and self._endpointing.phase is Phase.IDLE:
            text, self._reminders = " ".join(self._reminders), []
            self._say(text, reminder=True)

    def _say(self, text: str, *, farewell: bool = False, reminder: bool = False) -> None:
        """The gateway's own words, spoken like a reply (interruptible like one), answering no turn."""
        self._idle_since = None
        self._replies_started += 1
        self._reply = _Reply(self._replies_started, held=False, turn=None, farewell=farewell,
                             reminder=text if reminder else "")
        self._out.append(act.StartReply(self._replies_started, text, tuple(self.history), held=False, verbatim=True))
        self.state = TurnState.THINKING

    # ---------- the client ----------
    def _text(self, text: inp.TextIn) -> None:
        self._idle_since, self._idle_prompted = None, False
        if self._reply is not None:
            self._cut(self._reply, "superseded" if self._reply.held else "barge_in")
        self._turn = TurnTimings(user_start=text.at, user_end=text.at, turn_ended=text.at, text_turn=True)
        self.state, self._turn_ended, self._final = TurnState.THINKING, True, text.text
        self._commit_new(text.text, text.at)

    def _stop(self, stop: inp.StopRequested) -> None:
        reply = self._reply
        stopped = reply is not None and not reply.held
        if reply is not None and stopped:
            self._cut(reply, "stop_request")
            if self.state in (TurnState.THINKING, TurnState.SPEAKING):
                self.state = TurnState.LISTENING
        if stop.request is not None:
            self._out.append(act.AnswerStop(stop.request, stopped))

    # ---------- bookkeeping ----------
    def _finish_turn(self, turn: TurnTimings | None) -> None:
        if turn is None:
            return
        self._turns_reported += 1
        self._out.append(act.FinishTurn(self._turns_reported, turn.report(), dataclasses.asdict(turn)))

    def _remember(self, message: Message, at: int | None = None) -> None:
        self.history.insert(len(self.history) if at is None else min(at, len(self.history)), message)
        del self.history[:-self.config.max_history]

    def _emit(self, event: ev.ServerEvent) -> None:
        self._out.append(act.Emit(event))
