"""A session is one actor: one task drains one inbox into the turn policy, and the executor acts.

Library callbacks (the transport's audio reader, the outbound track's tick, a DataChannel message) only
put items in the inbox. The actor's task is the only one that changes the conversation's state, so the
conversation needs no locks and its order is the inbox's order. Every other task of the session (hearing
batches, the ASR reader, end-of-turn questions, replies) runs in the actor's TaskGroup: cancelling the
actor cancels and awaits them all.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from alice_voice.audio.beep import BeepDetector
from alice_voice.audio.echo_guard import EchoGuard, EchoGuardConfig
from alice_voice.audio.frames import SPEECH_RATE, PcmFrame
from alice_voice.audio.playout import Mark, Playout
from alice_voice.conversation import events as ev
from alice_voice.conversation.agents import Message
from alice_voice.conversation.policy import PolicyConfig, TurnPolicy
from alice_voice.conversation.policy import inputs as inp
from alice_voice.conversation.policy.actions import Action
from alice_voice.conversation.session.executor import Executor
from alice_voice.conversation.session.hearing import FrameVerdict, Hearing
from alice_voice.conversation.session.phone_call import Keypad, PhoneCall
from alice_voice.conversation.session.ports import CallOpening, Resources, SessionPort
from alice_voice.errors import RateLimited, SessionUnresponsive
from alice_voice.logs import SessionLogger
from alice_voice.rate_limit import TokenBucket
from alice_voice.tools import ToolContext
from alice_voice.tools.timers import SessionTimers, Timer

_STOP_ANSWER_S = 2.0
TYPED_TURN_BURST = 5  # typed turns (and Twilio key presses) a client may send at once
_FRAME_20MS = SPEECH_RATE // 50


@dataclass(frozen=True, slots=True)
class _AudioIn:
    frame: PcmFrame


@dataclass(frozen=True, slots=True)
class _Verdicts:
    verdicts: list[FrameVerdict]
    at: float


@dataclass(frozen=True, slots=True)
class _HearingFailed:
    error: Exception


_Item = inp.Input | Mark | _AudioIn | _Verdicts | _HearingFailed


class SessionActor:
    """One agent session's conversation (a `Conversation`)."""

    def __init__(self, res: Resources, port: SessionPort, log: SessionLogger,
                 observe: Callable[[Sequence[Action]], None] | None = None) -> None:
        """`observe`: shown every batch of the policy's actions before they are carried out (tests, tracing)."""
        settings = res.settings
        self._res, self._port, self._log = res, port, log
        self._inbox: asyncio.Queue[_Item] = asyncio.Queue()
        self.playout = Playout(buffer_ms=settings.playout_buffer_ms, on_mark=self._inbox.put_nowait)
        echo = EchoGuard(EchoGuardConfig(settings.echo_max_delay_ms, settings.echo_residual_ratio)) \
            if settings.echo_guard else None
        self.hearing = Hearing(res.models.vad.stream(), echo, res.compute)
        self._echo = echo is not None
        config = PolicyConfig.from_settings(settings, model_enabled=res.models.end_of_turn is not None,
                                            frame_samples=self.hearing.ring.frame_samples)
        self.policy = TurnPolicy(config)
        self.timers = SessionTimers(res.clock, self._timer_due)
        self.keypad = Keypad()
        self._beep = BeepDetector()  # (fed only while an answering machine's beep is awaited)
        line = port.phone_line
        call = PhoneCall(line.transfer, self.keypad, self._inbox.put_nowait, res.clock) if line is not None else None
        self.executor = Executor(res, self.hearing, self.playout, port, self._inbox.put_nowait, log,
                                 ToolContext(log.session_id, self.timers, call))
        self._requests = itertools.count(1)
        self._observe = observe
        self._typed_turns = TokenBucket(settings.typed_turns_per_s, TYPED_TURN_BURST, res.clock.now())
        self._frames_heard = 0
        self._closed = False

    # ---------- the Conversation interface ----------
    @property
    def source(self) -> Playout:
        return self.playout

    @property
    def pending(self) -> int:
        """Items waiting in the inbox."""
        return self._inbox.qsize()

    @property
    def history(self) -> list[Message]:
        return list(self.policy.history.messages)

    def deliver_audio(self, frame: PcmFrame) -> None:
        self._inbox.put_nowait(_AudioIn(frame))

    def handle_text(self, text: str) -> None:
        """A typed turn; raises `RateLimited` past `TYPED_TURNS_PER_S` (a person types a few a second)."""
        now = self._res.clock.now()
        if not self._typed_turns.take(1, now):
            raise RateLimited(f"too many typed turns: at most {self._res.settings.typed_turns_per_s:g} a second")
        self._inbox.put_nowait(inp.TextIn(text, now))

    def press_key(self, key: str) -> None:
        """To the digit collection waiting for it; else a typed turn (rate-limited like one)."""
        if not self.keypad.press(key):
            self.handle_text(f"Pressed {key}.")

    def announce(self, text: str) -> None:
        self._inbox.put_nowait(inp.Announce(text, False, self._res.clock.now()))

    def begin_call(self, opening: CallOpening) -> None:
        now = self._res.clock.now()
        if opening.brief:
            self._inbox.put_nowait(inp.Brief(opening.brief, now))
        if opening.answered_by == "machine":
            self._inbox.put_nowait(inp.Announce(opening.voicemail, True, now))
        elif opening.answered_by == "unknown":
            self._inbox.put_nowait(inp.Screen(opening.greeting, opening.voicemail, now))
        elif opening.greeting:
            self._inbox.put_nowait(inp.Announce(opening.greeting, False, now))

    def request_stop(self) -> None:
        self._inbox.put_nowait(inp.StopRequested(None, self._res.clock.now()))

    async def stop_tts(self) -> bool:
        request = next(self._requests)
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.executor.stops[request] = answer
        self._inbox.put_nowait(inp.StopRequested(request, self._res.clock.now()))
        try:
            async with asyncio.timeout(_STOP_ANSWER_S):
                return await answer
        except TimeoutError:
            raise SessionUnresponsive("the session did not answer the stop request") from None
        finally:
            self.executor.stops.pop(request, None)

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                self.executor.attach(group)
                while True:
                    self._take(await self._inbox.get(), group)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.timers.close()
        await self.executor.aclose()
        await self.hearing.aclose()

    # ---------- the inbox ----------
    def _take(self, item: _Item, group: asyncio.TaskGroup) -> None:
        try:
            match item:
                case _AudioIn():
                    self.hearing.push(item.frame)
                    if self.policy.listening_for_beep and self._beep.push(item.frame.samples):
                        self._decide(inp.BeepHeard(item.frame.arrival))
                case _Verdicts():
                    for v in item.verdicts:
                        self._decide(inp.Heard(v.index, v.arrival, v.prob, v.loudness, item.at))
                case _HearingFailed():
                    self._log.error("hearing failed: %s: %s", type(item.error).__name__, item.error)
                    self._port.emit(ev.ErrorEvent(code="hearing_failed", message="incoming audio could not be "
                                                  "analysed; the session goes on"))
                case _:
                    self._decide(item)
        except Exception:  # a defect must not end the call: say so, log it, and take the next item
            self._log.exception("session could not handle %s", type(item).__name__)
            self._port.emit(ev.ErrorEvent(code="internal", message="internal error; the session goes on"))
        if self.hearing.ready:
            played = list(self.playout.sent) if self._echo else []
            self.playout.sent.clear()
            group.create_task(self._hear(self.hearing.hear(played)))

    def _timer_due(self, timer: Timer) -> None:
        self._inbox.put_nowait(inp.ReminderDue(timer.reminder, self._res.clock.now()))

    def _decide(self, item: inp.Input) -> None:
        pending: deque[inp.Input] = deque([item])
        while pending:
            actions = self.policy.handle(pending.popleft())
            if self._observe is not None:
                self._observe(actions)
            pending.extend(self.executor.carry_out(actions))

    async def _hear(self, batch: Awaitable[list[FrameVerdict]]) -> None:
        try:
            verdicts = await batch
        except Exception as exc:
            self._inbox.put_nowait(_HearingFailed(exc))
            return
        heard = self.hearing.samples_heard // _FRAME_20MS  # whole 20 ms frames heard so far
        self._res.metrics.audio_frames.labels(stage="heard").inc(heard - self._frames_heard)
        self._frames_heard = heard
        self._inbox.put_nowait(_Verdicts(verdicts, self._res.clock.now()))

