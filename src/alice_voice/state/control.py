"""Control requests for a session owned by another gateway process, carried over Redis pub/sub.

Each process listens on `alice:control:<owner_id>` and on its own reply channel `alice:reply:<bus id>`,
both confirmed by Redis before any request is published, so a reply can never beat its subscription.
A request is one PUBLISH: 0 receivers means no process listens for that owner (`OwnerGone` at once);
no reply before the timeout is `OwnerGone` too. The owner runs each request in its own task, so a slow
handler holds up nobody else; a handler that raises is answered with an error reply, which the
requester raises again as the same AliceError type (or a `RemoteError` carrying its status and code).

If Redis goes away the listener fails the requests waiting for a reply with `StoreUnavailable` and
subscribes again by itself (backing off 50 ms .. 1 s, or at once when a request needs it).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

import redis.asyncio as redis
from pydantic import ValidationError
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from alice_voice.errors import AliceError, OwnerGone, ShuttingDown, StoreUnavailable
from alice_voice.state.control_wire import ControlReply, ControlRequest, ErrorInfo, rebuild_error

CONTROL_PREFIX = "alice:control:"
REPLY_PREFIX = "alice:reply:"

ControlAction = Literal["stop_tts", "end"]
ControlHandler = Callable[[str, str], Awaitable[dict[str, Any]]]
"""The owner's local implementation: `handler(action, session_id) -> result`, e.g. {"stopped": True}."""

log = logging.getLogger("alice_voice.control")


def control_channel(owner_id: str) -> str:
    return CONTROL_PREFIX + owner_id


def _no_answer(owner_id: str, action: str, timeout_s: float) -> str:
    return f"the owner {owner_id!r} of the session did not answer {action!r} within {timeout_s:g} s"


async def call_handler(handler: ControlHandler, owner_id: str, action: str, session_id: str,
                       timeout_s: float) -> dict[str, Any]:
    """Run the owner's handler as a request would: bounded, and any failure turned into an AliceError."""
    try:
        async with asyncio.timeout(timeout_s) as scope:
            return await handler(action, session_id)
    except AliceError:
        raise
    except TimeoutError:
        if not scope.expired():
            raise AliceError(f"the owner failed to run {action!r} (TimeoutError); see its logs") from None
        raise OwnerGone(_no_answer(owner_id, action, timeout_s)) from None
    except Exception as exc:
        log.exception("control handler failed on %r", action, extra={"session_id": session_id})
        # The type only: the text of an internal exception is for the owner's logs, not for HTTP clients.
        raise AliceError(f"the owner failed to run {action!r} ({type(exc).__name__}); see its logs") from exc


class ControlChannel(Protocol):
    """What the gateway needs: answer requests for its own sessions, send requests to other owners."""

    kind: str
    owner_id: str | None

    @property
    def ready(self) -> bool: ...

    async def start(self, owner_id: str, handler: ControlHandler, *, wait_s: float = 1.0) -> bool: ...

    async def request(self, owner_id: str, action: ControlAction, session_id: str,
                      timeout_s: float) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


class LocalControlBus:
    """A single process (memory store): requests reach this process's handler; any other owner is gone."""

    kind = "memory"

    def __init__(self) -> None:
        self.owner_id: str | None = None
        self._handler: ControlHandler | None = None
        self._closed = False

    @property
    def ready(self) -> bool:
        return self._handler is not None and not self._closed

    async def start(self, owner_id: str, handler: ControlHandler, *, wait_s: float = 1.0) -> bool:
        self.owner_id, self._handler = owner_id, handler
        return True

    async def request(self, owner_id: str, action: ControlAction, session_id: str,
                      timeout_s: float) -> dict[str, Any]:
        if self._closed:
            raise ShuttingDown("the control bus is closed")
        if self._handler is None or self.owner_id is None:
            raise RuntimeError("start() the control bus before sending requests")
        if owner_id != self.owner_id:
            raise OwnerGone(f"the owner {owner_id!r} of the session is gone (not this process; no Redis)")
        return await call_handler(self._handler, owner_id, action, session_id, timeout_s)

    async def aclose(self) -> None:
        self._closed, self._handler = True, None


class ControlBus:
    """Control requests between gateway processes over Redis pub/sub (one bus per process).

    `timeout_s` bounds every Redis call (connect, publish); `backoff_s` is the (first, longest) pause
    between attempts to subscribe again after Redis went away.
    """

    kind = "redis"

    def __init__(self, url: str, *, timeout_s: float = 0.5, backoff_s: tuple[float, float] = (0.05, 1.0)) -> None:
        opts: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
        # One immediate retry heals a pooled connection left stale by a Redis restart; never more (fail fast).
        self._client = redis.from_url(url, retry=Retry(NoBackoff(), 1), **opts)
        # The subscriber reports every failure at once: the listener owns reconnecting and failing waiters.
        self._sub_client = redis.from_url(url, retry=Retry(NoBackoff(), 0), **opts)
        self._timeout_s, self._backoff_s = timeout_s, backoff_s
        self.reply_channel = REPLY_PREFIX + uuid.uuid4().hex
        self.owner_id: str | None = None
        self.subscriptions = 0
        self._handler: ControlHandler | None = None
        self._closed = False
        self._subscribed = asyncio.Event()
        self._changed = asyncio.Event()
        self._kick = asyncio.Event()
        self._pending: dict[str, asyncio.Future[ControlReply]] = {}
        self._answering: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """True while both channels are subscribed."""
        return self._subscribed.is_set()

    # ---------- lifecycle ----------
    async def start(self, owner_id: str, handler: ControlHandler, *, wait_s: float = 1.0) -> bool:
        """Listen for `owner_id`; wait up to `wait_s` for the subscription. False: Redis is not reachable
        yet (the listener keeps trying by itself)."""
        if self._listener is not None or self._closed:
            raise RuntimeError("a control bus is started once")
        self.owner_id, self._handler = owner_id, handler
        self._listener = asyncio.create_task(self._listen(), name=f"control-bus:{owner_id}")
        return await self.wait_ready(wait_s)

    async def wait_ready(self, timeout_s: float, *, subscriptions: int = 1) -> bool:
        """Wait until subscribed, and subscribed at least `subscriptions` times since start (2: once again
        after losing Redis). False if that did not happen within `timeout_s`."""
        try:
            async with asyncio.timeout(timeout_s):
                while not (self.ready and self.subscriptions >= subscriptions):
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        self._closed, self._handler = True, None
        tasks = [t for t in (self._listener, *self._answering) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._listener = None
        self._lost(ShuttingDown("the control bus is closed"))
        await self._client.aclose()
        await self._sub_client.aclose()

    # ---------- requesting ----------
    async def request(self, owner_id: str, action: ControlAction, session_id: str,
                      timeout_s: float) -> dict[str, Any]:
        """Run `action` on the owner's session and return the owner's result.

        Raises OwnerGone (nobody listens for `owner_id`, or no answer within `timeout_s`),
        StoreUnavailable (Redis unreachable), or the AliceError the owner's handler raised."""
        if self._closed:
            raise ShuttingDown("the control bus is closed")
        if self._handler is None or self.owner_id is None:
            raise RuntimeError("start() the control bus before sending requests")
        if owner_id == self.owner_id:
            return await call_handler(self._handler, owner_id, action, session_id, timeout_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        await self._await_subscription(deadline)
        req = ControlRequest(id=uuid.uuid4().hex, action=action, session_id=session_id,
                             reply_to=self.reply_channel, timeout_s=min(max(timeout_s, 0.001), 60.0))
        future: asyncio.Future[ControlReply] = loop.create_future()
        self._pending[req.id] = future
        try:
            if await self._redis(self._client.publish(control_channel(owner_id), req.model_dump_json()), deadline) == 0:
                raise OwnerGone(f"the owner {owner_id!r} of the session is gone (nobody listens for it)")
            reply = await self._await_reply(future, deadline, owner_id, action, timeout_s)
        finally:
            self._pending.pop(req.id, None)
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: Redis may be lost while the publish is still under way
        if reply.error is not None:
            raise rebuild_error(reply.error)
        return reply.result or {}

    async def _await_subscription(self, deadline: float) -> None:
        if self.ready:
            return
        # Either Redis is down (say so now) or the listener is between attempts (wake it and wait).
        await self._redis(self._client.ping(), deadline)
        self._kick.set()
        try:
            async with asyncio.timeout_at(deadline):
                await self._subscribed.wait()
        except TimeoutError:
            raise StoreUnavailable("redis: the control channel is not subscribed yet") from None

    @staticmethod
    async def _redis(call: Awaitable[Any], deadline: float) -> int:
        try:
            async with asyncio.timeout_at(deadline):
                return int(await call)
        except TimeoutError:
            raise StoreUnavailable("redis: no answer before the timeout") from None
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {exc}") from None

    @staticmethod
    async def _await_reply(future: asyncio.Future[ControlReply], deadline: float, owner_id: str, action: str,
                           timeout_s: float) -> ControlReply:
        try:
            async with asyncio.timeout_at(deadline):
                return await future
        except TimeoutError:
            raise OwnerGone(_no_answer(owner_id, action, timeout_s)) from None

    # ---------- listening ----------
    async def _listen(self) -> None:
        pause = self._backoff_s[0]
        while True:
            try:
                await self._serve_subscription()
            except Exception as exc:  # the listener outlives every failure and subscribes again
                was_up = self.ready
                self._lost(StoreUnavailable("redis: lost the control channel while waiting for a reply"))
                if was_up:
                    log.warning("control channel lost (%s: %s); subscribing again", type(exc).__name__, exc)
                else:
                    log.debug("control channel still down (%s)", exc)
                pause = self._backoff_s[0] if was_up else min(pause * 2, self._backoff_s[1])
            await self._pause(pause)

    async def _pause(self, seconds: float) -> None:
        self._kick.clear()
        try:
            async with asyncio.timeout(seconds):
                await self._kick.wait()
        except TimeoutError:
            pass

    async def _serve_subscription(self) -> None:
        assert self.owner_id is not None
        channels = (control_channel(self.owner_id), self.reply_channel)
        pubsub = self._sub_client.pubsub()
        try:
            async with asyncio.timeout(self._timeout_s * 2):
                await pubsub.subscribe(*channels)
            while True:
                message = await pubsub.get_message(timeout=None)  # the listener waits for as long as it lives
                if message is not None:
                    self._on_message(message, channels)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _on_message(self, message: dict[str, Any], channels: tuple[str, str]) -> None:
        kind, channel = message["type"], message["channel"]
        channel = channel.decode(errors="replace") if isinstance(channel, bytes) else str(channel)
        if kind == "subscribe" and message["data"] == len(channels):
            self._mark_subscribed()
        if kind != "message":
            return
        try:
            if channel == channels[1]:
                self._on_reply(message["data"])
            elif channel == channels[0]:
                self._on_request(message["data"])
        except ValidationError as exc:
            log.warning("ignored a malformed control message on %s (%d errors)", channel, exc.error_count())
        except Exception:  # one bad message must not stop the listener
            log.exception("control message on %s could not be handled", channel)

    def _mark_subscribed(self) -> None:
        self.subscriptions += 1
        self._subscribed.set()
        self._signal_change()

    def _lost(self, error: AliceError) -> None:
        self._subscribed.clear()
        self._signal_change()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)

    def _signal_change(self) -> None:
        # Wake every waiter once, then start a fresh event for the next change.
        self._changed.set()
        self._changed = asyncio.Event()

    def _on_reply(self, data: bytes) -> None:
        reply = ControlReply.model_validate_json(data)
        future = self._pending.get(reply.id)
        if future is None or future.done():
            log.debug("late control reply ignored")
            return
        future.set_result(reply)

    def _on_request(self, data: bytes) -> None:
        req = ControlRequest.model_validate_json(data)
        task = asyncio.create_task(self._answer(req), name=f"control:{req.action}")
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _answer(self, req: ControlRequest) -> None:
        payload = await self._reply_payload(req)
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._client.publish(req.reply_to, payload)
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("could not send a control reply (%s)", exc, extra={"session_id": req.session_id})

    async def _reply_payload(self, req: ControlRequest) -> str:
        assert self._handler is not None and self.owner_id is not None
        try:
            result = await call_handler(self._handler, self.owner_id, req.action, req.session_id, req.timeout_s)
            return ControlReply(id=req.id, result=result).model_dump_json()
        except AliceError as exc:
            info = ErrorInfo(code=exc.code, status=exc.status, message=exc.message)
        except (ValueError, TypeError) as exc:  # the result does not serialize
            log.error("control result of %r is not JSON (%s)", req.action, type(exc).__name__)
            info = ErrorInfo(code=AliceError.code, status=AliceError.status,
                             message=f"the owner could not encode the result of {req.action!r}")
        return ControlReply(id=req.id, error=info).model_dump_json()


def control_bus(redis_url: str | None) -> ControlBus | LocalControlBus:
    """The bus matching the session store: Redis pub/sub if a Redis URL is set, else in-process."""
    return ControlBus(redis_url) if redis_url else LocalControlBus()
