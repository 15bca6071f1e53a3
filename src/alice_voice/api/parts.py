"""The parts of this process the API reaches (`app.state.parts`), built once by `create_app`."""

from __future__ import annotations

from dataclasses import dataclass

from alice_voice.api.sip import SipService
from alice_voice.config import Settings
from alice_voice.gateway import AgentRuntime, Drain, Gateway, Housekeeping, SessionControl, Transports
from alice_voice.transport.twilio_rest import TwilioRest


@dataclass(frozen=True)
class Parts:
    settings: Settings
    gateway: Gateway  # the sessions
    drain: Drain
    housekeeping: Housekeeping
    control: SessionControl
    runtime: AgentRuntime
    transports: Transports
    twilio: TwilioRest | None = None  # the REST API, when an account SID and auth token are configured
    sip: SipService | None = None  # calls from a PBX or a trunk, when SIP_PORT is set


def twilio_rest(settings: Settings) -> TwilioRest | None:
    if settings.twilio_account_sid is None or settings.twilio_auth_token is None:
        return None
    return TwilioRest(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value(),
                      settings.twilio_api_url)
