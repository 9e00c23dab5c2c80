"""An app's own stored traffic as a simulator trace (`deploybot simulate --app`,
`/deploy simulate APP 7d`): the drained windows summed per minute, missing minutes as 0."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.metrics.store import MetricsStore
from policies.simulator import Trace


def stored_trace(metrics: MetricsStore, app: str, since: timedelta, now: datetime) -> Trace | None:
    """The last `since` of `app`'s traffic, one-minute intervals ending at the last whole
    minute before `now`; None when nothing was stored in it."""
    end = int(now.timestamp()) // 60 * 60
    start = end - int(since.total_seconds()) // 60 * 60
    per_minute: dict[int, float] = {}
    # A day at a time: a week of 10 s windows is 60,000 rows, too many for one query's list.
    for first in range(start, end, 86_400):
        last = min(first + 86_400, end)
        for window in metrics.windows(app, first, last):
            minute = window.start // 60 * 60
            per_minute[minute] = per_minute.get(minute, 0.0) + window.requests
    if not per_minute:
        return None
    begin = min(per_minute)
    counts = tuple(per_minute.get(m, 0.0) for m in range(begin, end, 60))
    return Trace(f"{app} (stored)", datetime.fromtimestamp(begin, UTC), 60, counts)
