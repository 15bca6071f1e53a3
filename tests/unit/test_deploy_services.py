"""Deployment configs run for real on 127.0.0.1: Prometheus answering every dashboard query from the
gateway's registry, nginx in front of two stand-in replicas, a TURN allocation on coturn, and the
Dockerfile's health check. Tools (Debian): prometheus, nginx, coturn. A missing tool fails the test.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aioice.stun import TransactionFailed
from aioice.turn import create_turn_endpoint
from deploy_support import (
    DASHBOARD,
    NGINX_CONF,
    ROOT,
    TURN_CONF,
    StandIn,
    dockerfile_instructions,
    free_port,
    process_ready,
    serve,
    tool,
)
from prometheus_client import generate_latest

from alice_voice.metrics import Metrics

# --- Prometheus answers every dashboard query ---

SCRAPES_BEFORE_QUERYING = 4


class _GatewayMetrics:
    """Serves a real Metrics registry that records one of everything per scrape, so every rate moves."""

    def __init__(self) -> None:
        self.metrics = Metrics()
        self.metrics.capacity.set(8)
        self.metrics.store_up.set(1)
        self.scrapes = 0
        self.scraped = threading.Condition()

    def record(self) -> None:
        m = self.metrics
        for n, histogram in enumerate((m.offer_ms, m.ice_connect_ms, m.first_partial_ms, m.first_audio_ms,
                                       m.barge_in_ms, m.end_of_turn_ms)):
            histogram.observe(30.0 * (n + 1) + self.scrapes)
        for n, priority in enumerate(("hearing", "end_of_turn", "final", "partial")):
            m.scheduler_wait_ms.labels(priority=priority).observe(0.5 * (n + 1) + self.scrapes)
            m.scheduler_run_ms.labels(priority=priority).observe(20.0 * (n + 1))
        m.loop_lag_ms.observe(1.0 + self.scrapes)
        m.audio_frames.labels(stage="received").inc(50)
        m.audio_frames.labels(stage="lost").inc(1)
        m.audio_frames.labels(stage="heard").inc(49)
        m.headroom_sessions.set(8 - self.scrapes % 8)
        m.cpu_busy.set(0.1 * (self.scrapes % 10))
        for stage, seconds in (("event_loop", 0.1), ("asr_partial", 0.2)):
            m.cpu_seconds.labels(stage=stage).inc(seconds)
        m.budget_breaches.inc()
        m.offers_refused.labels(reason="latency_budget").inc()
        m.active_sessions.set(self.scrapes % 8)
        m.sessions_total.labels(mode="agent", transport="webrtc").inc()
        m.sessions_total.labels(mode="tone", transport="twilio").inc()
        m.sessions_ended.labels(reason="closed").inc()
        m.turns_total.inc(3)
        m.backchannels.inc(2)
        m.interruptions.inc()
        m.turn_repairs.inc()
        m.replies_resumed.inc(3)
        m.tool_duration_ms.labels(tool="set_timer", outcome="ok").observe(5.0 + self.scrapes)
        m.tool_duration_ms.labels(tool="set_timer", outcome="timeout").observe(2000.0)
        m.tool_errors.labels(tool="set_timer", outcome="timeout").inc()
        m.errors_total.labels(code="asr_timeout").inc()
        m.provider_failures.labels(provider="deepgram", code="timeout").inc()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.record()
                body = generate_latest(outer.metrics.registry)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with outer.scraped:
                    outer.scrapes += 1
                    outer.scraped.notify_all()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def prometheus_url(tmp_path: Path) -> Iterator[str]:
    gateway = _GatewayMetrics()
    server = ThreadingHTTPServer(("127.0.0.1", 0), gateway.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = {"global": {"scrape_interval": "200ms", "scrape_timeout": "150ms"},
              "scrape_configs": [{"job_name": "alice-voice",
                                  "static_configs": [{"targets": [f"127.0.0.1:{server.server_port}"]}]}]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    args = [tool("prometheus"), f"--config.file={tmp_path}/prometheus.yml", f"--storage.tsdb.path={tmp_path}/data",
            f"--web.listen-address=127.0.0.1:{port}"]
    try:
        with process_ready(args, "Server is ready to receive web requests"):
            # A scrape starts only after the previous one is stored, so N+1 started means N are queryable.
            with gateway.scraped:
                assert gateway.scraped.wait_for(lambda: gateway.scrapes > SCRAPES_BEFORE_QUERYING, timeout=20)
            yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def test_every_dashboard_query_returns_numbers_from_the_gateway_registry(prometheus_url: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    targets = [t for p in dashboard["panels"] for t in p.get("targets", [])]
    with httpx.Client(base_url=prometheus_url, timeout=10) as client:
        for target in targets:
            expr = target["expr"].replace("$__rate_interval", "3s").replace("$instance", ".*")
            body = client.get("/api/v1/query", params={"query": expr}).json()
            assert body["status"] == "success", (expr, body)
            series = body["data"]["result"]
            assert series, f"no data for {expr}"
            for one in series:
                assert math.isfinite(float(one["value"][1])), expr
                for label in _grouping_labels(expr):
                    assert one["metric"].get(label), f"{expr}: series without {label}"
        variable = dashboard["templating"]["list"][0]["query"]["query"]
        metric = variable.split("(")[1].split(",")[0]
        values = client.get("/api/v1/label/instance/values", params={"match[]": metric}).json()["data"]
        assert values, variable


def test_turn_taking_panels_show_what_the_gateway_recorded(prometheus_url: str) -> None:
    # Per scrape the stand-in records 2 backchannels, 1 interruption, 1 turn repair and 3 replies resumed.
    counters = ("voice_backchannels_total", "voice_interruptions_total", "voice_turn_repairs_total",
                "voice_replies_resumed_total")
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [t["expr"].replace("$__rate_interval", "3s").replace("$instance", ".*")
             for p in panels for t in p.get("targets", []) if any(c in t["expr"] for c in counters)]
    with httpx.Client(base_url=prometheus_url, timeout=10) as client:
        values = {e: float(client.get("/api/v1/query", params={"query": e}).json()["data"]["result"][0]["value"][1])
                  for e in exprs}
    rates = {c: v for e, v in values.items() for c in counters if e == f'sum(rate({c}{{instance=~".*"}}[3s]))'}
    assert set(rates) == set(counters) and all(v > 0 for v in rates.values()), values
    shares = [v for e, v in values.items() if " / " in e]
    assert shares == [pytest.approx(2 / (2 + 1 + 1))]


def _grouping_labels(expr: str) -> list[str]:
    """The labels every result series must carry: the grouping of the first `sum by`, less a quantile's `le`."""
    if "sum by (" not in expr:
        return []
    labels = [label.strip() for label in expr.split("sum by (")[1].split(")")[0].split(",")]
    return [label for label in labels if not (label == "le" and "histogram_quantile" in expr)]


# --- nginx in front of two replicas ---

class _Replica:
    def __init__(self, name: str) -> None:
        self.name = name
        self.offer_status = 200
        self.post_status = 200
        self.stand_in = StandIn(self.respond)

    def respond(self, method: str, path: str) -> tuple[int, dict[str, Any]]:
        if path == "/api/webrtc/offer":
            return self.offer_status, {"replica": self.name}
        return (self.post_status if method == "POST" else 200), {"replica": self.name}


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[httpx.Client, _Replica, _Replica, ThreadingHTTPServer]]:
    a, b = _Replica("a"), _Replica("b")
    with serve(a.stand_in) as server_a, serve(b.stand_in) as server_b:
        port = free_port()
        conf = NGINX_CONF.read_text()
        # Same config, other ports: each replacement must hit exactly one place.
        for old, new in (("listen 8080;", f"listen 127.0.0.1:{port};"),
                         ("127.0.0.1:8081", f"127.0.0.1:{server_a.server_port}"),
                         ("127.0.0.1:8082", f"127.0.0.1:{server_b.server_port}")):
            assert conf.count(old) == 1, old
            conf = conf.replace(old, new)
        (tmp_path / "nginx.conf").write_text(conf)
        args = [tool("nginx"), "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path), "-e", "stderr",
                "-g", f"daemon off; pid {tmp_path}/nginx.pid; error_log stderr notice;"]
        with process_ready(args, "start worker processes"), \
                httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client, a, b, server_a


def test_nginx_proxies_http_with_forwarding_headers_and_hides_metrics(proxy: Any) -> None:
    client, a, b, _ = proxy
    assert client.get("/health").status_code == 200
    _, _, headers = (a.stand_in.requests + b.stand_in.requests)[0]
    assert headers["X-Forwarded-For"] == "127.0.0.1" and headers["X-Real-IP"] == "127.0.0.1"
    assert client.get("/metrics").status_code == 404
    too_big = client.post("/api/webrtc/offer", content=b"x" * (65 * 1024))
    assert too_big.status_code == 413
    assert a.stand_in.hits("GET", "/metrics") + b.stand_in.hits("GET", "/metrics") == 0
    assert a.stand_in.hits("POST", "/api/webrtc/offer") + b.stand_in.hits("POST", "/api/webrtc/offer") == 0


def test_nginx_passes_an_offer_refused_at_capacity_to_the_other_replica(proxy: Any) -> None:
    client, a, b, _ = proxy
    a.offer_status = 503
    answers = [client.post("/api/webrtc/offer", json={"sdp": "v=0", "type": "offer"}) for _ in range(4)]
    assert [(r.status_code, r.json()["replica"]) for r in answers] == [(200, "b")] * 4
    b.offer_status = 503
    full = client.post("/api/webrtc/offer", json={"sdp": "v=0", "type": "offer"})
    assert full.status_code == 503  # nginx's own 502 would hide "at capacity"
    assert b.stand_in.hits("POST", "/api/webrtc/offer") == 5


def test_nginx_never_sends_another_post_twice(proxy: Any) -> None:
    client, a, b, _ = proxy
    a.post_status = b.post_status = 503
    statuses = [client.post("/api/voice/stop-tts", json={"session_id": "s"}).status_code for _ in range(4)]
    assert statuses == [503] * 4
    assert a.stand_in.hits("POST", "/api/voice/stop-tts") + b.stand_in.hits("POST", "/api/voice/stop-tts") == 4


def test_nginx_routes_around_a_dead_replica(proxy: Any) -> None:
    client, _, _, server_a = proxy
    server_a.shutdown()
    server_a.server_close()
    for _ in range(4):
        assert client.get("/health").json()["replica"] == "b"
        assert client.post("/api/webrtc/offer", json={"sdp": "v=0", "type": "offer"}).json()["replica"] == "b"


# --- coturn ---

class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait((data, addr))


def _conf_value(name: str) -> int:
    line = next(line for line in TURN_CONF.read_text().splitlines() if line.startswith(f"{name}="))
    return int(line.split("=", 1)[1])


@pytest.fixture
def turn_port(tmp_path: Path) -> Iterator[int]:
    port = free_port(kind=2)  # SOCK_DGRAM
    args = [tool("turnserver"), "-c", str(TURN_CONF), "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
            f"--listening-port={port}", "--user=gateway:s3cret", "--allow-loopback-peers", "--no-tcp",
            f"--pidfile={tmp_path}/turn.pid", f"--db={tmp_path}/turndb"]
    with process_ready(args, "Total General servers", stream="stdout"):
        yield port


@pytest.mark.asyncio
async def test_coturn_relays_for_the_gateways_credentials_only(turn_port: int) -> None:
    loop = asyncio.get_running_loop()
    peer_transport, peer = await loop.create_datagram_endpoint(_Datagrams, local_addr=("127.0.0.1", 0))
    peer_addr = peer_transport.get_extra_info("sockname")
    try:
        async with asyncio.timeout(15):
            relay_transport, client = await create_turn_endpoint(
                _Datagrams, ("127.0.0.1", turn_port), username="gateway", password="s3cret")
            try:
                relay_addr = relay_transport.get_extra_info("sockname")
                assert _conf_value("min-port") <= relay_addr[1] <= _conf_value("max-port")
                relay_transport.sendto(b"ping", peer_addr)
                assert await peer.received.get() == (b"ping", relay_addr)
                assert peer.transport is not None
                peer.transport.sendto(b"pong", relay_addr)
                assert await client.received.get() == (b"pong", peer_addr)
            finally:
                relay_transport.close()
            with pytest.raises(TransactionFailed):
                await create_turn_endpoint(_Datagrams, ("127.0.0.1", turn_port), username="gateway",
                                           password="wrong")
    finally:
        peer_transport.close()


# --- the Dockerfile's health check ---

def _health_check(port: int) -> int:
    check = next(i.args for i in dockerfile_instructions(ROOT / "Dockerfile") if i.keyword == "HEALTHCHECK")
    command = json.loads(check.split("CMD", 1)[1])
    assert command[0] == "python"
    result = subprocess.run([sys.executable, *command[1:]], env={"ALICE_PORT": str(port)}, capture_output=True,
                            timeout=20, check=False)
    return result.returncode


@pytest.mark.parametrize(("status", "body", "healthy"), [
    (200, {"status": "ok", "store": "up"}, True),
    (200, {"status": "degraded", "store": "down"}, False),
    (503, {"status": "ok"}, False),
])
def test_health_check_passes_only_on_status_ok(status: int, body: dict[str, Any], healthy: bool) -> None:
    with serve(StandIn(lambda method, path: (status, body) if path == "/health" else (404, {}))) as server:
        assert (_health_check(server.server_port) == 0) is healthy


def test_health_check_fails_when_nothing_listens() -> None:
    assert _health_check(free_port()) != 0
