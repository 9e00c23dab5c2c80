"""The Heroku API budget of one account, as a token bucket: may the autoscaler call now?

Heroku gives each account 4,500 requests, refilled at about 4,500 an hour (a token bucket
on their side, reported after each request in the `RateLimit-Remaining` header). Our
bucket follows theirs: it refills at the same rate between requests, counts the requests
we make, and when a response tells us the real figure, takes it (other tools and people
spend from the same account, and only Heroku sees them all). The autoscaler keeps off the
last `reserve` tokens, so a person's `/deploy scale` still works when the autoscaler has
been busy: its calls are refused while the tokens left are at or below the reserve.

Pure: every function takes `now` and returns a new `Budget`; nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

CAPACITY = 4500  # Heroku's per-account request limit
REFILL_PER_HOUR = 4500.0
RESERVE = 450  # a tenth kept for people's commands


@dataclass(frozen=True)
class Budget:
    tokens: float = CAPACITY
    at: datetime | None = None  # when `tokens` was last right; None: never used
    capacity: int = CAPACITY
    refill_per_hour: float = REFILL_PER_HOUR
    reserve: int = RESERVE

    def __post_init__(self) -> None:
        if not 0 <= self.reserve < self.capacity:
            raise ValueError("The reserve must be at least 0 and below the capacity.")
        if self.refill_per_hour < 0:
            raise ValueError("The refill rate cannot be negative.")

    def now(self, now: datetime) -> Budget:
        """The bucket at `now`: refilled for the time since it was last right, to capacity.
        A clock that went backwards refills nothing."""
        if now.tzinfo is None:
            raise ValueError("`now` must be timezone-aware (UTC).")
        if self.at is None:
            return replace(self, at=now)
        seconds = max(0.0, (now - self.at).total_seconds())
        tokens = min(float(self.capacity), self.tokens + seconds * self.refill_per_hour / 3600)
        return replace(self, tokens=tokens, at=max(now, self.at))

    def remaining(self, now: datetime) -> int:
        """Whole tokens left at `now`, as Heroku would report them."""
        return int(self.now(now).tokens)

    def allows(self, now: datetime, cost: int = 1) -> bool:
        """Whether the autoscaler may make `cost` requests at `now` and leave the reserve:
        with cost 1, refused when remaining <= reserve."""
        return self.remaining(now) - cost >= self.reserve

    def spend(self, now: datetime, cost: int = 1) -> Budget:
        """After `cost` requests at `now` (ours or a person's: each costs the account).
        Never below zero: Heroku answers 429 there rather than going into debt."""
        current = self.now(now)
        return replace(current, tokens=max(0.0, current.tokens - cost))

    def observe(self, remaining: int | None, now: datetime) -> Budget:
        """After a response carrying `RateLimit-Remaining: remaining` (None: no header,
        keep our own count). Heroku's figure wins over ours, in either direction."""
        if remaining is None:
            return self.now(now)
        tokens = float(min(max(remaining, 0), self.capacity))
        return replace(self, tokens=tokens, at=now if self.at is None else max(now, self.at))
