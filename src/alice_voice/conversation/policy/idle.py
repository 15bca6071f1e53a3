"""What the gateway says of its own accord: to a caller who has gone quiet, and the timers that are done.
Pure: it says what is due; the policy says it like a reply.

- An idle caller: after a reply, silence of `prompt_s` gets the prompt ("Are you still there?"), and then
  silence of `end_s` the farewell, after which the session ends. Anything the caller says or types, and
  any reply, starts the wait again.
- A timer that is done is said at once if the caller is listening, else as soon as they have finished and
  the reply has ended; reminders due together are said together.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True)
class IdleRules:
    """After a reply, silence of `prompt_s` gets `prompt`; then silence of `end_s` gets `farewell` and the
    session ends. 0 switches a step off."""

    prompt_s: float = 20.0
    prompt: str = "Are you still there?"
    end_s: float = 20.0
    farewell: str = "It seems you've stepped away. Goodbye for now!"


class Due(Enum):
    PROMPT = "prompt"
    FAREWELL = "farewell"


class Idle:
    def __init__(self, rules: IdleRules) -> None:
        self.rules = rules
        self._since: float | None = None  # when the last reply ended, while nothing happened since
        self._prompted = False
        self._reminders: list[str] = []

    def reset(self) -> None:
        """The caller spoke or typed: they are not idle."""
        self._since, self._prompted = None, False

    def reply_ended(self, at: float) -> None:
        self._since = at

    def spoke(self) -> None:
        """The gateway says something: the wait starts again after it (the prompt stays said)."""
        self._since = None

    def due(self, at: float) -> Due | None:
        """What the silence since the last reply calls for at `at` (the caller is listening, idle)."""
        rules = self.rules
        if self._since is None:
            return None
        waited = at - self._since
        if not self._prompted and rules.prompt_s and waited >= rules.prompt_s:
            self._prompted = True
            return Due.PROMPT
        if (self._prompted or not rules.prompt_s) and rules.end_s and waited >= rules.end_s:
            return Due.FAREWELL
        return None

    def remind(self, text: str, *, first: bool = False) -> None:
        """A reminder to say (`first`: one cut unheard goes before the others)."""
        if first:
            self._reminders.insert(0, text)
        else:
            self._reminders.append(text)

    def take_reminders(self) -> str:
        text, self._reminders = " ".join(self._reminders), []
        return text

    @property
    def reminding(self) -> bool:
        return bool(self._reminders)
