"""The conversation's rules: a pure turn policy (inputs in, actions out) and the endpointing it drives."""

from alice_voice.conversation.policy.config import PolicyConfig
from alice_voice.conversation.policy.endpointing import EndpointingConfig
from alice_voice.conversation.policy.states import TurnState
from alice_voice.conversation.policy.turn_policy import TurnPolicy

__all__ = ["EndpointingConfig", "PolicyConfig", "TurnPolicy", "TurnState"]
