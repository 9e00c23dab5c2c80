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
        while True:
            self._db.insert_new(DeployLock, app=app, user_id=user_id, reason=reason, locked_at=now)
            with self._db.session() as session, session.begin():
                session.execute(
                    update(DeployLock)
                    .where(DeployLock.app == app, DeployLock.user_id == user_id)
                    .values(reason=reason)
                )
            found = self.get(app)
            if found is not None:
                return found
            # Its holder unlocked it between the insert and the read: take it again.

    def release(self, held: Lock) -> bool:
        """Remove the lock `held`, as read; False if its holder's lock is not the one
        standing any more (unlocked meanwhile, perhaps taken by someone else, whose lock
        stays)."""
        with self._db.session() as session, session.begin():
            gone = session.execute(
                # The holder, not the time: the same person locking again meanwhile is the
                # same lock to them, and a stored time reads back naive on SQLite.
                delete(DeployLock).where(
                    DeployLock.app == held.app, DeployLock.user_id == held.user_id
                )
            )
            return gone.rowcount == 1
