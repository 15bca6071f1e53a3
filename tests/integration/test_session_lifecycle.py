"""Sessions in numbers and in failure: ten at once, a client that vanishes, a lapsed record."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys

import pytest
from aiortc import RTCPeerConnection

from conftest import make_settings, poll_until, serve
from support.rtc_client import RtcClient


def live_peer_connections() -> list[RTCPeerConnection]:
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, RTCPeerConnection) and o.connectionState != "closed"]


@pytest.mark.asyncio
async def test_ten_sessions_all_hear_the_tone_then_nothing_is_left() -> None:
    async with serve(make_settings(max_sessions=10)) as running:
        gateway = running.gateway
        baseline_tasks = len(asyncio.all_tasks())
        clients = [RtcClient(running.url, mode="tone") for _ in range(10)]
        await asyncio.gather(*(c.connect() for c in clients))
        assert len(gateway.sessions) == 10
        await asyncio.gather(*(c.wait_heard(25) for c in clients))
        for client in clients:
            level = max(abs(int(x)) for x in client.heard[-1].pcm)
            assert level > 5000
        lives = list(gateway.sessions.values())
        await asyncio.gather(*(c.close() for c in clients))
        async with asyncio.timeout(15):
            await asyncio.gather(*(live.ended.wait() for live in lives))
        assert not gateway.sessions
        assert len(gateway.store) == 0  # type: ignore[arg-type]
        assert all(live.runner is not None and live.runner.done() for live in lives)
        assert live_peer_connections() == []
        assert len(asyncio.all_tasks()) <= baseline_tasks
        assert gateway.metrics.active_sessions._value.get() == 0


@pytest.mark.asyncio
async def test_a_client_that_vanishes_is_cleaned_up_within_the_peer_timeout() -> None:
    async with serve(make_settings(peer_timeout_s=1.0)) as running:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.client_process", running.url, stdout=subprocess.PIPE,
            cwd=os.getcwd())
        try:
            assert proc.stdout is not None
            async with asyncio.timeout(20):
                session_id = (await proc.stdout.readline()).decode().split()[0]
            live = running.gateway.sessions[session_id]
            await poll_until(lambda: live.transport.last_media is not None, timeout=10)  # media is flowing
            proc.send_signal(signal.SIGKILL)
            loop = asyncio.get_running_loop()
            killed_at = loop.time()
            async with asyncio.timeout(5):
                await live.ended.wait()
            assert loop.time() - killed_at < 1.0 + 1.5
            assert session_id not in running.gateway.sessions
            assert live.transport.pc.connectionState == "closed"
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


@pytest.mark.asyncio
async def test_a_record_the_store_lost_is_written_again_and_the_call_goes_on() -> None:
    async with serve(make_settings(session_ttl_s=0.6)) as running:
        client = RtcClient(running.url, mode="tone")
        await client.connect()
        await running.gateway.store.delete(client.session_id)  # as if Redis restarted without its data
        await poll_until(lambda: running.gateway.store.get(client.session_id), timeout=5)
        assert client.session_id in running.gateway.sessions
        await client.close()


@pytest.mark.asyncio
async def test_max_duration_ends_the_session() -> None:
    async with serve(make_settings(session_max_s=0.5)) as running:
        client = RtcClient(running.url, mode="tone")
        await client.connect()
        live = running.gateway.sessions[client.session_id]
        async with asyncio.timeout(5):
            await live.ended.wait()
        await client.close()
        registry = running.gateway.metrics.registry
        assert registry.get_sample_value("voice_sessions_ended_total", {"reason": "max_duration"}) == 1, \
            "it ended for its age, not for another reason"
