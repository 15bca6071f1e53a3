"""One utterance of an embedded re-decoding recognizer, as an `AsrStream`.

Shared by the Whisper and pocketsphinx providers: it decides when to ask for a partial (every
`partial_interval` samples of new audio) and a final (at `finish()`), keeps the yielded transcripts in
order, applies the stable prefix, owns the decode tasks and turns failures into `ProviderError`. The
provider supplies a `DecodeSource` that snapshots the audio and runs the decode through the scheduler.

Ordering: a yielded transcript never covers fewer samples than the one before it. A partial that covers
more audio than a final still being decoded is not yielded (the final comes first, newer partials follow);
a final that completes after a later final has been yielded is dropped, since the later one covers it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from alice_voice.audio.frames import Pcm
from alice_voice.errors import ProviderError, ProviderTimeout
from alice_voice.speech.protocols import Transcript
from alice_voice.speech.stable_prefix import StablePrefix

Decode = Callable[[], Awaitable[str | None]]
"""A decode of a snapshot taken when it was requested; None when a newer request superseded it."""


class DecodeSource(Protocol):
    """The provider half of a stream: keeps the audio, and decodes it on request."""

    def push(self, pcm: Pcm, end: int) -> None:
        """`pcm` was appended; `end` samples have been pushed in all."""
        ...

    def request(self, end: int, final: bool) -> Decode | None:
        """Snapshot what a decode of the first `end` samples needs, now; the decode runs when awaited.

        None (partials only): nothing worth decoding was pushed since the last partial request.
        """
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StreamTiming:
    """How often to decode a partial, and how long a final may take."""

    partial_interval: int  # samples of new audio between partial requests
    final_timeout_s: float


_Item = Transcript | ProviderError | None


class DecodeStream:
    """A per-utterance `AsrStream` driving a `DecodeSource`."""

    def __init__(self, provider: str, source: DecodeSource, timing: StreamTiming) -> None:
        self.provider = provider
        self._source = source
        self._timing = timing
        self._pushed = 0
        self._next_partial = timing.partial_interval
        self._emitted = -1  # samples covered by the last yielded transcript
        self._finals_pending: list[int] = []
        self._last_partial: tuple[str, str] | None = None
        self._stable = StablePrefix()
        self._out: asyncio.Queue[_Item] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def pushed(self) -> int:
        return self._pushed

    def push(self, pcm16k: Pcm) -> None:
        if self._closed or len(pcm16k) == 0:
            return
        self._pushed += len(pcm16k)
        self._source.push(pcm16k, self._pushed)
        if self._pushed >= self._next_partial:
            self._next_partial = self._pushed + self._timing.partial_interval
            decode = self._source.request(self._pushed, final=False)
            if decode is not None:
                self._spawn(functools.partial(self._partial, decode, self._pushed))

    def finish(self) -> None:
        if self._closed:
            return
        end = self._pushed
        decode = self._source.request(end, final=True)
        if decode is None:
            raise RuntimeError("a decode source must always answer a final request")
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

    def _spawn(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        # A callable, not a coroutine: a task cancelled before it starts leaves no un-awaited coroutine.
        task = asyncio.get_running_loop().create_task(self._guard(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
            error = ProviderError(self.provider, f"decode failed: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            self._out.put_nowait(error)

    async def _partial(self, decode: Decode, end: int) -> None:
        hypothesis = await decode()
        if hypothesis is None or not hypothesis.strip() or end <= self._emitted:
            return
        if self._finals_pending and end > min(self._finals_pending):
            return
        text, stable = self._stable.update(hypothesis)
        if (text, stable) == self._last_partial:
            return
        self._last_partial = (text, stable)
        self._emitted = end
        self._out.put_nowait(Transcript(text=text, stable_text=stable, final=False, samples=end))

    async def _final(self, decode: Decode, end: int) -> None:
        try:
            async with asyncio.timeout(self._timing.final_timeout_s):
                hypothesis = await decode()
        finally:
            self._finals_pending.remove(end)
        if end < self._emitted:
            return
        text = " ".join((hypothesis or "").split())
        self._stable.finalize(text)
        self._last_partial = None
        self._emitted = end
        self._out.put_nowait(Transcript(text=text, stable_text=text, final=True, samples=end))
