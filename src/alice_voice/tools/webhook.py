"""A tool served by the deployment's own backend over HTTP, declared in the tools file.

The call is `POST url` with `{"tool", "arguments", "session_id"}` as JSON. A 2xx answer is the result:
a JSON body's `result` field if it has one (the whole JSON otherwise), or a text body as it is. Any other
status, a body that claims JSON and is not, or a connection failure is an error result. Never retried: a
webhook may change things, and the same call twice is not the same as once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from alice_voice.tools.spec import ToolError, ToolSpec
from alice_voice.tools.tool import ToolContext

_MAX_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class WebhookTool:
    spec: ToolSpec
    url: str
    client: httpx.AsyncClient
    headers: tuple[tuple[str, str], ...] = ()

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> str:
        body = {"tool": self.spec.name, "arguments": arguments, "session_id": context.session_id}
        try:
            async with self.client.stream("POST", self.url, json=body, headers=dict(self.headers)) as response:
                content = await _read_capped(response)
        except httpx.HTTPError as exc:
            raise ToolError(f"the service could not be reached ({type(exc).__name__})") from None
        if not response.is_success:
            raise ToolError(f"the service answered HTTP {response.status_code}")
        text = content.decode(response.encoding or "utf-8", errors="replace")
        if "json" not in response.headers.get("content-type", ""):
            return text
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            raise ToolError("the service's answer was not valid JSON") from None
        result = parsed.get("result", parsed) if isinstance(parsed, dict) else parsed
        return result if isinstance(result, str) else json.dumps(result)


async def _read_capped(response: httpx.Response) -> bytes:
    body = bytearray()
    async for part in response.aiter_bytes():
        body += part
        if len(body) > _MAX_BODY:
            raise ToolError(f"the service's answer is larger than {_MAX_BODY // 1024} KiB")
    return bytes(body)
