"""One reply's tool calls: when they may run, what the caller hears meanwhile, and what is recorded.

- A tool that changes things waits until the reply is settled: its turn is certain (the reply is
  committed) and can no longer go on (turn repair's window has passed). A reply may think and speak ahead,
  but sets no timer and calls no webhook for a turn the caller may still be in. A read-only tool runs at
  once. A dropped or cut reply cancels its task, and with it a call that is waiting or running.
- When a call has run `filler_after_s` without returning, the filler ("One moment.") is said, once per
  reply, so the caller is never left in silence; it is part of the reply, interruptible like it.
- Each call goes to the client as `tool.started` / `tool.finished`, to the metrics, and into `records`,
  which the history keeps with the reply (even one cut before a word of it was heard).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from alice_voice.clock import Clock
from alice_voice.conversation.events import ServerEvent, ToolFinished, ToolStarted
from alice_voice.metrics import Metrics
from alice_voice.tools import Toolbox, ToolContext, ToolOutcome, ToolSpec

_CANCELLED = "Cancelled while running (the caller interrupted): it may or may not have taken effect."


@dataclass(frozen=True, slots=True)
class SessionTools:
    """What every reply of a session calls tools with."""

    toolbox: Toolbox
    context: ToolContext
    metrics: Metrics
    clock: Clock
    filler_after_s: float  # 0: never
    log_content: bool = False


class ReplyToolCalls:
    def __init__(self, session: SessionTools, settled: asyncio.Event, emit: Callable[[ServerEvent], None],
                 say_filler: Callable[[], None], busy: Callable[[bool], None] = lambda _: None) -> None:
        """`busy(True)` when calls begin (waiting for the turn included), `busy(False)` when none is left:
        the agent's deadline does not run meanwhile (each tool has its own)."""
        self._session, self._settled, self._emit, self._say_filler = session, settled, emit, say_filler
        self._busy = busy
        self._active = 0
        self._filler_said = False
        self._done: list[ToolOutcome] = []
        self._running: dict[str, tuple[str, str, float]] = {}  # call id -> (name, arguments, started)

    @property
    def records(self) -> tuple[ToolOutcome, ...]:
        """The calls made so far; one still running counts as cancelled (the reply is being cut)."""
        now = self._session.clock.now()
        running = tuple(ToolOutcome(call_id, name, arguments, "cancelled", _CANCELLED, (now - started) * 1000)
                        for call_id, (name, arguments, started) in self._running.items())
        return (*self._done, *running)

    @property
    def specs(self) -> Sequence[ToolSpec]:
        phone = self._session.context.call is not None
        return [spec for spec in self._session.toolbox.specs if phone or not spec.phone_only]

    async def call(self, call_id: str, name: str, arguments: str) -> ToolOutcome:
        self._active += 1
        self._busy(True)
        try:
            return await self._call(call_id, name, arguments)
        finally:
            self._active -= 1
            if not self._active:
                self._busy(False)

    async def _call(self, call_id: str, name: str, arguments: str) -> ToolOutcome:
        session = self._session
        spec = session.toolbox.spec(name)
        if spec is not None and not spec.read_only:
            await self._settled.wait()
        self._emit(ToolStarted(call_id=call_id, name=name, arguments=arguments if session.log_content else None))
        started = self._session.clock.now()
        self._running[call_id] = (name, arguments, started)
        try:
            outcome = await self._run(call_id, name, arguments)
        except asyncio.CancelledError:
            self._finished(ToolOutcome(call_id, name, arguments, "cancelled", _CANCELLED,
                                       (self._session.clock.now() - started) * 1000))
            raise
        self._finished(outcome)
        return outcome

    async def _run(self, call_id: str, name: str, arguments: str) -> ToolOutcome:
        session = self._session
        async with asyncio.TaskGroup() as group:
            running = group.create_task(session.toolbox.run(call_id, name, arguments, session.context, session.clock))
            spec = session.toolbox.spec(name)
            if session.filler_after_s and not self._filler_said and (spec is None or spec.filler):
                done, _ = await asyncio.wait({running}, timeout=session.filler_after_s)
                if not done and not self._filler_said:  # (calls of one round run at once: one filler)
                    self._filler_said = True
                    self._say_filler()
        return running.result()

    def _finished(self, outcome: ToolOutcome) -> None:
        self._running.pop(outcome.call_id, None)
        self._done.append(outcome)
        metrics = self._session.metrics
        known = self._session.toolbox.spec(outcome.name) is not None
        tool = outcome.name if known else "(unknown)"  # the model's inventions get no label of their own
        metrics.tool_duration_ms.labels(tool=tool, outcome=outcome.outcome).observe(outcome.duration_ms)
        if not outcome.ok:
            metrics.tool_errors.labels(tool=tool, outcome=outcome.outcome).inc()
        self._emit(ToolFinished(call_id=outcome.call_id, name=outcome.name, outcome=outcome.outcome,
                                duration_ms=round(outcome.duration_ms, 1),
                                result=outcome.result if self._session.log_content else None))
