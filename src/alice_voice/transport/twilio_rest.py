"""Twilio's REST API, the parts a voice agent uses: place a call, and change a live one (hang it up, or
give it new TwiML: a `<Dial>` that puts the caller through to a person).

Requests are form-encoded, authenticated with the account SID and auth token (HTTP basic), and answered
with JSON; a refusal is JSON too (`code`, `message`), and becomes a `ProviderError` naming Twilio's code,
as does a network failure or a stall past the deadline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

import httpx

from alice_voice.errors import ProviderError, ProviderTimeout

PROVIDER = "twilio"
API_VERSION = "2010-04-01"
Form = Mapping[str, str | Sequence[str]]


@dataclass(frozen=True, slots=True)
class CallResource:
    sid: str
    status: str


class TwilioRest:
    def __init__(self, account_sid: str, auth_token: str, base_url: str = "https://api.twilio.com",
                 timeout_s: float = 10.0) -> None:
        self.account_sid = account_sid
        self._http = httpx.AsyncClient(base_url=f"{base_url.rstrip('/')}/{API_VERSION}/Accounts/{account_sid}",
                                       auth=(account_sid, auth_token), timeout=timeout_s, follow_redirects=False)

    async def create_call(self, form: Form) -> CallResource:
        return await self._post("/Calls.json", form)

    async def update_call(self, call_sid: str, form: Form) -> CallResource:
        return await self._post(f"/Calls/{call_sid}.json", form)

    async def hang_up(self, call_sid: str) -> CallResource:
        return await self.update_call(call_sid, {"Status": "completed"})

    async def transfer(self, call_sid: str, target: str) -> CallResource:
        """The live call leaves its media stream (Twilio closes it) and dials `target`."""
        return await self.update_call(call_sid, {"Twiml": dial_twiml(target)})

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(self, path: str, form: Form) -> CallResource:
        try:
            response = await self._http.post(path, data=dict(form))
        except httpx.TimeoutException:
            raise ProviderTimeout(PROVIDER, "the REST API did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ProviderError(PROVIDER, f"the REST API could not be reached ({type(exc).__name__})",
                                retryable=True) from None
        body = _json(response)
        if response.status_code >= 400:
            code, message = body.get("code", response.status_code), body.get("message", response.reason_phrase)
            raise ProviderError(PROVIDER, f"{message} (Twilio error {code}, HTTP {response.status_code})",
                                retryable=response.status_code >= 500)
        sid, status = body.get("sid"), body.get("status")
        if not isinstance(sid, str) or not isinstance(status, str):
            raise ProviderError(PROVIDER, "the REST API answered without a call's sid and status")
        return CallResource(sid, status)


def dial_twiml(target: str) -> str:
    """`<Response><Dial>` to a number, or to a SIP address in its `<Sip>` noun."""
    response = ElementTree.Element("Response")
    dial = ElementTree.SubElement(response, "Dial")
    if target.startswith(("sip:", "sips:")):
        ElementTree.SubElement(dial, "Sip").text = target
    else:
        ElementTree.SubElement(dial, "Number").text = target
    return ElementTree.tostring(response, encoding="unicode")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
