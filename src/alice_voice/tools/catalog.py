"""The process's tools, built once from the settings and the tools file, and what they hold open (the
webhooks' HTTP client, the MCP servers), closed with the process."""

from __future__ import annotations

import asyncio
import logging

import httpx
import jsonschema

from alice_voice.config import Settings
from alice_voice.tools.builtin import BUILTIN, BUILTIN_TIMEOUT_S
from alice_voice.tools.call_control import CALL_TOOL_TIMEOUT_S, TransferTargets, call_tools
from alice_voice.tools.config import TOOL_NAME, ToolsFile, load_tools_file
from alice_voice.tools.mcp_servers import McpServer, McpTool
from alice_voice.tools.spec import ToolSpec
from alice_voice.tools.toolbox import Toolbox
from alice_voice.tools.webhook import WebhookTool

log = logging.getLogger(__name__)


class ToolCatalog:
    def __init__(self, toolbox: Toolbox, http: httpx.AsyncClient, servers: list[McpServer]) -> None:
        self.toolbox = toolbox
        self._http = http
        self._servers = servers

    @classmethod
    async def open(cls, settings: Settings) -> ToolCatalog:
        """Raises `ToolsFileError` for a bad file (at start, where an operator sees it); an MCP server that
        does not start is logged and left out."""
        return await cls.from_file(load_tools_file(settings.tools_file), settings.tools, transfer_targets(settings))

    @classmethod
    async def from_file(cls, file: ToolsFile, enabled: bool = True,
                        transfers: TransferTargets | None = None) -> ToolCatalog:
        """The built-ins the file names (the call-control tools among them, offered in phone calls only),
        then the file's webhooks and MCP servers (which may replace a tool of the same name)."""
        toolbox = Toolbox()
        http = httpx.AsyncClient(follow_redirects=False)
        if not enabled:
            return cls(toolbox, http, [])
        builtin = [(tool, BUILTIN_TIMEOUT_S) for tool in BUILTIN]
        builtin += [(tool, CALL_TOOL_TIMEOUT_S) for tool in call_tools(transfers or TransferTargets())]
        names = {tool.spec.name for tool, _ in builtin}
        wanted = names if file.builtin is True else set(file.builtin or [])
        for unknown in sorted(wanted - names):
            log.warning("tools file: no built-in tool called %r", unknown)
        for tool, timeout_s in builtin:
            if tool.spec.name in wanted:
                toolbox.add(tool, timeout_s)
        for hook in file.webhook:
            spec = ToolSpec(hook.name, hook.description, hook.parameters, hook.read_only)
            toolbox.add(WebhookTool(spec, hook.url, http, tuple(hook.headers.items())), hook.timeout_s)
        catalog = cls(toolbox, http, [McpServer(m.server()) for m in file.mcp])
        try:
            started = await asyncio.gather(*(s.start() for s in catalog._servers))
            for server, tools in zip(catalog._servers, started, strict=True):
                for tool in tools:
                    catalog._add_remote(tool, server)
        except BaseException:  # cancelled while the servers start (the gateway stopping): stop them all
            await catalog.aclose()
            raise
        return catalog

    def _add_remote(self, tool: McpTool, server: McpServer) -> None:
        """An MCP server's tool, unless its name or schema would break every request to the model."""
        name = tool.spec.name
        if not TOOL_NAME.fullmatch(name):
            log.error("MCP server %r: tool %r skipped: the name is not one a model API accepts", server.config.name,
                      name)
            return
        if self.toolbox.spec(name) is not None:
            log.warning("MCP server %r: tool %r replaces the tool of the same name", server.config.name, name)
        try:
            self.toolbox.add(tool, server.config.timeout_s)
        except jsonschema.SchemaError as exc:
            log.error("MCP server %r: tool %r skipped: its input schema is invalid (%s)", server.config.name, name,
                      exc.message)

    async def aclose(self) -> None:
        await asyncio.gather(*(server.aclose() for server in self._servers))
        await self._http.aclose()


def transfer_targets(settings: Settings) -> TransferTargets:
    return TransferTargets(settings.transfer_targets, settings.transfer_any_number)
