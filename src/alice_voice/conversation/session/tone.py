"""Tone mode: a 440 Hz tone instead of the agent (a transport test any client can run)."""

from __future__ import annotations

import asyncio

from alice_voice.audio.frames import PcmFrame
from alice_voice.audio.playout import ToneSource
from alice_voice.audio.tone import ToneGenerator
from alice_voice.conversation.session.ports import CallOpening
from alice_voice.errors import InvalidMessage


class ToneConversation:
    """stop-tts silences the tone; incoming audio is ignored; text needs agent mode."""

    def __init__(self) -> None:
        self.source = ToneSource(ToneGenerator().next_frame)

    def deliver_audio(self, frame: PcmFrame) -> None:
        return None

    def request_stop(self) -> None:
        self.source.stop()

    async def stop_tts(self) -> bool:
        return self.source.stop()

    def handle_text(self, text: str) -> None:
        raise InvalidMessage("text messages need agent mode (this session is in tone mode)")

    def press_key(self, key: str) -> None:
        raise InvalidMessage("key presses need agent mode (this session is in tone mode)")

    def announce(self, text: str) -> None:
        return None  # (the tone has no words)

    def begin_call(self, opening: CallOpening) -> None:
        return None

    async def run(self) -> None:
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        return None
