"""A tool that changes things, asked for in a sentence the caller pauses inside, over real speech: WebRTC
in, the embedded models, the OpenAI-compatible agent (a fake server on its wire format) and a real MCP
server over stdio. The pause must not end the turn for the first half, or, if it does, the first half's
call must never run: its reply is not settled while the caller may still go on (TURN_REJOIN_MS; with it
at 0 this test sees the first half's call run with no order, as the issue did)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import speech_fixtures as sf
from conftest import make_settings
from fakes.openai_chat import FakeCall, FakeOpenAiChat
from support.gateway import serve
from support.rtc_client import RtcClient

TESTS = Path(__file__).resolve().parent.parent
DIGITS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
          "eight": "8", "nine": "9"}


def order_number(words: str) -> str:
    """The order number in the caller's words ("number five one two" or "512"), as the model would read it."""
    tokens = re.findall(r"[a-z]+|\d+", words.lower())
    return "".join(DIGITS.get(t, t if t.isdigit() else "") for t in tokens)


def cancel_when_asked(asked: str) -> list[list[FakeCall]]:
    """A model that calls `cancel_order` for whatever order the words name, even none (as the issue saw)."""
    if "cancel" not in asked.lower():
        return []
    return [[FakeCall("cancel_order", json.dumps({"order": order_number(asked)}))]]


@pytest.mark.asyncio
@pytest.mark.parametrize("voice", ["piper", "hibari"])
async def test_a_paused_request_runs_its_tool_once_with_the_whole_sentence(tmp_path: Path, voice: str) -> None:
    calls = tmp_path / "calls.jsonl"
    tools = tmp_path / "tools.toml"
    tools.write_text(f'builtin = false\n[[mcp]]\nname = "shop"\ncommand = {json.dumps(sys.executable)}\n'
                     f'args = ["-m", "fakes.mcp_server", {json.dumps(str(calls))}]\n'
                     f'env = {{ PYTHONPATH = {json.dumps(str(TESTS))} }}\n')
    speech = np.concatenate([sf.with_pause("Please cancel my order,", "number five one two.", 0.6, voice, noise_rms=30),
                             sf.silence(3.0, noise_rms=30)])
    with FakeOpenAiChat(reply=("Done.",), tool_rounds_for=cancel_when_asked) as llm:
        settings = make_settings(default_mode="agent", preload_models=True, agent="openai",
                                 llm_base_url=llm.base_url, llm_api_key="test-key", tools_file=str(tools))
        async with serve(settings) as running:
            await running.app.state.runtime.resources()
            async with RtcClient(running.url) as client:
                client.say(speech)
                await client.wait_event("tool.finished", timeout=30)
                await client.wait_event("tts.stopped", timeout=30, reason="done")
                history = running.gateway.sessions[client.session_id].conversation.history  # type: ignore[attr-defined]
    ran = [json.loads(line) for line in calls.read_text().splitlines()]
    users = [m.content for m in history if m.role == "user"]
    assert ran == [{"tool": "cancel_order", "order": "512"}], (ran, users)
    assert len(users) == 1 and order_number(users[0]) == "512", users
