"""hibari-tts with its bundled `heart` voice (24 kHz), the default embedded TTS.

Only `heart` ships inside the wheel; hibari downloads every other voice from a model hub on first use, so
this module resolves the bundled file itself and never lets hibari pick a path.

Thread safety (hibari 0.2.1, read and tested): after warm-up the engine holds no mutable state. The
onnxruntime session's `run` is thread-safe, the G2P (lexicon, tagger, tokenizer) only reads its tables,
and the noise generator is created per call. The only races are the lazy G2P and OOV-net loads, which
`warm()` triggers once. Concurrent syntheses from several sessions therefore run unserialized.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from alice_voice.audio.frames import Pcm, to_int16
from alice_voice.compute import InferenceScheduler, JobRunner
from alice_voice.config import Settings
from alice_voice.errors import ProviderError
from alice_voice.speech.protocols import PcmChunk
from alice_voice.speech.sentence_tts import synthesize_sentences

NAME = "hibari-heart"
VOICE = "heart"
# An out-of-vocabulary word makes warm-up load the OOV net too, not only the lexicon.
_WARM_UP_TEXT = "Hello, Zorblaxian."


class HibariTts:
    """Streams one 24 kHz int16 chunk per sentence. `seed` fixes the noise (None: random each call)."""

    name = NAME

    def __init__(self, compute: JobRunner, *, threads: int = 1, speed: float = 1.0, seed: int | None = 0) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from hibari import SAMPLE_RATE, Hibari
        from hibari.voices import voice_path

        # download_missing=False: a missing bundled file must fail here, not reach for the network.
        model = voice_path(VOICE, download_missing=False)
        self._engine: Any = Hibari(voice=VOICE, model=model, threads=threads)
        self.rate: int = int(SAMPLE_RATE)
        self._compute = compute
        self._speed = speed
        self._seed = seed

    def warm(self) -> None:
        self._synth_sentence(_WARM_UP_TEXT)

    def synthesize(self, text: str, *, lead: bool = False) -> AsyncIterator[PcmChunk]:
        sentences: list[str] = list(self._engine.split_sentences(text))
        return synthesize_sentences(sentences, self._synth_sentence, self.rate, self._compute, lead=lead)

    def _synth_sentence(self, sentence: str) -> list[Pcm]:
        """Blocking. hibari cuts a sentence longer than its phoneme limit into several pieces."""
        pieces: list[Pcm] = []
        for phonemes in self._engine.phonemize(sentence):
            rng = np.random.default_rng(self._seed)
            wav = self._engine.from_ids(self._engine.ids(phonemes), self._speed, rng)
            pieces.append(to_int16(np.asarray(wav, dtype=np.float32)))
        return pieces


def load(settings: Settings, compute: InferenceScheduler) -> HibariTts:
    if settings.tts_voice not in (None, VOICE):
        raise ProviderError(NAME, f"voice {settings.tts_voice!r} is not bundled; only {VOICE!r} is offline")
    tts = HibariTts(compute)
    tts.warm()
    return tts
