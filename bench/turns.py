"""Whole-turn benchmark: synthesized prompts spoken over WebRTC into a gateway process, N sessions at once.

Each turn is measured twice: by the gateway (its `turn.metrics` event, DESIGN.md section 5 clock) and by
the client's own clock (both loopback legs included): first partial after the first speech frame left,
first reply audio heard after the last speech frame left.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.stats import summary
from speech_fixtures import PROMPTS, silence, synth, word_error_rate
from support.gateway import gateway_process
from support.rtc_client import RtcClient

_SPEECH_RMS = 300.0  # where the synthesized prompt's speech starts and ends
_REPLY_RMS = 20.0  # the first received frame with any reply sound in it (silence decodes to ~0)
_FRAME_16K = 320  # one 20 ms frame at 16 kHz
STAGES = ("end_of_turn_ms", "final_after_speech_ms", "reply_start_after_speech_ms", "agent_first_text_ms",
          "tts_first_audio_ms", "first_audio_ms", "first_partial_ms")


@dataclass
class TurnResult:
    prompt: str
    voice: str
    gateway: dict[str, float]
    client_first_partial_ms: float | None
    client_first_audio_ms: float | None
    final_text: str
    wer: float
    false_starts: int = 0  # replies begun at a pause inside the prompt, then cut when it went on


@dataclass
class Utterance:
    text: str
    voice: str
    pcm: np.ndarray = field(repr=False)

    def speech_frames(self) -> tuple[int, int]:
        """Indices of the first and last 20 ms frames with speech energy."""
        n = len(self.pcm) // _FRAME_16K
        frames = self.pcm[: n * _FRAME_16K].astype(np.float64).reshape(n, _FRAME_16K)
        loud = np.flatnonzero(np.sqrt((frames ** 2).mean(axis=1)) > _SPEECH_RMS)
        return int(loud[0]), int(loud[-1])


def utterances(voices: list[str], prompts: list[str]) -> list[Utterance]:
    return [Utterance(text, voice, synth(text, voice)) for voice in voices for text in prompts]


async def speak_turn(client: RtcClient, utt: Utterance, tail_s: float = 2.5, timeout: float = 40.0) -> TurnResult:
    seen, sent_before = len(client.events), len(client.mic.sent_speech)
    client.say(np.concatenate([utt.pcm, silence(tail_s)]))
    async with asyncio.timeout(timeout):
        metrics, false_starts = await _the_turns_own_metrics(client, seen)
    await client.finish_speaking()
    first, last = utt.speech_frames()
    sent = client.mic.sent_speech[sent_before:]
    first_sent, last_sent = sent[first], sent[last]
    events = client.events[seen:]
    partial = next((e["client_t"] for e in events if e["type"] == "transcript.partial"), None)
    heard = next((h.t for h in client.heard if h.t > last_sent and np.sqrt(np.mean(h.pcm.astype(float) ** 2))
                  > _REPLY_RMS), None)
    finals = [e["text"] for e in events if e["type"] == "transcript.final"]
    final = finals[-1] if finals else ""  # after a false start, the repaired turn's final covers it all
    return TurnResult(utt.text, utt.voice, metrics["timings"],
                      (partial - first_sent) * 1000 if partial else None,
                      (heard - last_sent) * 1000 if heard else None, final, word_error_rate(utt.text, final),
                      false_starts)


async def _the_turns_own_metrics(client: RtcClient, seen: int) -> tuple[dict[str, object], int]:
    """The prompt's last `turn.metrics`: a reply cut by the rest of the prompt (the turn was taken as over at
    a pause, then repaired) reports its own metrics first; count those as false starts and wait on."""
    after, false_starts = seen, 0
    while True:
        metrics = await client.wait_event("turn.metrics", timeout=3600, after=after)
        after = client.events.index(metrics) + 1
        cut = any(e["type"] == "tts.stopped" and e["reason"] == "barge_in" for e in client.events[seen:after])
        if not cut or false_starts:
            return metrics, false_starts
        false_starts += 1


async def _session(url: str, utts: list[Utterance]) -> list[TurnResult]:
    client = RtcClient(url)
    await client.connect(timeout=60)
    try:
        return [await speak_turn(client, utt) for utt in utts]
    finally:
        await client.close()


async def run_level(sessions: int, utts: list[Utterance], **settings: Any) -> dict[str, Any]:
    # No admission by load: a level measures that many sessions at once (bench load measures admission).
    async with gateway_process(max_sessions=max(8, sessions), **{"latency_budget_ms": 0, **settings}) as gateway:
        cpu0, t0 = gateway.cpu_seconds(), time.monotonic()
        results = await asyncio.gather(*(_session(gateway.url, utts) for _ in range(sessions)))
        cpu, wall = gateway.cpu_seconds() - cpu0, time.monotonic() - t0
    turns = [turn for per_session in results for turn in per_session]
    return summarize(turns, sessions, cpu / wall)


def summarize(turns: list[TurnResult], sessions: int, cpu_cores: float) -> dict[str, Any]:
    gateway = {name: summary(t.gateway.get(name) for t in turns) for name in STAGES}
    return {
        "sessions": sessions,
        "turns": len(turns),
        "gateway": gateway,
        "client": {"first_partial_ms": summary(t.client_first_partial_ms for t in turns),
                   "first_audio_ms": summary(t.client_first_audio_ms for t in turns)},
        "wer": round(float(np.mean([t.wer for t in turns])), 3) if turns else None,
        "wer_by_voice": {v: round(float(np.mean([t.wer for t in turns if t.voice == v])), 3)
                         for v in sorted({t.voice for t in turns})},
        "gateway_cpu_cores": round(cpu_cores, 2),
        "cpu_cores_per_session": round(cpu_cores / sessions, 2),
        "misheard": [(t.prompt, t.final_text) for t in turns if t.wer > 0.3],
    }


async def run(levels: list[int], voices: list[str], prompts: int, **settings: Any) -> dict[str, Any]:
    utts = utterances(voices, PROMPTS[:prompts])
    return {f"{n}_sessions": await run_level(n, utts, **settings) for n in levels}
