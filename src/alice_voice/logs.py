"""Logging: plain or JSON lines; every line about a session carries its id in `session_id`."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

from pythonjsonlogger.json import JsonFormatter

_PLAIN = "%(asctime)s %(levelname)s %(name)s [%(session_id)s] %(message)s"


class _SessionDefault(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "session_id"):
            record.session_id = "-"
        return True


def configure_logging(level: str = "INFO", json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_SessionDefault())
    fmt: logging.Formatter = (
        JsonFormatter("%(asctime)s %(levelname)s %(name)s %(session_id)s %(message)s") if json_lines
        else logging.Formatter(_PLAIN)
    )
    handler.setFormatter(fmt)
    root = logging.getLogger("alice_voice")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class SessionLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger adapter that stamps `session_id` on every record."""

    def __init__(self, logger: logging.Logger, session_id: str) -> None:
        super().__init__(logger, {"session_id": session_id})

    @property
    def session_id(self) -> str:
        return str(self.extra["session_id"]) if self.extra else "-"

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(kwargs.get("extra") or {}), "session_id": self.extra["session_id"]}  # type: ignore[index]
        return msg, kwargs


def session_logger(name: str, session_id: str) -> SessionLogger:
    return SessionLogger(logging.getLogger(name), session_id)
