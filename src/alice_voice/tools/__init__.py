"""Tools the assistant can call: built-in (clock, arithmetic, timers), HTTP webhooks and MCP servers.

A tool is a name, a description and a JSON schema of its arguments (`spec.ToolSpec`), and an async call
that returns text for the language model. The process's tools are gathered once in a `Toolbox`
(`toolbox.py`), which validates every call, bounds it in time and turns any failure into an error result
the model can read: a tool never ends a session. Whether a call may run yet (a speculative turn) is the
conversation's business, not the tools'.
"""

from alice_voice.tools.spec import ToolError, ToolOutcome, ToolSpec
from alice_voice.tools.tool import Tool, ToolContext
from alice_voice.tools.toolbox import Toolbox

__all__ = ["Tool", "ToolContext", "ToolError", "ToolOutcome", "ToolSpec", "Toolbox"]
