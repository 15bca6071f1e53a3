"""Tool calls over a real call: what one fast tool call adds to a turn, and the filler when a tool is slow.

The gateway runs the OpenAI-compatible agent against the tests' fake chat server (the real wire format,
answering at once), so the LLM costs nothing and the difference between two turns is the tool path: the
second request, the call, and for a tool that changes things the wait for the turn to be certain. The
same spoken prompts are asked three ways:

  none      the model answers at once, no tool
  fast      the model calls `calculate` (read-only: it runs on the speculative turn), then answers
  commit    the model calls `set_timer` (changes things: it waits for the end of turn), then answers
  slow      the model calls a webhook that takes `--slow-s`; the filler is said after TOOL_FILLER_MS

TTFA is from the end of the prompt's last word to the first reply sound (the filler's, for `slow`).

    .venv/bin/python -m bench.tools [--voices piper,espeak:en-us] [--repeats 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.stats import save_json, summary
from bench.turns import Utterance, speak_turn
from fakes.local_server import LocalServer
from fakes.openai_chat import FakeCall, FakeOpenAiChat
from speech_fixtures import synth
from support.gateway import gateway_process
from support.rtc_client import RtcClient

PROMPTS = ("What is seven times eight?", "Please work out twelve times twelve.")
KINDS: dict[str, Sequence[Sequence[FakeCall]]] = {
    "none": (),
    "fast": [[FakeCall("calculate", '{"expression": "7 * 8"}')]],
    "commit": [[FakeCall("set_timer", '{"minutes": 10}')]],
    "slow": [[FakeCall("slow_lookup", '{"q": "x"}')]],
}
FILLER_MS = 700


@contextmanager
def slow_backend(delay_s: float) -> Iterator[str]:
    async def slow(request: Request) -> JSONResponse:
        await asyncio.sleep(delay_s)
        return JSONResponse({"result": "It is 56."})

    server = LocalServer(Starlette(routes=[Route("/slow", slow, methods=["POST"])])).start()
    try:
        yield server.url
    finally:
        server.stop()


def tools_file(folder: Path, backend: str) -> Path:
    path = folder / "tools.toml"
    path.write_text(f"""
[[webhook]]
name = "slow_lookup"
description = "Looks something up slowly."
url = "{backend}/slow"
read_only = true
timeout_s = 10
parameters = {{ type = "object", properties = {{ q = {{ type = "string" }} }} }}
""", encoding="utf-8")
    return path


async def run(voices: list[str], repeats: int, slow_s: float) -> dict[str, Any]:
    utts = [Utterance(text, voice, synth(text, voice)) for voice in voices for text in PROMPTS] * repeats
    kind = {"now": "none"}
    fake = FakeOpenAiChat(api_key=None, reply=("It is", " fifty-six."),
                          tool_rounds_for=lambda _asked: KINDS[kind["now"]])
    results: dict[str, Any] = {}
    with fake, slow_backend(slow_s) as backend, tempfile.TemporaryDirectory() as folder:
        settings = {"agent": "openai", "llm_base_url": fake.base_url, "tools_file": tools_file(Path(folder), backend),
                    "tool_filler_ms": FILLER_MS}
        async with gateway_process(**settings) as gateway:
            client = RtcClient(gateway.url)
            await client.connect(timeout=60)
            try:
                for name in KINDS:
                    kind["now"] = name
                    seen = len(client.events)
                    turns = [await speak_turn(client, utt, tail_s=slow_s + 2.5 if name == "slow" else 2.5)
                             for utt in utts]
                    calls = [e for e in client.events[seen:] if e["type"] == "tool.finished"]
                    results[name] = {"client_first_audio_ms": summary(t.client_first_audio_ms for t in turns),
                                     "gateway_first_audio_ms": summary(t.gateway.get("first_audio_ms")
                                                                       for t in turns),
                                     "end_of_turn_ms": summary(t.gateway.get("end_of_turn_ms") for t in turns),
                                     "turns": len(turns), "false_starts": sum(t.false_starts for t in turns),
                                     "tool_calls_ok": sum(e["outcome"] == "ok" for e in calls),
                                     "tool_ms": summary(e["duration_ms"] for e in calls)}
            finally:
                await client.close()
    base = results["none"]["gateway_first_audio_ms"].get("p50")
    for name in ("fast", "commit", "slow"):
        added = results[name]["gateway_first_audio_ms"].get("p50")
        results[name]["added_p50_ms"] = round(added - base, 1) if added is not None and base is not None else None
    return {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "slow_s": slow_s, "filler_ms": FILLER_MS, **results}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tools", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voices", default="piper,espeak:en-us")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slow-s", type=float, default=2.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out = asyncio.run(run(args.voices.split(","), args.repeats, args.slow_s))
    print("| turn | TTFA client p50 / p95 ms | TTFA gateway p50 / p95 ms | added p50 ms | tool calls ok / turns |\n"
          "|---|---|---|---|---|")
    for name in KINDS:
        row = out[name]
        client, gateway = row["client_first_audio_ms"], row["gateway_first_audio_ms"]
        print(f"| {name} | {client.get('p50')} / {client.get('p95')} | {gateway.get('p50')} / {gateway.get('p95')} | "
              f"{row.get('added_p50_ms', '')} | {row['tool_calls_ok']} / {row['turns']} |")
    save_json(args.json, out)


if __name__ == "__main__":
    main()
