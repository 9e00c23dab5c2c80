"""Traffic metrics per app in 10-second windows: parsed drain lines in, mergeable windows out.

The web dyno parses each drain POST (`policies.logplex.parse_body`) and hands it to
`Aggregator.ingest`; a flusher calls `drain()` every few seconds and stores each `Window`,
merging it into whatever is already stored for the same app and start. `Window.merge` is
exact (counts add, sketch buckets add, the latest runtime sample wins), so several web
dynos, or one window flushed in pieces, add up to what one process seeing everything
would have counted, and the order of merging never matters.

Windows are aligned to the epoch (start % 10 == 0) by the log timestamps, not by arrival,
so a late batch still lands in the window its requests belong to.

Ingest is the hot half: per line it only counts tuples (second, dyno, status, code),
(second, service), ... in `Counter`s, whose C loop does the work; the seconds are folded into
windows and the timings into sketches once per distinct value, at `drain()`.

A bad value never reaches a window: the parser bounds every number, and here a timing that
is not a duration up to `MAX_MILLISECONDS`, or a runtime value that is not a finite number,
is left out (and counted in `Aggregator.dropped`). Otherwise one absurd line could make every
later `drain()` raise (an int too large for a float) and lose every window it held.

`summarize` and `sparkline` are the read side: pure functions of stored windows.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any

from policies.logplex import ParsedBody, load
from policies.sketch import Sketch

WINDOW_SECONDS = 10
MAX_MILLISECONDS = 10**12  # policies.logplex reads no number longer than 12 digits
_MAX_RUNTIME_VALUE = 1e15

# Fields of RouterLine (time, dyno, status, code, service, connect, message) and of
# QueueSample (time, dyno, queue) that make the counted keys.
_REQUEST_KEY = itemgetter(0, 1, 2, 3)
_SERVICE_KEY = itemgetter(0, 4)
_CONNECT_KEY = itemgetter(0, 5)
_QUEUE_KEY = itemgetter(0, 2)


@dataclass(frozen=True)
class Window:
    """What one app's router and dynos logged in [start, start + 10 s). Plain data: the
    mappings and sketches are not changed after construction; `merge` builds a new one."""

    app: str
    start: int  # epoch seconds, a multiple of WINDOW_SECONDS
    requests: int = 0
    statuses: Mapping[str, int] = field(default_factory=dict)  # "2xx" -> n; "other": none/odd
    codes: Mapping[str, int] = field(default_factory=dict)  # "H12" -> n
    dynos: Mapping[str, int] = field(default_factory=dict)  # "web.1" -> requests it served
    service: Sketch = field(default_factory=Sketch)  # ms
    connect: Sketch = field(default_factory=Sketch)  # ms
    queue: Sketch = field(default_factory=Sketch)  # ms, from the app's own queue= lines
    # dyno -> metric -> (epoch second, value): the latest runtime sample in the window
    runtime: Mapping[str, Mapping[str, tuple[int, float]]] = field(default_factory=dict)

    @property
    def end(self) -> int:
        return self.start + WINDOW_SECONDS

    @property
    def load(self) -> int:
        """The requests that were load on the dynos (`policies.logplex.load`): not the
        maintenance page's, a crashed app's or Heroku's own error's."""
        return load(self.requests, self.codes)

    def merge(self, other: Window) -> Window:
        """Both windows' counts together. Exact, commutative and associative."""
        if (self.app, self.start) != (other.app, other.start):
            raise ValueError(
                f"cannot merge window {other.app}@{other.start} into {self.app}@{self.start}"
            )
        return Window(
            app=self.app,
            start=self.start,
            requests=self.requests + other.requests,
            statuses=_added(self.statuses, other.statuses),
            codes=_added(self.codes, other.codes),
            dynos=_added(self.dynos, other.dynos),
            service=_merged(self.service, other.service),
            connect=_merged(self.connect, other.connect),
            queue=_merged(self.queue, other.queue),
            runtime=_latest(self.runtime, other.runtime),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, keys sorted, so equal windows serialise to equal documents."""
        return {
            "app": self.app,
            "start": self.start,
            "requests": self.requests,
            "statuses": dict(sorted(self.statuses.items())),
            "codes": dict(sorted(self.codes.items())),
            "dynos": dict(sorted(self.dynos.items())),
            "service": self.service.to_dict(),
            "connect": self.connect.to_dict(),
            "queue": self.queue.to_dict(),
            "runtime": {
                dyno: {name: [when, value] for name, (when, value) in sorted(metrics.items())}
                for dyno, metrics in sorted(self.runtime.items())
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Window:
        """The inverse of `to_dict`; ValueError on a document that is not a window."""
        try:
            start = int(data["start"])
            if start % WINDOW_SECONDS:
                raise ValueError(f"window start {start} is not a multiple of {WINDOW_SECONDS}")
            return cls(
                app=str(data["app"]),
                start=start,
                requests=int(data["requests"]),
                statuses=_counts(data["statuses"]),
                codes=_counts(data["codes"]),
                dynos=_counts(data["dynos"]),
                service=Sketch.from_dict(data["service"]),
                connect=Sketch.from_dict(data["connect"]),
                queue=Sketch.from_dict(data["queue"]),
                runtime=_runtime(data["runtime"]),
            )
        except (KeyError, TypeError, AttributeError, IndexError) as error:
            raise ValueError(f"not a stored window: {error!r}") from None


class Aggregator:
    """Accumulates parsed drain bodies per app until `drain()` takes them. Thread-safe: the
    web dyno's threads ingest while the flusher drains."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self.dropped = 0  # values left out of windows as not numbers in range

    def ingest(self, app: str, parsed: ParsedBody) -> None:
        """Count one parsed body for `app` (the registry's name for the drain's app)."""
        requests, queue = parsed.requests, parsed.queue
        with self._lock:
            pending = self._pending.get(app)
            if pending is None:
                pending = self._pending[app] = _Pending()
            if requests:
                pending.requests.update(map(_REQUEST_KEY, requests))
                pending.service.update(map(_SERVICE_KEY, requests))
                pending.connect.update(map(_CONNECT_KEY, requests))
            if queue:
                pending.queue.update(map(_QUEUE_KEY, queue))
            latest = pending.runtime
            for sample in parsed.runtime:
                start = sample.time - sample.time % WINDOW_SECONDS
                for name, value in sample.samples.items():
                    if not _within(value, _MAX_RUNTIME_VALUE, low=-_MAX_RUNTIME_VALUE):
                        self.dropped += 1
                        continue
                    key = (start, sample.dyno, name)
                    seen = latest.get(key)
                    if seen is None or (sample.time, value) > seen:
                        latest[key] = (sample.time, value)

    def drain(self) -> list[Window]:
        """Everything ingested since the last drain, as windows sorted by app and start."""
        with self._lock:
            pending, self._pending = self._pending, {}
        windows: list[Window] = []
        for app, counted in pending.items():
            windows += counted.windows(app)
        with self._lock:
            self.dropped += sum(counted.dropped for counted in pending.values())
        windows.sort(key=lambda window: (window.app, window.start))
        return windows


class Folding:
    """Windows of the same app and start merged into one each as they come, like
    `Window.merge` but in place: k parts cost k sketch merges, not k copies of a growing
    sketch, and a part can be dropped once added (compaction streams its rows through)."""

    def __init__(self) -> None:
        self._parts: dict[tuple[str, int], _WindowParts] = {}

    def add(self, window: Window) -> None:
        key = (window.app, window.start)
        found = self._parts.get(key)
        if found is None:
            found = self._parts[key] = _WindowParts()
        found.add(window)

    def add_document(self, data: Mapping[str, Any], start: int | None = None) -> int:
        """`add(Window.from_dict(data))`, at `start` instead of the stored start when given
        (a roll-up's minute), without building the stored window: its sketches are merged
        from their stored form (`Sketch.merge_dict`), which is most of what compaction
        saves. The same checks, the same ValueError; a document that fails them may leave
        part of itself added (compaction's transaction then rolls back). Returns the
        window's load (`Window.load`), which the stored minute counts keep."""
        try:
            app, stored = str(data["app"]), stored_start(data)
            requests = int(data["requests"])
            statuses, codes = _counts(data["statuses"]), _counts(data["codes"])
            dynos, runtime = _counts(data["dynos"]), _runtime(data["runtime"])
            service, connect, queue = data["service"], data["connect"], data["queue"]
        except (KeyError, TypeError, AttributeError, IndexError) as error:
            raise ValueError(f"not a stored window: {error!r}") from None
        key = (app, stored if start is None else start)
        found = self._parts.get(key)
        if found is None:
            found = self._parts[key] = _WindowParts()
        found.requests += requests
        found.statuses.update(statuses)
        found.codes.update(codes)
        found.dynos.update(dynos)
        found.service.merge_dict(service)
        found.connect.merge_dict(connect)
        found.queue.merge_dict(queue)
        found.runtime = _latest(found.runtime, runtime)
        return load(requests, codes)

    def windows(self) -> list[Window]:
        return [found.window(app, start) for (app, start), found in self._parts.items()]


def stored_start(data: Mapping[str, Any]) -> int:
    """A stored window document's start; ValueError when it is missing or not aligned."""
    try:
        start = int(data["start"])
    except (KeyError, TypeError) as error:
        raise ValueError(f"not a stored window: {error!r}") from None
    if start % WINDOW_SECONDS:
        raise ValueError(f"window start {start} is not a multiple of {WINDOW_SECONDS}")
    return start


# ---------------------------------------------------------------------------------------------
# Read side.


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p95: float
    p99: float


@dataclass(frozen=True)
class Summary:
    """One app's traffic over whole windows in [since, until)."""

    app: str | None  # None when no window fell in the range
    since: int
    until: int
    requests: int
    requests_per_minute: float
    per_minute: tuple[int, ...]  # requests in each minute, oldest first: for `sparkline`
    dynos: Mapping[str, float]  # requests per minute served by each dyno
    statuses: Mapping[str, int]
    error_rate: float | None  # share of 5xx among requests; None without requests
    codes: Mapping[str, int]  # router error codes: "H12" -> n
    service: Percentiles | None  # ms; None without samples
    connect: Percentiles | None
    queue: Percentiles | None
    runtime: Mapping[str, Mapping[str, float]]  # dyno -> metric -> latest value


def summarize(windows: Iterable[Window], now: float, minutes: int) -> Summary:
    """Traffic of the last `minutes` whole minutes of complete windows before `now`.

    The window still filling at `now` is left out, so the rate is not diluted by a partial
    window. Every window must belong to the same app.
    """
    if minutes < 1:
        raise ValueError("summarize needs at least one minute")
    until = int(now) // WINDOW_SECONDS * WINDOW_SECONDS
    since = until - minutes * 60
    chosen = [w for w in windows if since <= w.start < until]
    apps = {w.app for w in chosen}
    if len(apps) > 1:
        raise ValueError(f"summarize takes one app's windows, got {sorted(apps)}")
    total = _WindowParts()
    per_minute = [0] * minutes
    for window in chosen:
        total.add(window)
        per_minute[(window.start - since) // 60] += window.requests
    requests = total.requests
    return Summary(
        app=next(iter(apps), None),
        since=since,
        until=until,
        requests=requests,
        requests_per_minute=requests / minutes,
        per_minute=tuple(per_minute),
        dynos={dyno: n / minutes for dyno, n in sorted(total.dynos.items())},
        statuses=dict(sorted(total.statuses.items())),
        error_rate=total.statuses["5xx"] / requests if requests else None,
        codes=dict(sorted(total.codes.items())),
        service=_percentiles(total.service),
        connect=_percentiles(total.connect),
        queue=_percentiles(total.queue),
        runtime={
            dyno: {name: value for name, (_, value) in sorted(metrics.items())}
            for dyno, metrics in sorted(total.runtime.items())
        },
    )


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None]) -> str:
    """One character per value, ▁ (zero or the lowest) to █ (the highest); a gap for None."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return " " * len(values)
    low = min(0.0, *finite)  # scale from zero: a steady 100 rpm is a full bar, not a flat one
    span = max(finite) - low
    out = []
    for value in values:
        if value is None or not math.isfinite(value):
            out.append(" ")
        elif span == 0:
            out.append(_BARS[0])
        else:
            out.append(_BARS[round((value - low) / span * (len(_BARS) - 1))])
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Helpers.


class _Pending:
    """One app's counts since the last drain, keyed by exact second."""

    __slots__ = ("connect", "dropped", "queue", "requests", "runtime", "service")

    def __init__(self) -> None:
        self.dropped = 0
        self.requests: Counter[tuple[int, str | None, int | None, str | None]] = Counter()
        self.service: Counter[tuple[int, int | None]] = Counter()
        self.connect: Counter[tuple[int, int | None]] = Counter()
        self.queue: Counter[tuple[int, float]] = Counter()
        self.runtime: dict[tuple[int, str, str], tuple[int, float]] = {}

    def windows(self, app: str) -> list[Window]:
        parts: dict[int, _WindowParts] = {}

        def part(second: int) -> _WindowParts:
            start = second - second % WINDOW_SECONDS
            found = parts.get(start)
            if found is None:
                found = parts[start] = _WindowParts()
            return found

        for (second, dyno, status, code), n in self.requests.items():
            into = part(second)
            into.requests += n
            into.statuses[_status_class(status)] += n
            if dyno is not None:
                into.dynos[dyno] += n
            if code is not None:
                into.codes[code] += n
        # Tally each window's timings first: one sketch key per distinct value, not per second.
        for counted, sketch_of in (
            (self.service, _SERVICE_OF),
            (self.connect, _CONNECT_OF),
            (self.queue, _QUEUE_OF),
        ):
            tallies: dict[int, Counter[float]] = {}
            for (second, value), n in counted.items():
                if value is None:
                    continue
                if not _within(value, MAX_MILLISECONDS):
                    self.dropped += n
                    continue
                start = second - second % WINDOW_SECONDS
                tally = tallies.get(start)
                if tally is None:
                    tally = tallies[start] = Counter()
                tally[value] += n
            for start, tally in tallies.items():
                sketch_of(part(start)).add_counts(tally)
        for (start, dyno, name), seen in self.runtime.items():
            part(start).runtime.setdefault(dyno, {})[name] = seen
        return [p.window(app, start) for start, p in parts.items()]


class _WindowParts:
    __slots__ = ("codes", "connect", "dynos", "queue", "requests", "runtime", "service", "statuses")

    def __init__(self) -> None:
        self.requests = 0
        self.statuses: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()
        self.dynos: Counter[str] = Counter()
        self.service = Sketch()
        self.connect = Sketch()
        self.queue = Sketch()
        self.runtime: dict[str, dict[str, tuple[int, float]]] = {}

    def window(self, app: str, start: int) -> Window:
        return Window(
            app=app,
            start=start,
            requests=self.requests,
            statuses=dict(self.statuses),
            codes=dict(self.codes),
            dynos=dict(self.dynos),
            service=self.service,
            connect=self.connect,
            queue=self.queue,
            runtime=self.runtime,
        )

    def add(self, window: Window) -> None:
        self.requests += window.requests
        self.statuses.update(window.statuses)
        self.codes.update(window.codes)
        self.dynos.update(window.dynos)
        self.service.merge(window.service)
        self.connect.merge(window.connect)
        self.queue.merge(window.queue)
        self.runtime = _latest(self.runtime, window.runtime)


_SERVICE_OF = attrgetter("service")
_CONNECT_OF = attrgetter("connect")
_QUEUE_OF = attrgetter("queue")


def _within(value: object, high: float, low: float = 0) -> bool:
    """A real number in [low, high]; compared, never converted, so a 400-digit int is
    simply out of range (float() of it would raise) and NaN is never in it."""
    return isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high


def _status_class(status: int | None) -> str:
    if status is None or not 100 <= status <= 599:
        return "other"
    return f"{status // 100}xx"


def _added(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    total = dict(a)
    for key, n in b.items():
        total[key] = total.get(key, 0) + n
    return total


def _merged(a: Sketch, b: Sketch) -> Sketch:
    total = a.copy()
    total.merge(b)
    return total


def _latest(
    a: Mapping[str, Mapping[str, tuple[int, float]]],
    b: Mapping[str, Mapping[str, tuple[int, float]]],
) -> dict[str, dict[str, tuple[int, float]]]:
    # The later sample wins; on a tie in time the larger value, so merging is commutative.
    out = {dyno: dict(metrics) for dyno, metrics in a.items()}
    for dyno, metrics in b.items():
        mine = out.setdefault(dyno, {})
        for name, seen in metrics.items():
            if name not in mine or seen > mine[name]:
                mine[name] = seen
    return out


def _counts(data: Mapping[str, Any]) -> dict[str, int]:
    counts = {str(key): int(n) for key, n in data.items()}
    if any(n < 0 for n in counts.values()):
        raise ValueError("a stored count is negative")
    return counts


def _runtime(data: Mapping[str, Any]) -> dict[str, dict[str, tuple[int, float]]]:
    return {
        str(dyno): {str(name): (int(pair[0]), float(pair[1])) for name, pair in metrics.items()}
        for dyno, metrics in data.items()
    }


def _percentiles(sketch: Sketch) -> Percentiles | None:
    if not sketch.count:
        return None
    p50, p95, p99 = sketch.quantiles((0.5, 0.95, 0.99))
    assert p50 is not None and p95 is not None and p99 is not None
    return Percentiles(p50, p95, p99)
