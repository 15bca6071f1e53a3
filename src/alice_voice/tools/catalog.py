"""The process's tools, built once from the settings and the tools file, and what they hold open (the
webhooks' HTTP client, the MCP servers), closed with the process."""

from __future__ import annotations

import asyncio
import logging

import httpx

from alice_voice.config import Settings
from alice_voice.tools.builtin import BUILTIN, BUILTIN_TIMEOUT_S
from alice_voice.tools.config import ToolsFile, load_tools_file
from alice_voice.tools.mcp_servers import McpServer
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
        return await cls.from_file(load_tools_file(settings.tools_file), settings.tools)

    @classmethod
    async def from_file(cls, file: ToolsFile, enabled: bool = True) -> ToolCatalog:
        toolbox = Toolbox()
        http = httpx.AsyncClient(follow_redirects=False)
        if not enabled:
            return cls(toolbox, http, [])
        names = {tool.spec.name for tool in BUILTIN}
        wanted = names if file.builtin is True else set(file.builtin or [])
        for unknown in sorted(wanted - names):
            log.warning("tools file: no built-in tool called %r", unknown)
        for tool in BUILTIN:
            if tool.spec.name in wanted:
                toolbox.add(tool, BUILTIN_TIMEOUT_S)
        for hook in file.webhook:
            spec = ToolSpec(hook.name, hook.description, hook.parameters, hook.read_only)
            toolbox.add(WebhookTool(spec, hook.url, http, tuple(hook.headers.items())), hook.timeout_s)
        catalog = cls(toolbox, http, [McpServer(m.server()) for m in file.mcp])
        try:
            started = await asyncio.gather(*(s.start() for s in catalog._servers))
        except BaseException:  # cancelled while the servers start (the gateway stopping): stop them all
            await catalog.aclose()
            raise
        for server, tools in zip(catalog._servers, started, strict=True):
            for tool in tools:
                toolbox.add(tool, server.config.timeout_s)
        return catalog

    async def aclose(self) -> None:
        await asyncio.gather(*(server.aclose() for server in self._servers))
        await self._http.aclose()
