"""Provider name -> loaded model. Each model is loaded and warmed once per process, off the event loop.

Every provider module exposes `load(settings) -> <protocol>`; only this module imports them, so the
pipeline never knows which provider it runs.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from alice_voice.config import Settings
from alice_voice.speech.protocols import EndOfTurnModel, StreamingAsr, StreamingTts, VadModel

_ASR = {"whisper": "whisper_asr", "sphinx": "sphinx_asr", "deepgram": "deepgram_asr", "openai": "openai_asr"}
_TTS = {"hibari": "hibari_tts", "piper": "piper_tts", "espeak": "espeak_tts", "openai": "openai_tts",
        "elevenlabs": "elevenlabs_tts"}
_VAD = {"silero": "silero_vad"}
_EOT = {"smart_turn": "smart_turn", "silence": None}

_cache: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def _load(kind: str, modules: Mapping[str, str | None], name: str, settings: Settings) -> Any:
    key = (kind, name)
    with _lock:
        if key not in _cache:
            module_name = modules[name]
            if module_name is None:
                _cache[key] = None
            else:
                module = importlib.import_module(f"alice_voice.speech.{module_name}")
                loader: Callable[[Settings], Any] = module.load
                _cache[key] = loader(settings)
        return _cache[key]


def load_vad(settings: Settings) -> VadModel:
    return _load("vad", _VAD, settings.vad, settings)  # type: ignore[no-any-return]


def load_asr(settings: Settings) -> StreamingAsr:
    return _load("asr", _ASR, settings.asr, settings)  # type: ignore[no-any-return]


def load_tts(settings: Settings) -> StreamingTts:
    return _load("tts", _TTS, settings.tts, settings)  # type: ignore[no-any-return]


def load_end_of_turn(settings: Settings) -> EndOfTurnModel | None:
    """None means silence-only end of turn."""
    return _load("eot", _EOT, settings.end_of_turn, settings)  # type: ignore[no-any-return]


@dataclass
class SpeechModels:
    """Everything one process needs to run sessions, loaded once."""

    vad: VadModel
    asr: StreamingAsr
    tts: StreamingTts
    end_of_turn: EndOfTurnModel | None
    status: dict[str, str] = field(default_factory=dict)


def load_all(settings: Settings) -> SpeechModels:
    models = SpeechModels(vad=load_vad(settings), asr=load_asr(settings), tts=load_tts(settings),
                          end_of_turn=load_end_of_turn(settings))
    models.status = {"vad": models.vad.name, "asr": models.asr.name, "tts": models.tts.name,
                     "end_of_turn": models.end_of_turn.name if models.end_of_turn else "silence"}
    return models
