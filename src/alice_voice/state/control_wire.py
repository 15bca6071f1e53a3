"""The control bus's messages on the wire, and the errors they carry back (see state/control.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from alice_voice.errors import AliceError


class ControlRequest(BaseModel):
    """A control request as published on the owner's channel."""

    v: Literal[1] = 1
    id: str = Field(min_length=1)
    action: str
    session_id: str
    # Only a reply channel: a forged request must not make the owner publish on someone's control channel.
    reply_to: str = Field(pattern=r"^alice:reply:[0-9a-f]{32}$")
    timeout_s: float = Field(gt=0, le=60)


class ErrorInfo(BaseModel):
    code: str
    status: int
    message: str


class ControlReply(BaseModel):
    """The owner's answer: exactly one of `result` and `error`."""

    id: str
    result: dict[str, Any] | None = None
    error: ErrorInfo | None = None

    @model_validator(mode="after")
    def _one_outcome(self) -> ControlReply:
        if (self.result is None) == (self.error is None):
            raise ValueError("a reply carries exactly one of result and error")
        return self


class RemoteError(AliceError):
    """An AliceError raised by the owner whose type cannot be rebuilt here; keeps its status and code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def _rebuildable() -> dict[str, type[AliceError]]:
    """Error types by code, for those built from a message alone (ProviderError and kin are not)."""
    found: dict[str, type[AliceError]] = {}
    stack: list[type[AliceError]] = [AliceError]
    while stack:
        cls = stack.pop()
        if cls.__init__ is AliceError.__init__:
            found.setdefault(cls.code, cls)
        stack.extend(cls.__subclasses__())
    return found


def rebuild_error(info: ErrorInfo) -> AliceError:
    cls = _rebuildable().get(info.code)
    if cls is not None and cls.status == info.status:
        return cls(info.message)
    return RemoteError(info.status, info.code, info.message)
