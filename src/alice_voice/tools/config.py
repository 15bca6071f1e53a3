"""The tools file (`TOOLS_FILE`, TOML): which built-ins, which webhooks, which MCP servers.

    builtin = true                      # or a list: ["get_current_time", "set_timer", ...]

    [[webhook]]
    name = "order_status"
    description = "The delivery status of an order, by its number."
    url = "http://backend:8080/tools/order_status"
    read_only = true                    # may run before the caller has finished (default false)
    timeout_s = 5
    headers = { Authorization = "Bearer ${ORDERS_TOKEN}" }   # ${VAR}: from the environment
    parameters = { type = "object", properties = { order = { type = "string" } }, required = ["order"] }

    [[mcp]]
    name = "weather"
    command = "python"                  # stdio: started with the gateway, stopped with it
    args = ["-m", "weather_server"]
    read_only = ["get_forecast"]        # besides the tools the server marks readOnlyHint

    [[mcp]]
    name = "crm"
    url = "http://127.0.0.1:9000/mcp"   # streamable HTTP
"""

from __future__ import annotations

import os
import re
import string
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alice_voice.tools.mcp_servers import McpServerConfig
from alice_voice.tools.spec import NO_ARGUMENTS

_NAME = r"^[a-zA-Z0-9_-]{1,64}$"  # what OpenAI-compatible servers accept as a function name
TOOL_NAME = re.compile(_NAME)


class ToolsFileError(ValueError):
    """The tools file is missing, not TOML, or not what this module documents."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookConfig(_Strict):
    name: str = Field(pattern=_NAME)
    description: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://")
    parameters: dict[str, Any] = Field(default_factory=lambda: dict(NO_ARGUMENTS))
    read_only: bool = False
    timeout_s: float = Field(10.0, gt=0, le=120)
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("parameters")
    @classmethod
    def _a_schema(cls, parameters: dict[str, Any]) -> dict[str, Any]:
        try:
            jsonschema.validators.validator_for(parameters).check_schema(parameters)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"not a JSON schema: {exc.message}") from None
        return parameters

    @field_validator("headers")
    @classmethod
    def _expand(cls, headers: dict[str, str]) -> dict[str, str]:
        try:
            return {k: string.Template(v).substitute(os.environ) for k, v in headers.items()}
        except KeyError as exc:
            raise ValueError(f"header refers to ${{{exc.args[0]}}}, which is not set in the environment") from None


class McpConfig(_Strict):
    name: str = Field(pattern=_NAME)
    command: str = ""
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    url: str = Field("", pattern=r"^$|^https?://")
    read_only: list[str] = Field(default_factory=list)
    timeout_s: float = Field(10.0, gt=0, le=120)
    start_timeout_s: float = Field(15.0, gt=0, le=120)

    @model_validator(mode="after")
    def _one_transport(self) -> McpConfig:
        if bool(self.command) == bool(self.url):
            raise ValueError("give either `command` (stdio) or `url` (streamable HTTP)")
        return self

    def server(self) -> McpServerConfig:
        return McpServerConfig(self.name, self.command, tuple(self.args), tuple(self.env.items()), self.url,
                               self.timeout_s, self.start_timeout_s, tuple(self.read_only))


class ToolsFile(_Strict):
    builtin: bool | list[str] = True
    webhook: list[WebhookConfig] = Field(default_factory=list)
    mcp: list[McpConfig] = Field(default_factory=list)


def load_tools_file(path: str | Path | None) -> ToolsFile:
    if not path:
        return ToolsFile()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        return ToolsFile.model_validate(data)
    except OSError as exc:
        raise ToolsFileError(f"tools file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ToolsFileError(f"tools file {path} is not TOML: {exc}") from None
    except ValidationError as exc:
        raise ToolsFileError(f"tools file {path}: {exc}") from None
