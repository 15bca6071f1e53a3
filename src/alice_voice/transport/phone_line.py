"""A session's phone line: what ends a call the way a phone call ends (hung up, or put through to a
person), beyond closing its media. A transport that carries phone calls gives its session one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from alice_voice.tools.call_control import CallEnding, LineAbilities
from alice_voice.transport.twilio_rest import TwilioRest

HEARD_WAIT_S = 2.0  # the far end confirms the last words played within a packet or two: this is a bound


class PhoneLine(Protocol):
    @property
    def abilities(self) -> LineAbilities: ...

    async def finish(self, ending: CallEnding) -> None:
        """Once what was said has been heard: hang up, or put the caller through to `ending.target`.
        Raises `ProviderError` when the provider refuses."""
        ...


class TwilioLine:
    """A Media Streams call. With the REST API (an account SID configured) it is hung up or transferred
    there; without, closing the stream ends it (its TwiML has nothing after `<Connect>`)."""

    def __init__(self, rest: TwilioRest | None, call_sid: str, played_out: Callable[[float], Awaitable[bool]]) -> None:
        self._rest, self._call_sid, self._played_out = rest, call_sid, played_out

    @property
    def abilities(self) -> LineAbilities:
        return LineAbilities(transfer=self._rest is not None and bool(self._call_sid))

    async def finish(self, ending: CallEnding) -> None:
        await self._played_out(HEARD_WAIT_S)
        if self._rest is None or not self._call_sid:
            return
        if ending.reason == "transferred":
            await self._rest.transfer(self._call_sid, ending.target)
        else:
            await self._rest.hang_up(self._call_sid)
