"""Real SIP clients from Debian, driven over 127.0.0.1: baresip (a user agent: it dials, sends a WAV as
its microphone and keeps what it heard, via its sndfile module) and SIPp (scenarios of tests/sip/)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aiortc.rtp import RtpPacket
from aiosipua import SipUAC, SipUAS, build_sdp

from alice_voice.audio.frames import Pcm
from alice_voice.audio.g711 import G711Codec
from alice_voice.transport.sip.wire import UdpTransport
from support.socket_clients import SocketClient

SCENARIOS = Path(__file__).parent.parent / "sip"
RATE = 8_000
_EXIT_S = 10.0
_CALL_ENDED = (" terminated (duration", ": session closed: ")  # (baresip's lines: it hung up; the far end did)


def free_udp_and_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (SIP listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket() as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both UDP and TCP")


def write_wav(path: Path, pcm: Pcm, rate: int = RATE) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.asarray(pcm, dtype=np.int16).tobytes())


def read_wav(path: Path) -> Pcm:
    with wave.open(str(path), "rb") as wav:
        assert wav.getframerate() == RATE and wav.getnchannels() == 1
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)


@dataclass
class Baresip:
    home: Path
    process: asyncio.subprocess.Process

    @property
    def log(self) -> str:
        return (self.home / "baresip.log").read_text(errors="replace")

    def heard(self) -> Pcm:
        """What came back over the call, as baresip played it (8 kHz): its decoder's dump."""
        [dump] = self.home.glob("dump-*-dec.wav")
        return read_wav(dump)

    async def call_over(self, timeout_s: float = 60.0) -> None:
        """Until baresip says the call has ended (it hung up, or the far end did)."""
        async with asyncio.timeout(timeout_s):
            while not any(end in self.log for end in _CALL_ENDED):
                if self.process.returncode is not None:
                    raise RuntimeError(f"baresip exited ({self.process.returncode}) with no call:\n{self.log}")
                await asyncio.sleep(0.1)  # (its log is a file: nothing to wait on but its growth)


@contextlib.asynccontextmanager
async def baresip(home: Path, target: str, speech: Pcm, *, credential: tuple[str, str] | None = None,
                  codec: str = "PCMU") -> AsyncIterator[Baresip]:
    """baresip dials `target` and says `speech` (8 kHz); it hangs up when the speech ends (its file source
    ends the call), or when the far end does. What it heard is complete once the block has exited."""
    _prepare(home, speech, credential, codec)
    seconds = int(len(speech) / RATE) + 20  # (a bound: the call ends with its speech)
    with (home / "baresip.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            _tool("stdbuf"), "-oL", _tool("baresip"), "-f", str(home), "-s", "-e", f"/dial {target}",
            "-t", str(seconds),
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT)
    try:
        yield Baresip(home, process)
    finally:
        await _stopped(process)


def _prepare(home: Path, speech: Pcm, credential: tuple[str, str] | None, codec: str) -> None:
    """baresip's configuration (its own directory): G.711 only, the speech as its microphone, a dump of what
    it hears."""
    home.mkdir(parents=True, exist_ok=True)
    write_wav(home / "in.wav", speech)
    write_wav(home / "alert.wav", np.zeros(160, np.int16))
    port = free_udp_and_tcp_port()
    (home / "config").write_text("\n".join([
        "poll_method epoll", f"sip_listen 127.0.0.1:{port}", f"audio_source aufile,{home}/in.wav",
        f"audio_alert aufile,{home}/alert.wav", f"audio_player aufile,{home}/played.wav", "audio_srate 8000",
        "audio_channels 1", "module_path /usr/lib/baresip/modules", "module g711.so", "module aufile.so",
        "module sndfile.so", f"snd_path {home}", "module_app account.so", "module_app menu.so", ""]))
    auth = f";auth_user={credential[0]};auth_pass={credential[1]}" if credential else ""
    (home / "accounts").write_text(f"<sip:caller@127.0.0.1>{auth};regint=0;audio_codecs={codec}\n")


async def sipp(scenario: str, target: str, *args: str, timeout_s: float = 60.0) -> tuple[int, str]:
    """Run a SIPp scenario (tests/sip/<scenario>.xml) against `target` (host:port) from 127.0.0.1; returns
    its exit status (0: every call went as the scenario says) and what it printed."""
    port = free_udp_and_tcp_port()
    process = await asyncio.create_subprocess_exec(
        _tool("sipp"), target, "-sf", str(SCENARIOS / f"{scenario}.xml"), "-i", "127.0.0.1", "-p", str(port),
        "-mi", "127.0.0.1", "-mp", str(free_udp_and_tcp_port()), "-nostdin", "-trace_err",
        "-error_file", "/dev/stdout", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        async with asyncio.timeout(timeout_s):
            out, _ = await process.communicate()
    finally:
        await _stopped(process)
    return process.returncode or 0, out.decode(errors="replace")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed (make test installs it: apt-get install baresip sip-tester)")
    return path


async def _stopped(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            async with asyncio.timeout(_EXIT_S):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


class SipCaller(SocketClient):
    """A SIP phone in Python (aiosipua's client, G.711 μ-law RTP over UDP): the socket clients' `say`, `heard`
    and `sent_loud`, for measuring from the caller's own packets. It carries no events of Alice's."""

    def __post_init__(self) -> None:
        self.codec = G711Codec("mulaw")
        self.rtp: asyncio.DatagramTransport | None = None
        self.remote: tuple[str, int] = ("127.0.0.1", 0)
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self._seq, self._timestamp = 0, 0

    async def send_audio(self, frame: np.ndarray, n: int) -> None:
        if self.rtp is None:
            return
        packet = RtpPacket(payload_type=0, marker=int(n == 0), sequence_number=self._seq % 65536,
                           timestamp=self._timestamp, ssrc=0x5150, payload=self.codec.encode(frame))
        self._seq, self._timestamp = self._seq + 1, self._timestamp + len(frame)
        self.rtp.sendto(packet.serialize(), self.remote)

    async def read(self) -> None:
        while True:
            packet = RtpPacket.parse(await self.received.get())
            if packet.payload_type == 0:
                self.hear(self.codec.decode(packet.payload))
                async with self.changed:
                    self.changed.notify_all()


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self, queue: asyncio.Queue[bytes]) -> None:
        self.queue = queue

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)


@contextlib.asynccontextmanager
async def sip_call(host: str, port: int) -> AsyncIterator[SipCaller]:
    """A call to Alice at host:port, answered; hung up (BYE) when the block ends."""
    loop = asyncio.get_running_loop()
    signalling = UdpTransport(local_addr=("127.0.0.1", free_udp_and_tcp_port()))
    uac = SipUAC(signalling)
    uas = SipUAS(signalling, uac=uac)  # (routes responses and Alice's requests in the dialog)
    await uas.start()
    caller = SipCaller(None, RATE)  # type: ignore[arg-type]
    rtp, _ = await loop.create_datagram_endpoint(lambda: _Inbox(caller.received), local_addr=("127.0.0.1", 0))
    caller.rtp = rtp
    offer = build_sdp("127.0.0.1", rtp.get_extra_info("sockname")[1], 0, "PCMU")
    call = uac.send_invite("sip:bench@127.0.0.1", f"sip:alice@{host}:{port}", (host, port), sdp_offer=offer)
    tasks: set[asyncio.Task[None]] = set()
    try:
        await call.wait_answered(timeout=60)
        assert call.sdp_answer is not None and call.sdp_answer.rtp_address is not None
        caller.remote = call.sdp_answer.rtp_address
        caller.streaming = True
        tasks = {asyncio.create_task(caller.read()), asyncio.create_task(caller.microphone())}
        yield caller
    finally:
        with contextlib.suppress(Exception):
            call.hangup(uac)
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=5) if tasks else None
        rtp.close()
        await uas.stop()
