"""The detectors' I/O: gather each app's recent traffic windows, autoscaler decisions and
Beanstalk health, and the worker types' decisions (their job-queue endpoint unread), and
let `policies.detectors` say which alert conditions hold now.

The worker's watch tick calls `Detectors.run(now)` and hands the events to
`bot.store.incidents.Alerts.record`. Apps looked at: every app in the registry, plus apps the
bot drains or autoscales without listing them (`allow_unlisted`), so those keep their
incidents too (they have no channel, so nobody is told). One windows query and one or two
decisions queries for the whole fleet (and one for how old the stale apps' newest windows
are), and for a Beanstalk app exactly one `describe_environment_health` call; a platform
failure is logged and skips only that app's health, never the run. After AWS's Throttling
the account's health is not asked until the worker's one backoff (`bot.worker.aws_backoff`,
the health sampler's too) has passed; an unread health keeps its open incident open.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.actions.results import Resolved
from bot.metrics.aggregate import WINDOW_SECONDS, Window
from bot.metrics.store import MetricsStore, merged
from bot.platforms.base import PlatformError, Throttled
from bot.registry import Registry, Target, UnknownApp
from bot.store.autoscale_overrides import Override, OverrideStore
from bot.store.autoscale_settings import AutoscaleStore, Decision, Settings
from bot.store.db import Database, aware
from bot.store.heartbeats import Heartbeats
from bot.store.models import Drain
from bot.store.worker_autoscale_settings import WorkerAutoscaleStore
from bot.worker.autoscale import policy_of
from bot.worker.aws_backoff import AwsBackoff
from policies import autoscale
from policies.detectors import (
    DEFAULT_DETECTOR_RULES,
    AppState,
    DetectorRules,
    Health,
    Minute,
    QueueRead,
    ScaleDecision,
    detect,
)
from policies.incidents import Event
from policies.sketch import Sketch
from policies.slack_text import unescape
from policies.worker_autoscale import is_unread

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

LOOKBACK = timedelta(minutes=15)  # covers the longest run a detector needs, and some
DRAIN_SILENT = timedelta(hours=1)


class Detectors:
    def __init__(
        self,
        db: Database,
        registry: Registry,
        resolve: Callable[[str], Resolved],
        rules: DetectorRules = DEFAULT_DETECTOR_RULES,
        lookback: timedelta = LOOKBACK,
        backoff: AwsBackoff | None = None,
    ) -> None:
        self._db = db
        self._registry = registry
        self._resolve = resolve
        self._rules = rules
        self._lookback = lookback
        self._metrics = MetricsStore(db)
        self._heartbeats = Heartbeats(db)
        self._autoscale = AutoscaleStore(db)
        self._workers = WorkerAutoscaleStore(db)
        self._unread: set[tuple[str, str]] = set()  # `unobserved`, gathered during a run
        self._backoff = backoff or AwsBackoff()

    @classmethod
    def from_services(
        cls,
        services: Services,
        rules: DetectorRules = DEFAULT_DETECTOR_RULES,
        backoff: AwsBackoff | None = None,
    ) -> Detectors:
        """Wired from a `bot.services.Services`: its database, registry and platforms."""
        return cls(services.db, services.registry, services.resolve, rules, backoff=backoff)

    @property
    def unobserved(self) -> frozenset[tuple[str, str]]:
        """The (app, kind) pairs the last `run` could not look at: a Beanstalk environment
        whose health could not be read. Its open health alert is then kept open, not
        resolved as if the silence meant it was healthy again."""
        return frozenset(self._unread)

    def run(self, now: datetime | None = None, only: str | None = None) -> list[Event]:
        """The events every app's conditions give at `now`, apps in name order (`only`:
        just that app's)."""
        now = now or datetime.now(UTC)
        self._unread = set()
        autoscaled = {s.app: s for s in self._autoscale.all_enabled()}
        queued = {s.app for s in self._workers.all_enabled()}
        drained = self._drains()
        listed = set(self._registry.aliases())
        apps = listed | set(autoscaled) | set(drained)
        names = sorted(apps if only is None else apps & {only})
        targets: dict[str, Target | None] = {}
        for app in names:
            try:
                targets[app] = self._registry.resolve(app)
            except UnknownApp:
                targets[app] = None  # drained or autoscaled without being listed
        rules = {app: _rules_for(self._rules, targets[app]) for app in names}
        # The fleet's windows and decisions in a query each: one per app had been 3,000
        # statements a minute at a thousand apps.
        end = int(now.timestamp())
        since = end - int(self._lookback.total_seconds())
        documents = self._metrics.documents_of(names, since, end + 1)
        watched = [app for app in names if app in autoscaled]
        decided_since = {
            app: now - rules[app].pinned_for - rules[app].decision_gap * 2 for app in watched
        }
        recent = self._autoscale.recent_decisions(
            watched, min(decided_since.values(), default=now), limit=1000, reasons=False
        )
        recent = {
            app: [d for d in recent.get(app, []) if d.at >= decided_since[app]] for app in watched
        }
        # What runs now, for an app whose autoscaler has not ticked lately.
        latest = self._autoscale.latest_decisions([app for app in watched if not recent[app]])
        queue_reads = self._queue_reads([app for app in names if app in queued], now, rules)
        # Chat's schedule windows (`autoscale APP schedule add`) move the min and max as the
        # registry's do: the autoscaler works within them, so "at its max" must too.
        overrides = OverrideStore(self._db).of_apps(set(watched))
        decoded: dict[str, list[Window]] = {}
        for app in names:
            try:
                decoded[app] = merged(documents.get(app, []), since)
            except ValueError as error:
                _skipped(app, error)
        # How old the newest stored window is, only for apps whose lookback held none and
        # that staleness looks at: one query for them all, not one each.
        quiet = [
            app
            for app, seen in decoded.items()
            if not seen and (app in autoscaled or app in drained)
        ]
        stored = {
            app: ended for app, (_, ended) in self._heartbeats.newest_traffic(quiet, now).items()
        }
        events: list[Event] = []
        for app, seen in decoded.items():
            try:
                state = self._state(
                    app,
                    targets[app],
                    now,
                    (autoscaled.get(app), overrides.get(app, {})),
                    drained.get(app),
                    (seen, stored.get(app)),
                    (recent.get(app, []), latest.get(app)),
                )
                if app in queue_reads:
                    state = replace(state, queue_reads=queue_reads[app])
            except ValueError as error:
                _skipped(app, error)
                continue
            events += detect(state, now, rules[app])
        return events

    def _state(
        self,
        app: str,
        target: Target | None,
        now: datetime,
        autoscaling: tuple[Settings | None, dict[str, Override]],
        drain_since: datetime | None,
        traffic: tuple[list[Window], datetime | None],
        decided: tuple[list[Decision], Decision | None],
    ) -> AppState:
        """`traffic`: the app's windows in the lookback, and when its newest stored one
        ended (asked only when the lookback held none). `decided`: the app's recent web
        decisions, newest first, and its newest one when none is recent. `autoscaling`: its
        `/deploy autoscale` settings, if on, and what chat changed of them."""
        settings, overrides = autoscaling
        windows, stored = traffic
        recent, latest = decided
        newest = _newest_end(windows)
        low, high = _bounds(settings, target, overrides, now) if settings else (None, None)
        expected: list[datetime] = []
        # The newest decision says what runs (an older one when the autoscaler has not
        # ticked lately).
        running = recent[0] if recent else latest
        at_min = running is not None and low is not None and running.actual <= low
        if settings is not None and low is not None and not at_min:
            # The autoscaler decides from these windows: without them it cannot scale down,
            # which matters only while it runs more than its min (an app idle at night
            # sends no router logs and is at its min already: no news).
            expected.append(aware(settings.updated_at))
        if newest is None and (expected or drain_since is not None):
            newest = stored  # only staleness needs to know how old
        if drain_since is not None and not expected:
            # Router logs come only with requests, so a drained app that is merely idle
            # sends nothing: only a drain that never delivered in an hour looks broken.
            never = newest is None or newest < drain_since
            if never and now - drain_since >= DRAIN_SILENT:
                expected.append(drain_since)
        return AppState(
            app=app,
            minutes=tuple(minutes_of(windows)),
            newest_metrics=newest,
            watched_since=min(expected) if expected else None,
            decisions=tuple(ScaleDecision(d.at, d.desired) for d in recent),
            autoscale_min=low,
            autoscale_max=high,
            health=self._health(app, target, now),
        )

    def _queue_reads(
        self, apps: list[str], now: datetime, rules: dict[str, DetectorRules]
    ) -> dict[str, tuple[QueueRead, ...]]:
        """Each app's worker types' recent decisions, each with its reason when the endpoint
        was not read (as the alert shows it: the stored reason is Slack text already). One
        query for them all: one an app had been a thousand a minute at a thousand apps."""
        if not apps:
            return {}
        since = {
            app: now - rules[app].queue_unread_for - rules[app].decision_gap * 2 for app in apps
        }
        found = self._autoscale.recent_decisions(
            apps, min(since.values(), default=now), limit=1000, web=False
        )
        return {
            app: tuple(
                QueueRead(d.at, d.process_type, unescape(d.reason) if is_unread(d.reason) else None)
                for d in found.get(app, [])
                if d.at >= since[app]
            )
            for app in apps
        }

    def _health(self, app: str, target: Target | None, now: datetime) -> Health | None:
        """Beanstalk enhanced health, one describe call; None for other apps or on failure."""
        if target is None or target.platform != "beanstalk":
            return None  # an unlisted app is a Heroku one: no health to read
        account = (target.aws_profile, target.region)
        if self._backoff.waiting(account, now):
            self._unread.add((app, "health"))  # AWS throttles the account: not asked now
            return None
        try:
            platform = self._resolve(app).platform
            if getattr(platform, "name", None) != "beanstalk":
                return None
            found = platform.environment_health(target.name)
        except PlatformError as error:
            if isinstance(error, Throttled):
                self._backoff.throttled(account, now)
            log.warning("beanstalk health not read", extra={"app": app, "error": str(error)})
            self._unread.add((app, "health"))
            return None
        self._backoff.answered(account)
        return Health(
            color=found.get("Color"),
            status=found.get("HealthStatus"),
            causes=tuple(str(c) for c in found.get("Causes") or ()),
        )

    def _drains(self) -> dict[str, datetime]:
        """Apps with a drain the bot made, and when: from then on their metrics are due."""
        with self._db.session() as session:
            return {
                app: aware(created)
                for app, created in session.execute(select(Drain.app, Drain.created_at))
            }


def _skipped(app: str, error: ValueError) -> None:
    # A stored window that does not parse: skip the app, keep the rest.
    log.warning("detectors skipped an app", extra={"app": app, "error": str(error)})


def _rules_for(rules: DetectorRules, target: Target | None) -> DetectorRules:
    """The thresholds, with what the app's `alerts:` in the registry changes."""
    changes = target.alert_rules if target is not None else {}
    return replace(rules, **changes) if changes else rules


def _bounds(
    settings: Settings, target: Target | None, overrides: dict[str, Override], now: datetime
) -> tuple[int, int]:
    """The min and max the autoscaler works within now: a schedule window's (the registry's,
    else chat's), if one covers `now`, else the settings', read from the tick's own policy.
    An app the registry no longer resolves has no windows (nor any tick: `pinned` needs its
    decisions)."""
    if target is None:
        return settings.min, settings.max
    low, high, _ = autoscale.bounds(policy_of(settings, target, overrides), now)
    return low, high


def minutes_of(windows: Iterable[Window]) -> list[Minute]:
    """10-second windows folded into whole minutes, oldest first (sketches merged, so the
    minute's p95 is over all its requests, not an average of six p95s)."""
    grouped: dict[int, list[Window]] = {}
    for window in windows:
        grouped.setdefault(window.start // 60 * 60, []).append(window)
    minutes = []
    for start in sorted(grouped):
        inside = grouped[start]
        service = Sketch()
        codes: dict[str, int] = {}
        for window in inside:
            service.merge(window.service)
            for code, n in window.codes.items():
                codes[code] = codes.get(code, 0) + n
        minutes.append(
            Minute(
                start=datetime.fromtimestamp(start, UTC),
                requests=sum(w.requests for w in inside),
                errors=sum(w.statuses.get("5xx", 0) for w in inside),
                codes=codes,
                service_p95_ms=service.quantile(0.95) if service.count else None,
            )
        )
    return minutes


def _newest_end(windows: list[Window]) -> datetime | None:
    if not windows:
        return None
    return datetime.fromtimestamp(max(w.start for w in windows) + WINDOW_SECONDS, UTC)
