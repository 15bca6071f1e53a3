"""A token bucket: what bounds how fast a client may send messages, audio or turns."""

from __future__ import annotations


class TokenBucket:
    """`rate` tokens a second, up to `burst` saved; starts full."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.level, self.at = rate, burst, burst, now

    def take(self, amount: float, now: float) -> bool:
        self.level = min(self.burst, self.level + (now - self.at) * self.rate)
        self.at = now
        if amount > self.level:
            return False
        self.level -= amount
        return True
