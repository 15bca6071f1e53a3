"""An answering machine's beep: a steady pure tone, most of each frame's energy at one frequency between
300 and 2500 Hz, for at least 160 ms. Said once it has ended (the machine records from then on).

Speech is never this pure: its energy spreads over harmonics and formants, and its pitch moves from one
20 ms frame to the next; a held "mmm" peaks a third as sharply.
"""

from __future__ import annotations

import numpy as np

from alice_voice.audio.frames import Pcm

BAND_HZ = (300.0, 2500.0)
MIN_TONE_MS = 160
PURITY = 0.7  # share of the frame's energy within a few bins of its peak
DRIFT_HZ = 40.0  # a beep keeps its frequency
MIN_RMS = 200.0  # -44 dBFS: quieter is line noise
_FFT = 2048


class BeepDetector:
    def __init__(self, rate: int = 16_000) -> None:
        self._rate = rate
        self._tone_ms = 0.0
        self._tone_hz = 0.0

    def push(self, frame: Pcm) -> bool:
        """Feed one frame; True on the frame that ends a beep."""
        hz = self._tone(frame)
        frame_ms = 1000 * len(frame) / self._rate
        if hz is not None and (self._tone_ms == 0 or abs(hz - self._tone_hz) <= DRIFT_HZ):
            self._tone_ms, self._tone_hz = self._tone_ms + frame_ms, hz
            return False
        ended = self._tone_ms >= MIN_TONE_MS
        self._tone_ms, self._tone_hz = (frame_ms, hz) if hz is not None else (0.0, 0.0)
        return ended

    def _tone(self, frame: Pcm) -> float | None:
        """The frequency of the frame's pure tone, if it is one."""
        samples = frame.astype(np.float64)
        if len(samples) == 0 or float(np.sqrt(np.mean(samples ** 2))) < MIN_RMS:
            return None
        power = np.abs(np.fft.rfft(samples * np.hanning(len(samples)), _FFT)) ** 2
        hz = np.fft.rfftfreq(_FFT, 1 / self._rate)
        peak = int(np.argmax(power))
        if not BAND_HZ[0] <= hz[peak] <= BAND_HZ[1]:
            return None
        spread = max(2, round(2 * _FFT / len(samples)))  # bins of the window's main lobe
        near = float(power[max(0, peak - spread):peak + spread + 1].sum())
        return float(hz[peak]) if near >= PURITY * float(power.sum()) else None
