"""Stateful streaming resamplers, one per stream direction (never shared between streams)."""

from __future__ import annotations

import av
import numpy as np
import soxr

from alice_voice.audio.frames import SPEECH_RATE, WEBRTC_RATE, Pcm, empty_pcm


class InboundResampler:
    """WebRTC's decoded frames (any layout/rate; aiortc gives s16 stereo 48 kHz) -> mono 16 kHz int16.

    PyAV does the downmix and the rate change in one pass and returns a steady 320 samples a 20 ms frame.
    """

    def __init__(self, rate: int = SPEECH_RATE) -> None:
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)

    def convert(self, frame: av.AudioFrame) -> Pcm:
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        if not out:
            return empty_pcm()
        return np.concatenate(out).astype(np.int16, copy=False)


class SteadyResampler:
    """Mono int16 at one rate -> another, chunk by chunk, with output exactly as steady as the input: 20 ms
    in, 20 ms out. soxr's streaming resampler releases its output in blocks of 100-200 ms at these ratios,
    which would add that much latency to hearing a WebSocket caller; PyAV's (libswresample) does not, but
    holds back a few samples at the start (its filter's delay): the first chunk out is led by that much
    silence, so that every chunk has its full length (a 20 ms frame is 640 bytes at 16 kHz, never 608)."""

    def __init__(self, rate_in: int, rate_out: int) -> None:
        self.rate_in, self.rate_out = rate_in, rate_out
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=rate_out)
        self._pts = 0
        self._held = empty_pcm()

    def convert(self, pcm: Pcm) -> Pcm:
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm, dtype=np.int16).reshape(1, -1), format="s16",
                                           layout="mono")
        frame.sample_rate, frame.pts = self.rate_in, self._pts
        first = self._pts == 0
        self._pts += len(pcm)
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        got = np.concatenate([self._held, *out]).astype(np.int16, copy=False)
        wanted = len(pcm) * self.rate_out // self.rate_in
        if first and len(got) < wanted:
            got = np.concatenate([np.zeros(wanted - len(got), np.int16), got])
        self._held = got[wanted:].copy()
        return got[:wanted]


class OutboundResampler:
    """TTS audio at its native rate -> 48 kHz for playout; soxr keeps filter state across chunks."""

    empty = empty_pcm()

    def __init__(self, rate_in: int, rate_out: int = WEBRTC_RATE) -> None:
        self.rate_in = rate_in
        self._same = rate_in == rate_out
        self._stream = None if self._same else soxr.ResampleStream(rate_in, rate_out, 1, dtype="int16", quality="HQ")

    def convert(self, pcm: Pcm, last: bool = False) -> Pcm:
        if self._stream is None:
            return pcm
        return self._stream.resample_chunk(pcm, last=last).astype(np.int16, copy=False)  # type: ignore[no-any-return]
