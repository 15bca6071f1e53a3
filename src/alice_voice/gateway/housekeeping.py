"""What a gateway process watches while it runs: its load (for admission and `/health`), the event loop's
lag, the store's health, and its sessions' records (refreshed before their TTL, written again if the
store lost them)."""

from __future__ import annotations

import asyncio
import logging

from alice_voice.compute import InferenceScheduler
from alice_voice.compute.cpu_stages import StageCpu
from alice_voice.compute.load import CpuMeter, LoopLagMonitor
from alice_voice.errors import AliceError
from alice_voice.gateway.sessions import Gateway

log = logging.getLogger("alice_voice.gateway")


class Housekeeping:
    def __init__(self, gateway: Gateway, compute: InferenceScheduler | None = None) -> None:
        """`compute`: the scheduler whose jobs' CPU time `voice_cpu_seconds_total` splits by stage."""
        self._gateway = gateway
        self._compute = compute
        self.store_up = True
        self.loop_lag = LoopLagMonitor()
        self.loop_lag.on_lag = gateway.metrics.loop_lag_ms.observe
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.check_store()
        self._tasks = [asyncio.create_task(self._refresh_records(), name="gateway-records"),
                       asyncio.create_task(self._measure_load(), name="gateway-load"),
                       asyncio.create_task(self.loop_lag.run(), name="gateway-loop-lag")]

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def check_store(self) -> bool:
        up = await self._gateway.store.ping()
        if up != self.store_up:
            log.warning("session store %s", "is back" if up else "is unreachable")
        self.store_up = up
        self._gateway.metrics.store_up.set(int(up))
        return up

    async def _measure_load(self) -> None:
        gateway = self._gateway
        admission = gateway.admission
        cpu = CpuMeter()  # created here, on the event loop's thread, which it watches
        cpu.sample()  # (the baseline, taken with the scheduler's)
        stages = StageCpu(self._compute) if self._compute is not None else None
        while True:
            await asyncio.sleep(1.0)
            sample = cpu.sample()
            if sample is not None:
                admission.observe_cpu(sample, len(gateway.sessions))
                gateway.metrics.cpu_busy.set(admission.busy)
                if stages is not None:
                    for stage, seconds in stages.split(sample.threads, cpu.loop_thread).items():
                        gateway.metrics.cpu_seconds.labels(stage=stage).inc(seconds)
            admission.settle()
            gateway.metrics.headroom_sessions.set(admission.verdict(len(gateway.sessions)).headroom)

    async def _refresh_records(self) -> None:
        """Every TTL/3, rewrite every live session's record, refreshing its TTL; a record the store lost
        (Redis restarted without persistence, or was unreachable past the TTL) is written again."""
        while True:
            await asyncio.sleep(max(0.05, self._gateway.settings.session_ttl_s / 3))
            await self._write_records()  # (a call of its own: this loop's frame holds no session between ticks)
            await self.check_store()

    async def _write_records(self) -> None:
        gateway = self._gateway
        try:
            for live in list(gateway.sessions.values()):
                if live.recorded and not live.closing:
                    await gateway.store.update(live.record, gateway.settings.session_ttl_s)
        except AliceError:
            pass  # the store is away: check_store says so
