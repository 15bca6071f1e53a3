"""The load benchmark: 1, 2, 4 and 6 callers against one gateway process, arriving at random times (a
Poisson process) and, as the harsh case, 0.3 s apart; each level in one run of the gateway (it learns its
own load as it goes, as it would in production).

Each caller is an aiortc client in a process of its own (bench/caller.py; on the same 2 cores as the
gateway, so the numbers are pessimistic) speaking synthesized prompts in several voices, one turn after
another; every turn counts, the first included (no warm-up). Per level and arrival pattern it reports, on
the client's clock at packet arrival and on the gateway's: first reply audio (TTFA, also less the
silence a turn was given to go on: the box's part), first partial, the end of turn decision, word error,
unanswered turns, each admitted caller's p95; from the gateway: event-loop lag, the scheduler's queue wait
and run time per priority, frames, CPU per caller by stage (compute/cpu_stages.py) and RSS; and how many
callers were refused (503 at_capacity).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from bench.caller import CallerResult
from bench.stats import summary
from bench.turns import TurnResult
from support.gateway import GatewayProcess, gateway_process

ARRIVALS = ("poisson", "stagger")
STAGGER_S = 0.3  # the harsh case: callers dial 0.3 s apart
POISSON_MEAN_S = 2.0  # mean time between arrivals of the Poisson process
_STARTUP_S = 10.0  # caller processes import and prepare their speech before the first arrival
_CALLER_TIMEOUT_S = 600.0
_ADMISSION_MEMORY_S = 30.0  # (gateway/admission.py: _RECENT_TURNS_S)


def arrival_offsets(pattern: str, callers: int, seed: int = 0) -> list[float]:
    """When each caller dials (s after the first): a fixed stagger, or a Poisson process's arrivals."""
    if pattern == "stagger":
        return [k * STAGGER_S for k in range(callers)]
    if pattern == "poisson":
        gaps = np.random.default_rng(seed).exponential(POISSON_MEAN_S, callers - 1)
        return [0.0, *np.cumsum(gaps).round(3).tolist()]
    raise ValueError(f"unknown arrival pattern {pattern!r}: one of {', '.join(ARRIVALS)}")


async def _caller_process(url: str, voices: list[str], prompts: int, rotate: int, dial_at: float) -> CallerResult:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.caller", url, "--voices", ",".join(voices), "--prompts", str(prompts),
        "--rotate", str(rotate), "--dial-at", str(dial_at), stdout=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(_CALLER_TIMEOUT_S):
            out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"caller {rotate} failed (exit {proc.returncode})")
    return CallerResult.from_json(json.loads(out.decode().strip().splitlines()[-1]))


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
            elif sample.name == "voice_budget_breaches_total":
                out["breaches"] = sample.value
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


async def run_level(gateway: GatewayProcess, callers: int, arrivals: str, voices: list[str],
                    prompts: int) -> dict[str, Any]:
    offsets = arrival_offsets(arrivals, callers, seed=callers)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        before, _ = await _snapshot(http)
        first_dial = time.time() + _STARTUP_S
        # Every caller says every prompt (so word error compares like with like), each starting elsewhere.
        run = asyncio.gather(*(_caller_process(gateway.url, voices, prompts, k,
                                               first_dial + offset) for k, offset in enumerate(offsets)))
        await asyncio.sleep(max(0.0, first_dial - time.time()))  # (the callers are getting ready)
        rss0, cpu0, t0 = gateway.rss_mb(), gateway.cpu_seconds(), time.monotonic()
        rss_peak = rss0
        while not run.done():
            await asyncio.wait([run], timeout=0.5)
            rss_peak = max(rss_peak, gateway.rss_mb())
        results: list[CallerResult] = run.result()
        cpu, wall = gateway.cpu_seconds() - cpu0, time.monotonic() - t0
        after, health = await _snapshot(http)
    level = _summarize(callers, results, before, after, health, cpu / wall, wall, rss0, rss_peak)
    return {"arrivals": arrivals, "arrival_offsets_s": offsets, **level}


def _less_patience(ms: float | None, turn: TurnResult) -> float | None:
    return None if ms is None else ms - turn.gateway.get("patience_ms", 0.0)


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
                   # the box's part: less the silence the caller was given to go on (the fallback's wait)
                   "first_audio_less_patience_ms": summary(_less_patience(t.client_first_audio_ms, t)
                                                           for t in turns),
                   "first_partial_ms": summary(t.client_first_partial_ms for t in turns)},
        "gateway": {**{name: summary(t.gateway.get(name) for t in turns)
                       for name in ("first_audio_ms", "first_partial_ms", "end_of_turn_ms", "final_after_speech_ms",
                                    "tts_first_audio_ms", "patience_ms")},
                    "first_audio_less_patience_ms": summary(_less_patience(t.gateway.get("first_audio_ms"), t)
                                                            for t in turns)},
        "gap_ms": summary((t.client_first_audio_ms - t.gateway["first_audio_ms"]) for t in turns
                          if t.client_first_audio_ms is not None and "first_audio_ms" in t.gateway),
        "per_caller_first_audio_p95_ms": [summary(t.client_first_audio_ms for t in r.turns).get("p95")
                                          for r in admitted],
        "per_caller_first_audio_less_patience_p95_ms": [
            summary(_less_patience(t.client_first_audio_ms, t) for t in r.turns).get("p95") for r in admitted],
        # admitted callers' turns whose first audio (less patience) passed LATENCY_BUDGET_MS, as the gateway counts
        "budget_breaches": round(after.get("breaches", 0.0) - before.get("breaches", 0.0)),
        "dialled_late_s_max": round(max((r.dialled_late_s for r in results), default=0.0), 2),
        "wer": round(float(np.mean([t.wer for t in turns])), 3) if turns else None,
        "misheard": [(t.prompt, t.final_text) for t in turns if t.wer > 0.3],
        "frames": {"sent": sum(r.frames_sent for r in admitted), **{k: round(v) for k, v in frames.items()}},
        "event_loop_lag_p99_ms": _quantile(before["lag"], after["lag"], 0.99),
        "scheduler_wait_ms": per_priority("wait"),
        "scheduler_run_ms": per_priority("run"),  # the jobs' own time: contention shows here, not in the wait
        "scheduler_jobs": {priority: round(buckets.get(float("inf"), 0.0)
                                           - before["run"].get(priority, {}).get(float("inf"), 0.0))
                           for priority, buckets in sorted(after["run"].items())},
        "gateway_cpu_cores": round(cores, 2),
        "callers_cpu_cores": round(sum(r.cpu_s for r in results) / wall, 2),  # the clients, on the same cores
        "cores_per_caller": round(cores / max(1, len(admitted)), 3),
        # per stage, the cores one admitted caller costs over the level (compute/cpu_stages.py)
        "cores_per_caller_by_stage": {
            stage: round((seconds - before["cpu"].get(stage, 0.0)) / wall / max(1, len(admitted)), 3)
            for stage, seconds in after["cpu"].items()},
        "rss_mb": {"idle": round(rss0, 1), "peak": round(rss_peak, 1),
                   "per_session": round((rss_peak - rss0) / max(1, len(admitted)), 1)},
        "health_at_end": health.get("load", {}),
    }


async def run(levels: list[int], voices: list[str], prompts: int, arrivals: list[str],
              **settings: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with gateway_process(**settings) as gateway:
        for pattern in arrivals:
            for callers in levels:
                if callers == 1 and pattern != arrivals[0]:
                    continue  # one caller arrives the same way under every pattern
                if out:  # admission judges by the last 30 s of turns: the level before must not speak for this one
                    await asyncio.sleep(_ADMISSION_MEMORY_S)
                out[f"{callers}_callers_{pattern}"] = await run_level(gateway, callers, pattern, voices, prompts)
    return out
