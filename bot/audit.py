"""The audit trail: an intent row before every platform call, completed after it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from bot.db import Database
from bot.models import AuditEntry


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Actor:
    """Who asked: a Slack user (or the console's local user) in a team and channel."""

    user_id: str
    team_id: str | None = None
    channel_id: str | None = None
    source: str = "slack"


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    def start(
        self,
        actor: Actor,
        verb: str,
        app: str,
        command: str,
        before: dict[str, Any] | None,
        requested: dict[str, Any] | None,
    ) -> int:
        """Record the intent; returns the row id to finish."""
        entry = AuditEntry(
            started_at=utcnow(),
            source=actor.source,
            team_id=actor.team_id,
            user_id=actor.user_id,
            channel_id=actor.channel_id,
            verb=verb,
            app=app,
            command=command,
            before=before,
            requested=requested,
            outcome="pending",
        )
        with self._db.session() as session, session.begin():
            session.add(entry)
            session.flush()
            return entry.id

    def finish(
        self,
        entry_id: int,
        outcome: str,
        after: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        with self._db.session() as session, session.begin():
            session.execute(
                update(AuditEntry)
                .where(AuditEntry.id == entry_id)
                .values(finished_at=utcnow(), outcome=outcome, after=after, error=error)
            )

    def recent(self, app: str | None = None, limit: int = 20) -> list[AuditEntry]:
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if app is not None:
            query = query.where(AuditEntry.app == app)
        with self._db.session() as session:
            return list(session.scalars(query))
