"""Request guards that run before FastAPI parses a body: size limit and JSON content type."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alice_voice.errors import AliceError, PayloadTooLarge, UnsupportedMediaType


def error_body(exc: AliceError, details: list[dict[str, str]] | None = None) -> dict[str, object]:
    """The one JSON shape of every error: {"error": {"code", "message", "details"?}}."""
    body: dict[str, object] = {"code": exc.code, "message": exc.message}
    if details:
        body["details"] = details
    return {"error": body}


async def send_error(send: Send, exc: AliceError) -> None:
    body = json.dumps(error_body(exc)).encode()
    await send({"type": "http.response.start", "status": exc.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


_TELEPHONY = "/api/telephony/"
_OURS = frozenset({"/api/telephony/twilio/calls"})  # placed by an operator, in JSON
_FORM = b"application/x-www-form-urlencoded"


class BodyGuard:
    """Rejects bodies over `max_bytes` (413) and non-JSON content types on POST/PUT/PATCH (415)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if headers.get(b"content-length", b"") == b"0" or (b"content-length" not in headers
                                                          and b"transfer-encoding" not in headers):
            await self.app(scope, receive, send)  # no body: no type to check (POST /api/admin/drain)
            return
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        # A telephony provider's webhooks are forms (Twilio posts application/x-www-form-urlencoded).
        from_provider = scope["path"].startswith(_TELEPHONY) and scope["path"] not in _OURS
        wanted = _FORM if from_provider else b"application/json"
        if content_type != wanted:
            await send_error(send, UnsupportedMediaType(
                f"content type must be {wanted.decode()}, got {content_type.decode() or 'none'}"))
            return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await send_error(send, PayloadTooLarge(f"body over {self.max_bytes} bytes"))
            return
        await self._guarded(scope, receive, send)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Streams without a Content-Length are counted as they arrive."""
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await send_error(send, PayloadTooLarge(f"body over {self.max_bytes} bytes"))
                return
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
