"""End-of-turn sweep: Silero VAD + Endpointing + smart-turn v3.2 over synthesized speech.

    .venv/bin/python -m bench.eot_sweep [--quick] [--json PATH] [--model-ms 60] [--recheck-ms 200] [--costs]

The full run makes ~1900 smart-turn calls: ~5-10 min on the 2-core machine (--quick: a third of the
clips, ~1.5 min; --costs: only the per-frame and per-call costs).

Clips (16 kHz, 0.5 s lead-in, 1.2 s tail, low noise under everything):
  complete  whole prompts (tests/speech_fixtures.PROMPTS): the turn should end, soon.
  prosody   one sentence with a 250-600 ms pause inside it, spoken as one sentence (espeak: an SSML
            break; piper: a comma whose silence is stretched), so the words before the pause are
            spoken as the middle of a sentence, not its end: the turn must not end in the pause.
  halves    the same two halves synthesized separately and joined by the pause (what
            speech_fixtures.with_pause builds): the first half ends with a sentence-final fall.

Every frame's VAD probability is computed once per clip, and smart-turn once per (clip, frame) it is
asked at; then each endpointer setting is replayed on the recorded probabilities, with each model
answer delivered `--model-ms` after its question (the pipeline runs the model off the loop while
frames keep arriving). Frame i arrives at (i+1)*32 ms. Delay = when the turn was declared over minus the
end of the last word (the clip's true end of speech; the gateway dates it by the sound, as the §5 TTFA
clock does). The silence clock runs from the end of the sound, as in the gateway (policy/endpointing.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import soxr

from alice_voice.audio.frames import Pcm
from alice_voice.conversation.hearing import SUB_BLOCKS
from alice_voice.conversation.policy.endpointing import (
    AskEndOfTurn,
    Endpointing,
    EndpointingConfig,
    Event,
    SpeechStarted,
    TurnEnded,
)
from alice_voice.speech.silero_vad import FRAME_SAMPLES, SileroVad
from alice_voice.speech.smart_turn import SmartTurn
from speech_fixtures import PROMPTS, silence, synth

RATE = 16_000
FRAME_S = FRAME_SAMPLES / RATE
VOICES = [("piper", 175), ("piper", 140), ("espeak:en-us", 175), ("espeak:en-us+f3", 200)]
SPLITS = [("The quick brown fox jumps over", "the lazy dog."),
          ("I would like to book a table", "for two people tonight."),
          ("Can you tell me", "what the weather is like tomorrow?"),
          ("Set a timer for", "ten minutes."),
          ("My name is", "John and I live in Boston."),
          ("I need to", "call my mother.")]
PAUSES_MS = [250, 400, 600]
EOT_SILENCE = [96, 160, 224, 256, 288, 320]
EOT_THRESHOLD = [0.3, 0.5, 0.7, 0.9]
FALLBACK = [600, 800, 1000]
HANGOVERS = [256, 320, 416, 512, 640, 800]
# (eot_silence_ms, eot_threshold, eot_fallback_ms): config.py's defaults and what this sweep suggests
CURRENT, SUGGESTED, SUGGESTED_SILENCE_ONLY = (224, 0.5, 800), (224, 0.5, 800), 512
QUIET = 200  # int16 amplitude below which synthesized audio counts as silent


@dataclass
class Clip:
    name: str
    kind: str  # complete | prosody | halves
    audio: Pcm
    speech_end: int  # sample where the last word ends
    pause_ms: int = 0
    probs: list[float] = field(default_factory=list)
    loudness: list[tuple[float, ...]] = field(default_factory=list)


# ---------- clips ----------
def trim(pcm: Pcm) -> Pcm:
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > QUIET)
    return pcm[loud[0]:loud[-1] + 1]


def quiet_stretch(pcm: Pcm, min_ms: int, win: int = 160) -> tuple[int, int] | None:
    """The longest run of silent 10 ms windows inside `pcm`, if at least `min_ms` long."""
    n = len(pcm) // win
    quiet = np.abs(pcm[:n * win].astype(np.int32)).reshape(n, win).max(axis=1) <= QUIET
    best, start = (0, 0), None
    for i, q in enumerate([*quiet.tolist(), False]):
        if q and start is None:
            start = i
        elif not q and start is not None:
            best = max(best, (start, i), key=lambda r: r[1] - r[0])
            start = None
    if (best[1] - best[0]) * win < min_ms * RATE // 1000:
        return None
    return best[0] * win, best[1] * win


def espeak_ssml(text: str, voice: str, rate: int) -> Pcm:
    wav = subprocess.run(["espeak-ng", "-m", "-v", voice, "-s", str(rate), "--stdout", text],
                         check=True, capture_output=True).stdout
    pcm: Pcm = soxr.resample(np.frombuffer(wav[44:], dtype=np.int16), 22050, RATE).astype(np.int16)
    return pcm


def one_sentence_with_gap(first: str, second: str, voice: str, rate: int) -> tuple[Pcm, Pcm] | None:
    """The sentence spoken whole, split where its silence after `first` is (None if none is found)."""
    if voice.startswith("espeak:"):
        pcm = trim(espeak_ssml(f'{first} <break time="1500ms"/> {second}', voice.split(":", 1)[1], rate))
        gap = quiet_stretch(pcm, 1000)
    else:
        pcm = trim(synth(f"{first}, {second}", voice, rate))
        gap = quiet_stretch(pcm, 120)
    return None if gap is None else (pcm[:gap[0]], pcm[gap[1]:])


def frame_clip(name: str, kind: str, parts: list[Pcm], seed: int, pause_ms: int = 0) -> Clip:
    tail = silence(1.2)
    audio = np.concatenate([silence(0.5), *parts, tail]).astype(np.float64)
    audio += np.random.default_rng(seed).normal(0.0, 30.0, len(audio))  # a quiet room, not digital zero
    return Clip(name, kind, np.clip(np.round(audio), -32768, 32767).astype(np.int16), len(audio) - len(tail),
                pause_ms)


def build_clips(quick: bool) -> list[Clip]:
    voices = VOICES[::2] if quick else VOICES
    clips: list[Clip] = []
    for v, (voice, rate) in enumerate(voices):
        for i, prompt in enumerate(PROMPTS[::3] if quick else PROMPTS):
            clips.append(frame_clip(f"{voice}@{rate} {prompt}", "complete", [trim(synth(prompt, voice, rate))],
                                    seed=100 * v + i))
        for i, (first, second) in enumerate(SPLITS[::2] if quick else SPLITS):
            whole = one_sentence_with_gap(first, second, voice, rate)
            halves = (trim(synth(first, voice, rate)), trim(synth(second, voice, rate)))
            for pause_ms in PAUSES_MS:
                gap, seed = silence(pause_ms / 1000), 1000 + 100 * v + 10 * i + pause_ms
                if whole is not None:
                    clips.append(frame_clip(f"{voice}@{rate} {first}|{pause_ms}", "prosody",
                                            [whole[0], gap, whole[1]], seed, pause_ms))
                clips.append(frame_clip(f"{voice}@{rate} {first}/{pause_ms}", "halves",
                                        [halves[0], gap, halves[1]], seed + 1, pause_ms))
    return clips


# ---------- models ----------
def vad_probs(vad: SileroVad, audio: Pcm) -> list[float]:
    with vad.stream() as stream:
        return [stream.prob(audio[i:i + FRAME_SAMPLES])
                for i in range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES)]


def loudness(audio: Pcm) -> list[tuple[float, ...]]:
    """Each frame's sub-block RMS, as the session's hearing job computes it."""
    n = len(audio) // FRAME_SAMPLES
    blocks = audio[:n * FRAME_SAMPLES].astype(np.float64).reshape(n, SUB_BLOCKS, -1)
    return [tuple(row) for row in np.sqrt((blocks ** 2).mean(axis=2)).tolist()]


class ModelMemo:
    """smart-turn answers, computed once per (clip, turn start, frame) and timed."""

    def __init__(self, model: SmartTurn) -> None:
        self.model = model
        self.cache: dict[tuple[int, int, int], float] = {}
        self.call_ms: list[float] = []

    def prob(self, clip_no: int, clip: Clip, start_frame: int, end_frame: int) -> float:
        key = (clip_no, start_frame, end_frame)
        if key not in self.cache:
            t0 = time.perf_counter()
            audio = clip.audio[start_frame * FRAME_SAMPLES:(end_frame + 1) * FRAME_SAMPLES]
            self.cache[key] = self.model.prob_complete(audio)
            self.call_ms.append((time.perf_counter() - t0) * 1000)
        return self.cache[key]


# ---------- replay ----------
@dataclass
class Outcome:
    ends: list[tuple[float, str]]  # (decision time s, reason)
    last_speech: float  # the end of the clip's last word (s)


def replay(clip_no: int, clip: Clip, config: EndpointingConfig, memo: ModelMemo | None,
           model_ms: float) -> Outcome:
    endpointing = Endpointing(dataclasses.replace(config, model_enabled=memo is not None))
    pending: list[tuple[float, int, float]] = []  # (answer due, ask id, prob)
    ends: list[tuple[float, str]] = []
    turn_start = 0

    def handle(events: list[Event], now: float, frame: int) -> None:
        nonlocal turn_start
        for event in events:
            if isinstance(event, SpeechStarted):
                turn_start = event.keep_from
            elif isinstance(event, AskEndOfTurn) and memo is not None:
                pending.append((now + model_ms / 1000, event.ask_id, memo.prob(clip_no, clip, turn_start, frame)))
            elif isinstance(event, TurnEnded):
                ends.append((now, event.reason))

    for frame, (prob, loud) in enumerate(zip(clip.probs, clip.loudness, strict=True)):
        arrival = (frame + 1) * FRAME_S
        while pending and pending[0][0] <= arrival:
            due, ask_id, answer = pending.pop(0)
            handle(endpointing.on_answer(ask_id, answer), due, frame)
        handle(endpointing.on_frame(frame, arrival, prob, loud), arrival, frame)
    return Outcome(ends, clip.speech_end / RATE)


@dataclass
class Row:
    setting: dict[str, float | int | str]
    cut: dict[str, float]  # kind -> fraction of clips whose turn ended before the clip's last speech
    pause_cut: float  # the same over every clip with a mid-sentence pause (prosody and halves)
    cut_by_pause: dict[int, float]  # pause length (ms) -> fraction of those clips cut
    delay_p50: float | None
    delay_p95: float | None
    by_model: float  # fraction of complete clips ended by the model
    missed: int  # complete clips whose turn never ended


def summarize(setting: dict[str, float | int | str], clips: list[Clip], outcomes: list[Outcome]) -> Row:
    cuts: dict[str, list[bool]] = {}
    by_pause: dict[int, list[bool]] = {}
    delays, model_ends, missed = [], 0, 0
    for clip, out in zip(clips, outcomes, strict=True):
        cut = any(t < out.last_speech for t, _ in out.ends)
        cuts.setdefault(clip.kind, []).append(cut)
        if clip.pause_ms:
            by_pause.setdefault(clip.pause_ms, []).append(cut)
        if clip.kind == "complete":
            final = [(t, r) for t, r in out.ends if t >= out.last_speech]
            if not final:
                missed += 1
                continue
            delays.append((final[0][0] - out.last_speech) * 1000)
            model_ends += final[0][1] == "model"
    n_complete = len(cuts.get("complete", [])) or 1
    paused = [cut for kind, v in cuts.items() if kind != "complete" for cut in v]
    return Row(setting, {k: sum(v) / len(v) for k, v in cuts.items()}, sum(paused) / max(1, len(paused)),
               {k: sum(v) / len(v) for k, v in sorted(by_pause.items())},
               float(np.percentile(delays, 50)) if delays else None,
               float(np.percentile(delays, 95)) if delays else None, model_ends / n_complete, missed)


def grid(recheck_ms: int) -> Iterator[EndpointingConfig]:
    for silence_ms in EOT_SILENCE:
        for threshold in EOT_THRESHOLD:
            for fallback in FALLBACK:
                yield EndpointingConfig(eot_silence_ms=silence_ms, eot_threshold=threshold, eot_fallback_ms=fallback,
                                       eot_recheck_ms=recheck_ms)


# ---------- report ----------
def fmt(row: Row) -> str:
    s = row.setting
    head = (f"{s['eot_silence_ms']:>4} {s['eot_threshold']:>4} {s['eot_fallback_ms']:>5}" if s["mode"] == "model"
            else f"silence-only {s['silence_only_ms']:>4}")
    cut = "  ".join(f"{k} {100 * v:3.0f}%" for k, v in sorted(row.cut.items()))
    cut += " | by pause " + "/".join(f"{100 * v:3.0f}" for v in row.cut_by_pause.values()) + "%"
    p50 = f"{row.delay_p50:6.0f}" if row.delay_p50 is not None else "     -"
    p95 = f"{row.delay_p95:6.0f}" if row.delay_p95 is not None else "     -"
    return f"{head:<18} | {cut} | delay p50 {p50} p95 {p95} ms | by model {100 * row.by_model:5.1f}%"


def pareto(rows: list[Row]) -> list[Row]:
    """Settings no other setting beats on both pause cut-offs and median delay (complete turns never cut)."""
    ok = [r for r in rows if r.delay_p50 is not None and r.missed == 0 and r.cut.get("complete", 0.0) == 0]

    def key(r: Row) -> tuple[float, float, float]:
        return (r.pause_cut, r.delay_p50 or 0.0, r.delay_p95 or 0.0)

    front = [r for r in ok if not any(key(o) < key(r) and o.pause_cut <= r.pause_cut
                                      and (o.delay_p50 or 0.0) <= (r.delay_p50 or 0.0) for o in ok)]
    return sorted(front, key=key)


def highlights(rows: list[Row]) -> list[tuple[str, Row]]:
    def pick(mode: str, values: tuple[float, ...]) -> Row | None:
        keys = ("eot_silence_ms", "eot_threshold", "eot_fallback_ms") if mode == "model" else ("silence_only_ms",)
        for row in rows:
            if row.setting["mode"] == mode and tuple(row.setting[k] for k in keys) == values:
                return row
        return None

    found = [("current defaults:", pick("model", CURRENT)), ("suggested:", pick("model", SUGGESTED)),
             ("suggested without model:", pick("silence", (SUGGESTED_SILENCE_ONLY,)))]
    return [(label, row) for label, row in found if row is not None]


def measure_costs(vad: SileroVad, model: SmartTurn, clips: list[Clip]) -> dict[str, float]:
    """Per-frame VAD, per-stream pool and per-call smart-turn costs (wall clock; noisy on a shared machine)."""
    audio = np.concatenate([c.audio for c in clips[:6]])
    n = len(audio) // FRAME_SAMPLES
    with vad.stream() as stream:
        t0 = time.perf_counter()
        for i in range(n):
            stream.prob(audio[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES])
        vad_ms = (time.perf_counter() - t0) * 1000 / n
    t0 = time.perf_counter()
    fresh = SileroVad(prefill=10)
    new_ms = (time.perf_counter() - t0) * 1000 / 10
    t0 = time.perf_counter()
    for _ in range(1000):
        fresh.stream().close()
    pooled_ms = (time.perf_counter() - t0) * 1000 / 1000
    calls = []
    for i in range(30):
        end = len(audio) - i * 4000
        t0 = time.perf_counter()
        model.prob_complete(audio[max(0, end - 8 * RATE):end])
        calls.append((time.perf_counter() - t0) * 1000)
    return {"vad_frame_ms": vad_ms, "vad_frames": n, "detector_new_ms": new_ms, "stream_from_pool_ms": pooled_ms,
            "smart_turn_mean_ms": float(np.mean(calls)), "smart_turn_p95_ms": float(np.percentile(calls, 95))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write every row here")
    parser.add_argument("--quick", action="store_true", help="a third of the clips")
    parser.add_argument("--model-ms", type=float, default=60.0, help="simulated smart-turn answer delay")
    parser.add_argument("--recheck-ms", type=int, default=200, help="eot_recheck_ms for the whole grid")
    parser.add_argument("--costs", action="store_true", help="only measure the per-frame/per-call costs")
    args = parser.parse_args(argv)

    clips = build_clips(quick=True) if args.costs else build_clips(args.quick)
    vad, memo = SileroVad(), ModelMemo(SmartTurn())
    memo.model.warm()
    costs = measure_costs(vad, memo.model, clips)
    print(f"Silero {costs['vad_frame_ms']:.2f} ms per 32 ms frame; a new detector {costs['detector_new_ms']:.1f} ms, "
          f"a pooled stream {1000 * costs['stream_from_pool_ms']:.1f} us; smart-turn "
          f"{costs['smart_turn_mean_ms']:.0f} ms mean / {costs['smart_turn_p95_ms']:.0f} ms p95 per call (1 thread)")
    if args.costs:
        return
    for clip in clips:
        clip.probs, clip.loudness = vad_probs(vad, clip.audio), loudness(clip.audio)
    counts = {k: sum(c.kind == k for c in clips) for k in ("complete", "prosody", "halves")}
    print(f"clips: {counts}")

    rows = []
    for config in grid(args.recheck_ms):
        outcomes = [replay(i, c, config, memo, args.model_ms) for i, c in enumerate(clips)]
        setting: dict[str, float | int | str] = {
            "mode": "model", **{k: v for k, v in dataclasses.asdict(config).items() if k.startswith("eot_")}}
        rows.append(summarize(setting, clips, outcomes))
    for hangover in HANGOVERS:
        config = EndpointingConfig(silence_only_ms=hangover)
        outcomes = [replay(i, c, config, None, 0.0) for i, c in enumerate(clips)]
        rows.append(summarize({"mode": "silence", "silence_only_ms": hangover}, clips, outcomes))

    calls = np.array(memo.call_ms)
    print(f"smart-turn during the sweep: {len(calls)} calls, {calls.mean():.0f} ms mean, "
          f"{np.percentile(calls, 95):.0f} ms p95; simulated answer delay {args.model_ms:.0f} ms")
    print("eot_silence thr fallback | false cut-offs by clip kind | by pause " + "/".join(map(str, PAUSES_MS))
          + " ms | end delay after the last word (complete clips)")
    for row in rows:
        print(fmt(row))
    vad_lag = [(c.probs and (max(i for i, p in enumerate(c.probs) if p >= 0.5) + 1) * FRAME_SAMPLES - c.speech_end)
               for c in clips if c.kind == "complete"]
    print(f"VAD last speech frame ends {np.median(vad_lag) / 16:.0f} ms (median) after the last word")
    for label, row in highlights(rows):
        print(f"{label:<26}{fmt(row)}")
    print("Pareto front (pause cut-offs vs median delay; no complete turn cut):")
    for row in pareto(rows):
        print(f"  pauses cut {100 * row.pause_cut:5.1f}%  {fmt(row)}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"costs": costs, "smart_turn_ms": memo.call_ms, "model_ms": args.model_ms,
                       "rows": [dataclasses.asdict(r) for r in rows]}, fh, indent=1)


if __name__ == "__main__":
    main()
