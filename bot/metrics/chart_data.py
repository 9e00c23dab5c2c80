"""What a chart shows, as plain numbers: traffic per bucket from the stored windows, the web
dyno count as steps, the scaling decisions, the incidents and the autoscaler's target.

Built by `bot.actions.dashboards`, drawn by `bot.metrics.chart`, and summarised in text by
`summary_lines`, so the picture and the words beside it come from the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bot.metrics.aggregate import Window, sparkline
from policies.sketch import Sketch
from policies.slack_text import code

# Seconds per bucket: a day at one-minute resolution; a week at ten minutes (1008 points).
BUCKET_SECONDS = {6 * 60: 60, 24 * 60: 60, 7 * 24 * 60: 600}


def bucket_seconds(minutes: int) -> int:
    return BUCKET_SECONDS.get(minutes, 60 if minutes <= 24 * 60 else 600)


@dataclass(frozen=True)
class Mark:
    """One scaling decision: the web count went from `before` to `after` at `at`."""

    at: float  # epoch seconds
    before: int
    after: int
    by: str  # "autoscaler" or a Slack user ID


@dataclass(frozen=True)
class Shade:
    """An incident's span, shaded on the chart."""

    start: float
    end: float
    label: str  # Slack text: the incident as its alert says it ("router errors `H12`")


@dataclass(frozen=True)
class ChartData:
    app: str
    since: int  # epoch seconds, a multiple of `step`
    until: int
    step: int  # seconds per bucket
    requests: tuple[int, ...]  # per bucket
    service_p95: tuple[float | None, ...]  # ms per bucket
    queue_p95: tuple[float | None, ...]  # ms per bucket
    web: tuple[tuple[float, int], ...] = ()  # (epoch seconds, web count) steps, oldest first
    marks: tuple[Mark, ...] = ()
    shades: tuple[Shade, ...] = ()
    target: tuple[str, float] | None = None  # ("service_p95" | "queue_p95" | "rpm", value)
    notes: tuple[str, ...] = field(default=())
    unit: str = "dyno"  # what the web count counts: Heroku dynos, Beanstalk instances
    # The last bucket is the one under way: its requests count in the total, but its few
    # seconds drawn as a rate ended every chart in a plunge, as if traffic had stopped.
    under_way: bool = False
    zone: str = "UTC"  # the clock the time axis is drawn on (a digest's, for its day)
    heading: str | None = None  # what the span is called, when not "last 24 h"

    @property
    def title(self) -> str:
        """The chart's name, as its upload and its picture give it."""
        return f"{self.app}: {self.heading or 'last ' + span_words(self.minutes)}"

    @property
    def rates(self) -> tuple[float, ...]:
        """Requests per minute in each bucket."""
        per_minute = self.step / 60
        return tuple(n / per_minute for n in self.requests)

    @property
    def drawn_rates(self) -> tuple[float | None, ...]:
        """The rates as drawn: none for the bucket under way."""
        rates = self.rates
        return (*rates[:-1], None) if self.under_way and len(rates) > 1 else rates

    @property
    def total(self) -> int:
        return sum(self.requests)

    @property
    def minutes(self) -> int:
        return (self.until - self.since) // 60


def buckets(
    windows: Iterable[Window], since: int, until: int, step: int
) -> tuple[tuple[int, ...], tuple[float | None, ...], tuple[float | None, ...]]:
    """(requests, p95 service ms, p95 queue ms) per `step`-second bucket of [since, until)."""
    count = max(1, math.ceil((until - since) / step))
    requests = [0] * count
    service = [Sketch() for _ in range(count)]
    queue = [Sketch() for _ in range(count)]
    for window in windows:
        if since <= window.start < until:
            i = (window.start - since) // step
            requests[i] += window.requests
            service[i].merge(window.service)
            queue[i].merge(window.queue)
    return (
        tuple(requests),
        tuple(s.quantile(0.95) if s.count else None for s in service),
        tuple(q.quantile(0.95) if q.count else None for q in queue),
    )


def web_steps(
    marks: Sequence[Mark], now_count: int | None, since: float, until: float
) -> tuple[tuple[float, int], ...]:
    """The web count over [since, until] as steps: known before the first mark from its
    `before`, after each mark from its `after`, and at the end from the current formation."""
    ordered = sorted(marks, key=lambda mark: mark.at)
    if ordered:
        first = ordered[0].before
    elif now_count is not None:
        first = now_count
    else:
        return ()
    steps = [(since, first)]
    for mark in ordered:
        steps.append((max(since, mark.at), mark.after))
    last = now_count if now_count is not None else steps[-1][1]
    steps.append((until, last))
    return tuple(steps)


def summary_lines(data: ChartData) -> list[str]:
    """The words beside the chart (and instead of it, when it cannot be uploaded)."""
    span = span_words(data.minutes)
    rates = [rate for rate in data.drawn_rates if rate is not None]
    lines = [
        f"*{code(data.app)} over the last {span}*",
        f"Requests: {data.total:,} (peak {max(rates):,.0f}/min)  `{sparkline(list(_fit(rates)))}`",
    ]
    services = [p for p in data.service_p95 if p is not None]
    if services:
        lines.append(f"p95 service time: highest {max(services):,.0f} ms")
    queues = [p for p in data.queue_p95 if p is not None]
    if queues:
        lines.append(f"p95 queue time: highest {max(queues):,.0f} ms")
    if data.web:
        counts = [count for _, count in data.web]
        low, high, changes = min(counts), max(counts), len(data.marks)
        span = f"{low} throughout" if low == high else f"{low}–{high}"
        made = {0: "no scaling changes", 1: "1 scaling change"}.get(
            changes, f"{changes:,} scaling changes"
        )
        lines.append(f"Web {data.unit}s: {span}; {made}")
    if data.shades:
        lines.append(f"Incidents: {len(data.shades)}")
    lines.extend(data.notes)
    return lines


def _fit(values: Sequence[float], points: int = 60) -> list[float]:
    # A sparkline line holds about 60 characters: average buckets down to that.
    width = max(1, math.ceil(len(values) / points))
    return [
        sum(values[i : i + width]) / len(values[i : i + width])
        for i in range(0, len(values), width)
    ]


def span_words(minutes: int) -> str:
    """A chart's window as people say it: 7 days, 24 h, 90 min."""
    if minutes % (24 * 60) == 0 and minutes >= 2 * 24 * 60:
        return f"{minutes // (24 * 60)} days"
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"
