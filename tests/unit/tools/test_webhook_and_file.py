"""Webhook tools against a real local HTTP server, and the tools file that declares them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from alice_voice.clock import MonotonicClock
from alice_voice.tools import ToolContext, ToolSpec
from alice_voice.tools.catalog import ToolCatalog
from alice_voice.tools.config import ToolsFileError, load_tools_file
from alice_voice.tools.timers import SessionTimers
from fakes.local_server import LocalServer
from support.local_services import free_port

CONTEXT = ToolContext("session-7", SessionTimers(MonotonicClock(), lambda timer: None))


class Backend:
    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any], dict[str, str]]] = []

    async def handle(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        self.received.append((kind, await request.json(), dict(request.headers)))
        match kind:
            case "json":
                return JSONResponse({"result": {"status": "shipped", "eta": "tomorrow"}})
            case "text":
                return PlainTextResponse("Order 42 is on its way.")
            case "error":
                return JSONResponse({"detail": "database down"}, status_code=500)
            case "garbage":
                return Response(b"{not json", media_type="application/json")
            case "big":
                return PlainTextResponse("x" * 100_000)
            case _:
                await asyncio.Event().wait()  # "slow": until the caller gives up
                return Response()


@pytest.fixture(scope="module")
def backend() -> Iterator[tuple[Backend, str]]:
    backend = Backend()
    server = LocalServer(Starlette(routes=[Route("/tools/{kind}", backend.handle, methods=["POST"])])).start()
    try:
        yield backend, server.url
    finally:
        server.stop()


def tools_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tools.toml"
    path.write_text(text, encoding="utf-8")
    return path


WEBHOOK = """
builtin = ["calculate"]
[[webhook]]
name = "order_status"
description = "The status of an order."
url = "{url}/tools/{kind}"
read_only = true
timeout_s = 0.5
headers = {{ Authorization = "Bearer ${{ORDERS_TOKEN}}" }}
parameters = {{ type = "object", properties = {{ order = {{ type = "string" }} }}, required = ["order"] }}
"""


@pytest.mark.asyncio
@pytest.mark.parametrize(("kind", "outcome", "result"), [
    ("json", "ok", json.dumps({"status": "shipped", "eta": "tomorrow"})),
    ("text", "ok", "Order 42 is on its way."),
    ("error", "error", "Error: the service answered HTTP 500"),
    ("garbage", "error", "Error: the service's answer was not valid JSON"),
    ("big", "error", "Error: the service's answer is larger than 64 KiB"),
    ("slow", "timeout", "Error: order_status did not answer within 0.5 s."),
])
async def test_a_webhook_tool_posts_the_call_and_reads_the_answer(
        backend: tuple[Backend, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        kind: str, outcome: str, result: str) -> None:
    server, url = backend
    monkeypatch.setenv("ORDERS_TOKEN", "s3cret")
    file = load_tools_file(tools_file(tmp_path, WEBHOOK.format(url=url, kind=kind)))
    catalog = await ToolCatalog.from_file(file)
    try:
        assert [s.name for s in catalog.toolbox.specs] == ["calculate", "order_status"]
        assert catalog.toolbox.spec("order_status") == ToolSpec(
            "order_status", "The status of an order.",
            {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]}, read_only=True)
        done = await catalog.toolbox.run("c1", "order_status", '{"order": "42"}', CONTEXT)
    finally:
        await catalog.aclose()
    assert (done.outcome, done.result) == (outcome, result)
    sent_kind, body, headers = server.received[-1]
    assert sent_kind == kind
    assert body == {"tool": "order_status", "arguments": {"order": "42"}, "session_id": "session-7"}
    assert headers["authorization"] == "Bearer s3cret"


@pytest.mark.asyncio
async def test_an_unreachable_webhook_is_an_error_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_TOKEN", "x")
    text = WEBHOOK.format(url=f"http://127.0.0.1:{free_port()}", kind="json")
    catalog = await ToolCatalog.from_file(load_tools_file(tools_file(tmp_path, text)))
    try:
        done = await catalog.toolbox.run("c1", "order_status", '{"order": "1"}', CONTEXT)
    finally:
        await catalog.aclose()
    assert (done.outcome, done.result) == ("error", "Error: the service could not be reached (ConnectError)")


@pytest.mark.parametrize(("text", "words"), [
    ("builtin = [", "is not TOML"),
    ('[[webhook]]\nname = "bad name!"\ndescription = "d"\nurl = "http://x"', "name"),
    ('[[webhook]]\nname = "a"\ndescription = "d"\nurl = "ftp://x"', "url"),
    ('[[webhook]]\nname = "a"\ndescription = "d"\nurl = "http://x"\nheaders = { K = "${NOT_SET_ANYWHERE}" }',
     "NOT_SET_ANYWHERE"),
    ('[[mcp]]\nname = "m"', "either `command`"),
    ('[[webhook]]\nname = "a"\ndescription = "d"\nurl = "http://x"\nparameters = { type = "objekt" }',
     "not a JSON schema"),
    ('[[mcp]]\nname = "m"\ncommand = "x"\nurl = "http://x"', "either `command`"),
    ("surprise = 1", "surprise"),
])
def test_a_bad_tools_file_is_refused_with_its_reason(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(ToolsFileError, match=words):
        load_tools_file(tools_file(tmp_path, text))


def test_a_missing_tools_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ToolsFileError, match="No such file"):
        load_tools_file(tmp_path / "nope.toml")


@pytest.mark.asyncio
async def test_without_a_file_every_built_in_is_offered_and_tools_can_be_switched_off() -> None:
    everything = await ToolCatalog.from_file(load_tools_file(None))
    nothing = await ToolCatalog.from_file(load_tools_file(None), enabled=False)
    try:
        assert [s.name for s in everything.toolbox.specs] == [
            "get_current_time", "calculate", "set_timer", "list_timers", "cancel_timer", "end_call",
            "collect_digits"]  # (no transfer_call: no transfer targets are configured)
        assert len(nothing.toolbox) == 0
    finally:
        await everything.aclose()
        await nothing.aclose()


