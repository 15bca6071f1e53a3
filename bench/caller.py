"""One caller of the load benchmark, in a process of its own (so clients do not share one event loop and
one GIL, as real callers do not):

    python -m bench.caller URL --voices piper,espeak:en-us --prompts 8 --rotate K --dial-at EPOCH_S

It prepares its speech, waits until `--dial-at` (wall-clock seconds, shared by every caller of a level,
so that the benchmark decides who arrives when), dials, says every prompt (starting at the K-th, each in
turn), hangs up, and prints one JSON line: refused, turns (bench.turns.TurnResult), unanswered,
frames_sent, dialled_late_s, cpu_s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from alice_voice.transport.ice import pin_host_addresses
from bench.turns import TurnResult, Utterance, speak_turn, utterances
from speech_fixtures import PROMPTS
from support.rtc_client import RtcClient

_TURN_TIMEOUT_S = 40.0


@dataclass
class CallerResult:
    refused: bool
    turns: list[TurnResult] = field(default_factory=list)
    unanswered: int = 0
    frames_sent: int = 0
    dialled_late_s: float = 0.0  # how far past its arrival time the caller dialled (its process was slow)
    cpu_s: float = 0.0  # the caller process's CPU time from dialling on (it shares the gateway's cores)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallerResult:
        return cls(**{**data, "turns": [TurnResult(**turn) for turn in data["turns"]]})


async def call(url: str, utts: list[Utterance], dial_at: float) -> CallerResult:
    await asyncio.sleep(max(0.0, dial_at - time.time()))  # the benchmark's schedule: when this caller arrives
    late = max(0.0, time.time() - dial_at)
    cpu_at_dial = time.process_time()
    client = RtcClient(url)
    try:
        await client.connect(timeout=30)
    except httpx.HTTPStatusError as exc:
        await client.close()
        if exc.response.status_code == 503:
            return CallerResult(True, dialled_late_s=late, cpu_s=time.process_time() - cpu_at_dial)
        raise
    result = CallerResult(False, dialled_late_s=late)
    try:
        for utt in utts:
            try:
                result.turns.append(await speak_turn(client, utt, timeout=_TURN_TIMEOUT_S))
            except TimeoutError:
                result.unanswered += 1
                await client.finish_speaking()
        result.frames_sent = client.mic.frames_sent
        return result
    finally:
        await client.close()
        result.cpu_s = round(time.process_time() - cpu_at_dial, 2)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.caller")
    parser.add_argument("url")
    parser.add_argument("--voices", required=True)
    parser.add_argument("--prompts", type=int, required=True)
    parser.add_argument("--rotate", type=int, default=0, help="start at this utterance (callers differ)")
    parser.add_argument("--dial-at", type=float, required=True, help="wall-clock time (s) to dial at")
    args = parser.parse_args()
    pin_host_addresses(["127.0.0.1"])
    utts = utterances(args.voices.split(","), PROMPTS[:args.prompts])
    utts = utts[args.rotate % len(utts):] + utts[:args.rotate % len(utts)]
    print(json.dumps(asdict(asyncio.run(call(args.url, utts, args.dial_at)))), flush=True)


if __name__ == "__main__":
    main()
