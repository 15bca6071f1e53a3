"""Composition root: the process's sessions (transport <-> conversation <-> state), their drain,
housekeeping and control, and the process-wide runtime of models."""

from alice_voice.gateway.drain import Drain
from alice_voice.gateway.engines import SpeechEngines
from alice_voice.gateway.housekeeping import Housekeeping
from alice_voice.gateway.live_session import LiveSession
from alice_voice.gateway.runtime import AgentRuntime
from alice_voice.gateway.session_control import SessionControl
from alice_voice.gateway.sessions import ConversationFactory, Gateway
from alice_voice.gateway.transports import Transports

__all__ = ["AgentRuntime", "ConversationFactory", "Drain", "Gateway", "Housekeeping", "LiveSession", "SessionControl",
           "SpeechEngines", "Transports"]
