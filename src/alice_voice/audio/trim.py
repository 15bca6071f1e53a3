"""Streaming silence trimming for synthesized speech.

TTS engines pad each sentence with silence (hibari: ~300 ms before, ~450 ms after), which the listener
hears as a late start and as dead air between sentences. Per reply, the trimmer drops the silence before
the first sound (keeping `lead_ms`) and shortens any pause longer than `gap_ms`. It works on 10 ms blocks
as audio streams in, holding a silent run back until it knows whether sound follows.
"""

from __future__ import annotations

import numpy as np

from alice_voice.audio.frames import Pcm, empty_pcm


class SilenceTrimmer:
    def __init__(self, rate: int, *, lead_ms: int = 20, gap_ms: int = 200, threshold_rms: float = 100.0) -> None:
        self._block = rate // 100
        self._lead = max(0, lead_ms // 10)
        self._gap = max(1, gap_ms // 10)
        self._threshold_sq = threshold_rms ** 2
        self._pending = empty_pcm()  # less than one block, not yet classified
        self._held: list[Pcm] = []  # the current silent run (at most `gap` blocks kept)
        self._heard_sound = False

    def push(self, pcm: Pcm) -> Pcm:
        """The audio that can be played now, trimmed."""
        buf = np.concatenate([self._pending, pcm]) if len(self._pending) else pcm
        whole = len(buf) // self._block * self._block
        self._pending = buf[whole:].copy()
        out: list[Pcm] = []
        for start in range(0, whole, self._block):
            block = buf[start:start + self._block]
            if float(np.mean(block.astype(np.float64) ** 2)) < self._threshold_sq:
                self._held.append(block)
                del self._held[:-self._gap]
                continue
            keep = self._held[-self._lead:] if not self._heard_sound else self._held
            out.extend(keep if self._lead or self._heard_sound else [])
            out.append(block)
            self._held = []
            self._heard_sound = True
        return np.concatenate(out) if out else empty_pcm()

    def end(self, tail_ms: int = 100) -> Pcm:
        """The stream is over: a short tail of the held silence (none before any sound)."""
        if not self._heard_sound:
            return empty_pcm()
        tail = [*self._held, self._pending][: max(0, tail_ms // 10) + 1]
        self._held, self._pending = [], empty_pcm()
        return np.concatenate(tail) if tail else empty_pcm()
