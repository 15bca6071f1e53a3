"""Streaming ASR in real time: Whisper tiny.en and pocketsphinx on the synthesized prompt set.

    .venv/bin/python -m bench.asr_stream [--providers whisper,sphinx] [--voices piper,espeak:en-us]
                                         [--quick] [--sessions N] [--json PATH]

Each clip (tests/speech_fixtures: PROMPTS + LONG_SENTENCE per voice, plus 200 ms of silence standing in
for the endpoint wait) is pushed in 20 ms frames paced by the event-loop clock: frame k is pushed when
it would have finished arriving, (k+1)*20 ms after the start. `finish()` follows the last frame.
With --sessions N, N clips run at once (N sessions talking at the same time, one decode scheduler).

Reported, p50/p95 over clips (ms unless said):
  first partial   first non-empty partial received - push of the first frame louder than -40 dBFS
  decode pass     compute time of one scheduler job (whisper: one decode; sphinx: feed + hyp)
  final           final received - finish()
  loop lag        how late a frame push ran against its due time (event-loop stalls)
  WER             corpus word error rate of the finals (digits 7/8/10 read as words), per voice
  RTF             sum of decode compute / seconds of audio
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tests.speech_fixtures import LONG_SENTENCE, PROMPTS, VOICES, silence, synth, word_error_rate

from alice_voice.audio.frames import Pcm, rms
from alice_voice.config import Settings
from alice_voice.speech.protocols import StreamingAsr
from alice_voice.speech.sphinx_asr import SphinxAsr
from alice_voice.speech.whisper_asr import WhisperAsr
from support.engines import shared_compute

FRAME = 320  # 20 ms at 16 kHz
ONSET_RMS = 328.0  # -40 dBFS
TAIL_S = 0.2
_NUMBERS = {"7": "seven", "8": "eight", "10": "ten"}


@dataclass
class ClipResult:
    voice: str
    text: str
    hypothesis: str
    audio_s: float
    first_partial_ms: float | None
    final_ms: float
    partials: int
    lag_ms: list[float] = field(repr=False)


def spoken(text: str) -> str:
    return " ".join(_NUMBERS.get(word.strip(".,?!"), word) for word in text.split())


def pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def onset_frame(pcm: Pcm) -> int:
    for k in range(len(pcm) // FRAME):
        if rms(pcm[k * FRAME:(k + 1) * FRAME]) >= ONSET_RMS:
            return k
    return 0


async def run_clip(asr: StreamingAsr, voice: str, text: str) -> ClipResult:
    loop = asyncio.get_running_loop()
    pcm = np.concatenate([synth(text, voice), silence(TAIL_S)])
    stream, onset = asr.stream(), onset_frame(pcm)
    marks: dict[str, float] = {}
    partials: list[float] = []
    final_text: list[str] = []

    async def read() -> None:
        async for transcript in stream:
            if transcript.final:
                marks["final"] = loop.time()
                final_text.append(transcript.text)
                return
            partials.append(loop.time())

    reader = loop.create_task(read())
    start, lag = loop.time(), []
    for k in range(len(pcm) // FRAME):
        due = start + (k + 1) * FRAME / 16000
        await asyncio.sleep(max(0.0, due - loop.time()))
        lag.append((loop.time() - due) * 1000)
        stream.push(pcm[k * FRAME:(k + 1) * FRAME])
        if k == onset:
            marks["onset"] = loop.time()
    marks["finish"] = loop.time()
    stream.finish()
    async with asyncio.timeout(30):
        await reader
    await stream.aclose()
    after_onset = [t for t in partials if t >= marks["onset"]]
    first = (after_onset[0] - marks["onset"]) * 1000 if after_onset else None
    return ClipResult(voice, text, final_text[0], len(pcm) / 16000, first,
                      (marks["final"] - marks["finish"]) * 1000, len(partials), lag)


def load(provider: str, sessions: int) -> WhisperAsr | SphinxAsr:
    settings = Settings(max_sessions=max(sessions, 1))
    if provider == "whisper":
        from alice_voice.speech import whisper_asr
        return whisper_asr.load(settings, shared_compute())
    from alice_voice.speech import sphinx_asr
    return sphinx_asr.load(settings, shared_compute())


async def bench_provider(provider: str, voices: list[str], texts: list[str], sessions: int) -> dict[str, Any]:
    started = time.perf_counter()
    asr = load(provider, sessions)
    load_s = time.perf_counter() - started
    scheduler = asr.scheduler
    passes: list[tuple[bool, float]] = []
    scheduler.on_pass = lambda final, seconds: passes.append((final, seconds))
    jobs = [(voice, text) for voice in voices for text in texts]
    for voice, text in jobs:
        synth(text, voice)  # synthesize (and cache) before the clock matters
    results: list[ClipResult] = []
    for i in range(0, len(jobs), sessions):
        batch = jobs[i:i + sessions]
        results += await asyncio.gather(*(run_clip(asr, voice, text) for voice, text in batch))
    scheduler.on_pass = None
    return summarize(provider, asr.name, load_s, results, passes)


def summarize(provider: str, name: str, load_s: float, results: list[ClipResult],
              passes: list[tuple[bool, float]]) -> dict[str, Any]:
    def corpus(rows: list[ClipResult]) -> float:
        errors = sum(word_error_rate(r.text, spoken(r.hypothesis)) * len(r.text.split()) for r in rows)
        return errors / max(1, sum(len(r.text.split()) for r in rows))

    firsts = [r.first_partial_ms for r in results if r.first_partial_ms is not None]
    pass_ms = [s * 1000 for _, s in passes]
    lags = [lag for r in results for lag in r.lag_ms]
    audio_s = sum(r.audio_s for r in results)
    return {
        "provider": provider, "model": name, "load_s": load_s, "clips": len(results),
        "first_partial_ms": {"p50": pct(firsts, 50), "p95": pct(firsts, 95),
                             "missing": len(results) - len(firsts)},
        "decode_pass_ms": {"p50": pct(pass_ms, 50), "p95": pct(pass_ms, 95), "count": len(pass_ms),
                           "finals": sum(final for final, _ in passes)},
        "final_ms": {"p50": pct([r.final_ms for r in results], 50),
                     "p95": pct([r.final_ms for r in results], 95)},
        "loop_lag_ms": {"p50": pct(lags, 50), "p95": pct(lags, 95), "max": max(lags, default=0.0)},
        "wer": {voice: corpus([r for r in results if r.voice == voice])
                for voice in dict.fromkeys(r.voice for r in results)} | {"all": corpus(results)},
        "rtf": sum(s for _, s in passes) / audio_s,
        "partials_per_clip": float(np.mean([r.partials for r in results])),
        "clips_detail": [asdict(r) | {"lag_ms": None} for r in results],
    }


def show(summary: dict[str, Any]) -> None:
    def ms(d: dict[str, Any]) -> str:
        return " / ".join("-" if d[k] is None else f"{d[k]:.0f}" for k in ("p50", "p95"))

    print(f"\n{summary['model']} ({summary['clips']} clips, load {summary['load_s']:.2f} s)")
    print(f"  first partial after onset  p50/p95 {ms(summary['first_partial_ms'])} ms"
          f"  (clips without one: {summary['first_partial_ms']['missing']})")
    print(f"  decode pass                p50/p95 {ms(summary['decode_pass_ms'])} ms"
          f"  ({summary['decode_pass_ms']['count']} passes)")
    print(f"  final after finish()       p50/p95 {ms(summary['final_ms'])} ms")
    print(f"  loop lag                   p50/p95 {ms(summary['loop_lag_ms'])} ms,"
          f" max {summary['loop_lag_ms']['max']:.0f}")
    print("  WER  " + "  ".join(f"{voice} {wer:.3f}" for voice, wer in summary["wer"].items()))
    print(f"  RTF  {summary['rtf']:.3f}   partials per clip {summary['partials_per_clip']:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--providers", default="whisper,sphinx")
    parser.add_argument("--voices", default=",".join(VOICES))
    parser.add_argument("--quick", action="store_true", help="first 4 prompts only")
    parser.add_argument("--sessions", type=int, default=1, help="clips decoded at once")
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args()
    texts = PROMPTS[:4] if args.quick else [*PROMPTS, LONG_SENTENCE]
    voices = args.voices.split(",")
    summaries = []
    for provider in args.providers.split(","):
        summary = asyncio.run(bench_provider(provider, voices, texts, args.sessions))
        show(summary)
        summaries.append(summary)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"sessions": args.sessions, "voices": voices, "providers": summaries}, out, indent=2)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
