"""Barge-in over a real WebRTC call: the reply stops when the user talks over it, a cough does not cut it,
and the assistant's own voice coming back into the microphone does not interrupt it."""

from __future__ import annotations

import numpy as np
import pytest

import speech_fixtures as sf
from support.gateway import RunningGateway
from support.rtc_client import RtcClient

LONG_REPLY = "what can you do"  # the capabilities answer: several seconds of speech


def loud(pcm: np.ndarray) -> bool:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) > 200


async def start_long_reply(client: RtcClient) -> int:
    seen = len(client.events)
    client.send({"type": "text", "text": LONG_REPLY})
    await client.wait_event("tts.started", timeout=20, after=seen)
    await client.wait_heard(len(client.heard) + 25)  # half a second of it
    return seen


@pytest.mark.asyncio
async def test_talking_over_the_reply_stops_it_and_becomes_the_next_turn(agent_gateway: RunningGateway) -> None:
    async with RtcClient(agent_gateway.url) as client:
        await start_long_reply(client)
        seen = len(client.events)
        sent_before = len(client.mic.sent_speech)
        client.say(np.concatenate([sf.synth("What time is it?"), sf.silence(2.0)]))
        stopped = await client.wait_event("tts.stopped", timeout=10, after=seen)
        assert stopped["reason"] == "barge_in"
        first_sent = client.mic.sent_speech[sent_before]
        await client.wait_heard(len(client.heard) + 5)  # the silence follows the event by up to a tick
        quiet_at = next(h.t for h in client.heard if h.t > first_sent + 0.02 and not loud(h.pcm))
        last_sent = await client.finish_speaking()
        # The reply went quiet while the user was still talking, not at the end of their turn. How fast is
        # the benchmark's business (`python -m bench barge-in`), not a test's on a shared machine.
        assert quiet_at < last_sent - 0.5, (quiet_at - first_sent, last_sent - first_sent)
        cut_metrics = await client.wait_event("turn.metrics", after=seen)
        assert cut_metrics["timings"]["barge_in_ms"] > 0
        final = await client.wait_event("transcript.final", timeout=15, after=seen)
        assert "time" in final["text"].lower()
        await client.wait_event("tts.stopped", timeout=20, after=seen, reason="done")
        history = agent_gateway.gateway.sessions[client.session_id].conversation.history  # type: ignore[attr-defined]
        cut_reply = history[1]
        assert cut_reply.role == "assistant" and cut_reply.content == stopped["heard"]
        full = "".join(e["delta"] for e in client.events[:seen] if e["type"] == "agent.text")
        assert stopped["heard"] and len(stopped["heard"]) < len(full) and full.startswith(stopped["heard"])
        assert history[2].role == "user" and "time" in history[2].content.lower()


@pytest.mark.asyncio
async def test_a_short_noise_burst_does_not_cut_the_reply(agent_gateway: RunningGateway) -> None:
    async with RtcClient(agent_gateway.url) as client:
        seen = await start_long_reply(client)
        rng = np.random.default_rng(3)
        click = (rng.normal(0, 6000, 480)).astype(np.int16)  # 30 ms of broadband noise
        client.say(np.concatenate([click, sf.silence(0.3)]))
        stopped = await client.wait_event("tts.stopped", timeout=30, after=seen)
        assert stopped["reason"] == "done"


@pytest.mark.asyncio
@pytest.mark.parametrize(("delay_ms", "gain", "noise"), [(60, 0.5, 0.0), (240, 0.3, 50.0)])
async def test_own_voice_looping_back_does_not_interrupt(agent_gateway: RunningGateway, delay_ms: int, gain: float,
                                                         noise: float) -> None:
    client = RtcClient(agent_gateway.url)
    client.mic.loop_back(delay_ms, gain, noise)
    async with client:
        seen = await start_long_reply(client)
        stopped = await client.wait_event("tts.stopped", timeout=30, after=seen)
        assert stopped["reason"] == "done"
        assert not any(e["type"] == "vad.speech_started" for e in client.events[seen:])


@pytest.mark.asyncio
async def test_a_real_utterance_over_the_echo_still_interrupts(agent_gateway: RunningGateway) -> None:
    client = RtcClient(agent_gateway.url)
    client.mic.loop_back(120, 0.4)
    async with client:
        seen = await start_long_reply(client)
        client.say(np.concatenate([sf.synth("Stop, what time is it?"), sf.silence(1.5)]))
        stopped = await client.wait_event("tts.stopped", timeout=10, after=seen)
        assert stopped["reason"] == "barge_in"
