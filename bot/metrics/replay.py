"""An app's own stored traffic as a simulator trace (`deploybot simulate --app`,
`/deploy simulate APP 7d`): the drained windows summed per minute, missing minutes as 0."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.metrics.store import MetricsStore
from policies.simulator import Context, Model, Result, Trace, make_context, run
from policies.simulator_baselines import Autoscaler, own_settings


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
            per_minute[minute] = per_minute.get(minute, 0.0) + window.load
    if not per_minute:
        return None
    begin = min(per_minute)
    counts = tuple(per_minute.get(m, 0.0) for m in range(begin, end, 60))
    return Trace(f"{app} (stored)", datetime.fromtimestamp(begin, UTC), 60, counts)


def replay_app(
    metrics: MetricsStore,
    app: str,
    since: timedelta,
    now: datetime,
    tried: dict[str, object],
    current: dict[str, object],
) -> tuple[Result, Result, Context] | None:
    """The app's stored traffic under the default policy with `tried` settings and with
    its `current` ones (keys: target, low, high, down_stabilization); None with no traffic."""
    trace = stored_trace(metrics, app, since, now)
    if trace is None:
        return None
    highest = max(int(v) for v in (tried.get("high"), current.get("high"), 20) if v is not None)
    model = Model(min_dynos=0, max_dynos=highest)
    context = make_context(trace, model, max(max(trace.counts), 1.0))
    results = []
    for name, given in (("tried", tried), ("current", current)):
        settings = own_settings(context, **given)  # type: ignore[arg-type]
        results.append(run(context, Autoscaler(name, context, settings, reads_every_s=600.0)))
    return results[0], results[1], context
