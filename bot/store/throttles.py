"""Each Heroku account's throttle, shared by every dyno through the database.

Heroku counts API calls per account, whichever dyno makes them. After a 429 the dyno that
got it stores "throttled until" (from `Retry-After`); every dyno then answers at once
instead of calling (and waiting) again. `RateLimit-Remaining` is stored too, so the
worker's autoscaler budgets from what the web dyno's calls left, not only its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from bot.store.db import Database
from bot.store.models import ApiThrottle


@dataclass(frozen=True)
class Throttle:
    account: str
    throttled_until: datetime | None
    remaining: int | None
    observed_at: datetime


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every time stored here is UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Throttles:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, account: str) -> Throttle | None:
        with self._db.session() as session:
            row = session.get(ApiThrottle, account)
            if row is None:
                return None
            observed = _aware(row.observed_at)
            assert observed is not None
            return Throttle(account, _aware(row.throttled_until), row.remaining, observed)

    def until(self, account: str, now: datetime) -> datetime | None:
        """When `account` may call Heroku again, if that is still after `now`."""
        found = self.get(account)
        if found is None or found.throttled_until is None or found.throttled_until <= now:
            return None
        return found.throttled_until

    def throttle(self, account: str, until: datetime, now: datetime) -> None:
        """Heroku said 429: no call on `account` before `until` (a later stored time wins)."""
        current = self.until(account, now)
        if current is not None and current >= until:
            return
        self._put(account, now, throttled_until=until, remaining=0)

    def observe(self, account: str, remaining: int, now: datetime) -> None:
        """A response carried `RateLimit-Remaining: remaining`."""
        self._put(account, now, remaining=remaining)

    def _put(self, account: str, now: datetime, **values: object) -> None:
        for _ in range(2):
            with self._db.session() as session, session.begin():
                changed = session.execute(
                    update(ApiThrottle)
                    .where(ApiThrottle.account == account)
                    .values(observed_at=now, **values)
                ).rowcount
                if changed:
                    return
            try:
                with self._db.session() as session, session.begin():
                    session.add(ApiThrottle(account=account, observed_at=now, **values))
                return
            except IntegrityError:
                continue  # another dyno inserted it first: update that row
