"""What Twilio does to connect a call to a running gateway: the signed voice webhook, whose TwiML names
the media stream and its parameters, and the stream's signed handshake."""

from __future__ import annotations

import asyncio
from typing import Protocol
from xml.etree import ElementTree

import httpx

from alice_voice.transport.twilio_signature import signature
from support.gateway import RunningGateway
from support.socket_clients import FakeTwilio

TOKEN = "twilio-test-token"
STREAM = "/api/telephony/twilio/stream"


class Reachable(Protocol):
    """A gateway in this process or another (`url`: its http:// origin)."""

    url: str


def ws_url(gateway: Reachable, path: str) -> str:
    return gateway.url.replace("http://", "ws://") + path


def twilio_headers(gateway: Reachable) -> dict[str, str]:
    return {"X-Twilio-Signature": signature(TOKEN, ws_url(gateway, STREAM))}


async def answered(gateway: Reachable, call: FakeTwilio, query: str = "", **form: str) -> dict[str, str]:
    """What Twilio does first: the signed webhook; the TwiML's stream parameters come back in `start`."""
    url = gateway.url + "/api/telephony/twilio/voice" + query
    fields = {"CallSid": call.call_sid, **form}
    async with httpx.AsyncClient() as http:
        response = await http.post(url, data=fields, headers={"X-Twilio-Signature": signature(TOKEN, url, fields)})
    response.raise_for_status()
    stream = ElementTree.fromstring(response.text).find("./Connect/Stream")
    assert stream is not None
    return {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}


async def no_sessions_left(gateway: RunningGateway, *ids: str) -> None:
    """Every session that was open has been disposed of, its record too."""
    async with asyncio.timeout(10):
        await asyncio.gather(*(live.ended.wait() for live in list(gateway.gateway.sessions.values())))
    assert not gateway.gateway.sessions
    for session_id in ids:
        assert await gateway.gateway.store.get(session_id) is None
