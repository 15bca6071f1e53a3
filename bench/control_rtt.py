"""Round trip of a cross-process control request over Redis pub/sub: request -> owner's handler -> reply.

    .venv/bin/python -m bench.control_rtt [--requests 300] [--redis-url URL] [--json PATH]

The owner's ControlBus runs in a subprocess (`--serve`), the requester's in this process, each with its
own Redis connections; without --redis-url a throwaway redis-server is started on a free loopback port.
Requests are sent one after another (each waits for its reply), after 20 unmeasured warm-up requests.

Reported, p50/p95/max in ms:
  subprocess   owner in another process (the realistic case)
  in-process   owner bus in this process, same event loop (no process hop, still two Redis connections)
  ping         a plain Redis PING from the requester's side, the floor under both
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import redis.asyncio as redis

from alice_voice.state.control import ControlBus
from bench.stats import save_json
from support.local_services import RedisServer

WARMUP = 20


async def _handler(action: str, session_id: str) -> dict[str, Any]:
    return {"stopped": True} if action == "stop_tts" else {"ended": True}


def _summary(samples_s: list[float]) -> dict[str, float]:
    ms = np.array(samples_s) * 1000.0
    return {"n": len(ms), "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "max_ms": float(ms.max())}


async def _measure(bus: ControlBus, owner_id: str, requests: int) -> list[float]:
    samples: list[float] = []
    for k in range(WARMUP + requests):
        began = time.perf_counter()
        result = await bus.request(owner_id, "stop_tts", f"s{k}", timeout_s=2.0)
        if k >= WARMUP:
            samples.append(time.perf_counter() - began)
        assert result == {"stopped": True}, result
    return samples


async def _ping(url: str, requests: int) -> list[float]:
    client = redis.from_url(url)
    samples: list[float] = []
    try:
        for _ in range(requests):
            began = time.perf_counter()
            await client.ping()
            samples.append(time.perf_counter() - began)
    finally:
        await client.aclose()
    return samples


def _spawn_owner(url: str, owner_id: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "bench.control_rtt", "--serve", "--redis-url", url, "--owner", owner_id]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()  # the owner says "ready" once subscribed
    if line != "ready":
        proc.kill()
        raise RuntimeError(f"owner subprocess did not start: {line!r}")
    return proc


async def run(url: str, requests: int) -> dict[str, Any]:
    requester = ControlBus(url)
    local_owner = ControlBus(url)
    proc = _spawn_owner(url, "bench-remote")
    try:
        await requester.start("bench-requester", _handler)
        await local_owner.start("bench-local", _handler)
        remote = await _measure(requester, "bench-remote", requests)
        local = await _measure(requester, "bench-local", requests)
        ping = await _ping(url, requests)
    finally:
        await requester.aclose()
        await local_owner.aclose()
        if proc.stdin:
            proc.stdin.close()  # the owner exits when its stdin closes
        proc.wait(10)
    return {"requests": requests, "subprocess": _summary(remote), "in_process": _summary(local),
            "ping": _summary(ping)}


async def serve(url: str, owner_id: str) -> None:
    """The owner side, run in a subprocess: answer requests until stdin closes."""
    bus = ControlBus(url)
    try:
        if not await bus.start(owner_id, _handler, wait_s=5.0):
            raise SystemExit("could not subscribe")
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
    finally:
        await bus.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--redis-url")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--owner", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.redis_url, args.owner))
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = None if args.redis_url else RedisServer(Path(tmp))
        if server:
            server.start()
        try:
            report = asyncio.run(run(server.url if server else args.redis_url, args.requests))
        finally:
            if server:
                server.stop()
    for name in ("subprocess", "in_process", "ping"):
        row = report[name]
        print(f"{name:11s} n={row['n']}  p50 {row['p50_ms']:.2f} ms  p95 {row['p95_ms']:.2f} ms  "
              f"max {row['max_ms']:.2f} ms")
    save_json(args.json, report)


if __name__ == "__main__":
    main()
