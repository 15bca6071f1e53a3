"""A fake of Twilio's REST API on 127.0.0.1, on its real wire format: form-encoded requests under
`/2010-04-01/Accounts/{AccountSid}/`, HTTP basic auth with the account SID and auth token, JSON call
resources back, and Twilio's JSON errors (`code`, `message`, `more_info`, `status`).

`POST .../Calls.json` places a call (it needs `To`, `From`, and `Url` or `Twiml`); `POST .../Calls/{Sid}.json`
changes a live one (`Status=completed` hangs it up, `Twiml` replaces its instructions). A call SID in
`refuse` gets Twilio's 404 for it. Every request is kept in `requests`; `wait_for` waits (on a condition,
not a sleep) until one matches.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from fakes.local_server import LocalServer

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-test-token"
PREFIX = f"/2010-04-01/Accounts/{ACCOUNT_SID}"


@dataclass(frozen=True)
class RestRequest:
    path: str
    form: dict[str, list[str]]
    at: float  # when it arrived (time.monotonic(), the clock of an asyncio loop here)

    def field(self, name: str) -> str:
        return self.form.get(name, [""])[0]


def twilio_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                         "status": status}, status_code=status)


@dataclass
class FakeTwilioRest:
    refuse: set[str] = field(default_factory=set)  # call SIDs whose updates get a 404
    requests: list[RestRequest] = field(default_factory=list)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _server: LocalServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        return self._server.url

    def __enter__(self) -> FakeTwilioRest:
        app = Starlette(routes=[Route(f"{PREFIX}/Calls.json", self._create, methods=["POST"]),
                                Route(PREFIX + "/Calls/{sid}.json", self._update, methods=["POST"])])
        self._server = LocalServer(app).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._server is not None
        self._server.stop()

    async def wait_for(self, match: Callable[[RestRequest], bool], timeout: float = 20.0) -> RestRequest:
        def first() -> RestRequest | None:
            return next((r for r in self.requests if match(r)), None)

        def wait() -> RestRequest | None:
            with self._changed:
                self._changed.wait_for(lambda: first() is not None, timeout)
            return first()

        found = await asyncio.to_thread(wait)
        assert found is not None, f"no such request within {timeout} s: {self.requests}"
        return found

    async def _record(self, request: Request) -> RestRequest | JSONResponse:
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return twilio_error(401, 20003, "Authenticate")
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return twilio_error(400, 20001, "Content-Type must be application/x-www-form-urlencoded")
        form = await request.form()
        recorded = RestRequest(request.url.path, {name: [str(v) for v in form.getlist(name)] for name in form},
                               time.monotonic())
        with self._changed:
            self.requests.append(recorded)
            self._changed.notify_all()
        return recorded

    async def _create(self, request: Request) -> JSONResponse:
        recorded = await self._record(request)
        if isinstance(recorded, JSONResponse):
            return recorded
        if not recorded.field("To"):
            return twilio_error(400, 21201, "No 'To' number is specified")
        if not recorded.field("From"):
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        if not (recorded.field("Url") or recorded.field("Twiml")):
            return twilio_error(400, 21205, "Url parameter is required.")
        if recorded.field("To").startswith("+1555000"):  # Twilio's test numbers of an invalid destination
            return twilio_error(400, 21211, f"The 'To' number {recorded.field('To')} is not a valid phone number.")
        sid = "CA" + secrets.token_hex(16)
        self.calls[sid] = _resource(sid, recorded, "queued")
        return JSONResponse(self.calls[sid], status_code=201)

    async def _update(self, request: Request) -> JSONResponse:
        recorded = await self._record(request)
        if isinstance(recorded, JSONResponse):
            return recorded
        sid = request.path_params["sid"]
        if sid in self.refuse:
            return twilio_error(404, 20404, f"The requested resource {request.url.path} was not found")
        status = "completed" if recorded.field("Status") == "completed" else "in-progress"
        call = self.calls.setdefault(sid, _resource(sid, recorded, status))
        call["status"] = status
        return JSONResponse(call)


def _resource(sid: str, request: RestRequest, status: str) -> dict[str, Any]:
    """The JSON of a call resource, as Twilio answers it (the fields a client reads)."""
    return {"sid": sid, "account_sid": ACCOUNT_SID, "to": request.field("To"), "from": request.field("From"),
            "status": status, "direction": "outbound-api", "api_version": "2010-04-01",
            "uri": f"{PREFIX}/Calls/{sid}.json", "date_created": None, "duration": None, "price": None}
