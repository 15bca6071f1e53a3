"""Whisper's weights come from packages: tiny.en as shipped, base joined once from its two halves (again
when a copy is partial), and the phone calls' recognizer chosen by ASR_PHONE."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alice_voice.config import Settings
from alice_voice.speech.registry import SpeechModels
from alice_voice.speech.whisper_models import whisper_model


def test_base_is_joined_once_and_again_when_a_copy_is_partial(tmp_path: Path) -> None:
    model = whisper_model("base", tmp_path)
    joined = model.path / "model.bin"
    assert model.language == "en" and model.name == "whisper-base"
    assert {p.name for p in model.path.iterdir()} == {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
    size, stamp = joined.stat().st_size, joined.stat().st_mtime_ns
    assert whisper_model("base", tmp_path).path == model.path and joined.stat().st_mtime_ns == stamp, "not again"
    with joined.open("r+b") as half_written:
        half_written.truncate(size // 2)
    whisper_model("base", tmp_path)
    assert joined.stat().st_size == size
    assert not [p for p in model.path.iterdir() if p.suffix == ".tmp"]


def test_tiny_en_is_used_as_its_package_ships_it() -> None:
    model = whisper_model("tiny.en")
    assert model.language is None and (model.path / "model.bin").exists() and os.access(model.path, os.R_OK)


class _Named:
    def __init__(self, name: str) -> None:
        self.name = name


@pytest.mark.parametrize(("phone", "phone_call", "heard_by"), [
    (_Named("whisper-base"), True, "whisper-base"),
    (_Named("whisper-base"), False, "whisper-tiny.en"),
    (None, True, "whisper-tiny.en"),  # ASR_PHONE=same
])
def test_phone_calls_get_their_own_recognizer(phone: _Named | None, phone_call: bool, heard_by: str) -> None:
    models = SpeechModels(vad=None, asr=_Named("whisper-tiny.en"), tts=None, end_of_turn=None,  # type: ignore[arg-type]
                          completeness=None, asr_phone=phone)  # type: ignore[arg-type]
    assert models.recognizer(phone_call).name == heard_by


def test_asr_phone_same_or_equal_to_asr_loads_nothing_more() -> None:
    from alice_voice.speech.registry import load_phone_asr

    for settings in (Settings(asr_phone="same", twilio_allow_unsigned=True),
                     Settings(asr="whisper-base", asr_phone="whisper-base", twilio_allow_unsigned=True),
                     Settings(asr_phone="whisper-base")):  # (no phone calls taken: no phone recognizer)
        assert load_phone_asr(settings, None) is None  # type: ignore[arg-type]
