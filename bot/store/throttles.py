"""Each Heroku account's throttle, shared by every dyno through the database (and the
alert outbox's pause after a Slack 429, under its own name, so the next leader keeps it).

Heroku counts API calls per account, whichever dyno makes them. After a 429 the dyno that
got it stores "throttled until" (from `Retry-After`); every dyno then answers at once
instead of calling (and waiting) again. `RateLimit-Remaining` is stored too, so the
worker's autoscaler budgets from what the web dyno's calls left, not only its own.

Every Heroku call asks `until` and tells `observe`, and all of them touch one row per
account: read and written on every call, that row was where a burst of commands queued
(each UPDATE waits for the previous one's commit). So a process trusts its last read for
READ_EVERY seconds (a 429 it stores itself counts at once; another dyno's within that
time), and stores `RateLimit-Remaining` at most every WRITE_EVERY seconds per account,
except near the floor (below LOW_REMAINING), where every observation is stored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, or_, update
from sqlalchemy.exc import IntegrityError

from bot.store.db import Database, aware
from bot.store.models import ApiThrottle


@dataclass(frozen=True)
class Throttle:
    account: str
    throttled_until: datetime | None
    remaining: int | None
    observed_at: datetime


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every time stored here is UTC.
    return None if value is None else aware(value)


READ_EVERY = 1.0  # seconds a process trusts its last read of an account's throttle
WRITE_EVERY = 5.0  # seconds between stored RateLimit-Remaining observations, per account
LOW_REMAINING = 600  # below this, every observation is stored: the autoscaler's reserve


class Throttles:
    def __init__(self, db: Database, clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._clock = clock
        self._lock = threading.Lock()
        self._read: dict[str, tuple[float, Throttle | None]] = {}
        self._reading: dict[str, threading.Lock] = {}
        self._written: dict[str, float] = {}
        self._writes = 0  # bumped by each store: a read begun before it is not cached

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
        found = self._recent(account)
        if found is None or found.throttled_until is None or found.throttled_until <= now:
            return None
        return found.throttled_until

    def throttle(self, account: str, until: datetime, now: datetime) -> None:
        """Heroku said 429: no call on `account` before `until` (a later stored time wins)."""
        found = self.get(account)  # not the cached read: another dyno's later time must win
        current = found.throttled_until if found is not None else None
        if current is not None and current <= now:
            current = None
        if current is not None and current >= until:
            return
        # The read above may predate another thread's or dyno's longer 429: the write itself
        # only lengthens a throttle still in force.
        self._put(
            account,
            now,
            only_if=or_(
                ApiThrottle.throttled_until.is_(None),
                ApiThrottle.throttled_until <= now,
                ApiThrottle.throttled_until < until,
            ),
            throttled_until=until,
            remaining=0,
        )

    def observe(self, account: str, remaining: int, now: datetime) -> None:
        """A response carried `RateLimit-Remaining: remaining`."""
        moment = self._clock()
        with self._lock:
            last = self._written.get(account)
            if remaining >= LOW_REMAINING and last is not None and moment - last < WRITE_EVERY:
                return
            self._written[account] = moment
        # Not `_put`: `until` reads only the throttle, which this leaves as it is, so the
        # cached read stays good (forgotten, every thread in flight read the row again).
        self._store(account, now, None, remaining=remaining)

    def _recent(self, account: str) -> Throttle | None:
        with self._lock:
            gate = self._reading.setdefault(account, threading.Lock())
        # One thread reads an account's row while the others wait for its answer: a Home
        # page's formation reads, in flight together, had each read it.
        with gate:
            moment = self._clock()
            with self._lock:
                seen = self._read.get(account)
                writes = self._writes
            if seen is not None and moment - seen[0] < READ_EVERY:
                return seen[1]
            found = self.get(account)
            with self._lock:
                if writes == self._writes:
                    self._read[account] = (moment, found)
            return found

    def _put(
        self,
        account: str,
        now: datetime,
        only_if: ColumnElement[bool] | None = None,
        **values: object,
    ) -> None:
        self._forget(account)
        try:
            self._store(account, now, only_if, **values)
        finally:
            self._forget(account)  # this process reads its own write next time

    def _forget(self, account: str) -> None:
        with self._lock:
            self._writes += 1
            self._read.pop(account, None)

    def _store(
        self, account: str, now: datetime, only_if: ColumnElement[bool] | None, **values: object
    ) -> None:
        """Update the account's row (where `only_if` holds), or insert it if there is none."""
        for _ in range(2):
            with self._db.session() as session, session.begin():
                statement = update(ApiThrottle).where(ApiThrottle.account == account)
                if only_if is not None:
                    statement = statement.where(only_if)
                statement = statement.values(observed_at=now, **values)
                if session.execute(statement).rowcount:
                    return
                if only_if is not None and session.get(ApiThrottle, account) is not None:
                    # The row is there: it holds what `only_if` keeps, or another thread
                    # inserted it since the update above, which asks again.
                    session.execute(statement)
                    return
            try:
                with self._db.session() as session, session.begin():
                    session.add(ApiThrottle(account=account, observed_at=now, **values))
                return
            except IntegrityError:
                continue  # another dyno inserted it first: update that row
