"""What the playout tells the session about its outbound audio (pure data: the turn policy reads it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Mark:
    """A point the outbound audio reached: a reply's first frame sent, the first silent frame after a
    pause or a cut, or the reply played out (`started`: whether any of it was sent)."""

    reply_id: int
    kind: Literal["first_frame", "silenced", "finished"]
    started: bool
    at: float
