"""A tiny MCP server for the tests, on the official SDK: `python -m fakes.mcp_server LOG` serves it over
stdio, `python -m fakes.mcp_server LOG PORT` over streamable HTTP on 127.0.0.1.

Tools: `lookup_order` (read-only: the server says so; an order that is not a number is an
error), `book_table` and `cancel_order` (they change things: every call is appended to LOG, one JSON line
each, so a test can see whether it ran), `slow_echo` (sleeps first) and `crash` (the server process exits
mid-call).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

server = MCPServer("test-shop")
LOG = sys.argv[1] if len(sys.argv) > 1 else os.devnull


def _record(tool: str, **arguments: object) -> None:
    with open(LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps({"tool": tool, **arguments}) + "\n")


@server.tool(description="The status of an order, by its number.", annotations=ToolAnnotations(read_only_hint=True))
def lookup_order(order: str) -> str:
    _record("lookup_order", order=order)
    if not order.isdigit():
        raise ToolError(f"There is no order {order}.")
    return f"Order {order} was shipped yesterday."


@server.tool(description="Book a table for a number of people.")
def book_table(people: int, time: str) -> str:
    _record("book_table", people=people, time=time)
    return f"Booked a table for {people} at {time}."


@server.tool(description="Cancel an order, by its number.")
def cancel_order(order: str) -> str:
    _record("cancel_order", order=order)
    return f"Order {order} is cancelled." if order else "Which order?"


@server.tool(description="Echo the text after a delay in seconds.")
async def slow_echo(text: str, delay_s: float) -> str:
    await asyncio.sleep(delay_s)
    return text


@server.tool(description="Exit the server in the middle of a call.")
def crash() -> str:
    _record("crash")
    os._exit(3)


if __name__ == "__main__":
    if len(sys.argv) > 2:  # LOG PORT: streamable HTTP on 127.0.0.1:PORT/mcp
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
