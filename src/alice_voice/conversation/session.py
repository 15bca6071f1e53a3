"""What a session runs: the interface the gateway wires between the peer and the store."""

from __future__ import annotations

from typing import Protocol

from alice_voice.audio.frames import PcmFrame
from alice_voice.audio.playout import FrameSource


class Conversation(Protocol):
    """Tone or agent. `source` feeds the outbound track; `deliver_audio` takes the inbound audio."""

    @property
    def source(self) -> FrameSource: ...

    def deliver_audio(self, frame: PcmFrame) -> None: ...

    def stop_tts(self) -> bool:
        """Stop speaking; True if something was playing."""
        ...

    def handle_text(self, text: str) -> None: ...

    async def run(self) -> None: ...

    async def aclose(self) -> None: ...
