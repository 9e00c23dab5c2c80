"""Autoscaler state in the database: per-app settings, pins and the decisions made.

Everything the worker needs to decide lives here, so a restarted worker loses nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from itertools import groupby

from sqlalchemy import BigInteger, cast, delete, extract, func, insert, literal, select

from bot.store.autoscale_overrides import OverrideStore
from bot.store.db import Database, aware
from bot.store.models import AutoscaleDecision, AutoscalePin, AutoscaleSetting
from bot.store.worker_autoscale_settings import WorkerAutoscaleStore

# Past the full record, one decision an app's type is kept in each span this long.
THIN_SECONDS = 240

TARGET_KINDS = {"p95": "queue_p95", "queue": "queue_p95", "service": "service_p95", "rpm": "rpm"}
DEFAULT_TARGET = ("service_p95", 500.0)
WEB = "web"  # the process type the traffic autoscaler scales; others scale from job queues  # every drained app has service times; not all log queue


@dataclass(frozen=True)
class Settings:
    app: str
    mode: str  # on, off, shadow
    min: int
    max: int
    target_kind: str  # queue_p95, service_p95, rpm
    target_value: float  # ms for the p95s, requests per minute per dyno for rpm
    updated_by: str
    updated_at: datetime

    def describe(self) -> str:
        unit = " rpm per dyno" if self.target_kind == "rpm" else " ms"
        what = {"queue_p95": "p95 queue time", "service_p95": "p95 service time", "rpm": "requests"}
        return (
            f"{self.mode}, web {self.min}–{self.max}, target {what[self.target_kind]} "
            f"{self.target_value:g}{unit}"
        )


@dataclass(frozen=True)
class Pin:
    app: str
    quantity: int
    until: datetime
    pinned_by: str


@dataclass(frozen=True, slots=True)  # slots: a tick reads ten minutes of them per app
class Decision:
    app: str
    at: datetime
    actual: int
    desired: int
    acted: bool
    reason: str
    recommendation: int = 0
    process_type: str = "web"


_DECISION_FIELDS = tuple(f.name for f in fields(Decision))


def parse_target(text: str) -> tuple[str, float]:
    """`queue:300ms` → ("queue_p95", 300.0); `rpm:1200` → ("rpm", 1200.0). Seconds become ms."""
    kind, _, value = text.lower().partition(":")
    seconds = value.endswith("s") and not value.endswith("ms")
    number = float(value.removesuffix("ms").removesuffix("s"))
    return TARGET_KINDS[kind], number * 1000 if seconds else number


class AutoscaleStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def overrides(self) -> OverrideStore:
        """The same database's settings changed from chat (`autoscale APP set|schedule`)."""
        return OverrideStore(self._db)

    def workers(self) -> WorkerAutoscaleStore:
        """The same database's settings of worker process types."""
        return WorkerAutoscaleStore(self._db)

    def settings(self, app: str) -> Settings | None:
        with self._db.session() as session:
            row = session.get(AutoscaleSetting, app)
            return _settings(row) if row else None

    def settings_of(self, apps: Collection[str]) -> dict[str, Settings]:
        """Each of `apps`' settings, in one query (App Home's page); an app with none is
        left out."""
        if not apps:
            return {}
        query = select(AutoscaleSetting).where(AutoscaleSetting.app.in_(list(apps)))
        with self._db.session() as session:
            return {row.app: _settings(row) for row in session.scalars(query)}

    def all_enabled(self) -> list[Settings]:
        query = select(AutoscaleSetting).where(AutoscaleSetting.mode.in_(("on", "shadow")))
        with self._db.session() as session:
            return [_settings(row) for row in session.scalars(query)]

    def save(self, settings: Settings) -> None:
        with self._db.session() as session, session.begin():
            session.merge(AutoscaleSetting(**settings.__dict__))

    def pin(self, app: str, now: datetime) -> Pin | None:
        with self._db.session() as session:
            row = session.get(AutoscalePin, app)
            if row is None or aware(row.until) <= now:
                return None
            return Pin(row.app, row.quantity, aware(row.until), row.pinned_by)

    def set_pin(self, pin: Pin) -> None:
        with self._db.session() as session, session.begin():
            session.merge(AutoscalePin(**pin.__dict__))

    def unpin(self, app: str) -> bool:
        with self._db.session() as session, session.begin():
            return bool(
                session.execute(delete(AutoscalePin).where(AutoscalePin.app == app)).rowcount
            )

    def record(self, decision: Decision) -> None:
        self.record_many([decision])

    def record_many(self, decisions: Iterable[Decision]) -> None:
        """Store a tick's decisions in one transaction."""
        rows = [{f: getattr(decision, f) for f in _DECISION_FIELDS} for decision in decisions]
        if rows:
            with self._db.session() as session, session.begin():
                # On the table: the ORM's bulk insert costs more than the rows' own work.
                session.execute(insert(AutoscaleDecision.__table__), rows)

    def pins(self, now: datetime, apps: Collection[str] | None = None) -> dict[str, Pin]:
        """Every pin still holding at `now`, by app (only `apps`', when given)."""
        query = select(AutoscalePin).where(AutoscalePin.until > now)
        if apps is not None:
            query = query.where(AutoscalePin.app.in_(list(apps)))
        with self._db.session() as session:
            return {
                row.app: Pin(row.app, row.quantity, aware(row.until), row.pinned_by)
                for row in session.scalars(query)
                if aware(row.until) > now
            }

    def recent_decisions(
        self,
        apps: Collection[str],
        since: datetime,
        limit: int = 200,
        reasons: bool = True,
        web: bool = True,
    ) -> dict[str, list[Decision]]:
        """Each app's web decisions (`web=False`: its worker types') at or after `since`,
        newest first, at most `limit` each. `reasons=False` leaves each reason empty (the
        tick reads none: a thousand apps' ten minutes are 40,000 of them)."""
        table = AutoscaleDecision.__table__.c
        reason = table.reason if reasons else literal("")
        # Plain rows on the table, not ORM objects or ORM-compiled rows.
        query = (
            select(
                table.app,
                table.at,
                table.actual,
                table.desired,
                table.acted,
                reason,
                table.recommendation,
                table.process_type,
            )
            .where(table.at >= since)
            .where(table.process_type == WEB if web else table.process_type != WEB)
            .order_by(table.id.desc())
        )
        if len(apps) == 1:
            query = query.where(table.app.in_(list(apps)))
        found: dict[str, list[Decision]] = {}
        with self._db.session() as session:
            rows = session.connection().execute(query).all()  # one fetch, not one per row
            for app, *values in rows:
                if app in apps and len(found.setdefault(app, [])) < limit:
                    at, *rest = values
                    found[app].append(Decision(app, aware(at), *rest))
        return found

    def latest_decisions(self, apps: Collection[str]) -> dict[str, Decision]:
        """Each of `apps`' newest web decision, in one query; an app with none is left out.
        The newest is the last written, as in `decisions` and `recent_decisions`: the worker
        writes each app's ticks in time order, and anything seeding them must too."""
        if not apps:
            return {}
        newest = (
            select(func.max(AutoscaleDecision.id))
            .where(AutoscaleDecision.app.in_(list(apps)), AutoscaleDecision.process_type == WEB)
            .group_by(AutoscaleDecision.app)
        )
        query = select(AutoscaleDecision).where(AutoscaleDecision.id.in_(newest))
        with self._db.session() as session:
            return {r.app: _decision(r) for r in session.scalars(query)}

    def web_counts(
        self, apps: Collection[str], since: datetime
    ) -> Iterator[tuple[str, list[tuple[float, int]]]]:
        """Each of `apps`' web counts since `since` as (epoch seconds, count), oldest first,
        one app at a time from one streamed query of two columns: a fleet's two days of
        15-second ticks are millions of rows, which ORM rows read app by app took 0.6 s an
        app to decode, and which are never all held at once here."""
        if not apps:
            return
        table = AutoscaleDecision.__table__.c
        query = (
            select(table.app, table.at, table.actual)
            .where(table.at >= since, table.process_type == WEB, table.app.in_(list(apps)))
            .order_by(table.app, table.at)
        )
        with self._db.session() as session:
            rows = session.connection().execution_options(yield_per=10_000).execute(query)
            for app, group in groupby(rows, key=lambda row: row[0]):
                yield app, [(aware(at).timestamp(), actual) for _, at, actual in group]

    def thin_decisions(self, since: datetime, before: datetime) -> int:
        """Between `since` and `before`, keep of each app's type only the decisions that acted
        and the first in every THIN_SECONDS: a sixteenth of the 15-second ticks, and still a
        sample inside `costs.dyno_hours`' longest gap, so a week's dyno-hours (`cost`) and a
        chart's scale marks outlive the full record the tick and detectors read."""
        table = AutoscaleDecision.__table__.c
        bucket = cast(extract("epoch", table.at) / THIN_SECONDS, BigInteger)
        ranked = (
            select(
                table.id,
                func.row_number()
                .over(partition_by=(table.app, table.process_type, bucket), order_by=table.id)
                .label("rank"),
            )
            .where(table.at >= since, table.at < before, table.acted.is_(False))
            .subquery()
        )
        # IN, a semi-join PostgreSQL hashes: NOT IN over the span's first ids, which it
        # cannot hash past work_mem, ran 20 minutes on a fleet's six hours (1.4M rows).
        later = select(ranked.c.id).where(ranked.c.rank > 1)
        with self._db.session() as session, session.begin():
            return session.execute(
                delete(AutoscaleDecision).where(AutoscaleDecision.id.in_(later))
            ).rowcount

    def forget_decisions_before(self, cutoff: datetime) -> int:
        """Drop decisions older than `cutoff` (one row per app per tick: without this the
        table grows by about 5,760 rows per app per day, for ever)."""
        with self._db.session() as session, session.begin():
            return session.execute(
                delete(AutoscaleDecision).where(AutoscaleDecision.at < cutoff)
            ).rowcount

    def decisions(
        self,
        app: str,
        limit: int = 5,
        since: datetime | None = None,
        process_type: str | None = WEB,
    ) -> list[Decision]:
        """Newest first; those of `process_type` (web unless told; None: every type)."""
        query = (
            select(AutoscaleDecision)
            .where(AutoscaleDecision.app == app)
            .where(AutoscaleDecision.at >= since if since else AutoscaleDecision.id > 0)
            .order_by(AutoscaleDecision.id.desc())
            .limit(limit)
        )
        if process_type is not None:
            query = query.where(AutoscaleDecision.process_type == process_type)
        with self._db.session() as session:
            return [_decision(r) for r in session.scalars(query)]


def _decision(row: AutoscaleDecision) -> Decision:
    return Decision(
        row.app,
        aware(row.at),
        row.actual,
        row.desired,
        row.acted,
        row.reason,
        row.recommendation,
        row.process_type,
    )


def _settings(row: AutoscaleSetting) -> Settings:
    return Settings(
        row.app,
        row.mode,
        row.min,
        row.max,
        row.target_kind,
        row.target_value,
        row.updated_by,
        aware(row.updated_at),
    )
