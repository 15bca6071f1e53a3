"""The runtime set alone serves a call: run with a virtualenv holding only requirements.lock (and the
gateway), `python scripts/runtime_smoke.py`. It starts the gateway (tone mode, no model loading) on a free
port, opens a WebRTC session with aiortc (a runtime dependency), hears the tone, hangs up, stops the
gateway with SIGTERM and checks that it drained and exited 0. Exits non-zero with a reason otherwise.
`.ci/run` runs it in a fresh virtualenv, so a runtime module that imports a test-only package fails CI."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys

import httpx
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def hear_the_tone(url: str) -> float:
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="sendrecv")
    pc.createDataChannel("events")
    heard: asyncio.Queue[float] = asyncio.Queue()
    readers: list[asyncio.Task[None]] = []

    @pc.on("track")
    def on_track(track) -> None:  # type: ignore[no-untyped-def]
        async def read() -> None:
            with contextlib.suppress(MediaStreamError):  # the track ends when the call is closed
                while True:
                    frame = await track.recv()
                    heard.put_nowait(float(np.abs(frame.to_ndarray()).max()))
        readers.append(asyncio.ensure_future(read()))

    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        answer = (await http.post("/api/webrtc/offer", json={"sdp": pc.localDescription.sdp, "type": "offer",
                                                             "mode": "tone"})).json()
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    loudest = 0.0
    async with asyncio.timeout(15):
        while loudest < 1000:
            loudest = max(loudest, await heard.get())
    await pc.close()
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    return loudest


def import_everything() -> int:
    """Every module of the gateway imports with the runtime set alone (a test-only import fails here)."""
    import importlib
    import pkgutil

    import alice_voice

    names = [m.name for m in pkgutil.walk_packages(alice_voice.__path__, "alice_voice.")]
    for name in names:
        importlib.import_module(name)
    return len(names)


async def main() -> None:
    print(f"runtime set: {import_everything()} modules import")
    port = free_port()
    env = {**os.environ, "ALICE_PORT": str(port), "ALICE_HOST": "127.0.0.1", "ALICE_PRELOAD_MODELS": "false",
           "ALICE_DEFAULT_MODE": "tone", "ALICE_ICE_HOST_ADDRESSES": "127.0.0.1", "ALICE_DRAIN_LIMIT_S": "5"}
    gateway = subprocess.Popen([sys.executable, "-m", "alice_voice"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        async with asyncio.timeout(60), httpx.AsyncClient(base_url=url) as http:
            while True:
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)  # another process starting: nothing to wait on but its port
        loudest = await hear_the_tone(url)
        print(f"runtime set: the tone was heard (peak {loudest:.0f})")
        gateway.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(asyncio.to_thread(gateway.wait), 20)
        if code != 0:
            raise SystemExit(f"the gateway exited {code} after SIGTERM")
        print("runtime set: drained and exited 0")
    finally:
        if gateway.poll() is None:
            gateway.kill()


if __name__ == "__main__":
    asyncio.run(main())
