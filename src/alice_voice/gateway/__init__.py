"""Composition root: sessions (transport <-> conversation <-> state) and the process-wide runtime."""

from alice_voice.gateway.live_session import LiveSession
from alice_voice.gateway.runtime import AgentRuntime
from alice_voice.gateway.sessions import ConversationFactory, Gateway

__all__ = ["AgentRuntime", "ConversationFactory", "Gateway", "LiveSession"]
