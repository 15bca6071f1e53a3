"""One session's conversation: listener -> turn machine -> replies, with events, history and timings.

The pipeline turns what the listener hears into turn-machine inputs, carries out the machine's actions
(open/finish the ASR, start/commit/cancel replies), and reports everything to the client as DataChannel
events. It knows the providers only by their protocols.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from alice_voice.audio.frames import Pcm, PcmFrame
from alice_voice.audio.playout import Playout
from alice_voice.audio.playout import Reply as PlayedReply
from alice_voice.clock import Clock
from alice_voice.config import Settings
from alice_voice.conversation import events as ev
from alice_voice.conversation.agent import Agent, Message
from alice_voice.conversation.echo_guard import EchoGuard, EchoGuardConfig
from alice_voice.conversation.endpointer import (
    Endpointer,
    EndpointerConfig,
    SilenceStarted,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
)
from alice_voice.conversation.listener import Listener
from alice_voice.conversation.reply import Reply, ReplyDeadlines
from alice_voice.conversation.timings import TurnTimings
from alice_voice.conversation.turns import Action, CancelReason, CancelReply, CommitReply, StartReply, TurnMachine
from alice_voice.errors import AliceError, ProviderError
from alice_voice.logs import SessionLogger
from alice_voice.metrics import Metrics
from alice_voice.speech.protocols import Transcript
from alice_voice.speech.registry import SpeechModels

_MAX_HISTORY = 40


@dataclass(frozen=True)
class Resources:
    """What every session shares: loaded once per process."""

    settings: Settings
    models: SpeechModels
    agent: Agent
    eot_executor: Executor
    metrics: Metrics
    clock: Clock


@dataclass(frozen=True, slots=True)
class _Rejoinable:
    ended: float
    history_len: int


class _TappedPlayout:
    """The outbound frame source: playout, with each sent frame shown to the echo guard."""

    def __init__(self, playout: Playout, echo: EchoGuard | None, clock: Clock) -> None:
        self._playout, self._echo, self._clock = playout, echo, clock

    def next_frame(self) -> Pcm:
        frame = self._playout.next_frame()
        if self._echo is not None:
            self._echo.played(frame, self._clock.now())
        return frame


class VoicePipeline:
    def __init__(self, res: Resources, emit: Callable[[ev.ServerEvent], None],
                 set_state: Callable[[str], None], turn_done: Callable[[dict[str, float]], None],
                 log: SessionLogger) -> None:
        self._res, self._emit, self._set_state, self._turn_done, self._log = res, emit, set_state, turn_done, log
        settings = res.settings
        self.playout = Playout(buffer_ms=settings.playout_buffer_ms)
        self.playout.on_first_frame = self._first_audio
        self.playout.on_finished = self._played_out
        self.playout.on_silenced = self._silenced
        self.echo = EchoGuard(EchoGuardConfig(settings.echo_max_delay_ms, settings.echo_residual_ratio)) \
            if settings.echo_guard else None
        self.source = _TappedPlayout(self.playout, self.echo, res.clock)
        self.machine = TurnMachine()
        self.history: list[Message] = []
        endpointer = Endpointer(EndpointerConfig.from_settings(settings),
                                model_enabled=res.models.end_of_turn is not None)
        self.listener = Listener(vad=res.models.vad.stream(), endpointer=endpointer, asr=res.models.asr,
                                 end_of_turn=res.models.end_of_turn, eot_executor=res.eot_executor, sink=self,
                                 log=log, hear=self._is_user)
        self._deadlines = ReplyDeadlines(agent_s=settings.agent_timeout_s, tts_s=settings.tts_timeout_s)
        self._reply: Reply | None = None
        self._reply_task: asyncio.Task[None] | None = None
        self._reply_error: ProviderError | None = None
        self._next_reply_id = 0
        self._turn: TurnTimings | None = None
        self._cut_turn: TurnTimings | None = None
        self._onset: float | None = None  # first speech frame of a possible barge-in
        self._rejoinable: _Rejoinable | None = None  # the last spoken turn, while it may still go on
        self._silenced_at: float | None = None  # first frame without reply audio after a pause or cut
        self._turn_number = 0
        self._partial = ""

    # ---------- the session's conversation interface ----------
    def deliver_audio(self, frame: PcmFrame) -> None:
        self.listener.push(frame)

    def handle_text(self, text: str) -> None:
        self._turn = TurnTimings(user_start=self._res.clock.now(), text_turn=True)
        self._turn.user_end = self._turn.turn_ended = self._turn.user_start
        self._apply(self.machine.text_turn(text))

    def stop_tts(self) -> bool:
        actions = self.machine.stop_requested()
        self._apply(actions)
        return bool(actions)

    async def run(self) -> None:
        await asyncio.Event().wait()  # everything is event-driven; this holds the session's slot

    async def aclose(self) -> None:
        self._cancel_reply("superseded")
        await self.listener.aclose()

    # ---------- what the listener hears ----------
    def _is_user(self, frame: PcmFrame) -> Pcm | None:
        return frame.samples if self.echo is None else self.echo.user_part(frame.samples, frame.arrival)

    def speech_onset(self, arrival: float) -> None:
        if self.playout.playing and self._res.settings.barge_in_pause:
            self._onset = arrival
            self.playout.pause()

    def onset_lost(self) -> None:
        if self._onset is not None:
            self._onset = self._silenced_at = None
            self.playout.resume()

    def speech_started(self, event: SpeechStarted) -> bool:
        self._emit(ev.SpeechStarted())
        if self.machine.reply == "committed" and self._turn is not None:
            self._turn.barge_in_speech = self._onset or event.first_speech_arrival
        self._onset = None
        rejoin = self._rejoin_now(event.first_speech_arrival)
        self._apply(self.machine.speech_started())
        if rejoin is not None:
            del self.history[rejoin.history_len:]  # the user's cut-short turn and the reply begun to it
        self._turn = TurnTimings(user_start=event.first_speech_arrival)
        self._partial = ""
        return rejoin is not None

    def silence_started(self, event: SilenceStarted) -> None:
        self._emit(ev.SpeechStopped())
        if self._turn is not None:
            self._turn.user_end = event.last_speech_arrival
        self._apply(self.machine.silence_started())

    def speech_resumed(self, event: SpeechResumed) -> None:
        self._emit(ev.SpeechStarted())
        self._apply(self.machine.speech_resumed())

    def turn_ended(self, event: TurnEnded) -> None:
        if self._turn is not None:
            self._turn.user_end = event.last_speech_arrival
            self._turn.turn_ended = self._res.clock.now()
        self._apply(self.machine.turn_ended())

    def transcript(self, transcript: Transcript, final_expected: bool) -> None:
        turn = self._turn
        if transcript.final:
            if final_expected:
                if turn is not None:
                    turn.final_ready = self._res.clock.now()
                self._apply(self.machine.final_ready(transcript.text.strip()))
            return
        text = transcript.text.strip()
        if not text or text == self._partial:
            return
        self._partial = text
        if turn is not None and turn.first_partial is None:
            turn.first_partial = self._res.clock.now()
            self._res.metrics.first_partial_ms.observe((turn.first_partial - turn.user_start) * 1000)
        self._emit(ev.TranscriptPartial(text=text, stable=transcript.stable_text.strip()))

    def failed(self, error: ProviderError) -> None:
        """The recognizer failed: the utterance is lost, the session listens again."""
        self._report(error)
        self._cancel_reply("superseded")
        self.machine = TurnMachine()
        self._set_state(self.machine.state.value)

    def _rejoin_now(self, speech_arrival: float) -> _Rejoinable | None:
        """Did the user just go on with the turn that was taken as ended? (A pause read as an end.)"""
        rejoin, self._rejoinable = self._rejoinable, None
        window = self._res.settings.turn_rejoin_ms / 1000
        if rejoin is None or self.machine.reply != "committed" or speech_arrival - rejoin.ended > window:
            return None
        return rejoin

    # ---------- actions ----------
    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, StartReply):
                self._start_reply(action.text, held=not action.committed)
            elif isinstance(action, CommitReply):
                self._commit(action.text)
            elif isinstance(action, CancelReply):
                self._cancel_reply(action.reason)
        self._set_state(self.machine.state.value)

    def _start_reply(self, text: str, held: bool) -> None:
        self._cancel_reply("superseded")
        self._next_reply_id += 1
        self._reply = Reply(self._next_reply_id, text, list(self.history), self._res.agent,
                            self._res.models.tts, self.playout, self._res.clock, self._emit, self._deadlines, held)
        self._reply_error = None
        if self._turn is not None:
            self._turn.reply_started = self._reply.timings.started
        self._reply_task = asyncio.create_task(self._produce(self._reply), name=f"reply-{self._next_reply_id}")

    async def _produce(self, reply: Reply) -> None:
        try:
            await reply.run()
        except ProviderError as exc:
            if reply is not self._reply:
                return
            if reply.held:
                self._reply_error = exc  # reported if the turn is confirmed, dropped if it is not
            else:
                self._reply_failed(exc)

    def _commit(self, text: str) -> None:
        reply = self._reply
        if reply is None:
            return
        spoken = self._turn is not None and not self._turn.text_turn
        if spoken:
            self._emit(ev.TranscriptFinal(text=text))
        if self._res.settings.log_content:  # words stay out of logs unless asked for (privacy)
            self._log.debug("user said: %r", text)
        self._rejoinable = _Rejoinable(self._res.clock.now(), len(self.history)) if spoken else None
        self._remember(Message("user", text))
        self._res.metrics.turns_total.inc()
        reply.commit()
        if self._reply_error is not None:
            self._reply_failed(self._reply_error)

    def _cancel_reply(self, reason: CancelReason) -> None:
        reply, task = self._reply, self._reply_task
        self._reply = self._reply_task = None
        if task is not None:
            task.cancel()
        if reply is None:
            return
        playing = self.playout.reply
        cut = self.playout.flush() if playing is not None and playing.reply_id == reply.reply_id else None
        if reason not in ("barge_in", "stop_request"):
            return  # a held reply nobody heard of, or one replaced by another: nothing to report
        heard = cut.heard_text() if cut is not None and cut.started else ""
        self._emit(ev.TtsStopped(reason=reason, heard=heard))
        if heard:
            self._remember(Message("assistant", heard))
        if cut is not None and cut.started:
            self._cut_turn = self._turn  # its metrics go out once the cut is heard as silence
            self._settle_cut()  # at once if the reply was already paused on the onset
        else:
            self._finish_turn(self._turn)

    def _reply_failed(self, error: ProviderError) -> None:
        self._report(error)
        self._reply = self._reply_task = None
        cut = self.playout.flush()
        if cut is not None and cut.started:
            self._emit(ev.TtsStopped(reason="error", heard=cut.heard_text()))
        self.machine.reply_finished()
        self._set_state(self.machine.state.value)
        self._finish_turn(self._turn)

    # ---------- playout callbacks (from the outbound track's tick) ----------
    def _first_audio(self, played: PlayedReply) -> None:
        turn = self._turn
        now = self._res.clock.now()
        if turn is not None and self._reply is not None and played.reply_id == self._reply.reply_id:
            turn.first_audio_sent = now
            turn.agent_first_text = self._reply.timings.agent_first_text
            turn.tts_first_audio = self._reply.timings.tts_first_audio
            if turn.user_end is not None:
                self._res.metrics.first_audio_ms.observe((now - turn.user_end) * 1000)
        self._emit(ev.TtsStarted())
        self.machine.reply_audio_started()
        self._set_state(self.machine.state.value)

    def _played_out(self, played: PlayedReply) -> None:
        reply = self._reply
        if reply is None or played.reply_id != reply.reply_id:
            return
        self._reply = self._reply_task = None
        if played.started:
            self._emit(ev.TtsStopped(reason="done"))
        if self._res.settings.log_content:
            self._log.debug("assistant said: %r", reply.spoken_text)
        self._remember(Message("assistant", reply.spoken_text.strip()))
        self.machine.reply_finished()
        self._set_state(self.machine.state.value)
        self._finish_turn(self._turn)

    def _silenced(self, played: PlayedReply) -> None:
        """The first frame without reply audio (after a pause or a cut) has been handed to the sender."""
        self._silenced_at = self._res.clock.now()
        self._settle_cut()

    def _settle_cut(self) -> None:
        """A cut reply's turn is reported once both the cut and its first silent frame are known."""
        turn, silenced = self._cut_turn, self._silenced_at
        if turn is None or silenced is None:
            return
        self._cut_turn = self._silenced_at = None
        if turn.barge_in_speech is not None:
            turn.barge_in_silenced = silenced
            self._res.metrics.barge_in_ms.observe((silenced - turn.barge_in_speech) * 1000)
        self._finish_turn(turn)

    # ---------- bookkeeping ----------
    def _finish_turn(self, turn: TurnTimings | None) -> None:
        if turn is None:
            return
        self._turn_number += 1
        timings = turn.report()
        self._emit(ev.TurnMetrics(turn=self._turn_number, timings=timings))
        self._turn_done(timings)

    def _remember(self, message: Message) -> None:
        self.history.append(message)
        del self.history[:-_MAX_HISTORY]

    def _report(self, error: AliceError) -> None:
        provider = getattr(error, "provider", "unknown")
        self._log.warning("turn failed: %s (%s)", error.code, provider)
        self._res.metrics.provider_failures.labels(provider=provider, code=error.code).inc()
        self._emit(ev.ErrorEvent(code=error.code, message=error.message))
