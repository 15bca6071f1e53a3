"""Which recognizer hears the telephone best: Whisper tiny.en against Whisper base, wideband and through a
phone line, on real read speech and on synthesized voices.

    .venv/bin/python -m bench.phone_band [--models tiny.en,base] [--voices piper,espeak:en-us,espeak:en-us+f3]
                                         [--json bench/out/phone_band.json] [--plot bench/out/phone_band.png]

The phone line: 8 kHz, a 300-3400 Hz band-pass (an FFT mask: what the telephone network passes), and
μ-law both ways, as a Twilio or SIP call delivers it; back at 16 kHz for the recognizer, as the gateway
resamples it. Each clip is one final decode of the engine the gateway runs (`WhisperEngine.transcribe`,
one thread). Real speech: the two read recordings shipped in the moonshine-voice wheel (Dickens' opening
of A Tale of Two Cities, 44 s, and Beckett, 10 s), cut at pauses into pieces of at most 12 s; synthesized:
tests/speech_fixtures' prompts and long sentence per voice. Reported: corpus word error per set and line,
and the mean and p95 decode time (ms) of a piece, which is what a final costs the box.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import soxr
from tests.speech_fixtures import LONG_SENTENCE, PROMPTS, synth, word_error_rate

from alice_voice.audio.frames import Pcm, block_rms
from alice_voice.audio.g711 import G711Codec
from alice_voice.speech.whisper_asr import WhisperEngine
from alice_voice.speech.whisper_models import WhisperSize, whisper_model
from bench.eot_sweep import read_wav
from bench.stats import save_json

RATE = 16_000
PHONE_RATE = 8_000
BAND_HZ = (300.0, 3400.0)
MAX_PIECE_S = 12.0
REAL = {
    "two_cities.wav": "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age "
                      "of foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season "
                      "of Light, it was the season of Darkness, it was the spring of hope, it was the winter of "
                      "despair, we had everything before us, we had nothing before us, we were all going direct to "
                      "Heaven, we were all going direct the other way - in short, the period was so far like the "
                      "present period, that some of its noisiest authorities insisted on its being received, for "
                      "good or for evil, in the superlative degree of comparison only.",
    "beckett.wav": "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better.",
}


def phone_line(pcm: Pcm) -> Pcm:
    """16 kHz in, the telephone's sound out (at 16 kHz again)."""
    narrow = soxr.resample(pcm.astype(np.float32), RATE, PHONE_RATE)
    spectrum = np.fft.rfft(narrow)
    hz = np.fft.rfftfreq(len(narrow), 1 / PHONE_RATE)
    spectrum[(hz < BAND_HZ[0]) | (hz > BAND_HZ[1])] = 0
    band = np.clip(np.fft.irfft(spectrum, len(narrow)), -32768, 32767).astype(np.int16)
    codec = G711Codec("mulaw", PHONE_RATE)
    heard = codec.decode(codec.encode(band))
    return np.asarray(soxr.resample(heard.astype(np.float32), PHONE_RATE, RATE), dtype=np.float32).clip(
        -32768, 32767).astype(np.int16)


def pieces(pcm: Pcm) -> list[Pcm]:
    """Cut at the quietest 10 ms window of each stretch past `MAX_PIECE_S` (a reader's pause)."""
    out, start, limit = [], 0, int(MAX_PIECE_S * RATE)
    while len(pcm) - start > limit:
        window = block_rms(pcm[start + limit // 2:start + limit], RATE // 100)
        cut = start + limit // 2 + int(np.argmin(window)) * (RATE // 100)
        out.append(pcm[start:cut])
        start = cut
    return [*out, pcm[start:]]


def clips(voices: list[str]) -> dict[str, list[tuple[list[Pcm], str]]]:
    """Set name -> [(pieces, reference)]."""
    sets: dict[str, list[tuple[list[Pcm], str]]] = {"real": [(pieces(read_wav(n)), text) for n, text in REAL.items()]}
    for voice in voices:
        sets[voice] = [([synth(text, voice)], text) for text in [*PROMPTS, LONG_SENTENCE]]
    return sets


def measure(size: WhisperSize, sets: dict[str, list[tuple[list[Pcm], str]]]) -> dict[str, Any]:
    model = whisper_model(size)
    engine = WhisperEngine(str(model.path), language=model.language)
    engine.warm()
    result: dict[str, Any] = {}
    decode_ms: list[float] = []
    for line in ("wideband", "phone"):
        for name, items in sets.items():
            errors = words = 0.0
            for parts, reference in items:
                heard = []
                for part in parts:
                    audio = phone_line(part) if line == "phone" else part
                    started = time.perf_counter()
                    heard.append(engine.transcribe(audio))
                    decode_ms.append((time.perf_counter() - started) * 1000)
                n = len(reference.split())
                errors += word_error_rate(reference, " ".join(heard)) * n
                words += n
            result[f"{line} {name}"] = round(100 * errors / words, 1)
    result["decode_ms_mean"] = round(float(np.mean(decode_ms)), 1)
    result["decode_ms_p95"] = round(float(np.percentile(decode_ms, 95)), 1)
    return result


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [k for k in next(iter(results.values())) if not k.startswith("decode")]
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / len(results)
    for i, (size, result) in enumerate(results.items()):
        ax.bar(np.arange(len(rows)) + i * width, [result[r] for r in rows], width,
               label=f"{size} (decode {result['decode_ms_mean']} ms)")
    ax.set_xticks(np.arange(len(rows)) + 0.4 - width / 2, rows, rotation=30, ha="right")
    ax.set_ylabel("word error %")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="tiny.en,base")
    parser.add_argument("--voices", default="piper,espeak:en-us,espeak:en-us+f3")
    parser.add_argument("--json", type=Path, default=Path("bench/out/phone_band.json"))
    parser.add_argument("--plot", type=Path, default=Path("bench/out/phone_band.png"))
    args = parser.parse_args()
    sets = clips(args.voices.split(","))
    results = {size: measure(size, sets) for size in args.models.split(",")}  # type: ignore[arg-type]
    rows = list(next(iter(results.values())))
    print(f"{'':28}" + "".join(f"{size:>12}" for size in results))
    for row in rows:
        print(f"{row:28}" + "".join(f"{result[row]:>12}" for result in results.values()))
    save_json(args.json, results)
    plot(results, args.plot)


if __name__ == "__main__":
    main()
