"""SIP calls end to end with real clients from Debian: baresip (a user agent that dials, speaks a WAV and
records what it hears) holds a conversation with the embedded models over G.711; SIPp scenarios
(tests/sip/) send keys as RFC 4733 events, hold and resume, transfer, and everything Alice must refuse."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio

import speech_fixtures as sf
from alice_voice.api.sip import SipService
from alice_voice.conversation.agents import Message
from alice_voice.gateway.live_session import LiveSession
from alice_voice.gateway.sessions import TRANSFER_FAILED
from alice_voice.transport.sip import wire
from conftest import make_settings, poll_until
from fakes.openai_chat import FakeCall, FakeOpenAiChat
from support.gateway import RunningGateway, serve
from support.sip_clients import RATE, baresip, free_udp_and_tcp_port, sipp
from support.twilio_calls import no_sessions_left

pytestmark = [pytest.mark.asyncio]
ADMIN = "sip-test-admin"
SALES = "+15551230000"
LOUD = 300  # rms of 20 ms that is speech, not the silence a call carries between words


def sip_settings(**overrides: Any) -> Any:
    return make_settings(sip_port=free_udp_and_tcp_port(), sip_rtp_ports="31000-31999", admin_key=ADMIN,
                         **{"sip_allow_anyone": True, **overrides})


def target(running: RunningGateway) -> str:
    return f"127.0.0.1:{running.settings.sip_port}"


def sip_service(running: RunningGateway) -> SipService:
    service: SipService = running.app.state.parts.sip
    return service


def history(live: LiveSession) -> list[Message]:
    said: list[Message] = live.conversation.history  # type: ignore[attr-defined]
    return said


def loud_frames(pcm: np.ndarray) -> np.ndarray:
    """Which 20 ms frames of 8 kHz audio carry sound."""
    frames = pcm[: len(pcm) // 160 * 160].astype(np.float64).reshape(-1, 160)
    return np.sqrt((frames ** 2).mean(axis=1)) > LOUD  # type: ignore[no-any-return]


def speech(*parts: np.ndarray | float) -> np.ndarray:
    """Words (8 kHz) and seconds of silence, in order."""
    return np.concatenate([sf.silence(p, RATE) if isinstance(p, float) else p for p in parts])


async def no_calls_left(running: RunningGateway, *session_ids: str) -> None:
    """No session, no record, and no dialog kept by the SIP user agents."""
    await no_sessions_left(running, *session_ids)
    await poll_until(lambda: sip_service(running).listener.dialogs == 0 and not sip_service(running).calls)


async def only_session(running: RunningGateway) -> LiveSession:
    await poll_until(lambda: len(running.gateway.sessions) == 1, timeout=20)
    [live] = running.gateway.sessions.values()
    return live


def rtp_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest_asyncio.fixture
async def agent_sip() -> AsyncIterator[RunningGateway]:
    async with serve(sip_settings(default_mode="agent", preload_models=True)) as running:
        await running.app.state.runtime.resources()
        yield running


@pytest.mark.realtime
@pytest.mark.models
@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
async def test_a_baresip_caller_talks_with_alice(agent_sip: RunningGateway, tmp_path: Path, codec: str) -> None:
    question = sf.synth("What time is it?", sample_rate=RATE)
    async with baresip(tmp_path, f"sip:alice@{target(agent_sip)}", speech(0.5, question, 6.0), codec=codec) as phone:
        live = await only_session(agent_sip)
        record = await agent_sip.gateway.store.get(live.id)
        assert record is not None and record.transport == "sip"
        [call] = sip_service(agent_sip).calls.values()
        media_port = call.local_port
        await phone.call_over()  # its speech over, baresip hangs up (BYE)
    said = history(live)
    assert [m.role for m in said[:2]] == ["user", "assistant"]
    assert "time" in said[0].content.lower()
    heard = loud_frames(phone.heard())
    asked_until = (0.5 * RATE + len(question)) / 160
    assert heard[int(asked_until):].sum() > 25, "half a second of the reply came back over RTP"
    await no_calls_left(agent_sip, live.id)
    assert rtp_port_free(media_port) and rtp_port_free(media_port + 1), "the call's media sockets are closed"
    assert "Call with sip:alice" in phone.log and "terminated" in phone.log


@pytest.mark.realtime
@pytest.mark.models
async def test_talking_over_the_reply_stops_it_on_the_wire(agent_sip: RunningGateway, tmp_path: Path) -> None:
    ask = sf.synth("What can you do?", sample_rate=RATE)  # a reply of several seconds
    interrupt = sf.synth("Stop, what is seven times eight?", sample_rate=RATE)
    interrupted = agent_sip.gateway.metrics.interruptions
    before = interrupted._value.get()
    async with baresip(tmp_path, f"sip:alice@{target(agent_sip)}", speech(0.5, ask, 2.5, interrupt, 5.0)) as phone:
        live = await only_session(agent_sip)
        await phone.call_over()
    assert interrupted._value.get() == before + 1
    said = history(live)
    assert said[1].role == "assistant" and len(said[1].content) < 60, "only what was heard of the cut reply"
    assert "fifty-six" in " ".join(m.content for m in said[2:] if m.role == "assistant")
    await no_calls_left(agent_sip, live.id)


@pytest.mark.realtime
@pytest.mark.models
async def test_alice_says_goodbye_then_hangs_up(agent_sip: RunningGateway, tmp_path: Path) -> None:
    words = speech(0.5, sf.synth("That's all, goodbye.", sample_rate=RATE), 20.0)
    async with baresip(tmp_path, f"sip:alice@{target(agent_sip)}", words) as phone:
        live = await only_session(agent_sip)
        await phone.call_over(timeout_s=15)  # long before its 20 s of silence are over
    assert ": session closed: " in phone.log, "the far end (Alice) ended the call"
    assert history(live)[-1].tool_calls and history(live)[-1].tool_calls[0].name == "end_call"
    assert agent_sip.gateway.metrics.sessions_ended.labels(reason="hung_up")._value.get() == 1
    await no_calls_left(agent_sip, live.id)


@pytest.mark.realtime
@pytest.mark.models
async def test_a_caller_with_the_credential_is_answered(tmp_path: Path) -> None:
    settings = sip_settings(default_mode="agent", preload_models=True, sip_allow_anyone=False,
                            sip_username="pbx", sip_password="s3cret")
    async with serve(settings) as running:
        await running.app.state.runtime.resources()
        words = speech(0.5, sf.synth("Hello there.", sample_rate=RATE), 4.0)
        async with baresip(tmp_path, f"sip:alice@{target(running)}", words, credential=("pbx", "s3cret")) as phone:
            live = await only_session(running)
            await phone.call_over()
        assert history(live)[0].role == "user"
        assert "401 Unauthorized" in phone.log, "challenged first, then answered"
        await no_calls_left(running, live.id)
        code, out = await sipp("challenged", target(running), "-m", "1", "-recv_timeout", "5000")
        assert code == 0, out
        code, out = await sipp("wrong_password", target(running), "-m", "1", "-au", "pbx", "-ap", "wrong",
                               "-recv_timeout", "5000")
        assert code == 0, out
        assert not running.gateway.sessions


async def test_ending_the_session_hangs_up_the_call(tmp_path: Path) -> None:
    async with serve(sip_settings()) as running, \
            baresip(tmp_path, f"sip:alice@{target(running)}", speech(60.0)) as phone:
        live = await only_session(running)
        admin = {"Authorization": f"Bearer {ADMIN}"}
        async with httpx.AsyncClient(base_url=running.url, headers=admin) as http:
            view = await http.get(f"/api/voice/sessions/{live.id}")
            assert view.status_code == 200 and view.json()["transport"] == "sip"
            stopped = await http.post("/api/voice/stop-tts", json={"session_id": live.id})
            assert stopped.status_code == 200 and stopped.json()["session_id"] == live.id  # (its owner was asked)
            response = await http.delete(f"/api/voice/sessions/{live.id}")
        assert response.status_code == 200
        await phone.call_over(timeout_s=10)  # long before its minute of silence is over: Alice sent BYE
        assert "BYE sip:caller" in phone.log
        await no_calls_left(running, live.id)


@pytest.mark.parametrize(("scenario", "over"), [
    ("no_common_codec", "u1"), ("unreadable_sdp", "u1"), ("srtp_only", "u1"), ("malformed", "u1"), ("options", "u1"),
    ("hold", "u1"), ("options", "t1"), ("no_common_codec", "t1"), ("hold", "t1")])  # u1: UDP, t1: TCP
async def test_sip_requests_get_the_right_answer(scenario: str, over: str) -> None:
    async with serve(sip_settings()) as running:
        code, out = await sipp(scenario, target(running), "-m", "1", "-recv_timeout", "5000", "-t", over)
        assert code == 0, out
        await no_calls_left(running)


async def test_a_caller_giving_up_before_the_answer_leaves_nothing(tmp_path: Path) -> None:
    opening = asyncio.Event()

    async def never_ready(*args: Any) -> Any:  # the session waits for its models until the caller gives up
        opening.set()
        await asyncio.Event().wait()

    async with serve(sip_settings(default_mode="agent"), agent_factory=never_ready) as running:
        code, out = await sipp("cancel_before_answer", target(running), "-m", "1", "-recv_timeout", "5000")
        assert code == 0, out
        assert opening.is_set(), "the caller gave up while the session was opening"
        await no_calls_left(running)
        assert running.gateway.opening == 0


async def test_at_capacity_or_draining_a_call_is_refused_with_503(tmp_path: Path) -> None:
    async with serve(sip_settings(max_sessions=1, retry_after_s=9)) as running, \
            baresip(tmp_path, f"sip:alice@{target(running)}", speech(30.0)):
        await only_session(running)
        code, out = await sipp("busy", target(running), "-m", "1", "-recv_timeout", "5000")
        assert code == 0, out
        running.drain.start()
        code, out = await sipp("busy", target(running), "-m", "1", "-recv_timeout", "5000")
        assert code == 0, out
        code, out = await sipp("options_draining", target(running), "-m", "1", "-recv_timeout", "5000")
        assert code == 0, out
        assert len(running.gateway.sessions) == 1, "the live call goes on through the drain"


async def test_a_flood_of_invites_is_bounded_and_leaves_nothing() -> None:
    settings = sip_settings(max_sessions=2, sip_invites_per_s=5.0)
    async with serve(settings) as running:
        await sipp("flood", target(running), "-m", "80", "-r", "200", "-l", "80", "-recv_timeout", "2000",
                   timeout_s=60)
        await no_calls_left(running)
        metrics = running.gateway.metrics
        answered = metrics.sessions_total.labels(mode="tone", transport="sip")._value.get()
        refused = metrics.offers_refused.labels(reason="max_sessions")._value.get()
        assert 0 < answered + refused < 80, "INVITEs beyond the rate were dropped unanswered"
        code, out = await sipp("options", target(running), "-m", "1", "-recv_timeout", "5000")
        assert code == 0, out


def raw_invite(here: int, call_id: str, *, to_tag: str = "", content_type: str = "application/sdp") -> bytes:
    sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           f"m=audio {here + 2} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    return (f"INVITE sip:alice@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{here};branch=z9hG4bK{call_id}\r\n"
            f"From: <sip:x@127.0.0.1>;tag=1\r\nTo: <sip:alice@127.0.0.1>{to_tag}\r\nCall-ID: {call_id}\r\n"
            f"CSeq: 1 INVITE\r\nContact: <sip:x@127.0.0.1:{here}>\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(sdp)}\r\n\r\n{sdp}").encode()


async def final_answer(udp: socket.socket) -> bytes:
    """The first non-provisional answer on `udp` (1xx skipped)."""
    async with asyncio.timeout(10):
        while (answer := (await asyncio.get_running_loop().sock_recvfrom(udp, 65535))[0]).startswith(b"SIP/2.0 1"):
            pass
    return answer


async def test_a_to_tag_is_no_way_past_the_credential_and_any_sdp_spelling_is_read() -> None:
    async with serve(sip_settings(sip_allow_anyone=False, sip_trusted_networks=["192.0.2.0/24"])) as running:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.setblocking(False)
            udp.bind(("127.0.0.1", 0))
            here, alice = udp.getsockname()[1], ("127.0.0.1", running.settings.sip_port)
            udp.sendto(raw_invite(here, "forged-dialog", to_tag=";tag=guessed"), alice)
            assert (await final_answer(udp)).startswith(b"SIP/2.0 481 "), "no dialog of ours: no new call"
            udp.sendto(raw_invite(here, "untrusted"), alice)
            assert (await final_answer(udp)).startswith(b"SIP/2.0 403 ")
        assert not running.gateway.sessions
    async with serve(sip_settings()) as running:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.setblocking(False)
            udp.bind(("127.0.0.1", 0))
            here, alice = udp.getsockname()[1], ("127.0.0.1", running.settings.sip_port)
            udp.sendto(raw_invite(here, "spelt", content_type="Application/SDP; charset=UTF-8"), alice)
            answer = await final_answer(udp)
            assert answer.startswith(b"SIP/2.0 200 ") and b"m=audio " in answer


async def test_garbage_and_unreadable_requests_get_no_call() -> None:
    async with serve(sip_settings()) as running:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.setblocking(False)
            udp.bind(("127.0.0.1", 0))
            here, alice = udp.getsockname()[1], ("127.0.0.1", running.settings.sip_port)
            udp.sendto(b"\x00\x01 not SIP at all", alice)  # dropped, logged
            invite = (f"INVITE sip:alice@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{here};branch=z9hG4bKx\r\n"
                      "From: <sip:x@127.0.0.1>;tag=1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: unreadable\r\n"
                      "CSeq: one INVITE\r\nContent-Length: 0\r\n\r\n")
            udp.sendto(invite.encode(), alice)
            async with asyncio.timeout(5):
                answer, _ = await asyncio.get_running_loop().sock_recvfrom(udp, 65535)
        assert answer.startswith(b"SIP/2.0 400 "), answer[:80]
        assert not running.gateway.sessions


@pytest.mark.realtime
@pytest.mark.models
async def test_keys_sent_as_telephone_events_reach_the_agent() -> None:
    async with serve(sip_settings(default_mode="agent", preload_models=True)) as running:
        await running.app.state.runtime.resources()
        calling = asyncio.create_task(sipp("dtmf", target(running), "-m", "1", "-recv_timeout", "10000"))
        live = await only_session(running)
        code, out = await calling
        assert code == 0, out
        assert history(live)[0] == Message("user", "Pressed 1."), "one key, one typed turn"
        await no_calls_left(running, live.id)


@pytest.mark.realtime
@pytest.mark.models
@pytest.mark.parametrize("declined", [False, True])
async def test_the_agent_puts_a_sip_caller_through_with_refer(declined: bool) -> None:
    def transfer_when_asked(asked: str) -> list[list[FakeCall]]:
        return [[FakeCall("transfer_call", json.dumps({"target": "sales"}))]] if asked == "Pressed 1." else []

    with FakeOpenAiChat(reply=("Putting you through now.",), tool_rounds_for=transfer_when_asked) as llm:
        settings = sip_settings(default_mode="agent", preload_models=True, agent="openai", llm_base_url=llm.base_url,
                                llm_api_key="test-key", transfer_targets={"sales": SALES},
                                peer_timeout_s=30)  # (SIPp sends no audio after its keys, as a phone would)
        async with serve(settings) as running:
            await running.app.state.runtime.resources()
            scenario = "transfer_declined" if declined else "transfer"
            calling = asyncio.create_task(sipp(scenario, target(running), "-m", "1", "-recv_timeout", "15000"))
            live = await only_session(running)
            code, out = await calling
            assert code == 0, out
            said = history(live)
            assert said[0] == Message("user", "Pressed 1."), "the key was a typed turn"
            ended = running.gateway.metrics.sessions_ended.labels
            if declined:
                assert any(m.content == TRANSFER_FAILED for m in said), "Alice said she could not put them through"
                assert ended(reason="caller_hung_up")._value.get() == 1
            else:
                assert ended(reason="transferred")._value.get() == 1
            await no_calls_left(running, live.id)


async def test_sip_over_tcp_is_bounded_in_connections_and_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "TCP_IDLE_S", 0.5)
    async with serve(sip_settings()) as running:
        port = running.settings.sip_port
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(wire.TCP_PER_SOURCE)]
        one_more_reader, one_more = await asyncio.open_connection("127.0.0.1", port)
        async with asyncio.timeout(5):
            assert await one_more_reader.read() == b"", "past the per-address cap: closed at once"
        reader, writer = held[0]
        writer.write(b"INVITE sip:alice@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bKh\r\n")
        async with asyncio.timeout(5):
            assert await reader.read() == b"", "half a message, then nothing: closed after the idle time"
        for _, each in [*held, (None, one_more)]:
            each.close()
        assert not running.gateway.sessions
