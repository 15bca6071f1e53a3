"""Barge-in benchmark: how fast a reply stops when talked over, how often it is missed, and how often the
assistant's own voice looping back (a client without echo cancellation) interrupts it."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from alice_voice.audio.frames import rms
from bench.stats import summary
from bench.turns import Utterance, utterances
from speech_fixtures import PROMPTS, silence
from support.gateway import gateway_process
from support.rtc_client import RtcClient

LONG_REPLY = "what can you do"
_QUIET_RMS = 200.0


async def _start_reply(client: RtcClient) -> int:
    seen = len(client.events)
    client.send({"type": "text", "text": LONG_REPLY})
    await client.wait_event("tts.started", timeout=20, after=seen)
    await client.wait_heard(len(client.heard) + 30)  # 0.6 s into the reply
    return seen


async def _interrupt(client: RtcClient, utt: Utterance) -> dict[str, Any]:
    await _start_reply(client)
    seen, sent_before = len(client.events), len(client.mic.sent_speech)
    client.say(np.concatenate([utt.pcm, silence(2.0)]))
    stopped = await client.wait_event("tts.stopped", timeout=30, after=seen)
    result: dict[str, Any] = {"missed": stopped["reason"] != "barge_in"}
    if not result["missed"]:
        first, _ = utt.speech_frames()
        first_sent = client.mic.sent_speech[sent_before + first]
        await client.wait_heard(len(client.heard) + 5)  # the silence follows the event by up to a tick
        quiet = next((h.t for h in client.heard if h.t > first_sent and rms(h.pcm) < _QUIET_RMS), None)
        metrics = await client.wait_event("turn.metrics", after=seen)
        result["gateway_ms"] = metrics["timings"].get("barge_in_ms")
        result["client_ms"] = (quiet - first_sent) * 1000 if quiet else None
    await client.wait_event("tts.stopped", timeout=30, after=seen + 1)  # the answer to the interruption
    await client.finish_speaking()
    return result


async def _echo_run(url: str, delay_ms: int, gain: float, replies: int) -> tuple[int, float]:
    """Long replies with the client's speaker feeding its mic: (false barge-ins, seconds of reply)."""
    client = RtcClient(url)
    client.mic.loop_back(delay_ms, gain, noise_rms=30.0)
    false, seconds = 0, 0.0
    async with client:
        for _ in range(replies):
            seen = len(client.events)
            started = time.monotonic()
            client.send({"type": "text", "text": LONG_REPLY})
            stopped = await client.wait_event("tts.stopped", timeout=40, after=seen)
            seconds += time.monotonic() - started
            if stopped["reason"] == "barge_in":
                false += 1
                await client.wait_event("tts.stopped", timeout=40, after=len(client.events) - 1)
    return false, seconds


async def run(voices: list[str], prompts: int, echo_replies: int = 3) -> dict[str, Any]:
    utts = utterances(voices, PROMPTS[:prompts])
    async with gateway_process() as gateway:
        results = []
        async with RtcClient(gateway.url) as client:
            for utt in utts:
                results.append(await _interrupt(client, utt))
        echo = {f"{delay}ms_x{gain}": await _echo_run(gateway.url, delay, gain, echo_replies)
                for delay, gain in ((60, 0.5), (150, 0.3), (250, 0.2))}
    false = sum(f for f, _ in echo.values())
    minutes = sum(s for _, s in echo.values()) / 60
    return {
        "interruptions": len(results),
        "missed": sum(r["missed"] for r in results),
        "gateway_barge_in_ms": summary(r.get("gateway_ms") for r in results),
        "client_barge_in_ms": summary(r.get("client_ms") for r in results),
        "echo_loopback": {"false_barge_ins": false, "reply_minutes": round(minutes, 2),
                          "false_per_minute": round(false / minutes, 2) if minutes else None,
                          "runs": {k: {"false": f, "seconds": round(s, 1)} for k, (f, s) in echo.items()}},
    }
