"""The audit trail: an intent row before every platform call, completed after it."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, or_, select, text, union_all, update

from bot.store.db import Database, aware
from bot.store.models import AuditApp, AuditEntry


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Actor:
    """Who asked: a Slack user (or the console's local user) in a team and channel."""

    user_id: str
    team_id: str | None = None  # the user's own team (their org's ID on Enterprise Grid)
    channel_id: str | None = None
    source: str = "slack"
    # The same for every delivery of one Slack request (a slash command's trigger_id).
    request_key: str | None = None
    # Where Slack takes answers to this request (its response_url), for later updates.
    reply_to: str | None = None
    # The Enterprise Grid organisation a slash command came from, if any (not audited).
    enterprise_id: str | None = None


@dataclass(frozen=True)
class Entry:
    """One audit row as plain data, for Slack, exports and tests."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    source: str
    team_id: str | None
    user_id: str
    channel_id: str | None
    verb: str
    app: str
    command: str
    before: dict[str, Any] | None
    requested: dict[str, Any] | None
    after: dict[str, Any] | None
    outcome: str
    error: str | None
    confirmed_by: str | None = None  # who clicked Confirm or Approve, for a prompted change

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("started_at", "finished_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


def _entry(row: AuditEntry) -> Entry:
    started, finished = row.started_at, row.finished_at
    # SQLite hands back naive datetimes; every time stored here is UTC.
    return Entry(
        id=row.id,
        started_at=aware(started),
        finished_at=aware(finished) if finished else finished,
        source=row.source,
        team_id=row.team_id,
        user_id=row.user_id,
        channel_id=row.channel_id,
        verb=row.verb,
        app=row.app,
        command=row.command,
        before=row.before,
        requested=row.requested,
        after=row.after,
        outcome=row.outcome,
        error=row.error,
        confirmed_by=row.confirmed_by,
    )


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
        confirmed_by: str | None = None,
        reaches: Iterable[str] = (),
    ) -> int:
        """Record the intent; returns the row id to finish. `confirmed_by`: who clicked
        Confirm or Approve, when the change waited for a click. `reaches`: the other apps
        the change reaches (a promotion's next stage), whose history shows it too."""
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
            confirmed_by=confirmed_by,
        )
        with self._db.session() as session, session.begin():
            session.add(entry)
            session.flush()
            others = sorted(set(reaches) - {app})
            session.add_all(AuditApp(audit_id=entry.id, app=other) for other in others)
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

    def record(
        self,
        actor: Actor,
        verb: str,
        app: str,
        command: str,
        outcome: str,
        reason: str | None = None,
        requested: dict[str, Any] | None = None,
        reaches: Iterable[str] = (),
    ) -> int:
        """A request that ended without a platform call (refused, cancelled, expired, or
        failed before it): one finished row, in the history of the apps it `reaches` too."""
        entry = self.start(actor, verb, app, command, None, requested, reaches=reaches)
        self.finish(entry, outcome, error=reason)
        return entry

    def settle(
        self,
        entry_id: int,
        outcome: str,
        after: dict[str, Any] | None,
        note: str | None,
        *,
        replace: bool = False,
    ) -> bool:
        """The final word on a pending or unknown row, once the formation has been read back:
        `note` follows what the row said, or with `replace` says all of it. False when the
        row had its final word already: two workers' passes overlap at a deploy (the old one
        runs on past its SIGTERM), and each had settled it, its note said twice."""
        now = utcnow()
        with self._db.session() as session, session.begin():
            row = session.get(AuditEntry, entry_id, with_for_update=True)
            if row is None or row.reconciled_at is not None:
                return False
            row.outcome = outcome
            row.after = after if after is not None else row.after
            kept = None if replace else row.error
            row.error = "; ".join(part for part in (kept, note) if part) or None
            row.finished_at = row.finished_at or now
            row.reconciled_at = now
            return True

    def recorded_since(self, app: str, since: datetime) -> bool:
        """Whether anything about `app` was recorded at or after `since`."""
        with self._db.session() as session:
            found = session.scalar(
                select(AuditEntry.id)
                .where(AuditEntry.app == app, AuditEntry.started_at >= since)
                .limit(1)
            )
            return found is not None

    def unsettled(self, started_before: datetime, limit: int = 50) -> list[Entry]:
        """Rows still `pending` or `unknown`, started before the cutoff and not yet read
        back by the reconciliation pass; oldest first."""
        query = self.unsettled_query(started_before, limit)
        with self._db.session() as session:
            return [_entry(row) for row in session.scalars(query)]

    @staticmethod
    def unsettled_query(started_before: datetime, limit: int) -> Select[tuple[AuditEntry]]:
        # Its WHERE matches the partial index ix_audit_log_unsettled (migration 0015), in
        # words the planner compares with the index's: the outcomes written into the SQL,
        # not bound, or SQLite (and PostgreSQL's generic plan) cannot prove the match.
        return (
            select(AuditEntry)
            .where(
                text("audit_log.outcome IN ('pending', 'unknown')"),
                AuditEntry.reconciled_at.is_(None),
                AuditEntry.started_at < started_before,
            )
            .order_by(AuditEntry.id)
            .limit(limit)
        )

    def recent(
        self,
        app: str | None = None,
        limit: int | None = 20,
        outcomes: frozenset[str] | None = None,
        hidden: frozenset[str] = frozenset(),
    ) -> list[Entry]:
        """Newest first; `limit=None` for every row; `outcomes` keeps only those; the apps
        `hidden` names are left out."""
        query = select(AuditEntry).order_by(AuditEntry.id.desc())
        if app is not None:
            reached = select(AuditApp.audit_id).where(AuditApp.app == app)
            query = query.where(or_(AuditEntry.app == app, AuditEntry.id.in_(reached)))
        if hidden:
            query = query.where(AuditEntry.app.not_in(sorted(hidden)))
        if outcomes is not None:
            query = query.where(or_(*(AuditEntry.outcome == o for o in sorted(outcomes))))
        if limit is not None:
            query = query.limit(limit)
        with self._db.session() as session:
            return [_entry(row) for row in session.scalars(query)]

    def apps(self) -> list[str]:
        """Every app a row names, once each."""
        with self._db.session() as session:
            return list(session.scalars(select(AuditEntry.app).distinct()))

    def recent_of(self, apps: Collection[str], limit: int) -> dict[str, list[Entry]]:
        """Each of `apps`' newest `limit` rows, newest first, in one query (App Home's page:
        one an app had been a statement a card); an app with none is left out."""
        if not apps:
            return {}
        wanted = list(apps)
        # A row is each app's it names or reaches: a promotion is on its next stage's card.
        named = union_all(
            select(AuditEntry.id.label("id"), AuditEntry.app.label("app")).where(
                AuditEntry.app.in_(wanted)
            ),
            select(AuditApp.audit_id.label("id"), AuditApp.app.label("app")).where(
                AuditApp.app.in_(wanted)
            ),
        ).subquery("named")
        rank = (
            func.row_number()
            .over(partition_by=named.c.app, order_by=named.c.id.desc())
            .label("rank")
        )
        ranked = select(named.c.id, named.c.app, rank).subquery("ranked")
        query = (
            select(AuditEntry, ranked.c.app)
            .join(ranked, ranked.c.id == AuditEntry.id)
            .where(ranked.c.rank <= limit)
            .order_by(AuditEntry.id.desc())
        )
        found: dict[str, list[Entry]] = {}
        with self._db.session() as session:
            for row, app in session.execute(query):
                found.setdefault(app, []).append(_entry(row))
        return found
