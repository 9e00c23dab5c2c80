"""Every autoscaled app's last few minutes of traffic, per minute, read incrementally.

The autoscale tick needs, each 15 s and for every app, the request count, the p95 queue
and service times and the dynos seen in each of the last few whole minutes. Decoding every
stored part of those minutes each tick cost most of the tick (about 100 sketch documents
per app). Rows never change once written (compaction deletes parts and inserts their
merge as a new, `folded` row), so this keeps, per (app, minute), the merged counts and the
ids of the rows they came from. A tick asks the database only for rows with ids above those
it has seen (a range of the primary key, no JSON) and for the 10 s windows its range reaches
only now (a range of `start`), adds them to their minutes, and rebuilds a minute from all
its rows only when a new row is a fold or lands in a sealed minute. A steady tick touches
what the web dynos flushed in the last 15 s, not 15 minutes of ids (`make bench-scale`,
1,000 apps: reading every id in range was 0.9 s of a 1.65 s tick; the tick is now 0.6 to
1.0 s, and the worker's peak RSS is no higher).
Every `SCAN_EVERY` calls one reads every id in range instead and heals what the first way
cannot see: a row committed more than a tick after a higher id, or deleted with no fold.

A minute that ended `_SEAL_AFTER` seconds before the range's end is sealed: its p95s are
worked out and its sketches dropped, since the policy reads 30 minutes of rates but no
sketch of a past minute changes (`make bench-scale`, 1,000 apps: the worker's peak RSS went
from 329 MB to 291 MB with sealing). A part that arrives later, or a fold, rebuilds that
minute from its rows.
"""

from __future__ import annotations

from array import array
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from bot.metrics.aggregate import WINDOW_SECONDS
from bot.store.db import Database
from bot.store.models import MetricWindow
from policies.logplex import load
from policies.sketch import Sketch

_CHUNK = 1000  # ids per query: their documents are decoded together (memory)
_STREAM_ROWS = 20_000  # rows per fetch of a whole scan
# Web dynos flush every 5 s and Logplex delivers within seconds: a minute a minute old is whole.
_SEAL_AFTER = 60
# Every this many calls (5 minutes of 15 s ticks) a call reads every row's id in range, not
# only new ones: it heals whatever a reader of new ids could miss (a row committed more than
# a tick late, a row deleted with no fold to say so).
SCAN_EVERY = 20
_NAMED_APPS = 20  # up to this many apps are named in the query; a fleet is filtered here


@dataclass
class MinuteTraffic:
    """One app's traffic in [start, start + 60) seconds, merged from its stored windows."""

    start: int
    # The ids of the rows merged in, as 8-byte numbers: a set of Python ints is about seven
    # times the size, and a fleet's half hour is tens of thousands of minutes.
    ids: array[int] = field(default_factory=lambda: array("q"))
    requests: int = 0  # the load on the dynos (`Window.load`), not every request
    queue: Sketch = field(default_factory=Sketch)
    service: Sketch = field(default_factory=Sketch)
    dynos: set[str] = field(default_factory=set)
    # Requests per 10 s window start: the tick's freshest rate reads the newest of them.
    windows: dict[int, int] = field(default_factory=dict)

    _p95s: tuple[float | None, float | None] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    sealed: bool = False
    # What a reader derived from this minute once it was sealed (the tick's policy sample):
    # a sealed minute never changes, and a rebuilt one is a new object.
    memo: Any = field(default=None, compare=False, repr=False)

    def seal(self) -> None:
        """Keep the p95s, drop the sketches and the 10 s counts (only the freshest windows
        are read): this minute takes no more parts."""
        self.p95s()
        self.queue = self.service = _EMPTY
        self.windows = {}
        self.sealed = True

    def add(self, document: Mapping[str, Any]) -> None:
        # Only the fields the autoscaler reads: a whole Window costs three sketches more.
        assert not self.sealed, "a sealed minute is rebuilt, not added to"
        # The load on the dynos: the maintenance page's requests and the like are none.
        requests = load(int(document["requests"]), document["codes"])
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


Row = tuple[str, int, int, bool]  # app, id, start, folded (SQLAlchemy's rows are tuples)


class RecentTraffic:
    """The fleet's recent minutes, kept between calls (see the module's docstring)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._minutes: dict[tuple[str, int], MinuteTraffic] = {}
        self._apps: frozenset[str] = frozenset()  # the apps the state above is whole for
        self._since = self._until = 0  # the last call's range
        self._floor: int | None = None  # a call asks for ids above this
        self._seen = 0  # the highest id the last call read
        self._calls = 0

    def minutes(
        self, apps: Collection[str], since: int, until: int
    ) -> dict[str, list[MinuteTraffic]]:
        """Each of `apps`' minutes in [since, until) that has traffic, oldest first.
        `since` is a whole minute and `until` a whole 10 s window (epoch seconds): when it
        is not a whole minute, the last minute holds only the windows before it."""
        apps = frozenset(apps)
        self._calls += 1
        for key in [k for k in self._minutes if k[0] not in apps or k[1] < since]:
            del self._minutes[key]
        wanted: dict[int, MinuteTraffic] = {}
        whole = (
            self._db.is_sqlite  # SQLite hands a deleted row's id out again: no id order
            or self._floor is None
            or since < self._since
            or until < self._until
            or not apps <= self._apps
            or self._calls % SCAN_EVERY == 0
        )
        seen = self._take(apps, since, until, whole, wanted)
        # Read once the ids are dropped: a whole scan's are a few hundred thousand rows.
        self._read(wanted)
        self._apps, self._since, self._until = apps, since, until
        # Asking next time from what the call before this one saw re-reads one tick's ids
        # (skipped as known), so that a row committed up to a tick after a higher id is
        # still found. PostgreSQL hands out ids at insert, not in commit order.
        self._floor = seen if self._floor is None else self._seen
        self._seen = max(seen, self._seen)
        for key, minute in self._minutes.items():
            if key[1] + 60 + _SEAL_AFTER <= until and not minute.sealed:
                minute.seal()
        found: dict[str, list[MinuteTraffic]] = {app: [] for app in apps}
        for app, start in sorted(self._minutes, key=lambda key: key[1]):
            found[app].append(self._minutes[app, start])
        return found

    def _take(
        self,
        apps: frozenset[str],
        since: int,
        until: int,
        whole: bool,
        wanted: dict[int, MinuteTraffic],
    ) -> int:
        """Which rows to read (into `wanted`): of every id in range (`whole`), or of the new
        ones. Returns the highest id seen."""
        if whole:
            by_minute = self._by_minute(self._rows(apps, since, until, stream=True))
            for key in [k for k in self._minutes if k not in by_minute]:
                del self._minutes[key]  # its rows are gone
            self._settle(by_minute, wanted)
            return max((max(ids) for ids in by_minute.values()), default=self._seen)
        # New ids, and the windows the range reaches only now (written before the last call,
        # past its end): their ids may lie below the floor.
        rows = self._rows(apps, since, until, above=self._floor)
        reached = self._rows(apps, max(since, self._until), until) if until > self._until else []
        self._add_new([*rows, *reached], until, wanted)
        return max((row[1] for row in rows), default=self._seen)

    def _add_new(self, rows: Sequence[Row], until: int, wanted: dict[int, MinuteTraffic]) -> None:
        """Rows new to this reader: added to their minutes, unless one is a fold or lands in
        a sealed minute, which then is rebuilt from all its rows."""
        rebuild: set[tuple[str, int]] = set()
        added: list[tuple[tuple[str, int], int]] = []
        for app, row_id, start, folded in rows:
            key = (app, start - start % 60)
            minute = self._minutes.get(key)
            if minute is not None and row_id in minute.ids:  # a re-read below the floor
                continue
            if folded or (minute is not None and minute.sealed):
                rebuild.add(key)  # compaction replaced parts, or a part came late
            else:
                added.append((key, row_id))
        if rebuild:
            first = min(start for _, start in rebuild)
            last = min(max(start for _, start in rebuild) + 60, until)
            scoped = self._by_minute(self._rows(frozenset(a for a, _ in rebuild), first, last))
            self._settle({key: scoped.get(key, array("q")) for key in rebuild}, wanted)
        for key, row_id in added:
            if key not in rebuild:
                minute = self._minutes.get(key)
                if minute is None:
                    minute = self._minutes[key] = MinuteTraffic(key[1])
                wanted[row_id] = minute

    def _settle(
        self, by_minute: Mapping[tuple[str, int], array[int]], wanted: dict[int, MinuteTraffic]
    ) -> None:
        """Make each minute's state match its stored rows (`by_minute`), reading only ids it
        has not read, unless a row went away (compaction folded its parts) or a part came
        after the minute was sealed: then it starts again."""
        for key, stored in by_minute.items():
            known = self._minutes.get(key)
            if not stored:
                self._minutes.pop(key, None)
                continue
            ids, had = set(stored), set(known.ids) if known is not None else set()
            if known is None or not had <= ids or (known.sealed and ids != had):
                known, had = MinuteTraffic(key[1]), set()
                self._minutes[key] = known
            for row_id in ids - had:
                wanted[row_id] = known

    @staticmethod
    def _by_minute(rows: Iterable[Row]) -> dict[tuple[str, int], array[int]]:
        found: dict[tuple[str, int], array[int]] = {}
        for app, row_id, start, _ in rows:
            key = (app, start - start % 60)
            ids = found.get(key)
            if ids is None:
                ids = found[key] = array("q")
            ids.append(row_id)
        return found

    def _rows(
        self,
        apps: frozenset[str],
        since: int,
        until: int,
        above: int | None = None,
        stream: bool = False,
    ) -> Sequence[Row] | _Streamed:
        """(app, id, start, folded) of `apps`' fine windows in [since, until), or only of
        those with ids `above` a number: one query, no JSON. `stream`: fetched a partition
        at a time, for a whole scan of the fleet (half an hour of a thousand apps' rows is
        about 700,000 of them, some 70 MB at once)."""
        table = MetricWindow.__table__.c
        # On the table, not the mapped class: plain rows, no ORM compilation per tick.
        query = select(table.app, table.id, table.start, table.folded).where(
            table.resolution == WINDOW_SECONDS, table.start >= since, table.start < until
        )
        if above is not None:
            query = query.where(table.id > above)  # a range of the primary key
        else:
            # Both values named, so that PostgreSQL scans the (resolution, folded, start)
            # index as two ranges of `start`: without it, it walks every fine window of the
            # 48 hours kept (EXPLAIN: 565 index pages against 9 with 1,000 apps' hour).
            query = query.where(table.folded.in_((False, True)))
        if len(apps) <= _NAMED_APPS:
            query = query.where(table.app.in_(sorted(apps)))
        if stream:
            return _Streamed(self._db, query, apps)
        with self._db.session() as session:
            # all(): one fetch, not a driver call per row (tens of thousands of them).
            found = session.connection().execute(query).all()
        # Filtered in place, not copied.
        return found if len(apps) <= _NAMED_APPS else [row for row in found if row[0] in apps]

    def _read(self, wanted: dict[int, MinuteTraffic]) -> None:
        table = MetricWindow.__table__.c
        for chunk in _chunks(list(wanted), _CHUNK):
            with self._db.session() as session:
                query = select(table.id, table.data).where(table.id.in_(chunk))
                for row_id, document in session.connection().execute(query).all():
                    minute = wanted[row_id]
                    minute.add(document)
                    minute.ids.append(row_id)


class _Streamed:
    """A query's rows (of `apps` only), iterated once, `_STREAM_ROWS` fetched at a time."""

    def __init__(self, db: Database, query: Any, apps: frozenset[str]) -> None:
        self._db, self._query, self._apps = db, query, apps

    def __iter__(self) -> Iterator[Row]:
        with self._db.session() as session:
            connection = session.connection().execution_options(yield_per=_STREAM_ROWS)
            for rows in connection.execute(self._query).partitions():
                for row in rows:
                    if row[0] in self._apps:
                        yield row


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]
