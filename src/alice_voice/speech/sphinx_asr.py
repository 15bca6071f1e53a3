"""pocketsphinx en-us as a streaming recognizer: incremental search, partials from `hyp()`.

Decoders come from a process-wide pool filled in `load()`. Creating one loads the model and holds the
GIL for 0.3-0.7 s (measured: the event loop stalls for all of it even when a worker thread creates it),
so the pool is never grown while sessions run; a stream that finds it empty waits for a decoder to be
returned. A stream owns its decoder from its first decode until `aclose()`.

Audio is fed in 20 ms pieces inside scheduler jobs, because `process_raw` holds the GIL: small pieces let
the event loop run in between. A final is `hyp()` of everything fed so far, without ending the utterance
(with fwdflat and bestpath off it equals the `end_utt()` result: same text on all 39 test clips), so a
speculative finish costs nothing and more audio simply continues the search.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alice_voice.audio.frames import SPEECH_RATE, Pcm, rms
from alice_voice.compute import InferenceScheduler, JobRunner, Priority, Superseded
from alice_voice.config import Settings
from alice_voice.speech.decode_stream import Decode, DecodeStream, Heard, StreamTiming, partial_pressure

PROVIDER = "sphinx"
_PIECE = SPEECH_RATE // 50  # 20 ms


@dataclass(eq=False)
class DecoderSlot:
    """One decoder and whose utterance it holds. Use only with `lock` held."""

    decoder: Any
    initial_cmn: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    owner: object | None = None

    def decode(self, owner: object, chunks: list[Pcm]) -> str:
        if self.owner is not owner:
            if self.owner is not None:
                self.decoder.end_utt()
            # A pooled decoder serves many speakers: start each utterance from the model's cepstral mean.
            self.decoder.set_cmn(self.initial_cmn)
            self.decoder.start_utt()
            self.owner = owner
        for chunk in chunks:
            for i in range(0, len(chunk), _PIECE):
                self.decoder.process_raw(chunk[i:i + _PIECE].tobytes(), False, False)
                time.sleep(0)  # hand the GIL to the event loop between pieces instead of after 5 ms
        hypothesis = self.decoder.hyp()
        return str(hypothesis.hypstr) if hypothesis is not None else ""


def new_slot() -> DecoderSlot:
    """Create and warm one decoder (slow, holds the GIL: call at load time only)."""
    from pocketsphinx import Decoder

    decoder = Decoder(loglevel="ERROR", fwdflat=False, bestpath=False)
    slot = DecoderSlot(decoder, str(decoder.get_cmn()))
    warm_owner = object()
    noise = np.random.default_rng(0).normal(0, 300, SPEECH_RATE // 2).astype(np.int16)
    with slot.lock:
        slot.decode(warm_owner, [noise])
    return slot


class DecoderPool:
    """Process-wide decoders; `acquire` waits (on any event loop) for one to be released."""

    def __init__(self, slots: list[DecoderSlot]) -> None:
        self.size = len(slots)
        self._lock = threading.Lock()
        self._idle = list(slots)
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[DecoderSlot]]] = deque()

    def try_acquire(self) -> DecoderSlot | None:
        with self._lock:
            return self._idle.pop() if self._idle else None

    async def acquire(self) -> DecoderSlot:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._idle:
                return self._idle.pop()
            future: asyncio.Future[DecoderSlot] = loop.create_future()
            waiter = (loop, future)
            self._waiters.append(waiter)
        try:
            return await future
        except asyncio.CancelledError:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if future.done() and not future.cancelled():
                self.release(future.result())  # handed over just as we were cancelled
            raise

    def release(self, slot: DecoderSlot) -> None:
        with self._lock:
            if not self._waiters:
                self._idle.append(slot)
                return
            loop, future = self._waiters.popleft()
        try:
            loop.call_soon_threadsafe(self._hand_over, future, slot)
        except RuntimeError:
            self.release(slot)  # that waiter's loop is closed

    def _hand_over(self, future: asyncio.Future[DecoderSlot], slot: DecoderSlot) -> None:
        if future.done():
            self.release(slot)
        else:
            future.set_result(slot)


class _SphinxSource:
    """One utterance: audio not yet fed, and the decoder it goes to."""

    def __init__(self, asr: SphinxAsr) -> None:
        self._asr = asr
        self._key = object()
        self._slot = asr.pool.try_acquire()
        self._acquiring: asyncio.Task[DecoderSlot] | None = None
        self._unfed: deque[Pcm] = deque()
        self._fed = 0  # touched only by jobs, under the slot's lock
        self._loud_from: int | None = None
        self._released = False

    def push(self, pcm: Pcm, end: int) -> None:
        self._unfed.append(pcm)
        if self._loud_from is None and rms(pcm) >= self._asr.silence_rms:
            self._loud_from = end - len(pcm)

    def request(self, end: int, priority: Priority) -> Decode:
        loud = self._loud_from is not None and self._loud_from < end
        return functools.partial(self._decode, end, priority, loud)

    async def aclose(self) -> None:
        self._released = True
        slot = self._slot
        if slot is None and self._acquiring is not None:
            self._acquiring.cancel()
            results = await asyncio.gather(self._acquiring, return_exceptions=True)
            slot = results[0] if isinstance(results[0], DecoderSlot) else None
        self._slot = None
        if slot is not None:
            self._asr.pool.release(slot)

    async def _decode(self, end: int, priority: Priority, loud: bool) -> Heard | None:
        slot = await self._slot_ready()
        feed = functools.partial(self._feed, slot, end)
        try:  # a newer partial of this utterance replaces one still queued
            text = await self._asr.compute.run(priority, feed, key=None if priority is Priority.FINAL else self._key)
        except Superseded:
            return None
        return Heard(text if loud else "")  # the search finds words in faint noise ("if")

    async def _slot_ready(self) -> DecoderSlot:
        if self._slot is None:
            if self._acquiring is None:
                self._acquiring = asyncio.get_running_loop().create_task(self._asr.pool.acquire())
            self._slot = await asyncio.shield(self._acquiring)
        return self._slot

    def _feed(self, slot: DecoderSlot, end: int) -> str:
        with slot.lock:
            if self._released:
                return ""  # the decoder may already serve another stream
            # With several threads a newer job of this stream may take the lock first: then this one feeds
            # nothing and its hypothesis covers a little more than `end`. With one thread jobs run in order.
            chunks: list[Pcm] = []
            while self._fed < end:
                chunk = self._unfed.popleft()
                chunks.append(chunk)
                self._fed += len(chunk)
            return slot.decode(self._key, chunks)


class SphinxStream(DecodeStream):
    """One utterance on a pooled decoder; returns it on `aclose()`."""

    def __init__(self, asr: SphinxAsr) -> None:
        super().__init__(PROVIDER, _SphinxSource(asr), asr.timing)


class SphinxAsr:
    """Streaming pocketsphinx en-us over a pool of decoders."""

    name = "pocketsphinx"

    def __init__(self, pool: DecoderPool, compute: JobRunner, *, partial_interval_ms: int = 320,
                 first_partial_ms: int = 160, timeout_s: float = 10.0, silence_rms: float = 100.0) -> None:
        self.pool = pool
        self.compute = compute
        self.timing = StreamTiming(partial_interval_ms * SPEECH_RATE // 1000, timeout_s, partial_pressure(compute),
                                   first_partial_ms * SPEECH_RATE // 1000)
        self.silence_rms = silence_rms

    def stream(self) -> SphinxStream:
        return SphinxStream(self)


def load(settings: Settings, compute: InferenceScheduler) -> SphinxAsr:
    """One warmed decoder per possible session (about 95 MB and 0.3-0.7 s each), once per process."""
    pool = DecoderPool([new_slot() for _ in range(settings.max_sessions)])
    return SphinxAsr(pool, compute, partial_interval_ms=settings.asr_partial_interval_ms,
                     first_partial_ms=settings.asr_first_partial_ms, timeout_s=settings.asr_timeout_s)
