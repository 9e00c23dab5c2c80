"""Beanstalk traffic into the metrics store, so Beanstalk apps have the same windows as
drained Heroku apps for `/deploy metrics`, the detectors and the autoscaler.

Enhanced health reports each environment's last 10 s: request count, status classes and
latency percentiles (P10 … P99.9). The worker polls it every 10 s and stores one window per
report; a report already stored (same `RefreshedAt`) is skipped. Health gives percentiles,
not a distribution, so `window_from_health` rebuilds a sketch that has the same
percentiles: each slice of the requests between two reported percentiles is counted at
the slice's upper percentile, which reads p50/p95/p99 back as reported (never lower).

AWS throttles per account and region: after a throttle the sampler leaves that account's
environments alone for a while (`bot.worker.aws_backoff`, shared with the detectors' health
reads), where it asked again every 10 s for each, keeping the throttle on for the account's
other calls (a person's scale or status).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.metrics.aggregate import WINDOW_SECONDS, Window
from bot.metrics.store import MetricsStore
from bot.platforms.base import PlatformError, Throttled
from bot.registry import Registry, UnknownApp
from bot.worker.aws_backoff import AwsBackoff
from policies.sketch import Sketch

log = logging.getLogger(__name__)

# How often an environment whose health read keeps failing alike is asked again.
REPEATED_EVERY = timedelta(minutes=5)

# Enhanced health's latency keys and the share of requests at or below each.
PERCENTILES = (
    ("P10", 0.10),
    ("P50", 0.50),
    ("P75", 0.75),
    ("P85", 0.85),
    ("P90", 0.90),
    ("P95", 0.95),
    ("P99", 0.99),
    ("P999", 0.999),
)


def window_from_health(
    app: str, refreshed_at: datetime, metrics: Mapping[str, Any]
) -> Window | None:
    """One store window from a health report's ApplicationMetrics; None with no requests."""
    requests = int(metrics.get("RequestCount") or 0)
    if requests <= 0:
        return None
    duration = int(metrics.get("Duration") or WINDOW_SECONDS)
    began = int(refreshed_at.timestamp()) - duration
    statuses = {
        key[-3:].lower(): int(count)
        for key, count in (metrics.get("StatusCodes") or {}).items()
        if int(count) > 0
    }
    return Window(
        app=app,
        start=began // WINDOW_SECONDS * WINDOW_SECONDS,
        requests=requests,
        statuses=statuses,
        service=sketch_from_percentiles(metrics.get("Latency") or {}, requests),
    )


def sketch_from_percentiles(latency_seconds: Mapping[str, float], count: int) -> Sketch:
    """A sketch of `count` durations (ms) whose percentiles match the reported ones."""
    sketch = Sketch()
    known = [
        (share, float(latency_seconds[key]) * 1000)
        for key, share in PERCENTILES
        if latency_seconds.get(key) is not None
    ]
    if not known or count <= 0:
        return sketch
    known.append((1.0, known[-1][1]))  # the slowest sliver: at the top reported value
    # Largest-remainder rounding, so the slices add up to exactly `count`.
    bounds = [0.0, *(share for share, _ in known)]
    exact = [(bounds[i + 1] - bounds[i]) * count for i in range(len(known))]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: count - sum(counts)]:
        counts[i] += 1
    for (_, value), n in zip(known, counts, strict=True):
        sketch.add(max(value, 0.0), n)
    return sketch


class BeanstalkSampler:
    """Polls every Beanstalk app in the registry; `resolve` is `Services.resolve`."""

    def __init__(
        self,
        registry: Registry,
        resolve: Any,
        store: MetricsStore,
        backoff: AwsBackoff | None = None,
    ) -> None:
        self._registry = registry
        self._resolve = resolve
        self._store = store
        self._seen: dict[str, datetime] = {}  # the last report stored, per app
        # Per app whose read failed: the failure, and when to ask again.
        self._failing: dict[str, tuple[str, datetime]] = {}
        self.backoff = backoff or AwsBackoff()

    def poll(self, now: datetime | None = None) -> int:
        """Store each app's newest health report once; returns how many windows were new."""
        now = now or datetime.now(UTC)
        stored = 0
        for target in self._registry.targets():
            if target.platform != "beanstalk":
                continue
            account = (target.aws_profile, target.region)
            if self.backoff.waiting(account, now):
                continue  # AWS throttles this account: asked again once the wait is over
            failing = self._failing.get(target.alias)
            if failing is not None and now < failing[1]:
                continue
            try:
                platform = self._resolve(target.alias).platform
                refreshed_at, metrics = platform.health_metrics(target.name)
            except Throttled:
                wait = self.backoff.throttled(account, now)
                log.warning("beanstalk health not sampled: AWS throttles the account",
                            extra={"app": target.alias, "wait": int(wait.total_seconds())})  # fmt: skip
                continue
            except (PlatformError, UnknownApp) as error:
                self._failed(target.alias, str(error), failing, now)
                continue
            self.backoff.answered(account)
            if self._failing.pop(target.alias, None) is not None:
                log.info("beanstalk health sampled again", extra={"app": target.alias})
            if refreshed_at is None or self._seen.get(target.alias) == refreshed_at:
                continue
            self._seen[target.alias] = refreshed_at
            window = window_from_health(target.alias, refreshed_at, metrics)
            if window is not None:
                stored += self._store.save([window])
        return stored

    def _failed(
        self, app: str, error: str, before: tuple[str, datetime] | None, now: datetime
    ) -> None:
        """Say a failed read once, and ask again at the next poll; the same failure again
        (enhanced health turned off, which AWS refuses until it is turned on) is asked
        only every `REPEATED_EVERY`, not every 10 s with a warning each time."""
        if before is None or before[0] != error:
            log.warning("beanstalk health not sampled", extra={"app": app, "error": error})
            self._failing[app] = (error, now)
        else:
            self._failing[app] = (error, now + REPEATED_EVERY)
