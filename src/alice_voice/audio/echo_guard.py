"""Echo protection, the gateway's second line behind the browser's echo cancellation.

The guard keeps what the session sent in the last second (at 16 kHz, stamped with the send time). For
each incoming frame it finds the delayed, scaled copy of that output that best explains it: the best
lag by cross-correlation, then the least-squares gain g minimizing |x - g·r|². If the residual holds
less than `residual_ratio` of the frame's energy, the frame is the assistant hearing itself and the VAD
never sees it. Opus rebuilds noisy sounds (fricatives) from their spectral envelope, not their waveform,
so those echoes do not correlate; a second, spectral test catches them: once some frames have
correlated, the guard knows the echo's delay and gain, and a frame is echo unless it is louder, in most
frequency bands, than what the output around that delay could produce at that gain (plus `margin_db`).
An echo path is first learnt from two correlating frames that agree on its delay: one frame of the
user's own voice can match some slice of the reply by chance, and a gain learnt from it would hold the
user to the assistant's loudness for seconds. Once learnt, the delay can jump (a client's jitter buffer
grows by a few hundred ms after a stall): a correlating frame off by more than the spectral test's
spread moves it there at once, and the search reaches 600 ms, so a 240 ms echo path that grows by
300 ms is followed.
A client whose own echo cancellation works never sends a correlating frame, so the spectral test never
applies to it and its user is never held to the assistant's loudness; the learnt gain fades if the
echo path goes away. Otherwise the VAD is given
the residual, a crude echo subtraction. Real speech over the echo is louder than the echo in most bands
and survives the subtraction almost whole, so it still interrupts.

Costs one FFT correlation of ~11k samples and ~50 short FFTs per 32 ms frame while the assistant is
speaking, nothing while it is silent. It runs in the session's hearing job, off the event loop; `played`
and `user_part` are called from that job only, one batch at a time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import soxr

from alice_voice.audio.frames import SPEECH_RATE, WEBRTC_RATE, Pcm


@dataclass(frozen=True, slots=True)
class EchoGuardConfig:
    max_delay_ms: int = 600
    residual_ratio: float = 0.35  # echo explains >= 65 % of the frame's energy
    min_reference_rms: float = 100.0  # quieter output cannot produce an echo worth guarding against
    margin_db: float = 6.0  # speech must beat the loudest possible echo by this much, band by band
    louder_bands: float = 0.5  # ... in at least this share of the bands
    delay_spread_ms: int = 40  # how far around the learnt delay the spectral test looks
    gain_fade: float = 0.995  # per frame without a correlating echo (a half-life of ~4 s)


class EchoGuard:
    """Per session: `played()` each sent frame, then ask `is_echo()` of each incoming 16 kHz frame."""

    def __init__(self, config: EchoGuardConfig | None = None) -> None:
        self.config = config or EchoGuardConfig()
        self._chunks: deque[tuple[float, Pcm]] = deque()  # (send time of the chunk's end, 16 kHz samples)
        # The search window, and a second more: frames are judged in batches, up to a second behind the output.
        self._history_s = self.config.max_delay_ms / 1000 + 1.0
        self._resampler = soxr.ResampleStream(WEBRTC_RATE, SPEECH_RATE, 1, dtype="int16", quality="QQ")
        self._silent_since: float | None = None
        self._gain = 0.0  # learnt from correlating frames; 0: no echo seen
        self._delay = 0.0  # s, from a frame's end to the end of the output it echoes
        self._last_delay: float | None = None  # the last correlating frame's, while no echo path is known
        self.echo_frames = 0

    def played(self, pcm48: Pcm, sent_at: float) -> None:
        """A 48 kHz frame was just handed to the sender."""
        if not pcm48.any():
            if self._silent_since is None:
                self._silent_since = sent_at
            pcm16 = np.zeros(len(pcm48) // 3, np.int16)
        else:
            self._silent_since = None
            pcm16 = self._resampler.resample_chunk(pcm48)
        self._chunks.append((sent_at, pcm16))
        while self._chunks and self._chunks[0][0] < sent_at - self._history_s:
            self._chunks.popleft()

    def is_echo(self, frame: Pcm, arrival: float) -> bool:
        """True if `frame` (16 kHz, arrived at `arrival`) is mostly our own recent output."""
        return self.user_part(frame, arrival) is None

    def user_part(self, frame: Pcm, arrival: float) -> Pcm | None:
        """What of `frame` is not our own output: None if it is all echo, else the frame less the echo."""
        cfg = self.config
        if self._silent_since is not None and arrival - self._silent_since > cfg.max_delay_ms / 1000 + 0.05:
            return frame  # nothing we played can still be arriving
        window_start = arrival - cfg.max_delay_ms / 1000 - len(frame) / SPEECH_RATE - 0.02
        reference, ref_start = self._reference(window_start, arrival)
        x = frame.astype(np.float64)
        energy = float(x @ x)
        if len(reference) < len(frame) or not reference.any() or energy <= 0:
            return frame
        lag = _best_lag(x, reference.astype(np.float64))
        segment = reference[lag:lag + len(x)].astype(np.float64)
        if _rms(segment) >= cfg.min_reference_rms:  # else the output was too quiet there to explain it
            gain = max(0.0, float(x @ segment) / max(float(segment @ segment), 1e-9))
            residual = x - gain * segment
            if float(residual @ residual) / energy < cfg.residual_ratio:
                self._learn(gain, arrival - (ref_start + (lag + len(x)) / SPEECH_RATE))
                return None
            frame = np.clip(residual, -32768, 32767).astype(np.int16)
        self._gain *= cfg.gain_fade
        if self._gain > 0.01 and not self._louder_than_echo(x, arrival):
            self.echo_frames += 1
            return None
        return frame

    def _learn(self, gain: float, delay: float) -> None:
        self.echo_frames += 1
        spread = self.config.delay_spread_ms / 1000
        if self._gain <= 0.01:  # no echo path yet: it takes two correlating frames that agree on one
            agreed = self._last_delay is not None and abs(delay - self._last_delay) <= spread
            self._last_delay = delay
            if agreed:
                self._gain, self._delay = gain, delay
            return
        # Off by more than the spread: the echo path changed, and an average walking over to it would leave
        # the spectral test looking where the echo no longer is for the next few hundred ms.
        moved = abs(delay - self._delay) > spread
        self._gain = max(gain, 0.9 * self._gain + 0.1 * gain)
        self._delay = delay if moved else 0.8 * self._delay + 0.2 * delay

    def _louder_than_echo(self, x: np.ndarray, arrival: float) -> bool:
        """Is `x` louder, in most bands, than the echo the output around the learnt delay could make?"""
        cfg = self.config
        spread = cfg.delay_spread_ms / 1000
        end = arrival - self._delay
        reference, _ = self._reference(end - len(x) / SPEECH_RATE - spread, end + spread)
        if len(reference) < len(x):
            return True
        possible = _band_energy(_frames(reference.astype(np.float64), len(x), len(x) // 4)).max(axis=0)
        possible *= self._gain ** 2 * 10 ** (cfg.margin_db / 10)
        heard = _band_energy(x[None, :])[0]
        audible = heard > 1e3 * len(x)  # bands with any real energy (rms > ~30 across the band)
        if not audible.any():
            return False
        return float(np.mean(heard[audible] > possible[audible])) >= cfg.louder_bands

    def _reference(self, start: float, end: float) -> tuple[Pcm, float]:
        """Output sent between `start` and `end` (16 kHz), and the time its first sample was sent."""
        chunks = [(sent_at, pcm) for sent_at, pcm in self._chunks if start <= sent_at <= end + 0.02]
        if not chunks:
            return np.zeros(0, np.int16), end
        first_sent, first = chunks[0]
        return np.concatenate([pcm for _, pcm in chunks]), first_sent - len(first) / SPEECH_RATE


def _best_lag(x: np.ndarray, reference: np.ndarray) -> int:
    """Where in `reference` a slice as long as `x` has the highest normalized correlation to `x`."""
    n, m = len(x), len(reference)
    size = 1 << (n + m - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(reference, size) * np.conj(np.fft.rfft(x, size)), size)[: m - n + 1]
    energy = np.concatenate(([0.0], np.cumsum(reference ** 2)))
    windowed = energy[n:] - energy[:-n]  # each slice's energy, by a running sum: O(m), not O(n*m)
    score = corr / np.sqrt(np.maximum(windowed, 1e-9))
    return int(np.argmax(np.abs(score)))


_BAND_EDGES = np.unique(np.geomspace(3, 256, 17).astype(int))  # FFT bins of 512 samples: ~100 Hz to 8 kHz


def _frames(signal: np.ndarray, size: int, hop: int) -> np.ndarray:
    count = 1 + max(0, len(signal) - size) // hop
    return np.stack([signal[i * hop:i * hop + size] for i in range(count)])


def _band_energy(frames: np.ndarray) -> np.ndarray:
    """Energy per band (rows: frames), over roughly log-spaced bands."""
    power = np.abs(np.fft.rfft(frames * np.hanning(frames.shape[1]), axis=1)) ** 2
    return np.add.reduceat(power, _BAND_EDGES[:-1], axis=1)[:, :-1] if len(_BAND_EDGES) > 2 else power


def _rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0
