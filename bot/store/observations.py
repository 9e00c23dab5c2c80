"""Formation changes and releases Heroku reported by webhook, stored for the worker.

The web dyno that receives a notification writes it here; the worker's autoscaler reads
what changed since its last look, so scaling done by hand in the Heroku dashboard is known
at its next tick without an API call, and a release arms the deploy guard. Only the newest
observation per (app, kind, subject) is kept, and an older one never overwrites it
(Heroku's retries and two web dynos may deliver out of order).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.store.db import Database, aware
from bot.store.models import PlatformObservation

KINDS = ("formation", "release")


@dataclass(frozen=True)
class Observation:
    app: str
    kind: str
    subject: str
    value: int
    observed_at: datetime
    detail: str = ""


class Observations:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, observation: Observation) -> bool:
        """Keep `observation` unless a newer one is stored; True when it was kept."""
        if observation.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {observation.kind!r}")
        for _ in range(2):  # a concurrent first insert of the same key: read it and compare
            try:
                with self._db.session() as session, session.begin():
                    row = session.get(
                        PlatformObservation,
                        (observation.app, observation.kind, observation.subject),
                        with_for_update=True,
                    )
                    if row is None:
                        session.add(
                            PlatformObservation(
                                app=observation.app,
                                kind=observation.kind,
                                subject=observation.subject,
                                value=observation.value,
                                detail=observation.detail[:500],
                                observed_at=observation.observed_at,
                            )
                        )
                        return True
                    if aware(row.observed_at) > observation.observed_at:
                        return False
                    row.value = observation.value
                    row.detail = observation.detail[:500]
                    row.observed_at = observation.observed_at
                    return True
            except IntegrityError:
                continue
        return False

    def since(self, after: datetime | None, app: str | None = None) -> list[Observation]:
        """Observations newer than `after` (all of them for None), oldest first."""
        query = select(PlatformObservation).order_by(PlatformObservation.observed_at)
        if after is not None:
            query = query.where(PlatformObservation.observed_at > after)
        if app is not None:
            query = query.where(PlatformObservation.app == app)
        with self._db.session() as session:
            return [
                Observation(
                    row.app, row.kind, row.subject, row.value, aware(row.observed_at), row.detail
                )
                for row in session.scalars(query)
            ]

    def last_release_at(self, app: str) -> datetime | None:
        found = self.since(None, app)
        releases = [o.observed_at for o in found if o.kind == "release"]
        return max(releases) if releases else None
