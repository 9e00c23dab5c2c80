"""Deploy locks, one per app: taking one is an INSERT on the app's primary key, so two
people locking at once (on two web dynos) cannot both win."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import delete

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

    def take(self, app: str, user_id: str, reason: str, now: datetime) -> tuple[Lock, Lock | None]:
        """Lock `app` for `user_id`: the lock that stands (theirs, or an earlier one of
        someone else's), and the holder's own earlier lock as it was, whose reason the new
        one replaces (None when the lock is new or not theirs)."""
        while True:
            if self._db.insert_new(
                DeployLock, app=app, user_id=user_id, reason=reason, locked_at=now
            ):
                return Lock(app, user_id, reason, now), None
            with self._db.session() as session, session.begin():
                row = session.get(DeployLock, app, with_for_update=True)
                if row is not None:
                    standing = _lock(row)
                    if row.user_id != user_id:
                        return standing, None
                    row.reason = reason
                    return replace(standing, reason=reason), standing
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
