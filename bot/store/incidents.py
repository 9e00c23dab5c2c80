"""Events in, incidents and outbox rows out: `policies.incidents` decides, this stores.

One transaction loads the incidents the events name (and every open one, for resolution),
applies `policies.incidents.step`, writes the incidents back and enqueues the notices, so
an incident and the messages it owes are stored together or not at all. Detectors in the
worker and the webhook receiver both call `Alerts.record`; the unique incident key makes
two writers of a brand-new incident collide, and the loser simply tries again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.store.db import Database
from bot.store.models import IncidentOpening, IncidentRow
from bot.store.outbox import Message, Outbox
from policies.incidents import (
    DEFAULT_RULES,
    Event,
    Incident,
    Notice,
    Rules,
    Step,
    Summarised,
    describe,
    step,
)

ATTEMPTS = 3
# A Silence click that would move the silence's end by less than this changes nothing.
SAME_SILENCE = timedelta(minutes=5)
LISTED_AT_MOST = 25  # `/deploy alerts` stays one readable Slack message

# What a click of Acknowledge did: recorded, or why not.
Acknowledged = Literal["acknowledged", "already", "resolved", "unknown"]


class Silenced(NamedTuple):
    """What a click of Silence found: the incident's state, its silence's end, and whether
    this click set it."""

    state: str
    until: datetime
    changed: bool


# Block Kit for a notice (the incident's buttons), built by handlers/; None: text only.
BlocksFor = Callable[[Notice, Incident | None], Sequence[dict[str, Any]] | None]


class Alerts:
    def __init__(
        self, db: Database, rules: Rules = DEFAULT_RULES, blocks_for: BlocksFor | None = None
    ) -> None:
        self._db = db
        self._rules = rules
        self._blocks_for = blocks_for
        self.outbox = Outbox(db)

    def record(
        self,
        events: Iterable[Event],
        now: datetime,
        channel_of: Callable[[str], str | None],
        unobserved: Collection[tuple[str, str]] = (),
    ) -> Step:
        """Fold `events` in (an empty list still resolves quiet incidents): the worker calls
        this every tick with whatever its detectors saw, and the (app, kind) pairs they could
        not look at (`policies.incidents.step`)."""
        events = list(events)
        for attempt in range(ATTEMPTS):
            try:
                with self._db.session() as session, session.begin():
                    return self._record(session, events, now, channel_of, unobserved)
            except IntegrityError:
                if attempt == ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def silence(self, key: str, until: datetime) -> Silenced | None:
        """The Silence button: the incident's state ("open" or "resolved") and its silence,
        None when there is no such incident. A resolved one is silenced too, for the case it
        reopens. A silence already holding to within `SAME_SILENCE` of `until` is kept as
        it is (`changed` False): a double click says so once, not twice in the thread."""
        with self._db.session() as session, session.begin():
            # One conditional UPDATE, as for Acknowledge: a double click's two jobs run at once.
            changed = session.execute(
                update(IncidentRow)
                .where(
                    IncidentRow.key == key,
                    or_(
                        IncidentRow.silenced_until.is_(None),
                        IncidentRow.silenced_until < until - SAME_SILENCE,
                    ),
                )
                .values(silenced_until=until)
            ).rowcount
            row = session.execute(
                select(IncidentRow.state, IncidentRow.silenced_until).where(IncidentRow.key == key)
            ).first()
        if row is None:
            return None
        state, held = row
        return Silenced(state, _aware(held, until), bool(changed))

    def acknowledge(self, key: str, user_id: str) -> Acknowledged:
        """The Acknowledge button: recorded only on an open incident, once per person."""
        with self._db.session() as session, session.begin():
            # One conditional UPDATE: a double click's two jobs run at once, and a read
            # then a write let both see it unacknowledged and both say so in the thread.
            done = session.execute(
                update(IncidentRow)
                .where(
                    IncidentRow.key == key,
                    IncidentRow.state == "open",
                    or_(
                        IncidentRow.acknowledged_by.is_(None),
                        IncidentRow.acknowledged_by != user_id,
                    ),
                )
                .values(acknowledged_by=user_id)
            )
            if done.rowcount:
                return "acknowledged"
            state = session.scalar(select(IncidentRow.state).where(IncidentRow.key == key))
        return "unknown" if state is None else "resolved" if state != "open" else "already"

    def state(self, key: str) -> str | None:
        """The incident's state ("open" or "resolved"); None when there is no such incident."""
        with self._db.session() as session:
            return session.scalar(select(IncidentRow.state).where(IncidentRow.key == key))

    def open_text(
        self, app: str | None, now: datetime, shows: Callable[[str], bool] = lambda app: True
    ) -> str:
        """`/deploy alerts [APP]`: the open incidents as their messages read, newest first,
        with who acknowledged or silenced them; only those of apps `shows` keeps."""
        query = select(IncidentRow).where(IncidentRow.state == "open")
        if app is not None:
            query = query.where(IncidentRow.app == app)
        with self._db.session() as session:
            rows = list(session.scalars(query.order_by(IncidentRow.last_at.desc())))
        rows = [row for row in rows if shows(row.app)]
        where = f" for `{app}`" if app else ""
        if not rows:
            return f"No open alerts{where}."
        lines = [f"*Open alerts{where}* ({len(rows)}):"]
        for row in rows[:LISTED_AT_MOST]:
            incident = _incident(row, now)
            notes = []
            if row.acknowledged_by:
                notes.append(f"acknowledged by <@{row.acknowledged_by}>")
            if incident.silenced(now):
                assert incident.silenced_until is not None
                notes.append(f"silenced until {incident.silenced_until:%H:%M} UTC")
            if incident.channel is None:
                notes.append("no channel in the registry, so nobody was told")
            tail = f" ({'; '.join(notes)})" if notes else ""
            lines.append(f"• {describe(incident)}{tail}")
        if len(rows) > LISTED_AT_MOST:
            lines.append(f"…and {len(rows) - LISTED_AT_MOST} older: name an app to see its own.")
        return "\n".join(lines)

    def open_apps(self) -> list[str]:
        """Every app with an open incident, once each."""
        query = select(IncidentRow.app).where(IncidentRow.state == "open").distinct()
        with self._db.session() as session:
            return list(session.scalars(query))

    def any_of(self, app: str) -> bool:
        """Whether `app` ever had an incident kept (one row looked up)."""
        query = select(IncidentRow.id).where(IncidentRow.app == app).limit(1)
        with self._db.session() as session:
            return session.scalar(query) is not None

    def openings(self, app: str, since: datetime, until: datetime) -> list[IncidentOpening]:
        """Each time one of `app`'s incidents was open between `since` and `until`, oldest
        first: a reopened incident's earlier times too."""
        query = (
            select(IncidentOpening)
            .where(
                IncidentOpening.app == app,
                IncidentOpening.opened_at < until,
                # Open still, or last seen within the quiet period before `since` at most.
                or_(
                    IncidentOpening.resolved.is_(False),
                    IncidentOpening.last_at >= since - self._rules.quiet,
                ),
            )
            .order_by(IncidentOpening.opened_at, IncidentOpening.id)
        )
        with self._db.session() as session:
            return list(session.scalars(query))

    def forget_openings_before(self, cutoff: datetime) -> int:
        """Drop the openings that resolved before `cutoff`; returns how many."""
        query = delete(IncidentOpening).where(
            IncidentOpening.resolved.is_(True), IncidentOpening.last_at < cutoff
        )
        with self._db.session() as session, session.begin():
            return session.execute(query).rowcount or 0

    def incidents(self, app: str | None = None) -> list[IncidentRow]:
        query = select(IncidentRow).order_by(IncidentRow.id)
        if app is not None:
            query = query.where(IncidentRow.app == app)
        with self._db.session() as session:
            return list(session.scalars(query))

    def open_of(self, apps: Collection[str]) -> dict[str, list[IncidentRow]]:
        """Each of `apps`' open incidents, oldest first, in one query (App Home's page); an
        app with none is left out."""
        if not apps:
            return {}
        query = (
            select(IncidentRow)
            .where(IncidentRow.app.in_(list(apps)), IncidentRow.state == "open")
            .order_by(IncidentRow.id)
        )
        found: dict[str, list[IncidentRow]] = {}
        with self._db.session() as session:
            for row in session.scalars(query):
                found.setdefault(row.app, []).append(row)
        return found

    def _record(
        self,
        session: Session,
        events: list[Event],
        now: datetime,
        channel_of: Callable[[str], str | None],
        unobserved: Collection[tuple[str, str]],
    ) -> Step:
        # Web dynos (Heroku's webhooks) and the worker record at once: read, step and write
        # as one, or a crash is not counted and a reopened incident is posted twice.
        self._db.hold(session, "incidents")
        keys = {event.key for event in events}
        rows = {
            row.key: row
            for row in session.scalars(
                select(IncidentRow).where(
                    or_(IncidentRow.state == "open", IncidentRow.key.in_(keys))
                )
            )
        }
        queued = self.outbox.queued_posts(list(rows), session)
        known = {key: _incident(row, now, key in queued) for key, row in rows.items()}
        cutoff = now - self._rules.channel_window
        recent, stormed = self.outbox.posts_since(cutoff, session)
        summaries = {channel: Summarised(key, names) for channel, (key, names) in stormed.items()}
        result = step(known, events, now, channel_of, recent, self._rules, summaries, unobserved)
        opened: list[Incident] = []
        for incident in result.incidents:
            row = rows.get(incident.key)
            if row is None:
                row = IncidentRow(key=incident.key)
                session.add(row)
                opened.append(incident)
            elif incident.state == "open" and (
                row.state == "resolved" or row.channel != incident.channel
            ):
                # Reopened, or closed in its old channel and opened in its app's new one
                # (`policies.incidents.step`): a new message, not an edit of the old one,
                # unless it came back soon enough to reopen on its own message.
                if incident.key not in result.comebacks:
                    row.message_ts = None
                row.acknowledged_by = None
                opened.append(incident)
            _store(row, incident)
        session.flush()
        fresh = {incident.key for incident in opened}
        went_on = [incident for incident in result.incidents if incident.key not in fresh]
        still_open = [row.key for row in rows.values() if row.state == "open"]
        still_open += [i.key for i in opened]
        _record_openings(session, opened, went_on, still_open)
        by_key = {incident.key: incident for incident in result.incidents}
        messages = [
            Message(
                notice.key,
                notice.channel,
                notice.kind,
                notice.text,
                self._blocks_for(notice, by_key.get(notice.key)) if self._blocks_for else None,
                notice.names,
                notice.broadcast,
            )
            for notice in result.notices
        ]
        self.outbox.enqueue_all(messages, now, session)
        return result


def _incident(row: IncidentRow, now: datetime, queued: bool = False) -> Incident:
    """The incident as `policies.incidents` reads it; `queued`: its post waits in the outbox."""
    return Incident(
        key=row.key,
        app=row.app,
        kind=row.kind,
        subject=row.subject,
        severity=row.severity,
        state="open" if row.state == "open" else "resolved",
        detail=row.detail,
        first_at=_aware(row.first_at, now),
        last_at=_aware(row.last_at, now),
        count=row.count,
        channel=row.channel,
        folded=bool(row.folded),
        silenced_until=_aware(row.silenced_until, now) if row.silenced_until else None,
        # The sender stores the ts of its message once posted; a reopening clears it.
        posted=row.message_ts is not None or queued,
    )


def _record_openings(
    session: Session, opened: list[Incident], went_on: list[Incident], open_keys: list[str]
) -> None:
    """A row for each incident that opened, and the newest row of each that went on (or
    resolved) brought up to date: a few statements for a storm, not one per incident.

    The older code (a worker in the release window that added the table, or after a
    rollback) opens and resolves incidents without their openings: an opening left open
    whose incident is not (`open_keys`), or that a reopening follows, is resolved at its
    incident's last sight, and an incident going on without one gets it.
    """
    fresh = [i.key for i in opened]
    if fresh:
        session.execute(
            update(IncidentOpening)
            .where(IncidentOpening.key.in_(fresh), IncidentOpening.resolved.is_(False))
            .values(resolved=True)
        )
    last_seen = (
        select(IncidentRow.last_at).where(IncidentRow.key == IncidentOpening.key).scalar_subquery()
    )
    session.execute(
        update(IncidentOpening)
        .where(IncidentOpening.resolved.is_(False), IncidentOpening.key.not_in(open_keys))
        .values(resolved=True, last_at=func.coalesce(last_seen, IncidentOpening.last_at)),
        execution_options={"synchronize_session": False},
    )
    if opened:
        session.execute(insert(IncidentOpening), [_opening(i) for i in opened])
    if not went_on:
        return
    newest = dict(
        session.execute(
            select(IncidentOpening.key, func.max(IncidentOpening.id))
            .where(IncidentOpening.key.in_([i.key for i in went_on]))
            .group_by(IncidentOpening.key)
        ).all()
    )
    changes = [
        {
            "id": newest[i.key],
            "opened_at": i.first_at,  # a late event moves the start back
            "last_at": i.last_at,
            "severity": i.severity,
            "resolved": i.state == "resolved",
        }
        for i in went_on
        if i.key in newest
    ]
    if changes:
        session.execute(update(IncidentOpening), changes)
    missing = [_opening(i) for i in went_on if i.key not in newest]
    if missing:
        session.execute(insert(IncidentOpening), missing)


def _opening(incident: Incident) -> dict[str, Any]:
    return {
        "key": incident.key,
        "app": incident.app,
        "kind": incident.kind,
        "severity": incident.severity,
        "opened_at": incident.first_at,
        "last_at": incident.last_at,
        "resolved": incident.state == "resolved",
    }


def _store(row: IncidentRow, incident: Incident) -> None:
    row.app = incident.app
    row.kind = incident.kind
    row.subject = incident.subject
    row.severity = incident.severity
    row.state = incident.state
    row.detail = incident.detail
    row.first_at = incident.first_at
    row.last_at = incident.last_at
    row.count = incident.count
    row.channel = incident.channel
    row.folded = incident.folded
    row.silenced_until = incident.silenced_until


def _aware(moment: datetime, like: datetime) -> datetime:
    # SQLite hands timestamps back without their zone; they were stored in UTC.
    if moment.tzinfo is None and like.tzinfo is not None:
        return moment.replace(tzinfo=like.tzinfo)
    return moment
