"""Carries out the turn policy's actions: the one place the conversation touches providers and playout.

Every task it starts belongs to the session's TaskGroup (the actor's), so closing the session cancels and
awaits them all. A task never raises into the group: what it learns (a transcript, an answer, a failure of
any kind) goes back to the policy as an input through `post`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

from alice_voice.audio.frames import SPEECH_RATE, continue_quiet
from alice_voice.audio.playout import Playout
from alice_voice.compute import Priority, Superseded
from alice_voice.conversation import events as ev
from alice_voice.conversation.policy import actions as act
from alice_voice.conversation.policy import inputs as inp
from alice_voice.conversation.session.hearing import Hearing
from alice_voice.conversation.session.ports import Resources, SessionPort
from alice_voice.conversation.session.reply import Reply, ReplyDeadlines, ReplyTools, Stage
from alice_voice.conversation.session.tool_calls import SessionTools
from alice_voice.errors import AliceError, ProviderError
from alice_voice.logs import SessionLogger
from alice_voice.speech.protocols import AsrStream
from alice_voice.tools import ToolContext, ToolOutcome

_CLOSE_S = 2.0


class Executor:
    def __init__(self, res: Resources, hearing: Hearing, playout: Playout, port: SessionPort,
                 post: Callable[[inp.Input], None], log: SessionLogger, tool_context: ToolContext) -> None:
        self._res, self._hearing, self._playout, self._port, self._post, self._log = (
            res, hearing, playout, port, post, log)
        settings = res.settings
        session_tools = SessionTools(res.tools, tool_context, res.metrics, res.clock, settings.tool_filler_ms / 1000,
                                     settings.log_content) if settings.tools and len(res.tools) else None
        self._tools = ReplyTools(res.agent, res.models.tts, playout, res.compute,
                                 ReplyDeadlines(agent_s=settings.agent_timeout_s, tts_s=settings.tts_timeout_s),
                                 session_tools, settings.tool_filler_text)
        self._asr_model = res.models.recognizer(phone_call=port.phone_line is not None)
        self._group: asyncio.TaskGroup | None = None
        self._asr: tuple[int, AsrStream] | None = None
        self._closing: set[asyncio.Task[None]] = set()  # ASR streams being closed: never cut short
        self._asking: asyncio.Task[None] | None = None
        self._reply: tuple[Reply, asyncio.Task[None]] | None = None  # the policy has one reply at a time
        self.stops: dict[int, asyncio.Future[bool]] = {}

    def attach(self, group: asyncio.TaskGroup) -> None:
        self._group = group

    def carry_out(self, actions: list[act.Action]) -> list[inp.Input]:
        """Do each action in order; returns what the policy must hear at once (the outcome of a cut)."""
        feedback: list[inp.Input] = []
        for action in actions:
            match action:
                case act.Emit():
                    self._port.emit(action.event)
                case act.SetState():
                    self._port.set_state(action.state)
                case act.OpenAsr() | act.FeedAsr() | act.FinishAsr():
                    feedback += self._asr_call(action)
                case act.CloseAsr():
                    self._close_asr()
                case act.AskEndOfTurn():
                    self._ask_end_of_turn(action)
                case act.WithdrawEndOfTurn() if self._asking is not None:
                    self._asking.cancel()
                case act.StartReply():
                    self._start_reply(action)
                case act.CommitReply() if self._reply and self._reply[0].reply_id == action.reply_id:
                    self._reply[0].commit()  # its production may be over already: its audio waits, held
                case act.SettleReply() if self._reply and self._reply[0].reply_id == action.reply_id:
                    self._reply[0].settle()
                case act.CutReply():
                    feedback.append(self._cut(action))
                case act.PausePlayout():
                    self._playout.pause()
                case act.ResumePlayout():
                    self._playout.resume()
                case act.Measure():
                    self._measure(action)
                case act.FinishTurn():
                    self._port.emit(ev.TurnMetrics(turn=action.number, timings=action.timings))
                    self._port.turn_done(action.timings)
                    self._trace(action)
                case act.Report():
                    self._report(action.error)
                case act.EndSession():
                    self._port.end(action.reason, action.transfer_to)
                case act.AnswerStop() if action.request in self.stops:
                    self.stops.pop(action.request).set_result(action.stopped)
        return feedback

    async def aclose(self) -> None:
        """After the group is done: close the ASR streams (bounded), which hold decodes and pooled decoders."""
        self._close_asr()
        if self._closing:
            await asyncio.wait(self._closing, timeout=_CLOSE_S)

    # ---------- ASR ----------
    def _asr_call(self, action: act.OpenAsr | act.FeedAsr | act.FinishAsr) -> list[inp.Input]:
        """Open, feed or finish the utterance's stream; a recognizer that raises fails the utterance."""
        try:
            if isinstance(action, act.OpenAsr):
                self._open_asr(action)
            elif self._asr is not None and self._asr[0] == action.stream:
                if isinstance(action, act.FeedAsr):
                    self._asr[1].push(self._hearing.ring.audio(action.start, action.end))
                else:
                    self._asr[1].finish()
        except Exception as exc:
            error = ProviderError.wrap(exc, self._asr_model.name)
            return [inp.AsrFailed(action.stream, error, self._res.clock.now())]
        return []

    def _open_asr(self, action: act.OpenAsr) -> None:
        self._close_asr()
        stream = self._asr_model.stream()
        self._asr = (action.stream, stream)
        self._spawn(self._read_transcripts(action.stream, stream))
        stream.push(self._hearing.ring.audio(action.start, action.end))

    def _close_asr(self) -> None:
        # Not a task of the group: cancelling the session must not cut a close short (it would leave the
        # stream's decodes running); `aclose` awaits what is still closing.
        if self._asr is not None:
            stream, self._asr = self._asr[1], None
            closing = asyncio.ensure_future(stream.aclose())
            self._closing.add(closing)
            closing.add_done_callback(self._closed_stream)

    def _closed_stream(self, task: asyncio.Task[None]) -> None:
        self._closing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.warning("ASR stream did not close cleanly: %s", task.exception())

    async def _read_transcripts(self, stream_id: int, stream: AsrStream) -> None:
        now = self._res.clock.now
        completeness = self._res.models.completeness
        try:
            async for t in stream:
                words = t.grounded_text if t.grounded_text is not None else t.text
                complete = completeness.prob_complete(words) if t.final and words.strip() else None  # ~20 µs
                self._post(inp.TranscriptIn(stream_id, t.text, t.stable_text, t.final, t.samples, now(), complete))
        except Exception as exc:
            self._post(inp.AsrFailed(stream_id, ProviderError.wrap(exc, self._asr_model.name), now()))

    # ---------- end of turn ----------
    def _ask_end_of_turn(self, action: act.AskEndOfTurn) -> None:
        model = self._res.models.end_of_turn
        if model is None:
            return
        if self._asking is not None:
            self._asking.cancel()  # out of date: a job not yet started is withdrawn
        frame = self._hearing.ring.frame_samples
        audio = continue_quiet(self._hearing.ring.audio(action.start, action.end),
                               round(action.pad_ms * SPEECH_RATE / 1000), frame)
        self._asking = self._spawn(self._end_of_turn(action.ask_id, functools.partial(model.prob_complete, audio)))

    async def _end_of_turn(self, ask_id: int, question: Callable[[], float]) -> None:
        prob: float | None = None
        try:
            prob = await self._res.compute.run(Priority.END_OF_TURN, question, key=("end_of_turn", id(self)))
        except Superseded:
            return
        except Exception as exc:  # a broken model must not end the session: the fallback still ends turns
            self._log.warning("end-of-turn model failed: %s: %s", type(exc).__name__, exc)
        self._post(inp.EndOfTurnAnswer(ask_id, prob, self._res.clock.now()))

    # ---------- replies ----------
    def _start_reply(self, action: act.StartReply) -> None:
        reply_id = action.reply_id
        progress = functools.partial(self._progress, reply_id)
        reply = Reply(reply_id, action.text, action.history, self._tools, self._port.emit, progress, action.held,
                      action.verbatim, action.settled)
        self._reply = (reply, self._spawn(self._produce(reply)))
        if self._res.settings.log_content:  # words stay out of logs unless asked for (privacy)
            self._log.debug("reply %d to: %r", reply_id, action.text)

    async def _produce(self, reply: Reply) -> None:
        try:
            await reply.run()
        except Exception as exc:  # any failure, not only a ProviderError: an ONNX or TTS engine error too
            error = ProviderError.wrap(exc, "internal")
            self._post(inp.ReplyFailed(reply.reply_id, error, self._res.clock.now()))

    def _progress(self, reply_id: int, stage: Stage, text: str, tools: tuple[ToolOutcome, ...]) -> None:
        self._post(inp.ReplyProgress(reply_id, stage, self._res.clock.now(), text, tools))

    def _cut(self, action: act.CutReply) -> inp.ReplyCut:
        tools: tuple[ToolOutcome, ...] = ()
        if self._reply is not None and self._reply[0].reply_id == action.reply_id:
            self._reply[1].cancel()  # the group awaits it; its queued synthesis and tool calls are withdrawn
            tools = self._reply[0].tool_records  # a call cancelled now is recorded when its task unwinds
            self._reply = None
        playing, finished = self._playout.reply, self._playout.finished
        if playing is not None and playing.reply_id == action.reply_id:
            cut = self._playout.flush()
        else:  # it may have played out a moment ago, its "finished" mark still in the inbox: all of it was heard
            cut = finished if finished is not None and finished.reply_id == action.reply_id else None
        started = cut is not None and cut.started
        heard = cut.heard_text() if cut is not None and started else ""
        return inp.ReplyCut(action.reply_id, started, heard, self._res.clock.now(), tools)

    # ---------- reporting ----------
    def _measure(self, action: act.Measure) -> None:
        metrics = self._res.metrics
        counters = {"turns": metrics.turns_total, "backchannels": metrics.backchannels,
                    "interruptions": metrics.interruptions, "turn_repairs": metrics.turn_repairs,
                    "replies_resumed": metrics.replies_resumed,
                    "answered_by_human": metrics.answered_by.labels(answered_by="human"),
                    "answered_by_machine": metrics.answered_by.labels(answered_by="machine")}
        if action.name in counters:
            counters[action.name].inc(action.value)
            return
        histogram = {"first_partial_ms": metrics.first_partial_ms, "first_audio_ms": metrics.first_audio_ms,
                     "barge_in_ms": metrics.barge_in_ms, "end_of_turn_ms": metrics.end_of_turn_ms,
                     "screening_ms": metrics.machine_detection_ms}[action.name]
        histogram.observe(action.value)

    def _trace(self, finished: act.FinishTurn) -> None:
        try:  # an exporter's trouble must not cost the actions after this one
            self._res.tracer.turn(self._log.session_id, finished.number, finished.marks)
        except Exception as exc:
            self._log.warning("turn %d not traced: %s: %s", finished.number, type(exc).__name__, exc)

    def _report(self, error: AliceError) -> None:
        provider = getattr(error, "provider", "unknown")
        self._log.warning("turn failed: %s (%s): %s", error.code, provider, error.message)
        self._res.metrics.provider_failures.labels(provider=provider, code=error.code).inc()
        self._port.emit(ev.ErrorEvent(code=error.code, message=error.message))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        if self._group is None:
            coro.close()
            raise RuntimeError("the session is not running")
        return self._group.create_task(coro)

