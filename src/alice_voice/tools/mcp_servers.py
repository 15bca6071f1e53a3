"""MCP servers (the Model Context Protocol) as a source of tools, through the official `mcp` SDK.

Each configured server is one `McpServer`: a task of its own enters the SDK's client (which must be
entered and left in the same task), lists the server's tools and then waits to be stopped; calls from
any session go through that client. A server that fails to start is reported and skipped; one that dies
later makes its calls error results ("the weather server is not running"), never a dead session. A tool
is read-only, and so may run on a speculative turn, when the server says so (`readOnlyHint`) or the
tools file lists it in `read_only`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import mcp
import mcp_types

from alice_voice.tools.spec import ToolError, ToolSpec
from alice_voice.tools.tool import ToolContext

log = logging.getLogger(__name__)
_PROBE_S = 1.0  # after a failed call: is the server still there?
_STOP_S = 8.0  # the SDK stops a stdio server within ~6.5 s: stdin closed, 2 s, SIGTERM, 2 s, SIGKILL, 2 s


@dataclass(frozen=True, slots=True)
class McpServerConfig:
    name: str
    command: str = ""  # stdio: the program to start, with `args`
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    url: str = ""  # streamable HTTP: the server's MCP endpoint
    timeout_s: float = 10.0
    start_timeout_s: float = 15.0
    read_only: tuple[str, ...] = ()

    def target(self) -> mcp.StdioServerParameters | str:
        if self.url:
            return self.url
        return mcp.StdioServerParameters(command=self.command, args=list(self.args), env=dict(self.env) or None)


class McpServer:
    def __init__(self, config: McpServerConfig) -> None:
        self.config = config
        self._client: mcp.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._tools: list[mcp_types.Tool] = []
        self._closing: asyncio.Future[None] | None = None

    @property
    def alive(self) -> bool:
        return (self._client is not None and self._task is not None and not self._task.done()
                and not self._stop.is_set())

    async def start(self) -> list[McpTool]:
        """Connect and list the tools; on any failure log it and offer none."""
        self._task = asyncio.create_task(self._serve(), name=f"mcp:{self.config.name}")
        ready = asyncio.create_task(self._ready.wait())
        try:
            async with asyncio.timeout(self.config.start_timeout_s):
                await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            pass
        finally:
            ready.cancel()
        if not self._ready.is_set():
            log.error("MCP server %r did not start: %s; its tools are not offered", self.config.name,
                      self._failure() or f"no answer within {self.config.start_timeout_s:g} s")
            self._closing = asyncio.ensure_future(self._close())  # in the background: the other tools are ready
            return []
        log.info("MCP server %r: %d tools", self.config.name, len(self._tools))
        return [McpTool(self._spec(tool), tool.name, self) for tool in self._tools]

    async def call(self, name: str, arguments: dict[str, Any]) -> str:
        if not self.alive or self._client is None:
            raise ToolError(f"the {self.config.name} server is not running")
        client = self._client
        try:
            # The toolbox bounds the call (and cancels it): the SDK's own timeout is only a backstop, so a slow
            # tool is a timeout, never taken for a dead server.
            result = await client.call_tool(name, arguments, read_timeout_seconds=self.config.timeout_s + 5)
        except Exception as exc:  # MCPError, or the SDK's stream errors when the server dies (anyio's too)
            if not await self._still_there(client):
                log.error("MCP server %r stopped during a call to %s: its tools fail until restart",
                          self.config.name, name)
                self._stop.set()
                raise ToolError(f"the {self.config.name} server stopped") from None
            raise ToolError(f"the {self.config.name} server failed ({type(exc).__name__}: {exc})") from None
        text = _text(result)
        if result.is_error:
            raise ToolError(text or "the tool reported an error")
        return text

    async def _still_there(self, client: mcp.Client) -> bool:
        # (ping is gone from the 2026 protocol; listing the tools, uncached, is a request every server answers)
        try:
            async with asyncio.timeout(_PROBE_S):
                await client.list_tools(cache_mode="bypass")
        except Exception:
            return False
        return True

    async def aclose(self) -> None:
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        self._stop.set()
        self._client = None
        task = self._task
        if task is None:
            return
        if not task.done() and self._ready.is_set():  # it leaves the client on `_stop`
            await asyncio.wait({task}, timeout=_STOP_S)
        if not task.done():  # (one that never started is still in the client's handshake)
            task.cancel()  # the SDK's exit is shielded and bounded: stdin closed, a grace period, then a kill
            await asyncio.wait({task}, timeout=_STOP_S)
        if not task.done():  # a server that ignores its end must not hold the gateway's
            log.error("MCP server %r did not stop within %g s; left behind", self.config.name, 2 * _STOP_S)
        elif not task.cancelled():
            task.exception()  # retrieved: its failure was logged when it happened

    async def _serve(self) -> None:
        try:
            async with mcp.Client(self.config.target(), read_timeout_seconds=self.config.timeout_s) as client:
                self._tools = list((await client.list_tools()).tools)
                self._client = client
                self._ready.set()
                await self._stop.wait()
        except Exception as exc:  # reported by start() or, once running, by the calls that find it gone
            if self._ready.is_set():
                log.error("MCP server %r stopped: %s", self.config.name, _describe(exc))
            raise
        finally:
            self._client = None

    def _failure(self) -> str:
        if self._task is None or not self._task.done() or self._task.cancelled():
            return ""
        exc = self._task.exception()
        return _describe(exc) if exc is not None else "it exited"

    def _spec(self, tool: mcp_types.Tool) -> ToolSpec:
        hints = tool.annotations
        read_only = bool(hints and hints.read_only_hint) or tool.name in self.config.read_only
        schema = tool.input_schema or {"type": "object", "properties": {}}
        return ToolSpec(tool.name, tool.description or tool.name, dict(schema), read_only)


@dataclass(frozen=True, slots=True)
class McpTool:
    spec: ToolSpec
    remote_name: str
    server: McpServer

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> str:
        return await self.server.call(self.remote_name, arguments)


def _text(result: mcp_types.CallToolResult) -> str:
    texts = [block.text for block in result.content if isinstance(block, mcp_types.TextContent)]
    if texts:
        return "\n".join(texts)
    return json.dumps(result.structured_content) if result.structured_content is not None else ""


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
