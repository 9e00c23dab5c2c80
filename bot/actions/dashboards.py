"""The read-only dashboard verbs: `/deploy chart`, `/deploy cost` and `/deploy about`.

They gather what the stores already hold (traffic windows, the audit trail, the
autoscaler's decisions, incidents, heartbeats) into plain results; `handlers/` draws and
words them. Nothing here changes anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from bot.actions.health import Health
from bot.actions.results import (
    AppCard,
    AppCost,
    Chart,
    CostReport,
    Digest,
    Reply,
    Resolved,
    Result,
    no_traffic_hint,
)
from bot.metrics.aggregate import WINDOW_SECONDS
from bot.metrics.chart_data import ChartData, Mark, Shade, bucket_seconds, buckets, web_steps
from bot.metrics.store import MetricsStore
from bot.platforms.base import Platform, PlatformError, formation_map
from bot.registry import Target, UnknownApp
from bot.store.audit import AuditLog, Entry
from bot.store.autoscale_settings import AutoscaleStore, Decision, Pin, Settings
from bot.store.drains import Drains
from bot.store.incidents import Alerts
from bot.store.models import IncidentRow
from bot.store.throttles import LOW_REMAINING
from policies import costs, digest
from policies.incidents import SEVERITIES, headline, icon, key_subject
from policies.slack_text import clip, code, escape, moment

COST_DAYS = 7
# Audit rows read back for a chart's scaling marks: a busy week of autoscaling fits.
_AUDIT_ROWS = 2000
_DECISIONS = 50_000


_RANK = {severity: i for i, severity in enumerate(SEVERITIES)}

FORMATION_READS = 8  # formation reads in flight at once: a Home page, a batch of `cost`


def _account(target: Target) -> str | None:
    return target.api_key_env if target.platform == "heroku" else None


_KEPT = (
    f"not priced: its Heroku account has fewer than {LOW_REMAINING} API calls left this "
    "hour, kept for changes and the autoscaler; `/deploy cost APP` prices one app"
)


class Dashboards:
    def __init__(
        self,
        resolve: Callable[[str], Resolved],
        metrics: MetricsStore,
        audit: AuditLog,
        autoscale: AutoscaleStore,
        alerts: Alerts,
        drains: Drains,
        health: Health,
        now: Callable[[], datetime],
    ) -> None:
        self._resolve = resolve
        self._metrics = metrics
        self._audit = audit
        self._autoscale = autoscale
        self._alerts = alerts
        self._drains = drains
        self.health = health
        self._now = now

    def chart(self, app: str, minutes: int) -> Result:
        """The numbers for `app`'s chart over the last `minutes`, or why there are none."""
        resolved = self._resolve(app)
        step = bucket_seconds(minutes)
        until = (int(self._now().timestamp()) // step + 1) * step
        data = self.chart_between(resolved, until - minutes * 60, until, step)
        if data is None:
            if resolved.target.platform != "heroku":
                hint = (
                    "The worker stores the environment's enhanced health report every "
                    f"{WINDOW_SECONDS} seconds: is it running, and is enhanced health on? "
                    f"`/deploy metrics {app}` reads CloudWatch now."
                )
            else:
                hint = no_traffic_hint(app, self._drains.get(app) is not None)
            span = f"{minutes // 60} h" if minutes < 2 * 24 * 60 else f"{minutes // 1440} days"
            return Reply(
                f"No requests recorded for {code(app)} in the last {span}, so there is nothing "
                f"to chart. {hint}"
            )
        if data.under_way and not any(data.requests[:-1]):
            # Counted but not drawn (its few seconds as a rate): the image had been empty.
            return Reply(
                f"{code(app)} has requests only in the minute under way ({data.total:,} so "
                "far), which a chart does not draw until it ends: try again in a minute."
            )
        return Chart(data)

    def chart_between(
        self,
        resolved: Resolved,
        since: int,
        until: int,
        step: int,
        decided: list[Decision] | None = None,
    ) -> ChartData | None:
        """The chart's numbers for [since, until) in `step`-second buckets; None when no
        request was recorded then (a chart of nothing says nothing). `decided`: the
        autoscaler's decisions of the span, when the caller has read them already."""
        app = resolved.target.alias
        windows = self._metrics.windows(app, since, until)
        requests, service, queue = buckets(windows, since, until, step)
        if not sum(requests):
            return None
        marks = self._marks(app, datetime.fromtimestamp(since, UTC), until, decided)
        current = self._web_count(resolved)
        if until < self._now().timestamp() - step:
            # A past day ended with the count of its last change, not today's (a scale this
            # morning had drawn all of yesterday at this morning's count).
            current = self._count_at(app, until, marks, decided, current)
        settings = self._autoscale.settings(app)
        target = (
            (settings.target_kind, settings.target_value)
            if settings and settings.mode in ("on", "shadow")
            else None
        )
        return ChartData(
            app=app,
            since=since,
            until=until,
            step=step,
            requests=requests,
            service_p95=service,
            queue_p95=queue,
            web=web_steps(marks, current, since, until),
            marks=tuple(marks),
            shades=self._shades(app, since, until),
            target=target,
            unit=resolved.platform.unit,
            under_way=until > self._now().timestamp(),
        )

    def _count_at(
        self,
        app: str,
        until: int,
        marks: list[Mark],
        decided: list[Decision] | None,
        current: int | None,
    ) -> int | None:
        """The web count at `until`, past: the last change's, else the last tick's before it,
        else what the first change since found; `current` when nothing says."""
        if marks:
            return marks[-1].after
        ticks = [d for d in decided or () if d.at.timestamp() < until]
        if ticks:
            return max(ticks, key=lambda d: d.at).actual
        later = self._marks(app, datetime.fromtimestamp(until, UTC), self._now().timestamp())
        return later[0].before if later else current

    def _marks(
        self, app: str, since: datetime, until: float, decided: list[Decision] | None = None
    ) -> list[Mark]:
        """Every change of the web count: the autoscaler's from its decisions (stamped with
        the tick's time; `decided`, when read already), people's from the audit trail."""
        if decided is None:
            decided = self._autoscale.decisions(app, _DECISIONS, since=since)
        marks = [
            Mark(d.at.timestamp(), d.actual, d.desired, "autoscaler")
            for d in decided
            if d.acted and d.desired != d.actual and d.at.timestamp() < until
        ]
        for entry in self._audit.recent(app, _AUDIT_ROWS):
            if entry.started_at < since:
                break  # newest first: the rest are older still
            if entry.source == "autoscaler" or entry.verb not in ("scale", "kill"):
                continue
            before = (entry.before or {}).get("web")
            after = (entry.after or {}).get("web")
            if entry.started_at.timestamp() >= until:
                continue
            if entry.outcome == "ok" and before and after and before[0] != after[0]:
                marks.append(Mark(entry.started_at.timestamp(), before[0], after[0], entry.user_id))
        return sorted(marks, key=lambda mark: mark.at)

    def _shades(self, app: str, since: int, until: int) -> tuple[Shade, ...]:
        shades = []
        window = (datetime.fromtimestamp(since, UTC), datetime.fromtimestamp(until, UTC))
        for row in self._alerts.openings(app, *window):
            if row.severity == "info":
                continue  # a release, a formation change: notices, not trouble to shade
            start = _epoch(row.opened_at)
            end = _epoch(row.last_at) if row.resolved else until
            if end >= since and start < until:
                # Said as its alert says it (Slack text): "router errors `H12`", not the
                # store's "router_error", the same for H12 and H13.
                label = headline(row.kind, key_subject(row.key, row.kind, app))
                shades.append(Shade(max(start, since), min(max(end, start + 60), until), label))
        return tuple(shades)

    def _web_count(self, resolved: Resolved) -> int | None:
        try:
            formation = formation_map(resolved.platform.formation(resolved.target.name))
        except PlatformError:
            return None
        return formation.get("web", (0, ""))[0] if formation else None

    def cost(self, targets: list[Target], every_app: bool = False) -> CostReport:
        """Each app's monthly cost at list prices, and its last week of web dyno-hours.
        `every_app` adds the apps the autoscaler runs that the registry does not list
        (unlisted Heroku apps reached by their own name)."""
        now = self._now()
        if every_app:
            targets = self.targets(targets)
        priced: list[AppCost] = []
        kept: set[str] = set()  # Heroku accounts down to the autoscaler's reserve
        since = now - timedelta(days=COST_DAYS)
        hours = {
            app: costs.dyno_hours(samples, now.timestamp())
            for app, samples in self._autoscale.web_counts([t.alias for t in targets], since)
        }
        # A batch at a time: an account found low stops the next batches' reads.
        for start in range(0, len(targets), FORMATION_READS):
            batch = [
                (target, None if _account(target) in kept else target)
                for target in targets[start : start + FORMATION_READS]
            ]
            reads = self._read_formations([t for _, t in batch])
            for (target, asked), read in zip(batch, reads, strict=True):
                if asked is None:
                    priced.append(AppCost(target.alias, target.platform, {}, None, _KEPT))
                    continue
                priced.append(self._app_cost(target, read, hours.get(target.alias)))
                remaining = self._remaining(target)
                # One read per app: a fleet's sweep would spend the hour's calls that
                # changes and the autoscaler need.
                account = _account(target)
                if account and remaining is not None and remaining < LOW_REMAINING:
                    kept.add(account)
        return CostReport(tuple(priced), COST_DAYS, reserve_kept=bool(kept))

    def _read_formations(
        self, targets: Sequence[Target | None]
    ) -> list[dict[str, tuple[int, str]] | str | None]:
        """`_read_formation` of each of `targets`, FORMATION_READS in flight at once: one
        after another, a Home page of 15 apps waited on 15 round trips to Heroku in turn,
        and a thousand apps' `cost` held one of the web's two job threads for minutes."""
        if len(targets) <= 1:
            return [self._read_formation(target) for target in targets]
        workers = min(FORMATION_READS, len(targets))
        with ThreadPoolExecutor(workers, thread_name_prefix="formation") as pool:
            return list(pool.map(self._read_formation, targets))

    def _read_formation(self, target: Target | None) -> dict[str, tuple[int, str]] | str | None:
        """The app's formation, or why it cannot be read; None for an app not to be read."""
        if target is None:
            return None
        try:
            resolved = self._resolve(target.alias)
            return formation_map(resolved.platform.formation(target.name))
        except (PlatformError, UnknownApp) as error:
            return str(error)

    def _remaining(self, target: Target) -> int | None:
        """The Heroku account's calls left this hour, as its last answer said."""
        try:
            platform = self._resolve(target.alias).platform
        except (PlatformError, UnknownApp):  # its key is not set: said on its own line
            return None
        remaining = getattr(platform, "rate_limit_remaining", None)
        return remaining if isinstance(remaining, int) else None

    def _app_cost(
        self,
        target: Target,
        formation: dict[str, tuple[int, str]] | str | None,
        hours: tuple[float, float] | None,
    ) -> AppCost:
        """The app's cost from its formation (or why it has none) and its web (dyno-hours,
        hours covered) over COST_DAYS, None without the autoscaler's record."""
        if isinstance(formation, str) or formation is None:
            return AppCost(target.alias, target.platform, {}, None, problem=formation)
        monthly = costs.monthly_cost(target.platform, formation)
        if hours is None:
            return AppCost(target.alias, target.platform, formation, monthly)
        size = formation.get("web", (0, ""))[1]
        hourly = costs.hourly_price(target.platform, size) if size else None
        return AppCost(
            target.alias,
            target.platform,
            formation,
            monthly,
            web_hours=hours[0],
            covered_hours=hours[1],
            web_usd=None if hourly is None else hours[0] * hourly,
        )

    def cards(self, targets: Sequence[Target]) -> tuple[AppCard, ...]:
        """What App Home shows of each of `targets`: formation, autoscaler, incidents,
        changes, cost. The stores are read once a kind for the whole page: five statements
        a card had been 75 a page of 15, on a database of 20 connections."""
        now = self._now()
        apps = [target.alias for target in targets]
        settings = self._autoscale.settings_of(apps)
        pins = self._autoscale.pins(now, apps)
        latest = self._autoscale.latest_decisions(apps)
        incidents = self._alerts.open_of(apps)
        changes = self._audit.recent_of(apps, 3)
        reads = self._read_formations(targets)
        return tuple(
            self._card(
                target,
                read,
                now,
                settings.get(target.alias),
                pins.get(target.alias),
                latest.get(target.alias),
                incidents.get(target.alias, []),
                changes.get(target.alias, []),
            )
            for target, read in zip(targets, reads, strict=True)
        )

    def _card(
        self,
        target: Target,
        read: dict[str, tuple[int, str]] | str | None,
        now: datetime,
        settings: Settings | None,
        pin: Pin | None,
        decision: Decision | None,
        open_rows: list[IncidentRow],
        changes: list[Entry],
    ) -> AppCard:
        formation: dict[str, tuple[int, str]] | None = None
        problem = monthly = None
        # `read`: the card's one formation read (a Heroku or AWS call), its dynos and price.
        if isinstance(read, str):
            problem = read
        elif read is not None:
            formation, monthly = read, costs.monthly_cost(target.platform, read)
        if target.platform == "beanstalk":
            # Never this bot's to autoscale (`autoscale` refuses it): "off" had read as unscaled.
            autoscale = ["Autoscaling: by its Auto Scaling group (set in Beanstalk)"]
        else:
            autoscale = [f"Autoscaling: {settings.describe() if settings else 'off'}"]
        if pin:
            autoscale.append(f"Pinned at web={pin.quantity} until {moment(pin.until, now)}")
        if decision is not None:
            mark = "acted" if decision.acted else "held"
            autoscale.append(f"Last decision {moment(decision.at, now)}, {mark}: {decision.reason}")
        # The card shows the first few: the worst and latest, so a crash is never the one
        # left out behind older warnings.
        ordered = sorted(
            open_rows, key=lambda row: (_RANK.get(row.severity, 1), row.last_at), reverse=True
        )
        incidents = tuple(
            f"{icon(row.severity)} {headline(row.kind, row.subject)}"
            + (f": {escape(clip(' '.join(row.detail.split()), 200))}" if row.detail else "")
            for row in ordered
        )
        return AppCard(
            alias=target.alias,
            platform=target.platform,
            formation=formation,
            problem=problem,
            autoscale=tuple(autoscale),
            incidents=incidents,
            changes=tuple(changes),
            monthly=monthly,
        )

    def targets(self, listed: list[Target]) -> list[Target]:
        """The registry's apps plus unlisted ones the autoscaler runs, by alias."""
        known = {target.alias for target in listed}
        extra = []
        for settings in self._autoscale.all_enabled():
            if settings.app not in known:
                try:
                    extra.append(self._resolve(settings.app).target)
                except (PlatformError, UnknownApp):
                    continue  # no longer reachable: nothing to show
        return sorted([*listed, *extra], key=lambda target: target.alias)

    def digest(self, target: Target, day: date, start: datetime, end: datetime) -> Digest:
        """`target`'s numbers for the local `day`, which runs from `start` to `end`."""
        try:
            resolved = self._resolve(target.alias)
        except PlatformError as error:
            # Its API key is not set: the day is all in the database but the web size.
            resolved = Resolved(target, cast(Platform, _Unreachable(error)))
        since, until = int(start.timestamp()), int(end.timestamp())
        zone = ZoneInfo(target.digest.timezone if target.digest else "UTC")
        windows = self._metrics.windows(target.alias, since, until)
        hourly = digest.by_hour(((w.start, w.requests) for w in windows), since, until)
        # Plain columns and no reasons: a day of 15-second ticks is 5,760 rows an app.
        recent = self._autoscale.recent_decisions([target.alias], start, _DECISIONS, reasons=False)
        decisions = [d for d in recent.get(target.alias, []) if d.at < end]
        samples = sorted((d.at.timestamp(), d.actual) for d in decisions)
        size, unreadable = self._web_size(resolved)
        numbers = digest.day_numbers(target.platform, size, samples, since, until, hourly)
        # Read once: the day's numbers, its scale actions and its chart each had read them.
        marks = self._marks(target.alias, start, until, decisions)
        actions = tuple(
            digest.Span(
                mark.at,
                marks[i + 1].at if i + 1 < len(marks) else until,
                f"web {mark.before} → {mark.after} by "
                + ("the autoscaler" if mark.by == "autoscaler" else f"<@{mark.by}>"),
            )
            for i, mark in enumerate(marks)
        )
        incidents = tuple(
            digest.Span(shade.start, shade.end, shade.label)
            for shade in self._shades(target.alias, since, until)
        )
        chart = self.chart_between(resolved, since, until, bucket_seconds(24 * 60), decisions)
        if chart is not None:
            chart = replace(chart, zone=zone.key, heading=digest.day_words(day))
        return Digest(
            app=target.alias,
            day=day,
            timezone=zone.key,
            numbers=numbers,
            actions=actions,
            incidents=incidents,
            chart=chart,
            estimate=target.platform == "beanstalk",
            unreadable=str(unreadable) if unreadable else None,
            unit=resolved.platform.unit,
        )

    def _web_size(self, resolved: Resolved) -> tuple[str | None, PlatformError | None]:
        """The web size, or None and why: the digest says why it has no prices."""
        try:
            formation = formation_map(resolved.platform.formation(resolved.target.name))
        except PlatformError as error:
            return None, error
        return formation.get("web", (0, None))[1], None


class _Unreachable:
    """A platform the bot has no key for, in the digest's place: reading the formation says
    why (the readers treat it as an unknown formation), and the unit is the platform's."""

    def __init__(self, error: PlatformError) -> None:
        self._error = error
        self.unit = "dyno"  # only Heroku needs a key of the bot's own

    def formation(self, name: str) -> object:
        raise self._error


def _epoch(moment: datetime) -> int:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
