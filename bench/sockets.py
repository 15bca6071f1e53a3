"""The same spoken turns and barge-ins over each transport: WebRTC, the PCM WebSocket (16 kHz), and a
phone call through Twilio Media Streams (μ-law 8 kHz, the fake Twilio client of the tests, the caller's
voice through a 300-3400 Hz phone line: bench/phone_band.py), against one gateway process with the
embedded models. The word error is read from the PCM socket's transcripts at 16 kHz and, for the
telephone's sound, at 8 kHz with every frame passed through μ-law both ways (that socket is no phone call:
its recognizer is ASR's, not ASR_PHONE's; bench/phone_band.py compares the two on the phone line).

Goodbye to hang-up: a caller says "That's all, goodbye."; from the last sound of Alice's goodbye played at
the fake Twilio to the hang-up reaching the fake Twilio REST API (the gateway waits for Twilio's mark of
that last frame first, so this is how soon after the goodbye ends the line is closed).

SIP: a Python phone (aiosipua's client) calls the gateway's SIP port and speaks G.711 μ-law RTP, its voice
through the same phone line; times are read from its own packets (sent and received).

TTFA at the client: from the last loud frame of the question leaving the client to the first reply
chunk with sound arriving. Barge-in at the client: from the first loud frame of "Stop, stop." leaving to
the last reply chunk with sound arriving (the reply is silent after it).

    .venv/bin/python -m bench.sockets [--prompts 4] [--voices piper,espeak:en-us] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np

from alice_voice.audio.g711 import G711Codec
from bench.phone_band import phone_line
from bench.stats import save_json, summary
from bench.turns import Utterance, speak_turn
from fakes.twilio_rest import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioRest
from speech_fixtures import PROMPTS, synth, word_error_rate
from support.gateway import GatewayProcess, gateway_process
from support.rtc_client import RtcClient
from support.sip_clients import free_udp_and_tcp_port, sip_call
from support.socket_clients import LOUD_RMS, FakeTwilio, PcmClient, SocketClient, opened
from support.twilio_calls import STREAM, answered, twilio_headers, ws_url

QUIET_AFTER_S = 0.3  # the reply counts as silent once this long passes without sound


def mulaw_round_trip(pcm16k: np.ndarray) -> np.ndarray:
    """The telephone's sound: 8 kHz, through μ-law and back, at 16 kHz again for the client to send."""
    import soxr
    narrow = soxr.resample(pcm16k, 16_000, 8_000).astype(np.int16)
    codec = G711Codec("mulaw")
    coded = codec.decode(codec.encode(narrow))
    return soxr.resample(coded.astype(np.int16), 8_000, 16_000).astype(np.int16)


async def socket_turn(client: SocketClient, pcm16k: np.ndarray) -> tuple[float | None, str]:
    loud_before, seen = len(client.sent_loud), len(client.events)
    await client.say(pcm16k, tail_s=0.2)
    last = client.sent_loud[-1] if len(client.sent_loud) > loud_before else None
    reply = await client.wait_for(lambda: next((t for t, level in client.heard if last and t > last
                                                and level > LOUD_RMS / 10), None), timeout=30)
    await client.wait_for(lambda: _quiet_since(client, QUIET_AFTER_S + 0.7) or None, timeout=60)
    finals = [e["text"] for e in client.events[seen:] if e.get("type") == "transcript.final"]
    return ((reply - last) * 1000 if last else None), (finals[-1] if finals else "")


def _quiet_since(client: SocketClient, seconds: float) -> bool:
    loud = [t for t, level in client.heard if level > LOUD_RMS / 10]
    return bool(loud) and asyncio.get_running_loop().time() - loud[-1] > seconds


async def socket_barge_in(client: SocketClient, question: np.ndarray, stop: np.ndarray) -> float | None:
    await client.say(question, tail_s=0.2)
    await client.wait_for(lambda: sum(1 for t, level in client.heard[-50:] if level > LOUD_RMS / 10) > 40 or None,
                          timeout=30)  # a second of the (long) reply is playing
    loud_before, heard_before = len(client.sent_loud), len(client.heard)
    await client.say(stop, tail_s=1.0)
    first = client.sent_loud[loud_before]
    cut = await client.wait_for(lambda: _silenced_after(client.heard[heard_before:], first), timeout=30)
    await client.wait_for(lambda: _quiet_since(client, 1.5) or None, timeout=60)  # "stop" gets its own answer
    return (cut - first) * 1000 if cut > first else 0.0


def _silenced_after(heard: list[tuple[float, float]], start: float) -> float | None:
    """The last sound of the reply that was playing at `start`: the first one followed by a quiet gap."""
    last = start
    for t, level in heard:
        if t <= start:
            continue
        if level > LOUD_RMS / 10:
            if t - last >= QUIET_AFTER_S:
                return last
            last = t
    quiet = asyncio.get_running_loop().time() - last >= QUIET_AFTER_S
    return last if quiet else None


async def goodbye_to_hang_up(gateway: GatewayProcess, rest: FakeTwilioRest, voice: str, n: int) -> float:
    async with opened(FakeTwilio, ws_url(gateway, STREAM), 8_000, twilio_headers(gateway)) as call:
        call.call_sid = f"CA{n:032x}"
        await call.start(await answered(gateway, call))
        await call.say(phone_line(synth("That's all, goodbye.", voice)))
        hang_up = await rest.wait_for(lambda r: r.path.endswith(f"/Calls/{call.call_sid}.json"), timeout=30)
        return (hang_up.at - max(t for t, level in call.heard if level > LOUD_RMS / 10)) * 1000


async def run(voices: list[str], prompts: int) -> dict[str, Any]:
    sip_port = free_udp_and_tcp_port()
    with FakeTwilioRest() as rest:
        # No admission by load: one caller at a time here, and a caller whose own turns ran near the budget
        # (a slow day) would get the next transport's session refused while its own is still closing.
        async with gateway_process(twilio_auth_token=AUTH_TOKEN, twilio_account_sid=ACCOUNT_SID,
                                   twilio_api_url=rest.url, latency_budget_ms=0, sip_port=sip_port,
                                   sip_allow_anyone=True) as gateway:
            return await _run(gateway, rest, voices, prompts, sip_port)


async def _run(gateway: GatewayProcess, rest: FakeTwilioRest, voices: list[str], prompts: int,
               sip_port: int) -> dict[str, Any]:
    utts = [Utterance(text, voice, synth(text, voice)) for voice in voices for text in PROMPTS[:prompts]]
    question, stop = synth("What can you do?"), synth("Stop, stop.")
    out: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "turns": len(utts)}
    base = gateway.url.replace("http://", "ws://")
    rtc = RtcClient(gateway.url)
    await rtc.connect(timeout=60)
    try:
        webrtc = [await speak_turn(rtc, utt) for utt in utts]
    finally:
        await rtc.close()
    out["webrtc"] = {"ttfa_client_ms": summary(t.client_first_audio_ms for t in webrtc),
                     "wer": round(float(np.mean([t.wer for t in webrtc])), 3)}
    for name, rate, degrade in (("pcm_16k", 16_000, False), ("pcm_8k_mulaw", 8_000, True)):
        async with opened(PcmClient, f"{base}/api/voice/ws?rate={rate}", rate) as client:
            await client.wait_event("session.ready", timeout=30)
            turns = [await socket_turn(client, mulaw_round_trip(u.pcm) if degrade else u.pcm) for u in utts]
            barge = [await socket_barge_in(client, question, stop) for _ in range(3)]
        out[name] = {"ttfa_client_ms": summary(t for t, _ in turns),
                     "wer": round(float(np.mean([word_error_rate(u.text, text)
                                                 for u, (_, text) in zip(utts, turns, strict=True)])), 3),
                     "barge_in_client_ms": summary(barge)}
    async with opened(FakeTwilio, ws_url(gateway, STREAM), 8_000, twilio_headers(gateway)) as call:
        await call.start(await answered(gateway, call))
        turns = [await socket_turn(call, phone_line(u.pcm)) for u in utts]
        barge = [await socket_barge_in(call, phone_line(question), phone_line(stop)) for _ in range(3)]
        out["twilio"] = {"ttfa_client_ms": summary(t for t, _ in turns), "barge_in_client_ms": summary(barge),
                         "clears": call.cleared, "marks_acknowledged": call.marks_acknowledged}
    async with sip_call("127.0.0.1", sip_port) as phone:
        turns = [await socket_turn(phone, phone_line(u.pcm)) for u in utts]
        barge = [await socket_barge_in(phone, phone_line(question), phone_line(stop)) for _ in range(3)]
        out["sip"] = {"ttfa_client_ms": summary(t for t, _ in turns), "barge_in_client_ms": summary(barge)}
    hang_ups = [await goodbye_to_hang_up(gateway, rest, voice, n) for n, voice in enumerate(voices * 2, 1)]
    out["twilio"]["goodbye_to_hang_up_ms"] = summary(hang_ups)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sockets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voices", default="piper,espeak:en-us")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out = asyncio.run(run(args.voices.split(","), args.prompts))
    print("| transport | TTFA client p50 / p95 ms | barge-in client p50 / p95 ms | WER |\n|---|---|---|---|")
    for name in ("webrtc", "pcm_16k", "pcm_8k_mulaw", "twilio", "sip"):
        row = out[name]
        ttfa, barge = row["ttfa_client_ms"], row.get("barge_in_client_ms", {})
        print(f"| {name} | {ttfa.get('p50')} / {ttfa.get('p95')} | {barge.get('p50', '')} / {barge.get('p95', '')} | "
              f"{row.get('wer', '')} |")
    hang_up = out["twilio"]["goodbye_to_hang_up_ms"]
    print(f"\ngoodbye to hang-up: p50 {hang_up.get('p50')} / p95 {hang_up.get('p95')} ms")
    save_json(args.json, out)


if __name__ == "__main__":
    main()
