"""Series for `/deploy metrics`: requests per minute and p95 service time, in at most
`points` buckets so a day fits on one line of Slack."""

from __future__ import annotations

import math
from collections.abc import Iterable

from bot.metrics.aggregate import Summary, Window
from policies.sketch import Sketch


def series(
    windows: Iterable[Window], summary: Summary, points: int = 60
) -> tuple[list[float | None], list[float | None]]:
    """(requests per minute, p95 service ms) per bucket over the summary's range."""
    minutes = (summary.until - summary.since) // 60
    width = max(1, math.ceil(minutes / points))  # minutes per bucket
    count = math.ceil(minutes / width)
    requests = [0] * count
    sketches = [Sketch() for _ in range(count)]
    for window in windows:
        if summary.since <= window.start < summary.until:
            bucket = (window.start - summary.since) // 60 // width
            requests[bucket] += window.requests
            sketches[bucket].merge(window.service)
    rates: list[float | None] = [n / width for n in requests]
    p95s: list[float | None] = [s.quantile(0.95) if s.count else None for s in sketches]
    return rates, p95s
