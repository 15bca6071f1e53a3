"""Speech engines shared by the tests (and benchmarks) of one process run.

Loading the models takes seconds, and every test that starts an agent gateway would load its own: the
product never shares engines implicitly (gateway/engines.py), so the tests ask for it here, once per
choice of providers. They are closed when the process ends (their workers joined before the interpreter
goes: see `SpeechEngines.close`).
"""

from __future__ import annotations

import atexit

from alice_voice.compute import InferenceScheduler
from alice_voice.config import Settings
from alice_voice.gateway import SpeechEngines

# What the models are built from (providers and their settings); the rest of the settings is the app's.
MODEL_SETTINGS = {"vad", "asr", "asr_phone", "twilio_auth_token", "twilio_allow_unsigned", "tts", "end_of_turn",
                  "compute_threads", "asr_partial_interval_ms",
                  "asr_first_partial_ms", "asr_timeout_s",
                  "tts_voice", "max_sessions", "openai_base_url", "openai_api_key", "deepgram_url", "deepgram_api_key",
                  "elevenlabs_base_url", "elevenlabs_api_key"}
_shared: dict[str, SpeechEngines] = {}


def shared_engines(settings: Settings) -> SpeechEngines:
    key = settings.model_dump_json(include=MODEL_SETTINGS)
    if key not in _shared:
        _shared[key] = SpeechEngines(settings)
    return _shared[key]


def shared_compute() -> InferenceScheduler:
    """The scheduler of the default engines: for tests that load one provider by itself."""
    return shared_engines(Settings()).compute


@atexit.register
def close_all() -> None:
    for engines in _shared.values():
        engines.close()
    _shared.clear()
