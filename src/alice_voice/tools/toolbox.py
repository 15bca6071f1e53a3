"""The process's tools, by name, and the one way to call one: validated, bounded, never raising.

Whatever a call does wrong becomes an error result in words the model can act on: arguments that are not
JSON or do not fit the tool's schema, an unknown tool, a tool that raises anything or outlasts its
timeout. Only cancellation (the caller talked over the reply) goes through, as it must.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jsonschema

from alice_voice.clock import SYSTEM_CLOCK, Clock
from alice_voice.logs import session_logger
from alice_voice.tools.spec import Outcome, ToolError, ToolOutcome, ToolSpec
from alice_voice.tools.tool import Tool, ToolContext

_MAX_RESULT_CHARS = 4000  # what the model reads of a result: a runaway webhook must not fill its context


@dataclass(frozen=True, slots=True)
class _Entry:
    tool: Tool
    timeout_s: float
    validator: jsonschema.protocols.Validator


class Toolbox:
    def __init__(self, tools: Iterable[tuple[Tool, float]] = ()) -> None:
        self._entries: dict[str, _Entry] = {}
        for tool, timeout_s in tools:
            self.add(tool, timeout_s)

    def add(self, tool: Tool, timeout_s: float) -> None:
        """A later tool of the same name replaces an earlier one (a deployment overrides a built-in)."""
        schema = tool.spec.parameters
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)  # a broken schema is a configuration error, found at start
        self._entries[tool.spec.name] = _Entry(tool, timeout_s, validator_class(schema))

    def remove(self, names: Iterable[str]) -> None:
        for name in names:
            self._entries.pop(name, None)

    @property
    def specs(self) -> list[ToolSpec]:
        return [entry.tool.spec for entry in self._entries.values()]

    def spec(self, name: str) -> ToolSpec | None:
        entry = self._entries.get(name)
        return entry.tool.spec if entry is not None else None

    def __len__(self) -> int:
        return len(self._entries)

    async def run(self, call_id: str, name: str, arguments: str, context: ToolContext,
                  clock: Clock = SYSTEM_CLOCK) -> ToolOutcome:
        started = clock.now()
        log = session_logger(__name__, context.session_id)

        def outcome(kind: Outcome, result: str) -> ToolOutcome:
            if kind != "ok":
                log.warning("tool %s: %s: %s", name, kind, result)
            return ToolOutcome(call_id, name, arguments, kind, result[:_MAX_RESULT_CHARS],
                               (clock.now() - started) * 1000)

        entry = self._entries.get(name)
        if entry is None:
            return outcome("unknown", f"Error: there is no tool called {name!r}. "
                                      f"Tools: {', '.join(self._entries) or 'none'}.")
        try:
            parsed = _parse(arguments, entry.validator)
        except Exception as exc:  # ValueError; or the schema itself fails on them (an unresolvable $ref)
            return outcome("invalid", f"Error: invalid arguments for {name}: {exc}")
        try:
            async with asyncio.timeout(entry.timeout_s):
                result = await entry.tool.call(parsed, context)
        except asyncio.CancelledError:
            log.info("tool %s cancelled", name)
            raise
        except TimeoutError:
            return outcome("timeout", f"Error: {name} did not answer within {entry.timeout_s:g} s.")
        except ToolError as exc:
            return outcome("error", f"Error: {exc}")
        except Exception as exc:  # a tool's bug or its backend's failure: the model hears, the session goes on
            return outcome("error", f"Error: {name} failed ({type(exc).__name__}).")
        return outcome("ok", result if isinstance(result, str) else json.dumps(result))


def _parse(arguments: str, validator: jsonschema.protocols.Validator) -> dict[str, Any]:
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg})") from None
    if not isinstance(parsed, dict):
        raise ValueError("expected a JSON object")
    error = jsonschema.exceptions.best_match(validator.iter_errors(parsed))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        raise ValueError(f"{where + ': ' if where else ''}{error.message}")
    return parsed
