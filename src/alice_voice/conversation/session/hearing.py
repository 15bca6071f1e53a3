"""One session's ears: incoming 16 kHz audio cut into VAD frames, our own echo taken out, then the VAD.

The event loop only cuts frames (`push`). The echo guard and the VAD run off it, as one HEARING job per
batch of frames (whatever arrived while the previous batch ran), one batch at a time: both keep state
across frames. The frames are kept for ~10 s by index, so the turn policy can refer to audio by frame
number (the ASR's feed, the end-of-turn model's window) without holding any of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable
from dataclasses import dataclass

import numpy as np

from alice_voice.audio.echo_guard import EchoGuard
from alice_voice.audio.frames import SPEECH_RATE, Framer, Pcm, PcmFrame, block_rms
from alice_voice.compute import JobRunner, Priority
from alice_voice.speech.protocols import VadStream

SUB_BLOCKS = 4  # loudness is measured on 8 ms sub-blocks of each 32 ms frame, to date the end of speech
_KEPT_S = 10.0


@dataclass(frozen=True, slots=True)
class FrameVerdict:
    """The VAD's verdict on one frame, and how loud each sub-block of what it heard was."""

    index: int
    arrival: float
    prob: float
    loudness: tuple[float, ...]


class FrameRing:
    """The last `capacity` frames, addressable by their index since the session began."""

    def __init__(self, frame_samples: int, capacity: int) -> None:
        self._frames = np.zeros((capacity, frame_samples), np.int16)
        self.frame_samples = frame_samples
        self._capacity = capacity
        self.end = 0  # index after the newest frame

    def append(self, samples: Pcm) -> None:
        self._frames[self.end % self._capacity] = samples
        self.end += 1

    def audio(self, start: int, end: int) -> Pcm:
        """Frames [start, end) as one array; frames no longer kept are left out."""
        start, end = max(start, self.end - self._capacity, 0), min(end, self.end)
        if end <= start:
            return np.zeros(0, np.int16)
        return self._frames[np.arange(start, end) % self._capacity].reshape(-1)


class Hearing:
    """Frames in on the loop; `hear()` runs the next batch through the echo guard and the VAD."""

    def __init__(self, vad: VadStream, echo: EchoGuard | None, compute: JobRunner) -> None:
        self._vad = vad
        self._echo = echo
        self._compute = compute
        self._framer = Framer(vad.frame_samples, SPEECH_RATE)
        self._pending: list[PcmFrame] = []
        self.ring = FrameRing(vad.frame_samples, int(_KEPT_S * SPEECH_RATE / vad.frame_samples))
        self._job: asyncio.Future[list[tuple[float, tuple[float, ...]]]] | None = None
        self.samples_heard = 0

    @property
    def ready(self) -> bool:
        """A batch could start: frames wait, and none is being heard."""
        return bool(self._pending) and (self._job is None or self._job.done())

    def push(self, chunk: PcmFrame) -> None:
        self._pending.extend(self._framer.push(chunk.samples, chunk.arrival))

    def hear(self, played: list[tuple[float, Pcm]]) -> Awaitable[list[FrameVerdict]]:
        """Claim every frame waiting, at once, and return their verdicts to await; `played`: 48 kHz frames
        sent since the last batch, with their send times (the echo guard's reference). Claiming here, not
        in a task, is what keeps batches one at a time and in order."""
        frames, self._pending = self._pending, []
        first = self.ring.end
        for frame in frames:
            self.ring.append(frame.samples)
        job = functools.partial(self._judge, [frame.samples for frame in frames], [f.arrival for f in frames],
                                played)
        self._job = asyncio.ensure_future(self._compute.run(Priority.HEARING, job))
        return self._verdicts(first, frames, self._job)

    async def _verdicts(self, first: int, frames: list[PcmFrame],
                        job: asyncio.Future[list[tuple[float, tuple[float, ...]]]]) -> list[FrameVerdict]:
        # Shielded: if the session is cancelled meanwhile, the batch still runs to its end, and `aclose`
        # waits for it before the VAD detector goes back to the pool (another session may take it next).
        results = await asyncio.shield(job)
        self.samples_heard += sum(len(frame.samples) for frame in frames)
        return [FrameVerdict(first + i, frame.arrival, prob, loudness)
                for i, (frame, (prob, loudness)) in enumerate(zip(frames, results, strict=True))]

    async def aclose(self) -> None:
        """Wait (bounded) for a batch still running, then give the VAD detector back."""
        if self._job is not None and not self._job.done():
            with contextlib.suppress(Exception, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._job), timeout=2.0)
        self._vad.close()

    def _judge(self, frames: list[Pcm], arrivals: list[float],
               played: list[tuple[float, Pcm]]) -> list[tuple[float, tuple[float, ...]]]:
        """Blocking, in a scheduler thread: echo guard, then VAD, frame by frame."""
        echo = self._echo
        if echo is not None:
            for sent_at, pcm48 in played:
                echo.played(pcm48, sent_at)
        out: list[tuple[float, tuple[float, ...]]] = []
        for samples, arrival in zip(frames, arrivals, strict=True):
            heard = samples if echo is None else echo.user_part(samples, arrival)
            if heard is None:  # all our own voice coming back
                out.append((0.0, (0.0,) * SUB_BLOCKS))
                continue
            loudness = tuple(float(v) for v in block_rms(heard, len(heard) // SUB_BLOCKS))
            out.append((self._vad.prob(heard), loudness))
        return out
