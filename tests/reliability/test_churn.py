"""Churn: many tone sessions opened and ended every way a session can end, then nothing may be left.

Endings, in rotation: the client closes its peer connection; the client DELETEs its session; the client
vanishes in-process (its ICE sockets black-holed: nothing more sent or read, no DTLS close_notify, no SCTP
ABORT, see probes.vanish); and, a few times, a client process killed with SIGKILL (bench.client_process). Sessions run
in waves of `WAVE` at once against an in-process gateway with a real redis-server and peer_timeout_s=1.

Afterwards, against a baseline taken after a warm-up wave: no live sessions, no `alice:session:*` keys,
no RTCPeerConnection objects (client or gateway: both live in this process), no aiortc decoder threads,
no more asyncio tasks, open file descriptors within FD_SLACK (the Redis pool keeps up to a wave's worth of
idle connections), RSS within RSS_SLACK_MB of the baseline and within RSS_HALF_MB over the second half
(allocator arenas grow over the first few waves, then level off: 300 sessions added ~2 MB after the
first 40 when this was written; a leak keeps growing).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass

import httpx
import pytest
import redis.asyncio as redis

from alice_voice.state.store import MemoryStore, SessionRecord
from conftest import make_settings, poll_until
from reliability.probes import Snapshot, percentile, report, size, vanish
from support.gateway import RunningGateway, serve
from support.local_services import RedisServer
from support.rtc_client import RtcClient

pytestmark = pytest.mark.realtime  # real sessions over loopback, in real time

SESSIONS = size(40, 300)
KILLED = size(2, 10)  # a client process each: ~1.5 s of CPU to start, so only a few
WAVE = 8
PEER_TIMEOUT_S = 1.0
REAP_BOUND_S = PEER_TIMEOUT_S + 1.5  # the watch ticks every timeout/4; closing is bounded at 3 s but quick here
FD_SLACK = 8
RSS_SLACK_MB = size(40, 80)
RSS_HALF_MB = 10
CREATE_DELAY_S = 1.2  # two housekeeping intervals of the test below (TTL/3 = 0.5 s)


@dataclass(frozen=True)
class Ending:
    kind: str
    end_reason: str
    reaped_s: float | None = None  # vanish/kill -> session ended


def end_reasons(running: RunningGateway) -> dict[str, float]:
    samples = running.gateway.metrics.sessions_ended.collect()[0].samples
    return {s.labels["reason"]: s.value for s in samples if s.name.endswith("_total") and s.value}


def plan(sessions: int, killed: int) -> list[str]:
    kinds = [("close", "delete", "vanish")[i % 3] for i in range(sessions)]
    for i in range(killed):
        kinds[(i * sessions) // killed + 1] = "kill"
    return kinds


async def _in_process(running: RunningGateway, http: httpx.AsyncClient, kind: str) -> Ending:
    client = RtcClient(running.url, mode="tone")
    try:
        await client.connect()
        await client.wait_heard(3)
        live = running.gateway.sessions[client.session_id]
        reaped: float | None = None
        if kind == "close":
            await client.close()
            async with asyncio.timeout(10):
                await live.ended.wait()
        elif kind == "delete":
            response = await http.delete(f"/api/voice/sessions/{client.session_id}",
                                         headers={"Authorization": f"Bearer {client.token}"})
            assert response.status_code == 200, response.text
            assert live.ended.is_set()  # DELETE answers once the session is gone
        else:
            await poll_until(lambda: live.transport.last_media is not None, timeout=5)  # the watch needs media first
            assert vanish(client) > 0
            start = time.monotonic()
            async with asyncio.timeout(REAP_BOUND_S + 3):
                await live.ended.wait()
            reaped = time.monotonic() - start
        return Ending(kind, live.transport.end_reason, reaped)
    finally:
        await client.close()


async def _killed(running: RunningGateway) -> Ending:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.client_process", running.url,
                                                stdout=subprocess.PIPE, cwd=os.getcwd())
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            session_id = (await proc.stdout.readline()).decode().split()[0]
        live = running.gateway.sessions[session_id]
        await poll_until(lambda: live.transport.last_media is not None, timeout=10)  # media from another process
        proc.send_signal(signal.SIGKILL)
        start = time.monotonic()
        async with asyncio.timeout(REAP_BOUND_S + 3):
            await live.ended.wait()
        return Ending("kill", live.transport.end_reason, time.monotonic() - start)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def _waves(running: RunningGateway, kinds: list[str]) -> list[Ending]:
    endings: list[Ending] = []
    # Idle connections are dropped before uvicorn's 5 s keep-alive ends, or a DELETE can race its close.
    async with httpx.AsyncClient(base_url=running.url, timeout=10, limits=httpx.Limits(keepalive_expiry=1.0)) as http:
        for start in range(0, len(kinds), WAVE):
            wave = kinds[start:start + WAVE]
            async with asyncio.timeout(60):
                endings += await asyncio.gather(
                    *(_killed(running) if k == "kill" else _in_process(running, http, k) for k in wave))
    return endings


async def _redis_keys(url: str) -> list[str]:
    raw = redis.from_url(url, decode_responses=True)
    try:
        return [key async for key in raw.scan_iter("alice:session:*")]
    finally:
        await raw.aclose()


@pytest.mark.asyncio
async def test_churn_leaves_nothing_behind(own_redis: RedisServer) -> None:
    settings = make_settings(redis_url=own_redis.url, peer_timeout_s=PEER_TIMEOUT_S, max_sessions=WAVE)
    async with serve(settings) as running:
        gateway = running.gateway
        await _waves(running, plan(WAVE, 1))  # warm-up: lazy imports, thread pools, codecs, the child watcher
        before = Snapshot.take()
        started = time.monotonic()
        kinds = plan(SESSIONS, KILLED)
        endings = await _waves(running, kinds[:len(kinds) // 2])
        half = Snapshot.take()
        endings += await _waves(running, kinds[len(kinds) // 2:])
        churn_s = time.monotonic() - started
        assert not gateway.sessions
        keys = await _redis_keys(own_redis.url)
        after = Snapshot.take()
        active = gateway.metrics.active_sessions._value.get()

    reaped = [e.reaped_s for e in endings if e.reaped_s is not None]
    counts = {k: sum(e.kind == k for e in endings) for k in ("close", "delete", "vanish", "kill")}
    report("churn", sessions=len(endings), **counts, churn_s=round(churn_s, 1),
           reap_p50_s=round(percentile(reaped, 50), 2), reap_max_s=round(max(reaped), 2),
           **before.figures("before"), **after.figures("after"),
           rss_growth_mb=round(after.rss_mb - before.rss_mb, 1), rss_bound_mb=RSS_SLACK_MB,
           rss_growth_second_half_mb=round(after.rss_mb - half.rss_mb, 1), redis_keys=len(keys))
    assert len(endings) == SESSIONS and counts["kill"] == KILLED
    gone = {e.end_reason for e in endings if e.kind in ("vanish", "kill")}
    assert gone <= {"client gone", "disconnected"}, gone  # reaped by the watch, not by max age or a lapse
    assert max(reaped) < REAP_BOUND_S
    assert keys == [] and active == 0
    assert after.peer_connections == 0
    assert after.decoder_threads == 0 and after.other_threads <= before.other_threads
    assert after.tasks <= before.tasks
    assert after.fds <= before.fds + FD_SLACK
    assert after.rss_mb <= before.rss_mb + RSS_SLACK_MB
    assert after.rss_mb <= half.rss_mb + RSS_HALF_MB


async def _offer(url: str, outcomes: Counter[str]) -> None:
    client = RtcClient(url, mode="tone")
    try:
        await client.connect(timeout=CREATE_DELAY_S + 2)
        outcomes["ok"] += 1
    except httpx.HTTPStatusError as exc:
        outcomes[f"http_{exc.response.status_code}_{exc.response.json()['error']['code']}"] += 1
    except TimeoutError:
        outcomes["no_session_ready"] += 1
    finally:
        await client.close()


class SlowCreateStore(MemoryStore):
    """A store whose first write of each record takes CREATE_DELAY_S, like Redis across a busy network."""

    def __init__(self) -> None:
        super().__init__()
        self._written: set[str] = set()

    def __bool__(self) -> bool:  # create_app takes `store or build_store(...)`: an empty store is falsy
        return True

    async def create(self, record: SessionRecord, ttl_s: float) -> None:  # MemoryStore.update comes here too
        if record.session_id not in self._written:
            self._written.add(record.session_id)
            await asyncio.sleep(CREATE_DELAY_S)  # the fake store's latency, not a wait for a condition
        await super().create(record, ttl_s)


@pytest.mark.asyncio
async def test_offers_in_flight_survive_the_housekeeping_tick() -> None:
    """Records are refreshed every TTL/3 (here 0.5 s); an offer whose record is still being written spans a tick.

    With the default 60 s TTL the same race hits whichever offers are in flight at each 20 s tick.
    """
    rounds = size(2, 10)
    outcomes: Counter[str] = Counter()
    store = SlowCreateStore()
    async with serve(make_settings(session_ttl_s=1.5, max_sessions=WAVE), store=store) as running:
        baseline = len(asyncio.all_tasks())
        for _ in range(rounds):
            await asyncio.gather(*(_offer(running.url, outcomes) for _ in range(WAVE)))
        await poll_until(lambda: not running.gateway.sessions, timeout=10)  # the clients closed
        ended = end_reasons(running)
        leftover_tasks, orphan_records = len(asyncio.all_tasks()) - baseline, len(store)
    report("churn.offers_vs_housekeeping", offers=rounds * WAVE, outcomes=dict(outcomes), ended=ended,
           leftover_tasks=leftover_tasks, orphan_records=orphan_records)
    assert outcomes == Counter(ok=rounds * WAVE), outcomes
    assert "record_lapsed" not in ended
    assert leftover_tasks <= 0 and orphan_records == 0
