"""Every autoscaled app's last few minutes of traffic, per minute, read incrementally.

The autoscale tick needs, each 15 s and for every app, the request count, the p95 queue
and service times and the dynos seen in each of the last few whole minutes. Decoding every
stored part of those minutes each tick cost most of the tick (about 100 sketch documents
per app). Rows never change once written (compaction deletes parts and inserts their
merge as a new row), so this keeps, per (app, minute), the merged counts and the ids of the
rows they came from. A tick asks the database only for the ids and starts of the rows in
range (one query for the whole fleet, no JSON), reads the documents of ids it has not seen
(one query), and rebuilds a minute from scratch only when one of its rows went away (it was
folded). A steady tick decodes what the web dynos flushed in the last 15 s, not 6 minutes.

A minute that ended `_SEAL_AFTER` seconds before the range's end is sealed: its p95s are
worked out and its sketches dropped, since the policy reads 15 minutes of rates but no
sketch of a past minute changes (`make bench-scale`, 1,000 apps: the worker's peak RSS went
from 329 MB to 291 MB with sealing). A part that arrives later, or a fold, rebuilds that
minute from its rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from bot.metrics.aggregate import WINDOW_SECONDS
from bot.store.db import Database
from bot.store.models import MetricWindow
from policies.sketch import Sketch

_CHUNK = 1000  # ids per query: their documents are decoded together (memory)
# Web dynos flush every 5 s and Logplex delivers within seconds: a minute a minute old is whole.
_SEAL_AFTER = 60


@dataclass
class MinuteTraffic:
    """One app's traffic in [start, start + 60) seconds, merged from its stored windows."""

    start: int
    ids: set[int] = field(default_factory=set)
    requests: int = 0
    queue: Sketch = field(default_factory=Sketch)
    service: Sketch = field(default_factory=Sketch)
    dynos: set[str] = field(default_factory=set)
    # Requests per 10 s window start: the tick's freshest rate reads the newest of them.
    windows: dict[int, int] = field(default_factory=dict)

    _p95s: tuple[float | None, float | None] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    sealed: bool = False

    def seal(self) -> None:
        """Keep the p95s, drop the sketches: this minute takes no more parts."""
        self.p95s()
        self.queue = self.service = _EMPTY
        self.sealed = True

    def add(self, document: Mapping[str, Any]) -> None:
        # Only the fields the autoscaler reads: a whole Window costs three sketches more.
        assert not self.sealed, "a sealed minute is rebuilt, not added to"
        requests = int(document["requests"])
        self.requests += requests
        start = int(document.get("start", self.start))
        self.windows[start] = self.windows.get(start, 0) + requests
        self.queue.merge_dict(document["queue"])
        self.service.merge_dict(document["service"])
        self.dynos.update(document["dynos"])
        self._p95s = None

    def p95s(self) -> tuple[float | None, float | None]:
        """The queue and service p95 (ms; None without timings), worked out once per change
        of the minute: a steady tick asks for all of them and most have not changed."""
        if self._p95s is None:
            self._p95s = (
                self.queue.quantile(0.95) if self.queue.count else None,
                self.service.quantile(0.95) if self.service.count else None,
            )
        return self._p95s


_EMPTY = Sketch()  # a sealed minute's sketches: never merged into (`add` refuses)


class RecentTraffic:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._minutes: dict[tuple[str, int], MinuteTraffic] = {}

    def minutes(
        self, apps: Collection[str], since: int, until: int
    ) -> dict[str, list[MinuteTraffic]]:
        """Each of `apps`' minutes in [since, until) that has traffic, oldest first.
        `since` is a whole minute and `until` a whole 10 s window (epoch seconds): when it
        is not a whole minute, the last minute holds only the windows before it."""
        rows: dict[tuple[str, int], set[int]] = {}
        table = MetricWindow.__table__.c
        # On the table, not the mapped class: plain rows, no ORM compilation per tick.
        query = select(table.app, table.id, table.start).where(
            table.resolution == WINDOW_SECONDS,
            # Both values named, so that PostgreSQL scans the (resolution, folded, start)
            # index as two ranges of `start`: without it, it walks every fine window of the
            # 48 hours kept (EXPLAIN: 565 index pages against 9 with 1,000 apps' hour).
            table.folded.in_((False, True)),
            table.start >= since,
            table.start < until,
        )
        if len(apps) == 1:
            query = query.where(table.app.in_(list(apps)))
        with self._db.session() as session:
            # all(): one fetch, not a driver call per row (tens of thousands of them).
            for app, row_id, start in session.connection().execute(query).all():
                if app in apps:
                    key = (app, start - start % 60)
                    found = rows.get(key)
                    if found is None:
                        found = rows[key] = set()
                    found.add(row_id)
        wanted: dict[int, MinuteTraffic] = {}
        for key, ids in rows.items():
            known = self._minutes.get(key)
            if known is None or not known.ids <= ids or (known.sealed and ids != known.ids):
                # New, or a row went away (compaction folded its parts), or a part came
                # after the minute was sealed: start again.
                known = self._minutes[key] = MinuteTraffic(key[1])
            for row_id in ids - known.ids:
                wanted[row_id] = known
        for chunk in _chunks(list(wanted), _CHUNK):
            with self._db.session() as session:
                query = select(table.id, table.data).where(table.id.in_(chunk))
                for row_id, document in session.connection().execute(query).all():
                    minute = wanted[row_id]
                    minute.add(document)
                    minute.ids.add(row_id)
        for key in [k for k in self._minutes if k[0] in apps and k not in rows]:
            del self._minutes[key]  # out of range, or its rows are gone
        for key in rows:
            if key[1] + 60 + _SEAL_AFTER <= until and not self._minutes[key].sealed:
                self._minutes[key].seal()
        found: dict[str, list[MinuteTraffic]] = {app: [] for app in apps}
        for app, start in sorted(rows, key=lambda key: key[1]):
            found[app].append(self._minutes[app, start])
        return found


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]
