"""A continuous-phase test tone, cut into playout frames."""

from __future__ import annotations

import numpy as np

from alice_voice.audio.frames import WEBRTC_FRAME_SAMPLES, WEBRTC_RATE, Pcm


class ToneGenerator:
    """Sine frames with no phase jump between frames, so an FFT of the received audio is clean."""

    def __init__(self, hz: float = 440.0, amplitude: float = 0.3, rate: int = WEBRTC_RATE,
                 frame_samples: int = WEBRTC_FRAME_SAMPLES) -> None:
        self._step = 2 * np.pi * hz / rate
        self._amp = amplitude * 32767
        self._n = frame_samples
        self._phase = 0.0

    def next_frame(self) -> Pcm:
        t = self._phase + self._step * np.arange(self._n)
        self._phase = float((self._phase + self._step * self._n) % (2 * np.pi))
        frame: Pcm = (self._amp * np.sin(t)).astype(np.int16)
        return frame
