"""Exactly-once handling of Slack deliveries: the first process to claim a key acts.

Slack retries a request it thinks failed (`X-Slack-Retry-Num`), and with several web dynos
a retry may land on another one; each delivery of one slash command carries the same
`trigger_id`. A claim is one INSERT on a primary key, so the database decides the winner.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from bot.store.db import Database
from bot.store.models import RequestKey

KEEP = timedelta(days=2)  # Slack gives up retrying within minutes
# Drain batch ids were claimed here, one per row, before migration 0014 moved them to
# `drain_claims`; the ones left go with that table's horizon (`forget_older_than`).
DRAIN_PREFIX = "drain:"


class RequestKeys:
    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(self, key: str, now: datetime) -> bool:
        """True for the one caller that claimed `key` first (a lost claim, a Slack retry
        or each worker-down reply after the first, is no database error)."""
        return self._db.insert_new(RequestKey, key=key[:200], claimed_at=now)

    def claimed(self, keys: list[str]) -> set[str]:
        """Which of `keys` are claimed already, in one query: a job that claims one key per
        app each minute (the daily digest) asks first rather than trying every claim."""
        if not keys:
            return set()
        query = select(RequestKey.key).where(RequestKey.key.in_([key[:200] for key in keys]))
        with self._db.session() as session:
            return set(session.scalars(query))

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
