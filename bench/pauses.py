"""Pauses inside a sentence, spoken in real time over WebRTC: does Alice start talking over the caller's
thought? The check of `bench.eot_sweep`'s replay on the whole gateway (its own process, its defaults).

    python -m bench pauses --json bench/out/pauses.json

One aiortc client speaks the eot sweep's held-out sentences, paused after a word that cannot end them for
an exact silence (the halves synthesized apart, as the issue measured them), in two held-out voices, then
the held-out finished requests. Reported per pause length: turns ended in the pause (the gateway said
`thinking` before the last word was sent) and false starts (reply audio heard before the last word was
sent: the caller hears Alice begin over their pause); for finished requests the end-of-turn decision
(`turn.metrics`) and the first reply audio on the client's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from alice_voice.audio.frames import rms
from bench.eot_sweep import HELD_OUT_PROMPTS, HELD_OUT_SPLITS
from bench.stats import summary
from speech_fixtures import silence, synth, trim
from support.gateway import gateway_process
from support.rtc_client import RtcClient

VOICES = [("hibari", 175), ("espeak:en-gb", 185)]
PAUSES_MS = (400, 900, 1500)
TAIL_S = 3.5  # after the last word: the ceiling (2.5 s) and a reply's start
_REPLY_RMS = 20.0  # a received frame with any reply sound in it (silence decodes to ~0)


@dataclass
class Spoken:
    text: str
    voice: str
    pause_ms: int
    ended_in_pause: bool
    false_start: bool
    end_of_turn_ms: float | None
    first_audio_ms: float | None


async def speak(client: RtcClient, parts: list[np.ndarray], text: str, voice: str, pause_ms: int) -> Spoken:
    seen, heard_before, sent_before = len(client.events), len(client.heard), len(client.mic.sent_speech)
    client.say(np.concatenate([*parts, silence(TAIL_S, noise_rms=30)]))
    await client.finish_speaking()
    done = await client.wait_event("tts.stopped", timeout=30, after=seen, reason="done")
    metrics = await client.wait_event("turn.metrics", timeout=10, after=client.events.index(done))  # (follows it)
    last_word_sent = client.mic.sent_speech[sent_before + sum(len(p) for p in parts) // 320 - 1]
    events = client.events[seen:]
    thinking = [e["client_t"] for e in events if e["type"] == "turn.state" and e["state"] == "thinking"]
    loud = [h.t for h in client.heard[heard_before:] if rms(h.pcm) > _REPLY_RMS]
    first_audio = next((t for t in loud if t > last_word_sent), None)
    return Spoken(text, voice, pause_ms, any(t < last_word_sent for t in thinking),
                  any(t < last_word_sent for t in loud), metrics["timings"].get("end_of_turn_ms"),
                  None if first_audio is None else (first_audio - last_word_sent) * 1000)


# The defaults, beside the audio model alone with the old 800 ms fallback (the baseline, less the
# word list the previous release vetoed with), in one run: the box's speed varies from day to day.
SETTINGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "smart-turn alone, 0.5, fallback 800 ms": {"eot_words": "false", "eot_threshold": 0.5, "eot_fallback_ms": 800},
}


async def run(sentences: int = 6) -> dict[str, Any]:
    return {name: await run_one(settings, sentences) for name, settings in SETTINGS.items()}


async def run_one(settings: dict[str, Any], sentences: int) -> dict[str, Any]:
    results: list[Spoken] = []
    async with gateway_process(**settings) as gateway:
        client = RtcClient(gateway.url)
        await client.connect(timeout=60)
        try:
            for voice, rate in VOICES:
                for first, second in HELD_OUT_SPLITS[:sentences]:
                    halves = [trim(synth(first, voice, rate)), trim(synth(second, voice, rate))]
                    for pause_ms in PAUSES_MS:
                        parts = [halves[0], silence(pause_ms / 1000, noise_rms=30), halves[1]]
                        results.append(await speak(client, parts, f"{first} | {second}", voice, pause_ms))
                for prompt in HELD_OUT_PROMPTS[:sentences]:
                    results.append(await speak(client, [trim(synth(prompt, voice, rate))], prompt, voice, 0))
        finally:
            await client.close()
    return summarize(results)


def summarize(results: list[Spoken]) -> dict[str, Any]:
    out: dict[str, Any] = {"by_pause": {}}
    for pause_ms in PAUSES_MS:
        some = [r for r in results if r.pause_ms == pause_ms]
        out["by_pause"][pause_ms] = {"n": len(some), "ended_in_pause": sum(r.ended_in_pause for r in some),
                                     "false_starts": sum(r.false_start for r in some)}
    finished = [r for r in results if r.pause_ms == 0]
    out["finished"] = {"n": len(finished), "end_of_turn_ms": summary(r.end_of_turn_ms for r in finished),
                       "client_first_audio_ms": summary(r.first_audio_ms for r in finished),
                       "cut_off": sum(r.false_start for r in finished)}
    out["false_starts"] = [(r.text, r.voice, r.pause_ms) for r in results if r.false_start]
    out["finished_turns"] = [(r.text, r.voice, r.end_of_turn_ms, r.first_audio_ms) for r in finished]
    return out
