"""Fuzzing the HTTP API with schemathesis, from the gateway's own /openapi.json.

The gateway (tone default mode, in-process) runs in a thread with its own event loop, because
schemathesis and Hypothesis call it synchronously. Every generated request, valid or deliberately
invalid, must get no 5xx (a 503 would be a capacity or store problem: none can occur here) and every
error must be JSON `{"error": {"code", "message"}}`. A generated offer with a valid SDP is unlikely: the
point is that invalid input is rejected cleanly. A third test opens one real session (a valid offer whose
client then leaves) and fuzzes the session calls with made-up bearer tokens: only 401/403, and the
session is still there afterwards. Sessions created are counted and must all be ended by the shutdown.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from aiortc import RTCConfiguration, RTCPeerConnection
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from alice_voice.api.app import create_app
from alice_voice.gateway import Gateway
from conftest import make_settings
from reliability.probes import report, size

EXAMPLES = size(30, 300)  # per operation


@dataclass
class ThreadedGateway:
    """create_app + uvicorn (lifespan on) in a daemon thread; `stop()` runs the gateway's shutdown."""

    url: str
    gateway: Gateway
    server: uvicorn.Server
    thread: threading.Thread
    statuses: Counter[int] = field(default_factory=Counter)
    opened: int = 0

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        assert not self.thread.is_alive(), "the gateway did not shut down"


class _Server(uvicorn.Server):
    """Says when it is listening (from its own thread), so the test waits on an event, not a poll."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()


def start_gateway() -> ThreadedGateway:
    config = make_settings(ice_connect_timeout_s=120)  # a session that never connects outlives the fuzzing
    app = create_app(config)
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=config.port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), name="fuzzed-gateway", daemon=True)
    thread.start()
    assert server.listening.wait(15), "the gateway did not start"
    return ThreadedGateway(f"http://127.0.0.1:{config.port}", app.state.gateway, server, thread)


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[ThreadedGateway]:
    running = start_gateway()
    try:
        yield running
    finally:
        running.opened = int(sum(s.value for s in running.gateway.metrics.sessions_total.collect()[0].samples
                                 if s.name.endswith("_total")))
        running.stop()
        report("fuzz", examples_per_operation=EXAMPLES, requests=sum(running.statuses.values()),
               statuses=dict(sorted(running.statuses.items())), sessions_opened=running.opened,
               sessions_left=len(running.gateway.sessions), schemathesis=schemathesis.__version__)
        assert not running.gateway.sessions


def check(case: schemathesis.Case, fuzzed: ThreadedGateway) -> schemathesis.Response:
    response = case.call(base_url=fuzzed.url, timeout=10)
    fuzzed.statuses[response.status_code] += 1
    where = f"{case.method} {case.formatted_path} -> {response.status_code}"
    assert response.status_code < 500, where
    if response.status_code >= 400:
        content_type = next((v[0] for k, v in response.headers.items() if k.lower() == "content-type"), "")
        assert content_type.startswith("application/json"), (where, content_type)
        body = response.json()
        assert set(body) == {"error"}, (where, body)
        assert isinstance(body["error"].get("code"), str) and body["error"]["code"], (where, body)
        assert isinstance(body["error"].get("message"), str) and body["error"]["message"], (where, body)
    return response


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_no_5xx_and_every_error_is_the_json_error_shape(fuzzed: ThreadedGateway, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    failures: dict[str, str] = {}
    unfuzzable: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.target, Phase.shrink])
        def exercise(case: schemathesis.Case) -> None:
            check(case, fuzzed)

        try:
            exercise()
        except Unsatisfiable:
            unfuzzable.append(operation.label)  # nothing invalid to send, e.g. GET /health in negative mode
        except Exception as exc:  # every operation is fuzzed; the failures are reported together
            failures[operation.label] = f"{type(exc).__name__}: {str(exc)[:400]}"
    report(f"fuzz.{mode.value}", operations=len(operations), without_cases=unfuzzable, failures=len(failures))
    assert len(operations) >= 6 and len(unfuzzable) < len(operations)
    assert not failures, "\n".join(f"{label}: {problem}" for label, problem in failures.items())


async def _unconnected_session(url: str) -> tuple[str, str]:
    """A session from a real offer whose client then goes away: it waits for ICE (for the fuzzing)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.createDataChannel("events")
    pc.addTransceiver("audio")
    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        response = await http.post("/api/webrtc/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"})
    await pc.close()
    response.raise_for_status()
    return response.json()["session_id"], response.json()["token"]


def test_fuzzed_credentials_never_open_or_end_a_live_session(fuzzed: ThreadedGateway) -> None:
    session_id, token = asyncio.run(_unconnected_session(fuzzed.url))
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    tokens = st.one_of(st.none(), st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=64))
    seen: Counter[int] = Counter()
    for operation in [result.ok() for result in schema.get_all_operations()]:
        if "session_id" not in operation.label and "stop-tts" not in operation.label:
            continue
        fixed: dict[str, Any] = ({"body": {"session_id": session_id}} if operation.method.upper() == "POST"
                                 else {"path_parameters": {"session_id": session_id}})

        def cases(bearer: str | None, operation: Any = operation, fixed: dict[str, Any] = fixed) -> Any:
            headers = {} if bearer is None else {"Authorization": f"Bearer {bearer}"}
            return operation.as_strategy(headers=headers, **fixed)

        @given(case=tokens.filter(lambda t: t != token).flatmap(cases))
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def exercise(case: schemathesis.Case) -> None:
            response = check(case, fuzzed)
            seen[response.status_code] += 1
            assert response.status_code in (401, 403), (case.method, case.formatted_path, response.status_code)

        exercise()
    report("fuzz.credentials", statuses=dict(sorted(seen.items())), session_alive=session_id in fuzzed.gateway.sessions)
    assert session_id in fuzzed.gateway.sessions  # no fuzzed DELETE got through
    assert seen[401] and seen[403]
