"""The autoscale tick's recent decisions per app, read incrementally.

Each tick's policy reads every app's decisions of the last ten minutes (its scale-down
stabilization and past scale events): at a thousand apps and four ticks a minute that was
40,000 rows a tick, about a quarter of a steady tick (`make bench-scale`). The worker that
holds the lease is the only writer of decisions and commits each tick's before the next, so
this keeps what it read and asks only for rows with ids above the highest it has seen.
Every `SCAN_EVERY` calls, and whenever the apps or the clock change in a way the kept rows
cannot answer (a new app, a range reaching further back), it reads the whole range again.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from bot.store.autoscale_settings import AutoscaleStore, Decision

SCAN_EVERY = 20  # calls: 5 minutes of 15 s ticks
LIMIT = 200  # decisions kept per app, newest first (as `recent_decisions` gives)


class DecisionHistory:
    def __init__(self, store: AutoscaleStore, whole_every_time: bool = False) -> None:
        self._store = store
        # SQLite hands a deleted row's id out again once the table is empty: no id order.
        self._whole_every_time = whole_every_time
        self._kept: dict[str, list[tuple[int, Decision]]] = {}
        self._apps: frozenset[str] = frozenset()
        self._since: datetime | None = None
        self._seen = 0
        self._calls = 0

    def of(self, apps: Collection[str], since: datetime) -> dict[str, list[Decision]]:
        """Each of `apps`' web decisions at or after `since`, newest first (apps with none
        are left out)."""
        apps = frozenset(apps)
        self._calls += 1
        whole = (
            self._whole_every_time
            or self._since is None
            or since < self._since
            or not apps <= self._apps
            or self._calls % SCAN_EVERY == 0
        )
        rows = self._store.decision_rows(apps, since, above=None if whole else self._seen)
        new: dict[str, list[tuple[int, Decision]]] = {}
        for row in rows:  # newest first
            new.setdefault(row[1].app, []).append(row)
        kept = {} if whole else self._kept
        self._kept = {}
        for app in apps:
            old = [row for row in kept.get(app, []) if row[1].at >= since]
            if rows_of_app := (new.get(app, []) + old)[:LIMIT]:
                self._kept[app] = rows_of_app
        self._apps, self._since = apps, since
        self._seen = max(self._seen, max((row[0] for row in rows), default=0))
        return {app: [decision for _, decision in kept] for app, kept in self._kept.items()}
