"""G.711 (telephony's 8-bit audio: μ-law in North America and Japan, A-law elsewhere), through PyAV's
`pcm_mulaw` / `pcm_alaw` codecs: the stdlib's audioop is deprecated (gone in Python 3.13). One codec pair
per stream; ~10 µs a 20 ms frame each way."""

from __future__ import annotations

from typing import Literal

import av
import numpy as np

from alice_voice.audio.frames import Pcm, empty_pcm

RATE = 8_000
Law = Literal["mulaw", "alaw"]


class G711Codec:
    def __init__(self, law: Law = "mulaw", rate: int = RATE) -> None:
        self._rate = rate
        self._encoder = av.CodecContext.create(f"pcm_{law}", "w")
        self._encoder.sample_rate, self._encoder.layout, self._encoder.format = rate, "mono", "s16"
        self._decoder = av.CodecContext.create(f"pcm_{law}", "r")
        self._decoder.sample_rate, self._decoder.layout = rate, "mono"

    def encode(self, pcm: Pcm) -> bytes:
        """Mono int16 samples -> one byte each."""
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm, dtype=np.int16).reshape(1, -1), format="s16",
                                           layout="mono")
        frame.sample_rate = self._rate
        return b"".join(bytes(packet) for packet in self._encoder.encode(frame))

    def decode(self, data: bytes) -> Pcm:
        """G.711 bytes -> mono int16 samples, one each."""
        frames = [f.to_ndarray().reshape(-1) for f in self._decoder.decode(av.Packet(data))]
        return np.concatenate(frames).astype(np.int16, copy=False) if frames else empty_pcm()

