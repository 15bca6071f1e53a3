"""Deepgram live transcription over its WebSocket API (`/v1/listen`), as an `AsrStream`.

Wire protocol: binary frames of 16 kHz s16le mono audio up; JSON `Results` down, interim
(`is_final: false`) until Deepgram settles a segment (`is_final: true`). `Finalize` flushes what the server
holds and is answered by results marked `from_finalize`; `KeepAlive` holds an idle socket open past
Deepgram's 10 s limit; `CloseStream` asks the server to flush and close.

How results become transcripts (partials, stable prefix, finals): deepgram_results.py.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidStatus, WebSocketException

from alice_voice.audio.frames import Pcm
from alice_voice.compute import InferenceScheduler
from alice_voice.config import Settings
from alice_voice.errors import ProviderAuthError, ProviderError, ProviderTimeout
from alice_voice.speech.deepgram_results import RATE, ResultTracker, parse_result
from alice_voice.speech.protocols import Transcript

log = logging.getLogger(__name__)
# websockets logs the handshake's headers, the API key among them, at DEBUG: its logger stays above that.
_ws_log = logging.getLogger(f"{__name__}.websocket")
_ws_log.setLevel(logging.INFO)

NAME = "deepgram"
DEFAULT_URL = "wss://api.deepgram.com/v1/listen"
DEFAULT_MODEL = "nova-3"
_MISSING_KEY = "no API key: set ALICE_DEEPGRAM_API_KEY"
_FINALIZE = json.dumps({"type": "Finalize"})
_KEEPALIVE = json.dumps({"type": "KeepAlive"})
_CLOSE_STREAM = json.dumps({"type": "CloseStream"})


class _Signal(enum.Enum):
    WAKE = enum.auto()  # a finish() changed the deadline the iterator waits under
    END = enum.auto()


_Event = Transcript | ProviderError | _Signal


@dataclass(frozen=True, slots=True)
class _Options:
    url: str
    api_key: str
    timeout_s: float
    keepalive_s: float
    close_timeout_s: float


class DeepgramAsr:
    """Deepgram streaming ASR. Holds only settings: each `stream()` opens its own WebSocket."""

    name = NAME

    def __init__(self, api_key: str, *, url: str = DEFAULT_URL, model: str = DEFAULT_MODEL,
                 language: str | None = None, timeout_s: float = 10.0, keepalive_s: float = 4.0,
                 close_timeout_s: float = 2.0) -> None:
        if not api_key:
            raise ProviderAuthError(NAME, _MISSING_KEY)
        self._options = _Options(_listen_url(url, model, language), api_key, timeout_s, keepalive_s,
                                 close_timeout_s)

    def stream(self) -> DeepgramStream:
        return DeepgramStream(self._options)


def _listen_url(url: str, model: str, language: str | None) -> str:
    """Our query parameters added to `url`. Ones already in it win (e.g. `?model=nova-2&endpointing=false`
    in the setting), except the audio format, which must describe what `push` sends."""
    parts = urlsplit(url)
    defaults = {"model": model, "interim_results": "true", "punctuate": "true"}
    if language:
        defaults["language"] = language
    audio_format = {"encoding": "linear16", "sample_rate": str(RATE), "channels": "1"}
    query = {**defaults, **dict(parse_qsl(parts.query)), **audio_format}
    return urlunsplit(parts._replace(query=urlencode(query)))


class DeepgramStream:
    """One utterance over one WebSocket, opened on the first `push`, `finish` or iteration."""

    def __init__(self, options: _Options) -> None:
        self._opts = options
        self._tracker = ResultTracker()
        self._pushed = 0
        self._asked_at: dict[int, float] = {}  # finish point -> loop time of that finish()
        self._outbox: asyncio.Queue[bytes | str] = asyncio.Queue()
        self._events: asyncio.Queue[_Event] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None
        self._error: ProviderError | None = None
        self._closed = False

    def push(self, pcm16k: Pcm) -> None:
        if self._closed or self._error is not None or not len(pcm16k):
            return
        self._start()
        self._pushed += len(pcm16k)
        self._outbox.put_nowait(pcm16k.astype("<i2", copy=False).tobytes())

    def finish(self) -> None:
        if self._closed or self._error is not None or self._tracker.is_pending(self._pushed):
            return
        final = self._tracker.finish(self._pushed)
        if final is not None:
            self._events.put_nowait(final)
            return
        self._start()
        self._asked_at[self._pushed] = asyncio.get_running_loop().time()
        self._outbox.put_nowait(_FINALIZE)
        self._events.put_nowait(_Signal.WAKE)

    def __aiter__(self) -> AsyncIterator[Transcript]:
        return self._iterate()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._events.put_nowait(_Signal.END)
        runner = self._runner
        if runner is None or runner.done():
            return
        if self._error is None:
            # CloseStream goes out after the audio already queued; the server then flushes and closes.
            self._outbox.put_nowait(_CLOSE_STREAM)
            await asyncio.wait([runner], timeout=self._opts.close_timeout_s)
        await _cancel(runner)

    async def _iterate(self) -> AsyncIterator[Transcript]:
        self._start()
        while True:
            event = await self._next_event()
            if isinstance(event, Transcript):
                yield event
                continue
            if event is _Signal.WAKE:
                continue
            # Put the error or the end back: a later iteration must see it too, not wait forever.
            self._events.put_nowait(event)
            if isinstance(event, ProviderError):
                raise event
            return

    async def _next_event(self) -> _Event:
        oldest = self._tracker.oldest_pending
        deadline = None if oldest is None else self._asked_at[oldest] + self._opts.timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                return await self._events.get()
        except TimeoutError:
            error = self._fail(ProviderTimeout(NAME, f"no final transcript within {self._opts.timeout_s:g} s "
                                                     "of finish()"))
            # _fail queued the error: take it from the queue so it is not raised twice.
            return error if self._events.empty() else self._events.get_nowait()

    def _start(self) -> None:
        if self._runner is None and not self._closed:
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="deepgram-stream")

    def _fail(self, error: ProviderError) -> ProviderError:
        if self._error is None:
            self._error = error
            self._events.put_nowait(error)
            log.warning("deepgram stream failed: %s", error.message)
        return self._error

    async def _run(self) -> None:
        try:
            ws = await self._connect()
        except ProviderError as exc:
            self._fail(exc)
            return
        sender = asyncio.create_task(self._send_loop(ws), name="deepgram-send")
        try:
            await self._receive_loop(ws)
        except ProviderError as exc:
            self._fail(exc)
        except Exception as exc:  # a bug here must still reach the consumer, not leave it waiting
            log.exception("deepgram stream broke")
            self._fail(ProviderError(NAME, f"unexpected {type(exc).__name__}: {exc}"))
        finally:
            await _cancel(sender)
            await ws.close()

    async def _connect(self) -> ClientConnection:
        opts = self._opts
        try:
            async with asyncio.timeout(opts.timeout_s):
                # No compression: deflating PCM costs CPU and saves little.
                return await connect(opts.url, additional_headers={"Authorization": f"Token {opts.api_key}"},
                                     open_timeout=None, close_timeout=opts.close_timeout_s, compression=None,
                                     logger=_ws_log)
        except TimeoutError:
            raise ProviderTimeout(NAME, f"no WebSocket handshake within {opts.timeout_s:g} s") from None
        except InvalidStatus as exc:
            raise _handshake_error(exc) from None
        except (OSError, WebSocketException) as exc:
            host = urlsplit(opts.url).netloc
            raise ProviderError(NAME, f"cannot connect to {host}: {exc}", retryable=True) from None

    async def _send_loop(self, ws: ClientConnection) -> None:
        try:
            while True:
                try:
                    async with asyncio.timeout(self._opts.keepalive_s):
                        message = await self._outbox.get()
                except TimeoutError:
                    message = _KEEPALIVE
                async with asyncio.timeout(self._opts.timeout_s):
                    await ws.send(message)
                if message == _CLOSE_STREAM:
                    return
        except TimeoutError:
            self._fail(ProviderTimeout(NAME, f"sending stalled for {self._opts.timeout_s:g} s"))
        except ConnectionClosed:
            return  # the receive loop reports why

    async def _receive_loop(self, ws: ClientConnection) -> None:
        # Unbounded on purpose: results come only while audio flows. The iterator bounds the wait for
        # a final, and websockets' pings notice a dead peer.
        while True:
            try:
                raw = await ws.recv()
            except ConnectionClosedOK as exc:
                if self._closed:
                    return
                raise ProviderError(NAME, _close_message(exc), retryable=True) from None
            except ConnectionClosed as exc:
                raise ProviderError(NAME, _close_message(exc), retryable=True) from None
            if isinstance(raw, str):
                self._on_message(raw)

    def _on_message(self, raw: str) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            raise ProviderError(NAME, "unreadable message from the server") from None
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == "Results":
            try:
                result = parse_result(message)
            except ValueError:
                raise ProviderError(NAME, "malformed Results message from the server") from None
            for transcript in self._tracker.on_result(result, self._pushed):
                self._events.put_nowait(transcript)
        elif kind == "Error":
            detail = message.get("description") or message.get("message") or "unspecified error"
            raise ProviderError(NAME, f"server error: {detail}")
        # Metadata, SpeechStarted and UtteranceEnd carry nothing we need: turn-taking is ours.


async def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel and wait; unlike awaiting the task, a cancellation of the caller still propagates."""
    task.cancel()
    await asyncio.wait([task])


def _handshake_error(exc: InvalidStatus) -> ProviderError:
    response = exc.response
    status = response.status_code
    detail = response.headers.get("dg-error") or ""
    try:
        body = json.loads(response.body or b"")
        detail = str(body.get("err_msg") or body.get("message") or detail)
    except (ValueError, AttributeError):
        detail = detail or (response.body or b"").decode(errors="replace").strip()[:200]
    message = f"handshake rejected with HTTP {status}: {detail or 'no error message'}"
    if status in (401, 403):
        return ProviderAuthError(NAME, message)
    return ProviderError(NAME, message, retryable=status == 429 or status >= 500)


def _close_message(exc: ConnectionClosed) -> str:
    if exc.rcvd is None:
        return "the connection dropped without a close frame"
    reason = exc.rcvd.reason or "no reason given"
    return f"the server closed the stream (code {exc.rcvd.code}: {reason})"


def load(settings: Settings, compute: InferenceScheduler | None = None) -> DeepgramAsr:
    key = settings.deepgram_api_key
    if key is None or not key.get_secret_value():
        raise ProviderAuthError(NAME, _MISSING_KEY)
    return DeepgramAsr(key.get_secret_value(), url=settings.deepgram_url, timeout_s=settings.asr_timeout_s)
