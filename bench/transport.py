"""Transport benchmark: offer -> answer, ICE, session record writes and Redis round trips."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import redis.asyncio as redis

from alice_voice.state.redis_store import RedisStore
from alice_voice.state.store import SessionRecord, hash_token
from bench.stats import summary
from support.gateway import bench_settings, running_gateway
from support.local_services import RedisServer
from support.rtc_client import RtcClient


async def _sessions(url: str, count: int, concurrent: int) -> list[dict[str, float]]:
    """Open `count` tone sessions, `concurrent` at a time; each waits for its first tone frame."""
    results: list[dict[str, float]] = []
    gate = asyncio.Semaphore(concurrent)

    async def one() -> None:
        async with gate:
            client = RtcClient(url, mode="tone")
            await client.connect()
            await client.wait_heard(1)
            results.append(dict(client.timings))
            await client.close()

    await asyncio.gather(*(one() for _ in range(count)))
    return results


async def _redis_costs(url: str, rounds: int) -> dict[str, dict[str, float]]:
    store = RedisStore(url)
    raw = redis.from_url(url)
    writes, pings = [], []
    now = time.time()
    for i in range(rounds):
        record = SessionRecord(session_id=f"bench-{i}", owner="bench", mode="tone", created_at=now,
                               updated_at=now, token_hash=hash_token("x"))
        t0 = time.perf_counter()
        await store.create(record, 30)
        writes.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        await raw.ping()
        pings.append((time.perf_counter() - t0) * 1000)
        await store.delete(record.session_id)
    await store.aclose()
    await raw.aclose()
    return {"session_record_write_ms": summary(writes), "redis_round_trip_ms": summary(pings)}


async def run(sequential: int = 30, concurrent: int = 10) -> dict[str, Any]:
    with TemporaryDirectory() as tmp:
        redis_server = RedisServer(Path(tmp))
        redis_server.start()
        try:
            settings = bench_settings(redis_url=redis_server.url, max_sessions=max(concurrent, 8))
            async with running_gateway(settings) as url:
                seq = await _sessions(url, sequential, 1)
                par = await _sessions(url, concurrent, concurrent)
            costs = await _redis_costs(redis_server.url, 300)
        finally:
            redis_server.stop()
    out: dict[str, Any] = {}
    for label, runs in (("sequential", seq), (f"{concurrent}_concurrent", par)):
        out[label] = {
            "offer_answer_gateway_ms": summary(r.get("server_offer_ms") for r in runs),
            "offer_round_trip_client_ms": summary(r["offer_rtt_ms"] for r in runs),
            "ice_connected_ms": summary(r["ice_connected_ms"] for r in runs),
            "session_ready_ms": summary(r["ready_ms"] for r in runs),
        }
    out["store"] = costs
    return out
