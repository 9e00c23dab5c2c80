"""Autoscaler settings changed from chat (`/deploy autoscale APP set ...` and `schedule ...`),
one row per app and key, with who changed it and when.

Precedence, the one rule: the registry wins for every key it sets (it is the source of
truth where it says so, and chat refuses to change such a key); chat's value applies to
the keys the registry leaves unset; the built-in default fills the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from bot.store.db import Database, aware
from bot.store.models import AutoscaleOverride

SCHEDULE = "schedule"


@dataclass(frozen=True)
class Override:
    app: str
    key: str
    value: str
    updated_by: str
    updated_at: datetime


class OverrideStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def of_app(self, app: str) -> dict[str, Override]:
        return self.of_apps({app}).get(app, {})

    def of_apps(self, apps: set[str]) -> dict[str, dict[str, Override]]:
        """Every listed app's overrides, by app then key, in one query (the tick's fleet)."""
        if not apps:
            return {}
        query = select(AutoscaleOverride).where(AutoscaleOverride.app.in_(sorted(apps)))
        found: dict[str, dict[str, Override]] = {}
        with self._db.session() as session:
            for row in session.scalars(query):
                found.setdefault(row.app, {})[row.key] = _override(row)
        return found

    def put(self, override: Override) -> None:
        with self._db.session() as session, session.begin():
            session.merge(AutoscaleOverride(**override.__dict__))

    def drop(self, app: str, key: str) -> bool:
        with self._db.session() as session, session.begin():
            query = delete(AutoscaleOverride).where(
                AutoscaleOverride.app == app, AutoscaleOverride.key == key
            )
            return bool(session.execute(query).rowcount)

    def windows(self, app: str) -> list[dict[str, str]]:
        """Chat's schedule windows, as `schedule add` wrote their words."""
        found = self.of_app(app).get(SCHEDULE)
        return json.loads(found.value) if found else []

    def put_windows(self, app: str, windows: list[dict[str, str]], by: str, at: datetime) -> None:
        if windows:
            self.put(Override(app, SCHEDULE, json.dumps(windows), by, at))
        else:
            self.drop(app, SCHEDULE)


def _override(row: AutoscaleOverride) -> Override:
    at = aware(row.updated_at)
    return Override(row.app, row.key, row.value, row.updated_by, at)
