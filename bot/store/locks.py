"""Deploy locks, one per app: taking one is an INSERT on the app's primary key, so two
people locking at once (on two web dynos) cannot both win."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, update

from bot.store.db import Database, aware
from bot.store.models import DeployLock


@dataclass(frozen=True)
class Lock:
    app: str
    user_id: str
    reason: str
    locked_at: datetime


def _lock(row: DeployLock) -> Lock:
    at = aware(row.locked_at)
    return Lock(row.app, row.user_id, row.reason, at)


class Locks:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, app: str) -> Lock | None:
        with self._db.session() as session:
            row = session.get(DeployLock, app)
            return _lock(row) if row is not None else None

    def take(self, app: str, user_id: str, reason: str, now: datetime) -> Lock:
        """Lock `app` for `user_id`; returns the lock that stands (theirs, or an earlier one).
        Their own earlier lock takes the new reason."""
        self._db.insert_new(DeployLock, app=app, user_id=user_id, reason=reason, locked_at=now)
        with self._db.session() as session, session.begin():
            session.execute(
                update(DeployLock)
                .where(DeployLock.app == app, DeployLock.user_id == user_id)
                .values(reason=reason)
            )
        found = self.get(app)
        assert found is not None  # locks are only deleted by unlock, never by a race here
        return found

    def release(self, app: str) -> bool:
        """Remove the lock; True if there was one."""
        with self._db.session() as session, session.begin():
            return session.execute(delete(DeployLock).where(DeployLock.app == app)).rowcount == 1
