"""The load benchmark: 1, 2, 4 and 6 callers speaking overlapping prompts in real time, against one gateway
process, in one run (the gateway learns its own load as it goes, as it would in production).

Each caller is an independent aiortc client (in this process, so on the same 2 cores as the gateway: the
numbers are pessimistic) speaking synthesized prompts in several voices, one turn after another,
starting a little after the caller before it so their turns overlap. Per level it reports, on the
client's clock at packet arrival and on the gateway's: first reply audio (TTFA), first partial, the end
of turn decision, word error, unanswered turns; from the gateway: event-loop lag, the scheduler's queue
wait per priority, frames received, lost and heard, CPU and RSS per session; and how many callers were
refused (503 at_capacity) when more tried to connect than its headroom allowed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from bench.stats import summary
from bench.turns import TurnResult, Utterance, speak_turn, utterances
from speech_fixtures import PROMPTS
from support.gateway import GatewayProcess, gateway_process
from support.rtc_client import RtcClient

_STAGGER_S = 0.9  # caller k starts k * this after the first: turns overlap, as in a busy service
_TURN_TIMEOUT_S = 40.0


@dataclass
class CallerResult:
    refused: bool
    turns: list[TurnResult]
    unanswered: int
    frames_sent: int


async def _caller(url: str, utts: list[Utterance], delay_s: float) -> CallerResult:
    await asyncio.sleep(delay_s)  # the benchmark's own schedule: when this caller dials in
    client = RtcClient(url)
    try:
        await client.connect(timeout=30)
    except httpx.HTTPStatusError as exc:
        await client.close()
        if exc.response.status_code == 503:
            return CallerResult(True, [], 0, 0)
        raise
    turns: list[TurnResult] = []
    unanswered = 0
    try:
        for utt in utts:
            try:
                turns.append(await speak_turn(client, utt, timeout=_TURN_TIMEOUT_S))
            except TimeoutError:
                unanswered += 1
                await client.finish_speaking()
        return CallerResult(False, turns, unanswered, client.mic.frames_sent)
    finally:
        await client.close()


def _metrics(text: str) -> dict[str, Any]:
    """The gateway's counters and histogram buckets of interest, from its /metrics text."""
    out: dict[str, Any] = {"frames": {}, "wait": {}, "run": {}, "lag": {}, "cpu": {}}
    per_priority = {"voice_scheduler_wait_ms_bucket": "wait", "voice_scheduler_run_ms_bucket": "run"}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "voice_audio_frames_total":
                out["frames"][sample.labels["stage"]] = sample.value
            elif sample.name == "voice_cpu_seconds_total":
                out["cpu"][sample.labels["stage"]] = sample.value
            elif sample.name in per_priority:
                histogram = out[per_priority[sample.name]].setdefault(sample.labels["priority"], {})
                histogram[float(sample.labels["le"])] = sample.value
            elif sample.name == "voice_event_loop_lag_ms_bucket":
                out["lag"][float(sample.labels["le"])] = sample.value
    return out


def _quantile(before: dict[float, float], after: dict[float, float], q: float) -> float | None:
    """The q-quantile of the observations between two snapshots of a histogram, interpolated in its bucket."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return None
    target, lower, below = q * total, 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= target:
            if bound == float("inf"):
                return lower
            share = (target - below) / max(cumulative - below, 1e-9)
            return round(lower + (bound - lower) * share, 2)
        lower, below = bound, cumulative
    return lower


async def _snapshot(http: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    metrics = _metrics((await http.get("/metrics")).text)
    health = (await http.get("/health")).json()
    return metrics, health


async def run_level(gateway: GatewayProcess, callers: int, utts: list[Utterance]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        before, _ = await _snapshot(http)
        rss0, cpu0, t0 = gateway.rss_mb(), gateway.cpu_seconds(), time.monotonic()
        rss_peak = rss0
        # Every caller says every prompt (so word error compares like with like), each starting elsewhere.
        run = asyncio.gather(*(_caller(gateway.url, utts[k:] + utts[:k], k * _STAGGER_S) for k in range(callers)))
        while not run.done():
            await asyncio.wait([run], timeout=0.5)
            rss_peak = max(rss_peak, gateway.rss_mb())
        results: list[CallerResult] = run.result()
        cpu, wall = gateway.cpu_seconds() - cpu0, time.monotonic() - t0
        after, health = await _snapshot(http)
    return _summarize(callers, results, before, after, health, cpu / wall, wall, rss0, rss_peak)


def _summarize(callers: int, results: list[CallerResult], before: dict[str, Any], after: dict[str, Any],
               health: dict[str, Any], cores: float, wall: float, rss0: float, rss_peak: float) -> dict[str, Any]:
    admitted = [r for r in results if not r.refused]
    turns = [t for r in admitted for t in r.turns]
    frames = {stage: after["frames"].get(stage, 0.0) - before["frames"].get(stage, 0.0)
              for stage in ("received", "lost", "heard")}
    def per_priority(kind: str) -> dict[str, dict[str, float | None]]:
        return {priority: {"p50": _quantile(before[kind].get(priority, {}), buckets, 0.5),
                           "p95": _quantile(before[kind].get(priority, {}), buckets, 0.95)}
                for priority, buckets in sorted(after[kind].items())}

    return {
        "callers": callers,
        "admitted": len(admitted),
        "refused": sum(r.refused for r in results),
        "turns": len(turns),
        "unanswered": sum(r.unanswered for r in admitted),
        "false_starts": sum(t.false_starts for t in turns),
        "client": {"first_audio_ms": summary(t.client_first_audio_ms for t in turns),
                   "first_partial_ms": summary(t.client_first_partial_ms for t in turns)},
        "gateway": {name: summary(t.gateway.get(name) for t in turns)
                    for name in ("first_audio_ms", "first_partial_ms", "end_of_turn_ms", "final_after_speech_ms",
                                 "tts_first_audio_ms")},
        "gap_ms": summary((t.client_first_audio_ms - t.gateway["first_audio_ms"]) for t in turns
                          if t.client_first_audio_ms is not None and "first_audio_ms" in t.gateway),
        "wer": round(float(np.mean([t.wer for t in turns])), 3) if turns else None,
        "misheard": [(t.prompt, t.final_text) for t in turns if t.wer > 0.3],
        "frames": {"sent": sum(r.frames_sent for r in admitted), **{k: round(v) for k, v in frames.items()}},
        "event_loop_lag_p99_ms": _quantile(before["lag"], after["lag"], 0.99),
        "scheduler_wait_ms": per_priority("wait"),
        "scheduler_run_ms": per_priority("run"),  # the jobs' own time: contention shows here, not in the wait
        "gateway_cpu_cores": round(cores, 2),
        "cores_per_caller": round(cores / max(1, len(admitted)), 3),
        # per stage, the cores one admitted caller costs over the level (compute/cpu_stages.py)
        "cores_per_caller_by_stage": {
            stage: round((seconds - before["cpu"].get(stage, 0.0)) / wall / max(1, len(admitted)), 3)
            for stage, seconds in after["cpu"].items()},
        "rss_mb": {"idle": round(rss0, 1), "peak": round(rss_peak, 1),
                   "per_session": round((rss_peak - rss0) / max(1, len(admitted)), 1)},
        "health_at_end": health.get("load", {}),
    }


async def run(levels: list[int], voices: list[str], prompts: int, **settings: Any) -> dict[str, Any]:
    utts = utterances(voices, PROMPTS[:prompts])
    out: dict[str, Any] = {}
    async with gateway_process(**settings) as gateway:
        warm = await run_level(gateway, 1, utts[:1])  # the first turn of a process pays for cold caches
        out["warm_up"] = {"turns": warm["turns"]}
        for callers in levels:
            out[f"{callers}_callers"] = await run_level(gateway, callers, utts)
    return out
