"""MCP servers as tools: a real server written with the `mcp` SDK, started over stdio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from alice_voice.clock import MonotonicClock
from alice_voice.tools import ToolContext
from alice_voice.tools.catalog import ToolCatalog
from alice_voice.tools.config import load_tools_file
from alice_voice.tools.timers import SessionTimers
from support.local_services import free_port, wait_port

pytestmark = pytest.mark.asyncio
CONTEXT = ToolContext("session-3", SessionTimers(MonotonicClock(), lambda timer: None))
TESTS = Path(__file__).resolve().parents[2]


def shop_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "tools.toml"
    path.write_text(f"""
builtin = false
[[mcp]]
name = "shop"
command = {json.dumps(sys.executable)}
args = ["-m", "fakes.mcp_server", {json.dumps(str(tmp_path / "calls.jsonl"))}]
env = {{ PYTHONPATH = {json.dumps(str(TESTS))} }}
read_only = ["slow_echo"]
timeout_s = 5
{extra}""", encoding="utf-8")
    return path


def calls(tmp_path: Path) -> list[dict[str, object]]:
    log = tmp_path / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


async def test_a_servers_tools_are_offered_and_called(tmp_path: Path) -> None:
    catalog = await ToolCatalog.from_file(load_tools_file(shop_file(tmp_path)))
    try:
        specs = {s.name: s for s in catalog.toolbox.specs}
        assert sorted(specs) == ["book_table", "cancel_order", "crash", "lookup_order", "slow_echo"]
        assert specs["lookup_order"].read_only, "the server's readOnlyHint"
        assert specs["slow_echo"].read_only, "listed read-only in the tools file"
        assert not specs["book_table"].read_only
        assert specs["book_table"].parameters["required"] == ["people", "time"]
        booked = await catalog.toolbox.run("c1", "book_table", '{"people": 2, "time": "8 pm"}', CONTEXT)
        assert (booked.outcome, booked.result) == ("ok", "Booked a table for 2 at 8 pm.")
        wrong = await catalog.toolbox.run("c2", "book_table", '{"people": "two"}', CONTEXT)
        assert wrong.outcome == "invalid", "checked against the server's schema before it is sent"
        refused = await catalog.toolbox.run("c3", "lookup_order", '{"order": "abc"}', CONTEXT)
        assert refused.outcome == "error" and "There is no order abc." in refused.result
        found = await catalog.toolbox.run("c4", "lookup_order", '{"order": "12"}', CONTEXT)
        assert found.result == "Order 12 was shipped yesterday.", "the server is still there after a tool's error"
    finally:
        await catalog.aclose()
    assert calls(tmp_path) == [{"tool": "book_table", "people": 2, "time": "8 pm"},
                               {"tool": "lookup_order", "order": "abc"}, {"tool": "lookup_order", "order": "12"}]


async def test_a_server_that_dies_mid_call_gives_error_results_not_a_dead_session(tmp_path: Path) -> None:
    catalog = await ToolCatalog.from_file(load_tools_file(shop_file(tmp_path)))
    try:
        crashed = await catalog.toolbox.run("c1", "crash", "{}", CONTEXT)
        after = await catalog.toolbox.run("c2", "lookup_order", '{"order": "7"}', CONTEXT)
    finally:
        await catalog.aclose()
    assert (crashed.outcome, crashed.result) == ("error", "Error: the shop server stopped")
    assert (after.outcome, after.result) == ("error", "Error: the shop server is not running")


async def test_a_server_that_does_not_start_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broken = f"""
[[mcp]]
name = "ghost"
command = {json.dumps(str(tmp_path / "no-such-program"))}
start_timeout_s = 5
"""
    catalog = await ToolCatalog.from_file(load_tools_file(shop_file(tmp_path, broken)))
    try:
        assert "lookup_order" in {s.name for s in catalog.toolbox.specs}, "the other server's tools remain"
        found = await catalog.toolbox.run("c1", "lookup_order", '{"order": "7"}', CONTEXT)
    finally:
        await catalog.aclose()
    assert found.result == "Order 7 was shipped yesterday."
    assert any("ghost" in r.getMessage() and "did not start" in r.getMessage() for r in caplog.records)


@pytest.fixture
def shop_over_http(tmp_path: Path) -> Iterator[int]:
    """The test server over streamable HTTP on 127.0.0.1; yields its port."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    with subprocess.Popen([sys.executable, "-m", "fakes.mcp_server", str(tmp_path / "calls.jsonl"), str(port)],
                          env=env, stderr=subprocess.DEVNULL) as server:
        try:
            wait_port(port, server, timeout=30)
            yield port
        finally:
            server.terminate()


async def test_a_server_over_streamable_http(tmp_path: Path, shop_over_http: int) -> None:
    path = tmp_path / "tools.toml"
    path.write_text(f'builtin = false\n[[mcp]]\nname = "shop"\nurl = "http://127.0.0.1:{shop_over_http}/mcp"\n')
    catalog = await ToolCatalog.from_file(load_tools_file(path))
    try:
        assert catalog.toolbox.spec("lookup_order") is not None
        found = await catalog.toolbox.run("c1", "lookup_order", '{"order": "5"}', CONTEXT)
    finally:
        await catalog.aclose()
    assert (found.outcome, found.result) == ("ok", "Order 5 was shipped yesterday.")
    assert calls(tmp_path) == [{"tool": "lookup_order", "order": "5"}]
