"""Shared helpers of the deploy tests: paths, the external tools, the Dockerfile reader, stand-in servers."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BASE_COMPOSE = DEPLOY / "docker-compose.yml"
REPLICAS_COMPOSE = DEPLOY / "docker-compose.replicas.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "alice-voice.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
NGINX_CONF = DEPLOY / "nginx" / "nginx.conf"
TURN_CONF = DEPLOY / "coturn" / "turnserver.conf"
# Values the replicas file insists on (${VAR:?...}); docker-compose refuses to render it without them.
COMPOSE_ENV = {"TURN_PASSWORD": "test-secret", "TURN_EXTERNAL_IP": "203.0.113.7"}

# Debian bookworm package of each tool: a missing tool fails the test and says what to install.
APT_PACKAGE = {"promtool": "prometheus", "prometheus": "prometheus", "nginx": "nginx",
               "turnserver": "coturn", "docker-compose": "docker-compose"}


def tool(name: str) -> str:
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin"])
    path = shutil.which(name, path=search)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install -y --no-install-recommends {APT_PACKAGE[name]}")
    return path


def run(args: list[str], env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=full_env, check=False)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@functools.cache
def compose_config(*files: Path) -> dict[str, Any]:
    """The merged, interpolated, schema-checked configuration, as docker-compose renders it (read-only)."""
    args = [tool("docker-compose")]
    for f in files:
        args += ["-f", str(f)]
    result = run([*args, "config"], env=COMPOSE_ENV)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- Dockerfile ---

@dataclass
class Instruction:
    keyword: str
    args: str


def dockerfile_instructions(path: Path) -> list[Instruction]:
    """Logical instructions: continuation lines joined (as Docker does, inside quotes too), comments dropped."""
    out: list[Instruction] = []
    pending = ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        keyword, _, args = (pending + line).strip().partition(" ")
        out.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    return out


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _glob_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negate
    return excluded


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


# --- stand-in HTTP servers ---

@dataclass
class StandIn:
    """A stand-in HTTP server: `respond(method, path)` gives (status, JSON body); requests are recorded."""

    respond: Callable[[str, str], tuple[int, dict[str, Any]]]
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hits(self, method: str, path: str) -> int:
        with self.lock:
            return sum(1 for m, p, _ in self.requests if (m, p) == (method, path))


@contextmanager
def serve(stand_in: StandIn) -> Iterator[ThreadingHTTPServer]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            with stand_in.lock:
                stand_in.requests.append((self.command, self.path, dict(self.headers)))
            status, body = stand_in.respond(self.command, self.path)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- child processes that say when they are ready ---

@contextmanager
def process_ready(args: list[str], ready_line: str, stream: str = "stderr",
                  timeout: float = 20) -> Iterator[subprocess.Popen[str]]:
    """Start a server and wait until it prints `ready_line`; its output is drained all along."""
    pipes: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, stream: subprocess.PIPE}
    proc = subprocess.Popen(args, text=True, **pipes)
    settled = threading.Event()  # set on the ready line, or when the output ends (the server died)
    seen: list[str] = []
    pipe: IO[str] | None = getattr(proc, stream)
    assert pipe is not None

    def drain() -> None:
        for line in pipe:
            seen.append(line)
            if ready_line in line:
                settled.set()
        settled.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        settled.wait(timeout)
        assert any(ready_line in line for line in seen), f"{args[0]} not ready:\n{''.join(seen[-30:])}"
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        reader.join(timeout=5)
