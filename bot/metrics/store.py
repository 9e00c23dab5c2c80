"""Traffic windows in the database: saved in parts, merged exactly on read, compacted.

Each web dyno flushes its own part of a window as a row; a reader merges every part of a
window (`Window.merge` is exact), so two dynos that each saw half the traffic read back as
one that saw all of it. `compact` folds the parts written since its last run into one
`folded` row per window, writes each folded minute's request count as a plain number
(`metric_minutes`, what the forecast reads), rolls folded 10-second windows older than 48
hours into 1-minute windows and forgets what is past keeping.

Its work follows the new data, not the history: every lookup is a range scan on
(resolution, folded, start) that finds only parts not folded yet or windows that crossed
the 48-hour line since the last run, and it takes them a minute of log time at a time
(every app together), so its memory is bounded by one minute of the fleet's traffic.

It takes its rows with DELETE … RETURNING before writing their merge, so two compactions
running at once never count a row twice: each merges only the rows it deleted. A part that
arrives after its window was folded is folded into a second row for that window (readers
merge them) and added to its minute's count.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import delete, false, func, insert, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.metrics.aggregate import WINDOW_SECONDS, Folding, Window, stored_start
from bot.store.db import Database
from bot.store.models import MetricMinute, MetricWindow

ROLLUP_SECONDS = 60
KEEP_FINE = 48 * 3600
KEEP_COARSE = 35 * 86400
# The forecast reads a week back, plus its 3-hour skill window and its lead.
KEEP_MINUTES = 7 * 86400 + 4 * 3600
SETTLED = 120  # parts of a window older than this are no longer being written
BATCH_SECONDS = 60  # log time per transaction: whole minutes, every app


class MetricsStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def save(self, windows: Iterable[Window]) -> int:
        rows = [_row(w, WINDOW_SECONDS, folded=False) for w in windows]
        if rows:
            with self._db.session() as session, session.begin():
                session.execute(insert(MetricWindow), rows)
        return len(rows)

    def windows(self, app: str, since: int, until: int) -> list[Window]:
        """`app`'s windows overlapping [since, until), parts merged, oldest first."""
        return merged(self.documents_of([app], since, until).get(app, []), since)

    def documents_of(
        self, apps: Collection[str], since: int, until: int
    ) -> dict[str, list[dict[str, Any]]]:
        """The stored documents of `apps`' windows overlapping [since, until), in one query
        (the detectors' minute: one per app had been a thousand statements at a fleet's
        size), undecoded: `merged` decodes each app's apart, so a bad one costs its app only."""
        query = select(MetricWindow.app, MetricWindow.data).where(
            MetricWindow.app.in_(list(apps)),
            MetricWindow.start >= since - ROLLUP_SECONDS,
            MetricWindow.start < until,
        )
        found: dict[str, list[dict[str, Any]]] = {}
        with self._db.session() as session:
            for app, document in session.execute(query):
                found.setdefault(app, []).append(document)
        return found

    def minutes(self, app: str, ranges: Iterable[tuple[int, int]]) -> dict[int, float]:
        """Requests per epoch minute of `app` in each [first, last) range, from the counts
        compaction wrote: plain numbers, no sketch decoded. Minutes not folded yet (the
        last few) are missing; the caller adds them from the windows it reads anyway."""
        return self.minutes_of({app}, ranges).get(app, {})

    def minutes_of(
        self, apps: Collection[str], ranges: Iterable[tuple[int, int]]
    ) -> dict[str, dict[int, float]]:
        """`minutes` for many apps in one query per range (the forecast's reload)."""
        found: dict[str, dict[int, float]] = {}
        with self._db.session() as session:
            for first, last in ranges:
                query = select(MetricMinute.app, MetricMinute.minute, MetricMinute.requests).where(
                    MetricMinute.minute >= first, MetricMinute.minute < last
                )
                if len(apps) < 50:
                    query = query.where(MetricMinute.app.in_(list(apps)))
                for app, minute, requests in session.execute(query):
                    if app in apps:
                        found.setdefault(app, {})[int(minute)] = float(requests)
        return found

    def compact(self, now: int) -> dict[str, int]:
        """Fold new parts, roll up fine windows past 48 hours, forget what is past keeping."""
        done = {"parts_taken": 0, "fine_written": 0, "rolled_up": 0, "forgotten": 0}
        with self._db.session() as session, session.begin():
            done["forgotten"] = session.execute(
                delete(MetricWindow).where(
                    MetricWindow.resolution == ROLLUP_SECONDS,
                    MetricWindow.folded == true(),
                    MetricWindow.start < now - KEEP_COARSE,
                )
            ).rowcount
            done["forgotten"] += session.execute(
                delete(MetricMinute).where(MetricMinute.minute < (now - KEEP_MINUTES) // 60)
            ).rowcount
        # Whole minutes only: a minute's parts fold in one transaction, its count written once.
        settled = (now - SETTLED) // ROLLUP_SECONDS * ROLLUP_SECONDS
        for first, last in self._batches(False, settled):
            self._fold(first, last, now, done)
        keep_from = (now - KEEP_FINE) // ROLLUP_SECONDS * ROLLUP_SECONDS
        for first, last in self._batches(True, keep_from):
            self._roll_up(first, last, done)
        return done

    def has(self, app: str) -> bool:
        """Whether any traffic of `app` is stored (one row looked up, not counted)."""
        query = select(MetricWindow.app).where(MetricWindow.app == app).limit(1)
        with self._db.session() as session:
            return session.scalar(query) is not None

    def rows(self, app: str) -> int:
        """How many stored parts `app` has (compaction brings it down)."""
        query = select(func.count()).select_from(MetricWindow).where(MetricWindow.app == app)
        with self._db.session() as session:
            return int(session.scalar(query) or 0)

    def _batches(self, folded: bool, before: int) -> Iterable[tuple[int, int]]:
        """[first, last) minute-aligned ranges of fine windows (`folded` or not) that start
        before `before`, skipping empty stretches with one indexed lookup each."""
        after = None
        while True:
            query = select(func.min(MetricWindow.start)).where(
                MetricWindow.resolution == WINDOW_SECONDS,
                MetricWindow.folded == (true() if folded else false()),
                MetricWindow.start < before,
            )
            if after is not None:
                query = query.where(MetricWindow.start >= after)
            with self._db.session() as session:
                start = session.scalar(query)
            if start is None:
                return
            first = int(start) // BATCH_SECONDS * BATCH_SECONDS
            after = min(first + BATCH_SECONDS, before)
            yield first, after

    def _fold(self, first: int, last: int, now: int, done: dict[str, int]) -> None:
        with self._db.session() as session, session.begin():
            taken = _take(session, False, first, last)
            fine, coarse = Folding(), Folding()
            counts: dict[tuple[str, int], int] = {}
            for (document,) in taken:  # one row decoded at a time, folded, dropped
                done["parts_taken"] += 1
                start = stored_start(document)
                minute = start // ROLLUP_SECONDS
                if start < now - KEEP_FINE:  # late, or the worker was away for days
                    requests = coarse.add_document(document, minute * ROLLUP_SECONDS)
                else:
                    requests = fine.add_document(document)
                key = (str(document["app"]), minute)
                counts[key] = counts.get(key, 0) + requests
            folded, rolled = fine.windows(), coarse.windows()
            rows = [_row(w, WINDOW_SECONDS) for w in folded]
            rows += [_row(w, ROLLUP_SECONDS) for w in rolled]
            if rows:
                session.execute(insert(MetricWindow.__table__), rows)
            oldest = (now - KEEP_MINUTES) // 60
            _add_minutes(session, {k: n for k, n in counts.items() if k[1] >= oldest})
        done["fine_written"] += len(folded)
        done["rolled_up"] += len(rolled)

    def _roll_up(self, first: int, last: int, done: dict[str, int]) -> None:
        with self._db.session() as session, session.begin():
            folding = Folding()
            for (document,) in _take(session, True, first, last):
                minute = stored_start(document) // ROLLUP_SECONDS * ROLLUP_SECONDS
                folding.add_document(document, minute)
            coarse = folding.windows()
            if coarse:
                session.execute(
                    insert(MetricWindow.__table__), [_row(w, ROLLUP_SECONDS) for w in coarse]
                )
        done["rolled_up"] += len(coarse)


def _take(session: Session, folded: bool, first: int, last: int) -> Iterable[Any]:
    """Delete the fine windows (`folded` or not) starting in [first, last); their documents,
    as an iterator: on the table, not the mapped class, so the ORM does not buffer them."""
    return session.execute(
        delete(MetricWindow.__table__)
        .where(
            MetricWindow.resolution == WINDOW_SECONDS,
            MetricWindow.folded == (true() if folded else false()),
            MetricWindow.start >= first,
            MetricWindow.start < last,
        )
        .returning(MetricWindow.data)
    )


def _row(window: Window, resolution: int, folded: bool = True) -> dict[str, Any]:
    return {
        "app": window.app,
        "resolution": resolution,
        "start": window.start,
        "data": window.to_dict(),
        "folded": folded,
    }


def _add_minutes(session: Session, counts: dict[tuple[str, int], int]) -> None:
    """Add each (app, minute)'s requests to its stored count: an insert, or an addition
    when a late part's minute was counted already."""
    if not counts:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(MetricMinute)
    statement = statement.on_conflict_do_update(
        index_elements=[MetricMinute.app, MetricMinute.minute],
        set_={"requests": MetricMinute.requests + statement.excluded.requests},
    )
    session.execute(
        statement,
        [{"app": app, "minute": minute, "requests": n} for (app, minute), n in counts.items()],
    )


def merged(documents: Iterable[dict[str, Any]], since: int) -> list[Window]:
    """Stored window documents as windows from `since` on, parts of one window merged,
    oldest first; ValueError for a document that does not parse."""
    windows: dict[int, Window] = {}
    for document in documents:
        window = Window.from_dict(document)
        if window.start < since:
            continue
        windows[window.start] = (
            windows[window.start].merge(window) if window.start in windows else window
        )
    return [windows[start] for start in sorted(windows)]
