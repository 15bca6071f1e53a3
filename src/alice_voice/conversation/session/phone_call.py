"""A session's phone call as its tools see it (`CallControl`): ending it once the reply has been heard,
and the keypad.

A key the caller presses goes to the digit collection waiting for it, if one is; otherwise it is a typed
turn ("Pressed 5."), as it always was. A collection ends at its finishing key, at its count, or when no
key has come for its timeout; the keys are one result for the agent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from alice_voice.clock import Clock
from alice_voice.conversation.policy import inputs as inp
from alice_voice.tools.call_control import CallEnding, DigitsWanted
from alice_voice.tools.spec import ToolError


class Keypad:
    def __init__(self) -> None:
        self._keys: asyncio.Queue[str] | None = None  # while a collection waits

    @property
    def collecting(self) -> bool:
        return self._keys is not None

    def press(self, key: str) -> bool:
        """True if a collection took the key."""
        if self._keys is None:
            return False
        self._keys.put_nowait(key)
        return True

    async def collect(self, wanted: DigitsWanted) -> str:
        if self._keys is not None:
            raise ToolError("the keypad is already being read")
        keys: asyncio.Queue[str] = asyncio.Queue()
        self._keys = keys
        digits = ""
        try:
            while len(digits) < wanted.max_digits:
                try:
                    async with asyncio.timeout(wanted.timeout_s):
                        key = await keys.get()
                except TimeoutError:
                    break
                if key == wanted.finish_on_key:
                    break
                digits += key
        finally:
            self._keys = None
        return digits


class PhoneCall:
    """`CallControl` for one session: `post` hands the policy its inputs (the actor's inbox)."""

    def __init__(self, can_transfer: bool, keypad: Keypad, post: Callable[[inp.Input], None], clock: Clock) -> None:
        self._can_transfer, self._keypad, self._post, self._clock = can_transfer, keypad, post, clock

    @property
    def can_transfer(self) -> bool:
        return self._can_transfer

    def end_after_reply(self, ending: CallEnding) -> None:
        self._post(inp.CallEndRequested(ending, self._clock.now()))

    async def collect_digits(self, wanted: DigitsWanted) -> str:
        return await self._keypad.collect(wanted)
