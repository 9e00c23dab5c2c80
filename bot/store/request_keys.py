"""Exactly-once handling of Slack deliveries: the first process to claim a key acts.

Slack retries a request it thinks failed (`X-Slack-Retry-Num`), and with several web dynos
a retry may land on another one; each delivery of one slash command carries the same
`trigger_id`. A claim is one INSERT on a primary key, so the database decides the winner.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError

from bot.store.db import Database
from bot.store.models import RequestKey

KEEP = timedelta(days=2)  # Slack gives up retrying within minutes
# Logplex retries a batch within seconds of a failed POST; its ids need not outlive that.
KEEP_DRAIN = timedelta(hours=1)
DRAIN_PREFIX = "drain:"
_CLAIM_ARRAY = text(
    "INSERT INTO request_keys (key, claimed_at) SELECT unnest(CAST(:keys AS varchar[])), :now "
    "ON CONFLICT (key) DO NOTHING RETURNING key"
)


class RequestKeys:
    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(self, key: str, now: datetime) -> bool:
        """True for the one caller that claimed `key` first."""
        try:
            with self._db.session() as session, session.begin():
                session.add(RequestKey(key=key[:200], claimed_at=now))
        except IntegrityError:
            return False
        return True

    def claim_many(self, keys: Iterable[str], now: datetime, *, durable: bool = True) -> set[str]:
        """The keys of `keys` this call claimed first: one INSERT, one commit for them all.
        `durable=False` (PostgreSQL) commits without waiting for the WAL flush: for claims
        whose loss in a server crash costs little (a drain batch counted twice)."""
        unique = list(dict.fromkeys(key[:200] for key in keys))
        if not unique:
            return set()
        with self._db.session() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                if not durable:
                    session.execute(text("SET LOCAL synchronous_commit TO OFF"))
                # One statement text whatever the number of keys (an array bound to
                # unnest), so it is prepared once, not compiled per group as a
                # multi-row VALUES would be: this runs several times a second per process.
                return set(session.scalars(_CLAIM_ARRAY, {"keys": unique, "now": now}))
            statement = (
                sqlite.insert(RequestKey)
                .values([{"key": key, "claimed_at": now} for key in unique])
                .on_conflict_do_nothing(index_elements=[RequestKey.key])
                .returning(RequestKey.key)
            )
            return set(session.scalars(statement))

    def forget_older_than(self, cutoff: datetime, drain_cutoff: datetime | None = None) -> int:
        """Drop keys claimed before `cutoff`, and drain batch ids before `drain_cutoff`."""
        with self._db.session() as session, session.begin():
            forgotten = session.execute(
                delete(RequestKey).where(RequestKey.claimed_at < cutoff)
            ).rowcount
            if drain_cutoff is not None:
                forgotten += session.execute(
                    delete(RequestKey).where(
                        RequestKey.claimed_at < drain_cutoff,
                        RequestKey.key.startswith(DRAIN_PREFIX),
                    )
                ).rowcount
            return forgotten

    def release(self, key: str) -> None:
        """Give a claim back, when the claimant failed and a redelivery should act."""
        with self._db.session() as session, session.begin():
            session.execute(delete(RequestKey).where(RequestKey.key == key[:200]))
