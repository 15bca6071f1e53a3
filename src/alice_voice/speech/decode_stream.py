"""One utterance of an embedded re-decoding recognizer, as an `AsrStream`.

Shared by the Whisper and pocketsphinx providers: it decides when to ask for a partial and a final (at
`finish()`), and at which priority, keeps the yielded transcripts in order, applies the stable prefix,
owns the decode tasks and turns failures into `ProviderError`. The provider supplies a `DecodeSource`
that snapshots the audio and runs the decode through the inference scheduler.

Until an utterance's first words are shown, a partial is asked for every `first_partial` samples (the
moment the caller's words appear), then every `partial_interval` samples: a later pass costs as much as the first (the
encoder window is fixed) and mostly adds a word, so they come as often as words do, not as often as the
first one. Partials adapt to load too: each interval is stretched by the
`pressure` (how many partials already wait per thread that runs them), so a busy box decodes each
utterance less often instead of queueing passes that would be out of date before they ran. An
utterance's first partial goes at a higher priority than later ones: the caller sees their words appear.
A final withdraws the partials still queued: it covers their audio.

Ordering: a yielded transcript never covers fewer samples than the one before it. A partial that covers
more audio than a final still being decoded is not yielded (the final comes first, newer partials follow);
a final that completes after a later final has been yielded is dropped, since the later one covers it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from alice_voice.audio.frames import Pcm
from alice_voice.compute import InferenceScheduler, JobRunner, Priority
from alice_voice.errors import ProviderError, ProviderTimeout
from alice_voice.speech.protocols import Transcript
from alice_voice.speech.stable_prefix import StablePrefix


@dataclass(frozen=True, slots=True)
class Heard:
    """What one decode heard: its text, and (where the recognizer can tell) that text less the trailing
    words the audio does not hold (`Transcript.grounded_text`); `kept`: what the recognizer kept of the
    decode to find those words later, if asked (opaque here)."""

    text: str
    grounded: str | None = None
    kept: object | None = field(default=None, compare=False, repr=False)


Decode = Callable[[], Awaitable[Heard | None]]
"""A decode of a snapshot taken when it was requested; None when a newer request superseded it."""


class DecodeSource(Protocol):
    """The provider half of a stream: keeps the audio, and decodes it on request."""

    def push(self, pcm: Pcm, end: int) -> None:
        """`pcm` was appended; `end` samples have been pushed in all."""
        ...

    def request(self, end: int, priority: Priority) -> Decode | None:
        """Snapshot what a decode of the first `end` samples needs, now; the decode runs when awaited, at
        `priority` (FINAL, FIRST_PARTIAL or PARTIAL).

        None (partials only): nothing worth decoding was pushed since the last partial request.
        """
        ...

    async def aclose(self) -> None: ...


def _no_pressure() -> float:
    return 1.0


_PARTIALS = (Priority.FIRST_PARTIAL, Priority.PARTIAL)


def partial_pressure(compute: JobRunner) -> Callable[[], float]:
    """Partial decodes queued or running per thread that runs them (>= 1 stretches the cadence); none
    for a runner that is not the inference scheduler (a test's)."""
    if not isinstance(compute, InferenceScheduler):
        return _no_pressure
    threads = compute.lane_threads(Priority.PARTIAL)
    return lambda: compute.backlog(_PARTIALS) / threads


@dataclass(frozen=True, slots=True)
class StreamTiming:
    """How often to decode a partial, and how long a final may take."""

    partial_interval: int  # samples of new audio between partial requests, on an idle machine
    final_timeout_s: float
    pressure: Callable[[], float] = _no_pressure  # >= 1: stretches the interval under load
    first_partial: int | None = None  # samples before the first partial request (None: `partial_interval`)


_Item = Transcript | ProviderError | None


class DecodeStream:
    """A per-utterance `AsrStream` driving a `DecodeSource`."""

    def __init__(self, provider: str, source: DecodeSource, timing: StreamTiming) -> None:
        self.provider = provider
        self._source = source
        self._timing = timing
        self._pushed = 0
        self._next_partial = self._until_words
        self._emitted = -1  # samples covered by the last yielded transcript
        self._partial_tasks: set[asyncio.Task[None]] = set()
        self._finals_pending: list[int] = []
        self._last_partial: tuple[str, str] | None = None
        self._partial_yielded = False
        self._stable = StablePrefix()
        self._out: asyncio.Queue[_Item] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def _until_words(self) -> int:
        """The cadence until the first words are shown."""
        first = self._timing.first_partial
        return self._timing.partial_interval if first is None else first

    @property
    def pushed(self) -> int:
        return self._pushed

    def push(self, pcm16k: Pcm) -> None:
        if self._closed or len(pcm16k) == 0:
            return
        self._pushed += len(pcm16k)
        self._source.push(pcm16k, self._pushed)
        if self._pushed >= self._next_partial:
            stretch = max(1.0, self._timing.pressure())
            interval = self._timing.partial_interval if self._partial_yielded else self._until_words
            self._next_partial = self._pushed + int(interval * stretch)
            priority = Priority.PARTIAL if self._partial_yielded else Priority.FIRST_PARTIAL
            decode = self._source.request(self._pushed, priority)
            if decode is not None:
                task = self._spawn(functools.partial(self._partial, decode, self._pushed))
                self._partial_tasks.add(task)
                task.add_done_callback(self._partial_tasks.discard)

    def finish(self) -> None:
        if self._closed:
            return
        end = self._pushed
        decode = self._source.request(end, Priority.FINAL)
        if decode is None:
            raise RuntimeError("a decode source must always answer a final request")
        for task in self._partial_tasks:
            task.cancel()  # the final covers their audio; those not started yet are withdrawn
        self._finals_pending.append(end)
        self._spawn(functools.partial(self._final, decode, end))

    def __aiter__(self) -> AsyncIterator[Transcript]:
        return self._iterate()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            try:
                await self._source.aclose()
            finally:
                self._out.put_nowait(None)

    async def _iterate(self) -> AsyncIterator[Transcript]:
        while (item := await self._out.get()) is not None:
            if isinstance(item, ProviderError):
                raise item
            yield item

    def _spawn(self, work: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Task[None]:
        # A callable, not a coroutine: a task cancelled before it starts leaves no un-awaited coroutine.
        task = asyncio.get_running_loop().create_task(self._guard(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        try:
            await work()
        except ProviderError as exc:
            self._out.put_nowait(exc)
        except TimeoutError as exc:
            error: ProviderError = ProviderTimeout(self.provider, "no final before asr_timeout_s")
            error.__cause__ = exc
            self._out.put_nowait(error)
        except Exception as exc:
            self._out.put_nowait(ProviderError.wrap(exc, self.provider))

    async def _partial(self, decode: Decode, end: int) -> None:
        heard = await decode()
        if heard is None or not heard.text.strip() or end <= self._emitted:
            return
        if self._finals_pending and end > min(self._finals_pending):
            return
        text, stable = self._stable.update(heard.text)
        if (text, stable) == self._last_partial:
            return
        self._last_partial = (text, stable)
        self._partial_yielded = True
        self._emitted = end
        self._out.put_nowait(Transcript(text=text, stable_text=stable, final=False, samples=end))

    async def _final(self, decode: Decode, end: int) -> None:
        try:
            async with asyncio.timeout(self._timing.final_timeout_s):
                heard = await decode()
        finally:
            self._finals_pending.remove(end)
        if end < self._emitted:
            return
        text = " ".join((heard.text if heard else "").split())
        grounded = " ".join(heard.grounded.split()) if heard and heard.grounded is not None else None
        self._stable.finalize(text)
        self._last_partial = None
        self._emitted = end
        self._out.put_nowait(Transcript(text=text, stable_text=text, final=True, samples=end, grounded_text=grounded))
