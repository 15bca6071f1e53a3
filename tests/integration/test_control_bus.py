"""Control requests between gateway processes over a real redis-server: delivery, absent or slow owners,
handler errors, malformed messages, Redis restarting, and a clean shutdown."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as redis

from alice_voice.errors import AliceError, OwnerGone, ProviderError, SessionNotFound, ShuttingDown, StoreUnavailable
from alice_voice.state.control import ControlBus, LocalControlBus, control_channel
from alice_voice.state.control_wire import RemoteError
from conftest import RedisServer, poll_until


@dataclass
class Owner:
    """The owner's handler: records calls; `fail` makes it raise, `hang` makes it wait forever."""

    fail: BaseException | None = None
    hang: bool = False
    calls: list[tuple[str, str]] = field(default_factory=list)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, action: str, session_id: str) -> dict[str, Any]:
        self.calls.append((action, session_id))
        self.entered.set()
        if self.fail is not None:
            raise self.fail
        if self.hang:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        return {"stopped": True} if action == "stop_tts" else {"ended": True}


@dataclass
class Pair:
    owner: ControlBus
    requester: ControlBus
    handler: Owner


@pytest_asyncio.fixture
async def pair(redis_server: RedisServer) -> AsyncIterator[Pair]:
    if redis_server.proc is None:  # a failed restart test must not take the others down
        redis_server.start()
    handler = Owner()
    owner, requester = ControlBus(redis_server.url), ControlBus(redis_server.url)
    assert await owner.start("owner-a", handler)
    assert await requester.start("owner-b", Owner())
    yield Pair(owner, requester, handler)
    await requester.aclose()
    await owner.aclose()


@pytest_asyncio.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[redis.Redis]:
    client = redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.mark.asyncio
async def test_request_reaches_the_owner_and_the_reply_comes_back(pair: Pair) -> None:
    assert await pair.requester.request("owner-a", "stop_tts", "s1", timeout_s=2) == {"stopped": True}
    assert await pair.requester.request("owner-a", "end", "s2", timeout_s=2) == {"ended": True}
    assert pair.handler.calls == [("stop_tts", "s1"), ("end", "s2")]
    # Ten at once: each reply finds its own request.
    results = await asyncio.gather(*(pair.requester.request("owner-a", "end", f"c{k}", 2) for k in range(10)))
    assert results == [{"ended": True}] * 10
    assert sorted(sid for _, sid in pair.handler.calls[2:]) == sorted(f"c{k}" for k in range(10))


@pytest.mark.asyncio
async def test_request_for_itself_runs_the_local_handler(pair: Pair) -> None:
    assert await pair.owner.request("owner-a", "stop_tts", "s1", timeout_s=1) == {"stopped": True}
    assert pair.handler.calls == [("stop_tts", "s1")]


@pytest.mark.asyncio
async def test_absent_owner_is_gone_at_once(pair: Pair) -> None:
    began = time.monotonic()
    with pytest.raises(OwnerGone, match="'nobody' of the session is gone") as caught:
        await pair.requester.request("nobody", "stop_tts", "s1", timeout_s=5)
    assert time.monotonic() - began < 0.1
    assert (caught.value.status, caught.value.code) == (410, "owner_gone")


@pytest.mark.asyncio
async def test_owner_process_killed_is_gone_at_once(pair: Pair, redis_server: RedisServer) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.control_rtt", "--serve", "--redis-url", redis_server.url, "--owner", "proc",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(10):
            assert await proc.stdout.readline() == b"ready\n"
        assert await pair.requester.request("proc", "end", "s1", timeout_s=2) == {"ended": True}
    finally:
        proc.kill()  # no goodbye: the process vanishes
        async with asyncio.timeout(5):
            await proc.wait()

    async def unsubscribed() -> bool:  # Redis drops the dead process's subscription when its socket closes
        counts = dict(await pair.requester._client.pubsub_numsub(control_channel("proc")))
        return counts.get(control_channel("proc").encode(), 0) == 0

    await poll_until(unsubscribed, timeout=5)
    began = time.monotonic()
    with pytest.raises(OwnerGone):
        await pair.requester.request("proc", "end", "s1", timeout_s=5)
    assert time.monotonic() - began < 0.1


@pytest.mark.asyncio
async def test_slow_owner_is_gone_after_the_timeout(pair: Pair) -> None:
    pair.handler.hang = True
    began = time.monotonic()
    with pytest.raises(OwnerGone, match=r"did not answer 'stop_tts' within 0\.3 s"):
        await pair.requester.request("owner-a", "stop_tts", "s1", timeout_s=0.3)
    assert 0.3 <= time.monotonic() - began < 1.0
    # The owner gives up on the handler at the same deadline: nothing is left running there.
    async with asyncio.timeout(2):
        await pair.handler.cancelled.wait()
    pair.handler.hang = False
    assert await pair.requester.request("owner-a", "end", "s2", timeout_s=2) == {"ended": True}


@pytest.mark.asyncio
async def test_handler_errors_come_back_as_clear_errors(pair: Pair) -> None:
    pair.handler.fail = RuntimeError("private detail")
    with pytest.raises(AliceError) as caught:
        await pair.requester.request("owner-a", "stop_tts", "s1", timeout_s=2)
    assert (caught.value.status, caught.value.code) == (500, "internal")
    assert "'stop_tts'" in caught.value.message and "RuntimeError" in caught.value.message
    assert "private detail" not in caught.value.message  # internals stay in the owner's logs

    pair.handler.fail = SessionNotFound("no session 's1' here")
    with pytest.raises(SessionNotFound, match="no session 's1' here") as not_found:
        await pair.requester.request("owner-a", "end", "s1", timeout_s=2)
    assert not_found.value.status == 404

    pair.handler.fail = ProviderError("tts", "down")
    with pytest.raises(RemoteError) as remote:
        await pair.requester.request("owner-a", "end", "s1", timeout_s=2)
    assert (remote.value.status, remote.value.code, remote.value.message) == (502, "provider_error", "tts: down")

    pair.handler.fail = None  # the listener survived all of it
    assert await pair.requester.request("owner-a", "end", "s2", timeout_s=2) == {"ended": True}


@pytest.mark.asyncio
async def test_malformed_messages_are_ignored(pair: Pair, raw: redis.Redis) -> None:
    channel = control_channel("owner-a")
    garbage = [b"not json", b"\xff\xfe\x00", b"{}", b'{"v": 1, "id": "x", "action": "end", "session_id": "s",'
               b' "reply_to": "alice:control:victim", "timeout_s": 1}', b"[1, 2]"]
    for payload in garbage:
        assert await raw.publish(channel, payload) == 1  # the owner did receive each one
    assert await raw.publish(pair.requester.reply_channel, b'{"id": "nobody waits", "result": {}}') == 1
    assert await raw.publish(pair.requester.reply_channel, b"\x00") == 1
    assert await pair.requester.request("owner-a", "end", "s1", timeout_s=2) == {"ended": True}
    assert pair.handler.calls == [("end", "s1")]  # none of the garbage reached the handler


@pytest.mark.asyncio
async def test_redis_restart_resubscribes(pair: Pair, redis_server: RedisServer) -> None:
    seen_owner, seen_requester = pair.owner.subscriptions, pair.requester.subscriptions
    pair.handler.hang = True
    waiting = asyncio.create_task(pair.requester.request("owner-a", "stop_tts", "s1", timeout_s=10))
    async with asyncio.timeout(2):
        await pair.handler.entered.wait()
    began = time.monotonic()
    redis_server.stop()
    with pytest.raises(StoreUnavailable):  # the waiting request fails now, not after its 10 s
        await waiting
    assert time.monotonic() - began < 2
    with pytest.raises(StoreUnavailable):
        await pair.requester.request("owner-a", "end", "s2", timeout_s=2)
    assert not pair.owner.ready and not pair.requester.ready

    pair.handler.hang = False
    redis_server.start()
    assert await pair.owner.wait_ready(5, subscriptions=seen_owner + 1)
    assert await pair.requester.wait_ready(5, subscriptions=seen_requester + 1)
    assert await pair.requester.request("owner-a", "end", "s3", timeout_s=2) == {"ended": True}
    assert pair.handler.calls[-1] == ("end", "s3")


@pytest.mark.asyncio
async def test_request_right_after_restart_waits_for_the_subscription(redis_server: RedisServer) -> None:
    # The requester pauses 5 s between attempts: only the request waking it can make this pass in 3 s.
    owner = ControlBus(redis_server.url)
    requester = ControlBus(redis_server.url, backoff_s=(5.0, 5.0))
    try:
        assert await owner.start("owner-a", Owner()) and await requester.start("owner-b", Owner())
        redis_server.stop()
        redis_server.start()
        assert await owner.wait_ready(5, subscriptions=2)
        assert await requester.request("owner-a", "end", "s1", timeout_s=3) == {"ended": True}
        assert requester.subscriptions == 2
    finally:
        if redis_server.proc is None:
            redis_server.start()
        await requester.aclose()
        await owner.aclose()


@pytest.mark.asyncio
async def test_aclose_leaves_no_tasks_or_connections(redis_server: RedisServer, raw: redis.Redis) -> None:
    async def clients() -> int:
        return len(await raw.client_list())

    before = await clients()
    handler = Owner(hang=True)
    owner, requester = ControlBus(redis_server.url), ControlBus(redis_server.url)
    assert await owner.start("owner-a", handler) and await requester.start("owner-b", Owner())
    waiting = asyncio.create_task(requester.request("owner-a", "end", "s1", timeout_s=10))
    async with asyncio.timeout(2):
        await handler.entered.wait()
    assert await clients() >= before + 3  # two subscribers and at least one command connection
    await owner.aclose()
    await requester.aclose()
    with pytest.raises(ShuttingDown):
        await waiting
    assert handler.cancelled.is_set()
    assert asyncio.all_tasks() == {asyncio.current_task()}

    async def all_closed() -> bool:
        return await clients() == before

    await poll_until(all_closed, timeout=5)
    with pytest.raises(ShuttingDown):
        await requester.request("owner-a", "end", "s1", timeout_s=1)


@pytest.mark.asyncio
async def test_local_bus_serves_only_its_own_process() -> None:
    handler = Owner()
    bus = LocalControlBus()
    assert await bus.start("me", handler)
    assert await bus.request("me", "stop_tts", "s1", timeout_s=1) == {"stopped": True}
    began = time.monotonic()
    with pytest.raises(OwnerGone):
        await bus.request("someone-else", "stop_tts", "s1", timeout_s=1)
    assert time.monotonic() - began < 0.1
    handler.fail = KeyError("x")
    with pytest.raises(AliceError, match="KeyError") as caught:
        await bus.request("me", "end", "s1", timeout_s=1)
    assert caught.value.status == 500
    handler.fail, handler.hang = None, True
    with pytest.raises(OwnerGone, match="did not answer"):
        await bus.request("me", "end", "s1", timeout_s=0.1)
    assert handler.cancelled.is_set()
    await bus.aclose()
    with pytest.raises(ShuttingDown):
        await bus.request("me", "end", "s1", timeout_s=1)
