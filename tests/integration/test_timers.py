"""Timers end to end over a real WebRTC call, with the embedded models and the offline agent: set by
voice, told out loud when due, listed and cancelled by voice."""

from __future__ import annotations

import numpy as np
import pytest

import speech_fixtures as sf
from support.gateway import RunningGateway
from support.rtc_client import RtcClient

pytestmark = [pytest.mark.asyncio, pytest.mark.realtime, pytest.mark.models]


async def turn(client: RtcClient, said: str, voice: str = "piper") -> str:
    """Say `said`; the reply's text once it has played."""
    seen = len(client.events)
    client.say(np.concatenate([sf.synth(said, voice), sf.silence(1.2)]))
    await client.wait_event("tts.stopped", timeout=30, after=seen, reason="done")
    return client.reply_text(seen)


async def test_a_timer_set_by_voice_is_told_out_loud_when_due(agent_gateway: RunningGateway) -> None:
    async with RtcClient(agent_gateway.url) as client:
        assert await turn(client, "Set a timer for five seconds.") == "Okay. A five-second timer is set."
        started = await client.wait_event("tool.started", name="set_timer")
        finished = await client.wait_event("tool.finished", name="set_timer")
        assert finished["outcome"] == "ok"
        assert started.get("arguments") is None, "no arguments in events without LOG_CONTENT"
        seen, frames = len(client.events), len(client.heard)
        told = await client.wait_event("agent.text", timeout=20, after=seen)
        assert told["delta"].startswith("Your five-second timer")
        assert (told["t"] - finished["t"]) / 1000 >= 5.0 - 0.1
        await client.wait_event("tts.stopped", timeout=20, after=seen, reason="done")
        assert client.reply_text(seen) == "Your five-second timer is done."
        assert any(np.abs(h.pcm).max() > 1000 for h in client.heard[frames:]), "the reminder was heard"


async def test_timers_are_listed_and_cancelled_by_voice(agent_gateway: RunningGateway) -> None:
    async with RtcClient(agent_gateway.url) as client:
        assert await turn(client, "Set a timer for ten minutes.", "espeak:en-us") == "Okay. A ten-minute timer is set."
        left = await turn(client, "How much time is left on my timer?")
        assert left.startswith("The ten-minute timer has nine minutes and")
        assert await turn(client, "Cancel the timer.") == "The ten-minute timer is cancelled."
        session = agent_gateway.gateway.sessions[client.session_id].conversation  # type: ignore[attr-defined]
        assert session.timers.active() == []
