"""Autoscaler settings of worker process types (`/deploy autoscale APP worker on ...`), one
row per app and type; the web type's are in `bot.store.autoscale_settings`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from bot.store.db import Database, aware
from bot.store.models import AutoscaleWorkerSetting
from policies.worker_autoscale import WorkerTarget


@dataclass(frozen=True)
class WorkerSettings:
    app: str
    process_type: str
    mode: str  # on, off, shadow
    min: int
    max: int
    target_kind: str  # latency, jobs
    target_value: float  # seconds of latency; jobs per dyno
    updated_by: str
    updated_at: datetime

    @property
    def target(self) -> WorkerTarget:
        return WorkerTarget(self.target_kind, self.target_value)  # type: ignore[arg-type]

    def describe(self) -> str:
        return (
            f"{self.mode}, {self.process_type} {self.min}–{self.max}, "
            f"target {self.target.describe()}"
        )


class WorkerAutoscaleStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def settings(self, app: str, process_type: str) -> WorkerSettings | None:
        with self._db.session() as session:
            row = session.get(AutoscaleWorkerSetting, (app, process_type))
            return _settings(row) if row else None

    def of_app(self, app: str) -> list[WorkerSettings]:
        query = (
            select(AutoscaleWorkerSetting)
            .where(AutoscaleWorkerSetting.app == app)
            .order_by(AutoscaleWorkerSetting.process_type)
        )
        with self._db.session() as session:
            return [_settings(row) for row in session.scalars(query)]

    def all_enabled(self) -> list[WorkerSettings]:
        query = select(AutoscaleWorkerSetting).where(
            AutoscaleWorkerSetting.mode.in_(("on", "shadow"))
        )
        with self._db.session() as session:
            return [_settings(row) for row in session.scalars(query)]

    def save(self, settings: WorkerSettings) -> None:
        with self._db.session() as session, session.begin():
            session.merge(AutoscaleWorkerSetting(**settings.__dict__))


def _settings(row: AutoscaleWorkerSetting) -> WorkerSettings:
    at = aware(row.updated_at)
    return WorkerSettings(
        row.app,
        row.process_type,
        row.mode,
        row.min,
        row.max,
        row.target_kind,
        row.target_value,
        row.updated_by,
        at,
    )
