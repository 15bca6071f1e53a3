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

_ASR = {"whisper": "whisper_asr", "sphinx": "sphinx_asr", "deepgram": "deepgram_asr", "openai": "openai_asr"}
_TTS = {"hibari": "hibari_tts", "piper": "piper_tts", "espeak": "espeak_tts", "openai": "openai_tts",
        "elevenlabs": "elevenlabs_tts"}
_VAD = {"silero": "silero_vad"}
_EOT = {"smart_turn": "smart_turn", "silence": None}

def _load(modules: Mapping[str, str | None], name: str, settings: Settings, compute: InferenceScheduler) -> Any:
    module_name = modules[name]
    if module_name is None:
        return None
    module = importlib.import_module(f"alice_voice.speech.{module_name}")
    loader: Callable[[Settings, InferenceScheduler], Any] = module.load
    return loader(settings, compute)


def load_vad(settings: Settings, compute: InferenceScheduler) -> VadModel:
    return _load(_VAD, settings.vad, settings, compute)  # type: ignore[no-any-return]


def load_asr(settings: Settings, compute: InferenceScheduler) -> StreamingAsr:
    return _load(_ASR, settings.asr, settings, compute)  # type: ignore[no-any-return]


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
    status: dict[str, str] = field(default_factory=dict)


def load_all(settings: Settings, compute: InferenceScheduler) -> SpeechModels:
    """Every model the settings name, loaded and warmed (blocking: seconds; call it off the event loop)."""
    models = SpeechModels(vad=load_vad(settings, compute), asr=load_asr(settings, compute),
                          tts=load_tts(settings, compute), end_of_turn=load_end_of_turn(settings, compute),
                          completeness=load_completeness(settings, compute))
    models.status = {"vad": models.vad.name, "asr": models.asr.name, "tts": models.tts.name,
                     "end_of_turn": models.end_of_turn.name if models.end_of_turn else "silence",
                     "completeness": models.completeness.name}
    return models
