"""PCM frames on the hot path (int16 mono numpy) and the fixed-size framer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]

WEBRTC_RATE = 48_000
WEBRTC_FRAME_SAMPLES = 960  # 20 ms at 48 kHz
SPEECH_RATE = 16_000


@dataclass(frozen=True, slots=True)
class PcmFrame:
    """Mono int16 audio at `rate`, stamped with its arrival on the gateway's monotonic clock (s)."""

    samples: Pcm
    rate: int
    arrival: float

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate


def empty_pcm() -> Pcm:
    return np.zeros(0, dtype=np.int16)


def to_int16(samples: npt.NDArray[np.floating]) -> Pcm:
    """Float [-1, 1] to int16, clipped."""
    return np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)


def rms(samples: Pcm) -> float:
    if len(samples) == 0:
        return 0.0
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def continue_quiet(samples: Pcm, more: int, tail: int) -> Pcm:
    """`samples` followed by `more` samples of their own last `tail` samples, repeated: a pause that ends
    the audio, carried on for as long as the pause is yet to last with the room's own sound (its noise
    floor, which a model hears differently from digital zeros)."""
    if more <= 0 or len(samples) == 0:
        return samples
    quiet = samples[-tail:] if tail > 0 else samples[-1:]
    return np.concatenate([samples, np.resize(quiet, more)])


def block_rms(samples: Pcm, block: int) -> npt.NDArray[np.float64]:
    """The RMS of each whole `block` of `samples`, in order (a trailing part block is left out)."""
    n = len(samples) // block
    blocks: npt.NDArray[np.float64] = samples[:n * block].astype(np.float64).reshape(n, block)
    levels: npt.NDArray[np.float64] = np.sqrt((blocks ** 2).mean(axis=1))
    return levels


class Framer:
    """Cuts a stream of arbitrary-length chunks into frames of exactly `size` samples.

    Each frame keeps the arrival time of the chunk that completed it.
    """

    def __init__(self, size: int, rate: int) -> None:
        self.size = size
        self.rate = rate
        self._pending = empty_pcm()

    def push(self, samples: Pcm, arrival: float) -> list[PcmFrame]:
        buf = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        n = len(buf) // self.size
        frames = [PcmFrame(buf[i * self.size:(i + 1) * self.size], self.rate, arrival) for i in range(n)]
        self._pending = buf[n * self.size:].copy()
        return frames

    def reset(self) -> None:
        self._pending = empty_pcm()
