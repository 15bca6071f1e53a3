"""Shared tools of the reliability suite: sizes (short/long), figures, resource snapshots, light clients.

Short sizes run in CI; `ALICE_SOAK=1` (set by `python -m bench.soak`) selects the long ones. Both variables
are read at import, before the autouse fixture of tests/conftest.py clears ALICE_* from the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import gc
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import RTCPeerConnection
from aiortc.codecs.opus import OpusEncoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from alice_voice.audio.frames import WEBRTC_FRAME_SAMPLES, WEBRTC_RATE
from alice_voice.audio.tone import ToneGenerator
from support.rtc_client import RtcClient

SOAK = os.environ.get("ALICE_SOAK", "") not in ("", "0")
FIGURES_PATH = os.environ.get("ALICE_SOAK_JSON")
_POOL_THREADS = ("asyncio_", "AnyIO worker", "ThreadPoolExecutor-", "waitpid-")  # waitpid: ends with its child
_RECEIVER_BUFFER_ATTR = "_RTCRtpReceiver__jitter_buffer"  # aiortc 1.16.0, as in alice_voice.transport.jitter


def size(short: int, long: int) -> int:
    return long if SOAK else short


def report(name: str, **figures: Any) -> None:
    """One summary line on stdout (pytest -s) and, under bench.soak, the figures in its JSON file."""
    line = " ".join(f"{k}={_fmt(v)}" for k, v in figures.items())
    print(f"\n[reliability:{'long' if SOAK else 'short'}] {name}: {line}", flush=True)
    if FIGURES_PATH:
        path = Path(FIGURES_PATH)
        stored = json.loads(path.read_text()) if path.exists() else {}
        stored[name] = figures
        path.write_text(json.dumps(stored, indent=2, default=float))


def _fmt(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else json.dumps(value, default=float)


def percentile(values: list[float] | np.ndarray, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


# ---------- what a process holds ----------
def rtc_peer_connections() -> int:
    """RTCPeerConnection objects still alive after a full collection, closed or not."""
    gc.collect()
    return sum(isinstance(o, RTCPeerConnection) for o in gc.get_objects())


@dataclass(frozen=True)
class Snapshot:
    fds: int
    rss_mb: float
    tasks: int
    pool_threads: int  # idle workers of bounded pools (asyncio's executor, AnyIO's): they come and go
    decoder_threads: int  # aiortc starts one per receiving track and joins it when the track stops
    other_threads: int
    peer_connections: int

    @classmethod
    def take(cls) -> Snapshot:
        pcs = rtc_peer_connections()
        rss_pages = int(Path("/proc/self/statm").read_text().split()[1])
        names = [t.name for t in threading.enumerate()]
        pooled = sum(n.startswith(_POOL_THREADS) for n in names)
        decoders = sum(n.endswith("-decoder") for n in names)
        return cls(fds=len(os.listdir("/proc/self/fd")), rss_mb=rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20,
                   tasks=len(asyncio.all_tasks()), pool_threads=pooled, decoder_threads=decoders,
                   other_threads=len(names) - pooled - decoders, peer_connections=pcs)

    def figures(self, prefix: str) -> dict[str, Any]:
        return {f"{prefix}_{k}": round(v, 1) if isinstance(v, float) else v for k, v in asdict(self).items()}


# ---------- light clients: pacing measured at the packet level, pre-encoded audio out ----------
class ArrivalProbe(JitterBuffer):  # type: ignore[misc]
    """Stands in for the receiver's jitter buffer: stamps each RTP packet's arrival and decodes nothing.

    Decoding at the client would cost as much CPU as the gateway's own encoding; skipping it keeps the
    load test measuring the gateway, not the test client.
    """

    def __init__(self) -> None:
        super().__init__(capacity=16, prefetch=0)
        self.arrivals: list[tuple[float, int]] = []  # (client monotonic time, RTP sequence number)
        self.more = asyncio.Event()

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        self.arrivals.append((time.monotonic(), int(packet.sequence_number)))
        self.more.set()
        return False, None

    async def wait_count(self, n: int, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while len(self.arrivals) < n:
                self.more.clear()
                await self.more.wait()


def opus_packets(seconds: float = 1.0) -> list[bytes]:
    """A loop of Opus packets (a 300 Hz tone), encoded once and replayed by every light client."""
    encoder, tone, packets = OpusEncoder(), ToneGenerator(hz=300.0), []
    for i in range(int(seconds * 50)):
        frame = av.AudioFrame.from_ndarray(tone.next_frame().reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts = WEBRTC_RATE, i * WEBRTC_FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, WEBRTC_RATE)
        payloads, _ = encoder.encode(frame)
        packets += payloads
    return packets


class PreencodedTrack(MediaStreamTrack):  # type: ignore[misc]
    """An outbound audio track of ready Opus packets, paced at 20 ms on a deadline timeline (no encoding)."""

    kind = "audio"

    def __init__(self, packets: list[bytes]) -> None:
        super().__init__()
        self._packets, self._index, self._start = packets, 0, 0.0

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._index == 0:
            self._start = now
        delay = self._start + self._index * 0.02 - now
        if delay > 0:
            await asyncio.sleep(delay)
        packet = av.Packet(self._packets[self._index % len(self._packets)])
        packet.pts, packet.time_base = self._index * WEBRTC_FRAME_SAMPLES, fractions.Fraction(1, WEBRTC_RATE)
        self._index += 1
        return packet


@dataclass
class LightClient:
    """A reference client whose inbound audio is only timestamped and whose outbound audio is pre-encoded."""

    client: RtcClient
    probe: ArrivalProbe = field(default_factory=ArrivalProbe)

    @classmethod
    def create(cls, url: str, packets: list[bytes], mode: str = "tone") -> LightClient:
        client = RtcClient(url, mode=mode, send_audio=False)
        client.pc.addTrack(PreencodedTrack(packets))  # turns the recvonly transceiver into sendrecv
        return cls(client)

    async def connect(self, timeout: float = 30.0) -> None:
        await self.client.connect(timeout)
        for transceiver in self.client.pc.getTransceivers():
            if transceiver.kind == "audio":
                setattr(transceiver.receiver, _RECEIVER_BUFFER_ATTR, self.probe)

    async def close(self) -> None:
        await self.client.close()


@dataclass(frozen=True)
class Pacing:
    frames: int
    lost: int
    gap_p50_ms: float
    gap_p95_ms: float
    gap_max_ms: float


def pacing(arrivals: list[tuple[float, int]]) -> Pacing:
    """Inter-arrival gaps and packets lost (RTP sequence numbers skipped) over a window of arrivals."""
    times = np.array([t for t, _ in arrivals])
    seqs = np.unwrap(np.array([s for _, s in arrivals], dtype=float), period=65536)
    gaps = np.diff(times) * 1000
    expected = int(seqs.max() - seqs.min()) + 1 if len(seqs) else 0
    return Pacing(frames=len(arrivals), lost=max(0, expected - len(set(seqs.tolist()))),
                  gap_p50_ms=percentile(gaps, 50), gap_p95_ms=percentile(gaps, 95),
                  gap_max_ms=float(gaps.max()) if len(gaps) else float("nan"))


def window(arrivals: list[tuple[float, int]], start: float, end: float) -> list[tuple[float, int]]:
    return [a for a in arrivals if start <= a[0] < end]


# ---------- in-process client that vanishes ----------
def _black_hole(data: bytes, addr: Any = None) -> None:
    return None


def vanish(client: RtcClient) -> int:
    """Black-hole the client's ICE sockets: nothing more is read or sent, and no goodbye is said.

    From the gateway's side the peer simply goes quiet, as when a laptop's network drops or a tab is
    killed: no DTLS close_notify, no SCTP ABORT, no RTCP BYE (even `client.close()` afterwards sends its
    goodbyes into the hole). The sockets stay open so the client's own aiortc tasks do not trip over
    closed transports; `client.close()` closes them. Returns how many sockets went dark.
    """
    dark = 0
    for transceiver in client.pc.getTransceivers():
        connection = transceiver.receiver.transport.transport._connection  # aioice.Connection (bundled)
        for protocol in connection._protocols:
            transport = protocol.transport
            if transport.sendto is not _black_hole:
                transport.pause_reading()
                transport.sendto = _black_hole
                dark += 1
    return dark


@contextlib.contextmanager
def elapsed() -> Iterator[list[float]]:
    """`with elapsed() as t:` ... `t[0]` is the seconds it took."""
    box = [0.0]
    start = time.monotonic()
    try:
        yield box
    finally:
        box[0] = time.monotonic() - start
