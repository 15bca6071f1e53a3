"""Provider name -> loaded model, off the event loop.

Every provider module exposes `load(settings, compute) -> <protocol>` (`compute`: the scheduler its model
work runs on); only this module imports them, so the pipeline never knows which provider it runs. The
loaded models belong to whoever loaded them (the runtime): there is no cache here, so two runtimes in one
process (two tenants, or tests) never silently share one's models or scheduler.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from alice_voice.compute import InferenceScheduler
from alice_voice.config import Settings
from alice_voice.speech.completeness import load as load_completeness
from alice_voice.speech.protocols import EndOfTurnModel, StreamingAsr, StreamingTts, TextCompleteness, VadModel

_ASR = {"whisper": "whisper_asr", "whisper-base": "whisper_asr:load_base", "sphinx": "sphinx_asr",
        "deepgram": "deepgram_asr", "openai": "openai_asr"}
_TTS = {"hibari": "hibari_tts", "piper": "piper_tts", "espeak": "espeak_tts", "openai": "openai_tts",
        "elevenlabs": "elevenlabs_tts"}
_VAD = {"silero": "silero_vad"}
_EOT = {"smart_turn": "smart_turn", "silence": None}

def _load(modules: Mapping[str, str | None], name: str, settings: Settings, compute: InferenceScheduler) -> Any:
    entry = modules[name]
    if entry is None:
        return None
    module_name, _, function = entry.partition(":")  # "module" or "module:loader" (one module, two models)
    module = importlib.import_module(f"alice_voice.speech.{module_name}")
    loader: Callable[[Settings, InferenceScheduler], Any] = getattr(module, function or "load")
    return loader(settings, compute)


def load_vad(settings: Settings, compute: InferenceScheduler) -> VadModel:
    return _load(_VAD, settings.vad, settings, compute)  # type: ignore[no-any-return]


def load_asr(settings: Settings, compute: InferenceScheduler, name: str | None = None) -> StreamingAsr:
    return _load(_ASR, name or settings.asr, settings, compute)  # type: ignore[no-any-return]


def load_phone_asr(settings: Settings, compute: InferenceScheduler) -> StreamingAsr | None:
    """The phone calls' recognizer, when it is not the one every session has (and the gateway takes phone
    calls at all: a deployment for browsers does not load it)."""
    if settings.asr_phone in ("same", settings.asr) or not settings.takes_phone_calls:
        return None
    return load_asr(settings, compute, settings.asr_phone)


def load_tts(settings: Settings, compute: InferenceScheduler) -> StreamingTts:
    return _load(_TTS, settings.tts, settings, compute)  # type: ignore[no-any-return]


def load_end_of_turn(settings: Settings, compute: InferenceScheduler) -> EndOfTurnModel | None:
    """None means silence-only end of turn."""
    return _load(_EOT, settings.end_of_turn, settings, compute)  # type: ignore[no-any-return]


@dataclass
class SpeechModels:
    """Everything one process needs to run sessions, loaded once."""

    vad: VadModel
    asr: StreamingAsr
    tts: StreamingTts
    end_of_turn: EndOfTurnModel | None
    completeness: TextCompleteness
    asr_phone: StreamingAsr | None = None  # phone calls' recognizer (None: `asr`)
    status: dict[str, str] = field(default_factory=dict)

    def recognizer(self, phone_call: bool) -> StreamingAsr:
        return self.asr_phone if phone_call and self.asr_phone is not None else self.asr


def load_all(settings: Settings, compute: InferenceScheduler) -> SpeechModels:
    """Every model the settings name, loaded and warmed (blocking: seconds; call it off the event loop)."""
    models = SpeechModels(vad=load_vad(settings, compute), asr=load_asr(settings, compute),
                          tts=load_tts(settings, compute), end_of_turn=load_end_of_turn(settings, compute),
                          completeness=load_completeness(settings, compute),
                          asr_phone=load_phone_asr(settings, compute))
    models.status = {"vad": models.vad.name, "asr": models.asr.name, "asr_phone": models.recognizer(True).name,
                     "tts": models.tts.name,
                     "end_of_turn": models.end_of_turn.name if models.end_of_turn else "silence",
                     "completeness": models.completeness.name}
    return models
