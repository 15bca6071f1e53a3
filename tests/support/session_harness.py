"""The virtual-clock session harness: one real session actor (turn policy, executor, hearing, replies,
playout, tool calls) driven by scripted providers, with no model, thread or network, on virtual time.

Tests that use it are marked `VIRTUAL_TIME` (support/virtual_time.py): the event loop's own clock is
virtual (the `looptime` plugin), so every deadline, filler, timer and reply timeout of the session runs
on it, and time only moves on when everything due at this instant has run. The harness is the
transport: every 20 ms it hands the session one microphone frame and takes one frame from its playout,
as the paced outbound track would. Tests script what the user says (`say`, `pause`, `noise`) and what the
providers do, then assert the ordered events, actions and audio. A hundred spoken exchanges take about
0.6 s of real time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alice_voice.audio.frames import Pcm, PcmFrame
from alice_voice.config import Settings
from alice_voice.conversation.events import ServerEvent
from alice_voice.conversation.policy import actions as act
from alice_voice.conversation.session.actor import SessionActor
from alice_voice.conversation.session.ports import Resources
from alice_voice.logs import session_logger
from alice_voice.metrics import Metrics
from alice_voice.speech.completeness import load_weights
from alice_voice.speech.registry import SpeechModels
from alice_voice.tools import Toolbox
from alice_voice.tools.call_control import LineAbilities
from alice_voice.tracing import TurnTracer
from fakes.scripted import (
    FRAME,
    InlineCompute,
    ScriptedAgent,
    ScriptedAsr,
    ScriptedEndOfTurn,
    ScriptedTts,
    ScriptedVad,
    ScriptedVoice,
)
from support.virtual_time import LoopClock

TICK_S = 0.02
COMPLETENESS = load_weights()  # the real text model: pure, deterministic, ~20 µs a call
_INSTANT_S = 1e-6  # looptime's resolution: the smallest step of virtual time


@dataclass
class RecordingPort:
    """The gateway's side of the session: records every event, state and finished turn."""

    clock: LoopClock
    events: list[dict[str, Any]] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    turns: list[dict[str, float]] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    transferred_to: list[str] = field(default_factory=list)
    phone_line: LineAbilities | None = None  # a phone call's (None: a browser's session)

    def emit(self, event: ServerEvent) -> None:
        self.events.append({**event.to_dict(), "at": self.clock.now()})

    def set_state(self, state: str) -> None:
        self.states.append(state)

    def turn_done(self, timings: dict[str, float]) -> None:
        self.turns.append(timings)

    def end(self, reason: str, transfer_to: str = "") -> None:
        self.ended.append(reason)
        if transfer_to:
            self.transferred_to.append(transfer_to)


class SessionHarness:
    def __init__(self, *, agent: ScriptedAgent | None = None, tts: ScriptedTts | None = None,
                 end_of_turn: ScriptedEndOfTurn | None = None, tools: Toolbox | None = None,
                 tracer: TurnTracer | None = None, phone_line: LineAbilities | None = None,
                 **settings: Any) -> None:
        """`phone_line`: the session is a phone call's, whose line can do this."""
        self.clock = LoopClock()
        self.voice = ScriptedVoice()
        self.asr = ScriptedAsr(self.voice)
        self.vad = ScriptedVad()
        self.agent = agent or ScriptedAgent()
        self.tts = tts or ScriptedTts()
        self.end_of_turn = end_of_turn or ScriptedEndOfTurn()
        self.compute = InlineCompute()
        self.metrics = Metrics()
        self.settings = Settings(**{"echo_guard": False, **settings})
        models = SpeechModels(vad=self.vad, asr=self.asr, tts=self.tts, end_of_turn=self.end_of_turn,
                              completeness=COMPLETENESS)
        resources = Resources(self.settings, models, self.agent, self.compute, self.metrics, self.clock,
                              tools or Toolbox(), tracer or TurnTracer())
        self.port = RecordingPort(self.clock, phone_line=phone_line)
        self.actions: list[tuple[float, act.Action]] = []
        self.actor = SessionActor(resources, self.port, session_logger("alice_voice.test", "harness"),
                                  observe=lambda actions: self.actions.extend((self.clock.now(), a) for a in actions))
        self.sent: list[tuple[float, Pcm]] = []  # what the outbound track took, with the virtual time
        self._mic: deque[Pcm] = deque()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SessionHarness:
        self._task = asyncio.create_task(self.actor.run())
        await self.settle()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    # ---------- the user ----------
    def say(self, text: str, ms: int) -> None:
        self._queue(self.voice.speak(text, ms))

    def pause(self, ms: int) -> None:
        self._queue(np.zeros(ms * 16, np.int16))

    def sound(self, pcm: Pcm) -> None:
        """Any 16 kHz audio (a tone, a beep), after what is queued."""
        self._queue(pcm)

    def noise(self, ms: int, level: int = 5000) -> None:
        self._queue(np.full(ms * 16, level, np.int16))

    def _queue(self, pcm: Pcm) -> None:
        padded = np.pad(pcm, (0, -len(pcm) % FRAME))
        self._mic.extend(padded[i:i + FRAME] for i in range(0, len(padded), FRAME))

    # ---------- time ----------
    async def run(self, ms: int) -> None:
        for _ in range(round(ms / 20)):
            await self.tick()

    async def run_until(self, done: Callable[[], bool], max_ms: int = 10_000) -> None:
        for _ in range(round(max_ms / 20)):
            if done():
                return
            await self.tick()
        raise AssertionError(f"not reached within {max_ms} ms of virtual time")

    async def run_until_event(self, type_: str, max_ms: int = 10_000, **match: Any) -> dict[str, Any]:
        seen = len(self.port.events)
        await self.run_until(lambda: self._find(type_, seen, match) is not None, max_ms)
        found = self._find(type_, seen, match)
        assert found is not None
        return found

    async def tick(self) -> None:
        """20 ms: a microphone frame in, a playout frame out, and everything due meanwhile runs."""
        now = self.clock.now()
        frame = self._mic.popleft() if self._mic else np.zeros(FRAME, np.int16)
        self.actor.deliver_audio(PcmFrame(frame, 16_000, now))
        self.sent.append((now, self.actor.playout.next_frame(now)))
        await asyncio.sleep(TICK_S)

    async def settle(self) -> None:
        """Let everything due at this instant run (virtual time moves on only when nothing is left)."""
        await asyncio.sleep(_INSTANT_S)

    # ---------- what happened ----------
    def events(self, *types: str) -> list[dict[str, Any]]:
        return [e for e in self.port.events if not types or e["type"] in types]

    def types(self, *types: str) -> list[str]:
        return [e["type"] for e in self.events(*types)]

    def done(self, *kinds: type) -> list[act.Action]:
        return [a for _, a in self.actions if not kinds or isinstance(a, kinds)]

    def audible_ms(self, since: float = 0.0) -> int:
        """Reply audio sent since `since` (virtual time), in ms."""
        return 20 * sum(1 for t, frame in self.sent if t >= since and frame.any())

    def _find(self, type_: str, after: int, match: dict[str, Any]) -> dict[str, Any] | None:
        for event in self.port.events[after:]:
            if event["type"] == type_ and all(event.get(k) == v for k, v in match.items()):
                return event
        return None
