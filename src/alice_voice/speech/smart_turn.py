"""smart-turn v3.2 (audio-only end-of-turn classifier), the CPU ONNX file bundled in the pipecat-ai wheel.

pipecat is installed without its dependencies and is never imported: only its data file is used,
found through the installed distribution's file list.

Features reproduce pipecat's `compute_whisper_log_mel_features(do_normalize=True)` (the
transformers WhisperFeatureExtractor with an 8 s window): zero-mean unit-variance normalisation of
the padded waveform, then a Whisper log-mel. faster-whisper's FeatureExtractor computes the same
log-mel in float32 (pipecat's in float64; the features differ by ~1e-6, see the integration test)
and ~3x faster.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from faster_whisper.feature_extractor import FeatureExtractor

from alice_voice.audio.frames import Pcm
from alice_voice.compute import InferenceScheduler
from alice_voice.config import Settings
from alice_voice.errors import ProviderError

NAME = "smart-turn-v3.2"
SAMPLE_RATE = 16_000
WINDOW_SAMPLES = 8 * SAMPLE_RATE  # the model sees the last 8 s
_MODEL_IN_WHEEL = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
_NORM_EPS = 1e-7  # transformers' variance epsilon for do_normalize


def bundled_model_path() -> Path:
    """Where the installed pipecat-ai wheel keeps the model; raises ProviderError if it does not."""
    try:
        dist = importlib.metadata.distribution("pipecat-ai")
    except importlib.metadata.PackageNotFoundError:
        raise ProviderError(NAME, "package pipecat-ai is not installed (it ships the model file)") from None
    path = Path(str(dist.locate_file(_MODEL_IN_WHEEL)))
    if not path.is_file():
        raise ProviderError(NAME, f"model file not found: {path}")
    return path


def window(audio: npt.NDArray[np.floating], samples: int = WINDOW_SAMPLES) -> npt.NDArray[np.float32]:
    """The last `samples` of `audio`, left-padded with zeros (the padding precedes the turn)."""
    tail = np.asarray(audio[-samples:], dtype=np.float32)
    return np.pad(tail, (samples - len(tail), 0))


class WhisperFeatures:
    """Normalised Whisper log-mel features, (80, 800) float32 for 8 s of 16 kHz audio."""

    def __init__(self) -> None:
        self._extractor = FeatureExtractor(feature_size=80, sampling_rate=SAMPLE_RATE, chunk_length=8)

    def __call__(self, audio_8s: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        x = (audio_8s - audio_8s.mean()) / np.sqrt(audio_8s.var() + _NORM_EPS)
        features = self._extractor(x, padding=0)
        return np.ascontiguousarray(features, dtype=np.float32)


class SmartTurn:
    """End-of-turn probability from the audio of the turn so far (ending with its trailing silence)."""

    name = NAME

    def __init__(self, model_path: Path | None = None, threads: int = 1) -> None:
        path = model_path if model_path is not None else bundled_model_path()
        if not path.is_file():
            raise ProviderError(NAME, f"model file not found: {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._features = WhisperFeatures()

    def prob_complete(self, turn_audio_16k: Pcm) -> float:
        """Blocking (~60 ms on one thread): run it off the event loop."""
        audio = window(turn_audio_16k.astype(np.float32) / 32768.0)
        return self.prob_complete_float(audio)

    def prob_complete_float(self, audio_8s: npt.NDArray[np.float32]) -> float:
        """The model on exactly 8 s of float audio in [-1, 1] (see `window`)."""
        return self.prob_from_features(self._features(audio_8s))

    def prob_from_features(self, features: npt.NDArray[np.float32]) -> float:
        """The model on (80, 800) log-mel features."""
        outputs = self._session.run(None, {"input_features": features[None]})
        return float(np.asarray(outputs[0]).reshape(-1)[0])

    def warm(self) -> None:
        self.prob_complete(np.zeros(SAMPLE_RATE, dtype=np.int16))


def load(settings: Settings, compute: InferenceScheduler | None = None) -> SmartTurn:
    del settings  # nothing configurable yet: one thread, the bundled model
    model = SmartTurn()
    model.warm()
    return model
