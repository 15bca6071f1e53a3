"""The low-latency receive path (transport/jitter.py): client send -> gateway arrival, per mode.

aiortc's stock audio jitter buffer holds every frame until four newer ones arrive (~80 ms on loopback);
the immediate buffer hands each Opus packet on at once. This fails if the delay regresses.
"""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest

from alice_voice.audio.frames import PcmFrame
from conftest import make_settings, serve
from support.rtc_client import RtcClient

BOUND_MS = 30.0  # immediate buffer; measured ~2-5 ms on an idle loopback


async def one_way_delays(mode: str) -> list[float]:
    """Send 20 single loud frames between silences; return client send -> gateway arrival (ms) for each."""
    async with serve(make_settings(jitter_buffer=mode)) as running:
        client = RtcClient(running.url, mode="tone")
        await client.connect()
        live = running.gateway.sessions[client.session_id]
        arrivals: list[float] = []
        loud_seen = asyncio.Event()
        was_loud = [False]

        def record(frame: PcmFrame) -> None:
            loud = bool(np.abs(frame.samples).max() > 5000)
            if loud and not was_loud[0]:  # a click's onset (resampling may spread it over two frames)
                arrivals.append(frame.arrival)
                if len(arrivals) >= 20:
                    loud_seen.set()
            was_loud[0] = loud

        # observe the inbound audio exactly where the conversation gets it
        live.transport._wiring = dataclasses.replace(live.transport._wiring, deliver_audio=record)
        click = np.full(960, 12000, dtype=np.int16)
        sent_from = len(client.mic.sent_speech)
        for _ in range(20):
            client.say(np.concatenate([click, np.zeros(960 * 9, np.int16)]), rate=48000)
        async with asyncio.timeout(15):
            await loud_seen.wait()
        sent = client.mic.sent_speech[sent_from::10][:20]  # the first frame of each group is the click
        await client.close()
    # Both clocks are this machine's monotonic clock.
    return [(a - s) * 1000 for a, s in zip(arrivals[:20], sent, strict=True)]


@pytest.mark.asyncio
async def test_immediate_buffer_keeps_the_one_way_delay_low_and_the_stock_buffer_does_not() -> None:
    immediate = float(np.median(await one_way_delays("immediate")))
    stock = float(np.median(await one_way_delays("aiortc")))
    print(f"receive path one-way delay p50: immediate {immediate:.1f} ms, aiortc stock {stock:.1f} ms")
    assert immediate < BOUND_MS
    assert stock > immediate + 40  # the stock buffer's prefetch of 4 frames is what the module removes
