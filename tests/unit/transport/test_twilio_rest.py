"""The REST client against a fake of Twilio's API on its wire format: what it sends for a hang-up and a
transfer, and each way Twilio can refuse, as a `ProviderError` naming Twilio's code."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from alice_voice.errors import ProviderError
from alice_voice.transport.twilio_rest import TwilioRest, dial_twiml
from fakes.twilio_rest import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioRest

CALL = "CA" + "f" * 32


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeTwilioRest]:
    with FakeTwilioRest() as twilio:
        yield twilio


@pytest.mark.asyncio
async def test_a_hang_up_and_a_transfer_update_the_live_call(fake: FakeTwilioRest) -> None:
    rest = TwilioRest(ACCOUNT_SID, AUTH_TOKEN, fake.url)
    try:
        hung_up = await rest.hang_up(CALL)
        moved = await rest.transfer(CALL, "sip:desk@pbx.example.com")
    finally:
        await rest.aclose()
    assert (hung_up.sid, hung_up.status) == (CALL, "completed")
    assert moved.sid == CALL
    assert [r.path for r in fake.requests] == [f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{CALL}.json"] * 2
    assert fake.requests[0].form == {"Status": ["completed"]}
    assert fake.requests[1].form == {"Twiml": [dial_twiml("sip:desk@pbx.example.com")]}


@pytest.mark.parametrize(("target", "twiml"), [
    ("+15551230000", "<Response><Dial><Number>+15551230000</Number></Dial></Response>"),
    ("sip:desk@pbx.example.com", "<Response><Dial><Sip>sip:desk@pbx.example.com</Sip></Dial></Response>"),
])
def test_a_transfer_dials_a_number_or_a_sip_address(target: str, twiml: str) -> None:
    assert dial_twiml(target) == twiml


@pytest.mark.asyncio
@pytest.mark.parametrize(("token", "refused", "message"), [
    ("wrong-token", False, "Authenticate (Twilio error 20003, HTTP 401)"),
    (AUTH_TOKEN, True, "was not found (Twilio error 20404, HTTP 404)"),
])
async def test_a_refusal_names_twilios_code(fake: FakeTwilioRest, token: str, refused: bool, message: str) -> None:
    if refused:
        fake.refuse.add(CALL)
    rest = TwilioRest(ACCOUNT_SID, token, fake.url)
    try:
        with pytest.raises(ProviderError, match=re.escape(message)) as raised:
            await rest.hang_up(CALL)
    finally:
        await rest.aclose()
    assert raised.value.provider == "twilio"


@pytest.mark.asyncio
async def test_an_unreachable_api_is_a_provider_error() -> None:
    rest = TwilioRest(ACCOUNT_SID, AUTH_TOKEN, "http://127.0.0.1:9")
    try:
        with pytest.raises(ProviderError, match="could not be reached"):
            await rest.hang_up(CALL)
    finally:
        await rest.aclose()
