"""Traffic windows in the database: saved in parts, merged exactly on read, compacted.

Each web dyno flushes its own part of a window as a row; a reader merges every part of a
window (`Window.merge` is exact), so two dynos that each saw half the traffic read back as
one that saw all of it. `compact` folds parts together, rolls 10-second windows older than
48 hours into 1-minute windows and deletes 1-minute windows after 35 days. It takes its
rows with DELETE … RETURNING before writing their merge, so two compactions running at
once never count a row twice: each merges only the rows it deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from sqlalchemy import delete, func, select

from bot.metrics.aggregate import WINDOW_SECONDS, Window
from bot.store.db import Database
from bot.store.models import MetricWindow

ROLLUP_SECONDS = 60
KEEP_FINE = 48 * 3600
KEEP_COARSE = 35 * 86400
SETTLED = 120  # parts of a window older than this are no longer being written


class MetricsStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def save(self, windows: Iterable[Window]) -> int:
        rows = [
            MetricWindow(app=w.app, resolution=WINDOW_SECONDS, start=w.start, data=w.to_dict())
            for w in windows
        ]
        if rows:
            with self._db.session() as session, session.begin():
                session.add_all(rows)
        return len(rows)

    def windows(self, app: str, since: int, until: int) -> list[Window]:
        """`app`'s windows overlapping [since, until), parts merged, oldest first."""
        query = select(MetricWindow.data).where(
            MetricWindow.app == app,
            MetricWindow.start >= since - ROLLUP_SECONDS,
            MetricWindow.start < until,
        )
        with self._db.session() as session:
            documents = list(session.scalars(query))
        merged: dict[int, Window] = {}
        for document in documents:
            window = Window.from_dict(document)
            if window.start < since:
                continue
            merged[window.start] = (
                merged[window.start].merge(window) if window.start in merged else window
            )
        return [merged[start] for start in sorted(merged)]

    def compact(self, now: int) -> dict[str, int]:
        """Fold settled parts, roll up old fine windows, forget what is past keeping."""
        with self._db.session() as session, session.begin():
            forgotten = session.execute(
                delete(MetricWindow).where(
                    MetricWindow.resolution == ROLLUP_SECONDS,
                    MetricWindow.start < now - KEEP_COARSE,
                )
            ).rowcount
            taken = session.execute(
                delete(MetricWindow)
                .where(
                    MetricWindow.resolution == WINDOW_SECONDS,
                    MetricWindow.start < now - SETTLED,
                )
                .returning(MetricWindow.data)
            ).all()
            fine: dict[tuple[str, int], Window] = {}
            coarse: dict[tuple[str, int], Window] = {}
            for (document,) in taken:
                window = Window.from_dict(document)
                if window.start < now - KEEP_FINE:
                    start = window.start // ROLLUP_SECONDS * ROLLUP_SECONDS
                    _fold(coarse, replace(window, start=start))
                else:
                    _fold(fine, window)
            session.add_all(
                [
                    MetricWindow(
                        app=w.app, resolution=WINDOW_SECONDS, start=w.start, data=w.to_dict()
                    )
                    for w in fine.values()
                ]
                + [
                    MetricWindow(
                        app=w.app, resolution=ROLLUP_SECONDS, start=w.start, data=w.to_dict()
                    )
                    for w in coarse.values()
                ]
            )
        return {
            "parts_taken": len(taken),
            "fine_written": len(fine),
            "rolled_up": len(coarse),
            "forgotten": forgotten,
        }

    def rows(self, app: str) -> int:
        """How many stored parts `app` has (compaction brings it down)."""
        query = select(func.count()).select_from(MetricWindow).where(MetricWindow.app == app)
        with self._db.session() as session:
            return int(session.scalar(query) or 0)


def _fold(into: dict[tuple[str, int], Window], window: Window) -> None:
    key = (window.app, window.start)
    into[key] = into[key].merge(window) if key in into else window
