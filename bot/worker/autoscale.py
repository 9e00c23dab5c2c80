"""The autoscale tick: for each app with autoscaling on (or in shadow), decide the web dyno
count from its drained traffic (`policies.autoscale.decide`) and, when on and different
from what runs, scale through the same actions path a person's command takes.

Level-triggered: every tick recomputes from the database and what runs, so a missed or
repeated tick changes nothing; the only durable state is what `bot.store.autoscale_settings` keeps.

Heroku gives an account 4,500 API requests an hour, shared with the people using the bot,
so what runs is not read every tick: the web formation is known from our own writes (the
scale result), from Heroku's formation webhooks (`observe_formation`) and from a periodic
refresh (`DEPLOYBOT_FORMATION_REFRESH_SECONDS`, default 300). An app in steady state costs
no API call between refreshes. Each account's calls go through a token bucket
(`policies.budget`) that mirrors `RateLimit-Remaining` and keeps a reserve for people: when
it says no, the app's tick is skipped and logged. Dynos are listed (for `booting`) only in
the two minutes after our own scale-up, until they are all up. The seasonal forecast reads
yesterday's and last week's stored minutes, reloaded every few minutes, never the API.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from bot.actions.autoscaling import effective
from bot.actions.gate import AUTOSCALER
from bot.actions.results import Changed, Reply
from bot.metrics.store import MetricsStore
from bot.platforms.base import Platform, PlatformError, formation_map
from bot.registry import Target, UnknownApp
from bot.services import Resolved, Services
from bot.store.audit import Actor
from bot.store.autoscale_overrides import Override
from bot.store.autoscale_settings import AutoscaleStore
from bot.store.autoscale_settings import Decision as Recorded
from bot.store.autoscale_settings import Settings as StoredSettings
from policies import autoscale
from policies.budget import Budget
from policies.commands import parse
from policies.sketch import Sketch

log = logging.getLogger(__name__)

SAMPLE_MINUTES = 6  # the policy looks at the last few minutes
HISTORY = timedelta(minutes=10)
_METRIC = {"queue_p95": "queue_p95", "service_p95": "service_p95", "rpm": "rpm_per_dyno"}
FORMATION_REFRESH = timedelta(minutes=5)  # catches what a lost webhook did not tell us
BOOT_WATCH = timedelta(minutes=2)  # dynos take 30-60 s to boot; after that, stop asking
FORECAST_RELOAD = timedelta(minutes=5)  # the seasonal history barely changes in between
SCALE_COST = 2  # the actions path reads the formation, then writes it
PROCESS = "web"


@dataclass(frozen=True)
class Known:
    """What we believe an app's web formation is, and since when."""

    quantity: int
    refreshed_at: datetime  # last read from the platform: the periodic refresh counts from it
    changed_at: datetime  # last change we saw (our write, a webhook, a read that differed)
    scaled_up_at: datetime | None = None  # our own scale-up whose dynos may still be booting


@dataclass(frozen=True)
class _History:
    loaded_at: datetime
    minutes: dict[int, float]


class Autoscaler:
    def __init__(
        self,
        services: Services,
        notify: Callable[[str | None, str], None],
        *,
        formation_refresh: timedelta | None = None,
        budget: Budget | None = None,
    ) -> None:
        self._services = services
        self.notify = notify  # the worker-type tick says its actions the same way
        self._store = AutoscaleStore(services.db)
        self._metrics = MetricsStore(services.db)
        self._notify = notify
        self._refresh = formation_refresh or _refresh_from_env()
        self._fresh_budget = budget or Budget()
        # Per Heroku account (its API key's variable), as Heroku counts per account.
        self._budgets: dict[str, Budget] = {}
        self._known: dict[str, Known] = {}  # by the platform's app name
        self._history: dict[str, _History] = {}
        # The scheduler runs ticks on its thread pool; `known()` and `budget()` may be read
        # from another thread (status, tests).
        self._lock = threading.Lock()

    def tick(self, now: datetime | None = None, only: str | None = None) -> list[Recorded]:
        """Decide (and act) for every app with autoscaling on or in shadow (`only`: for that
        app alone, as the sandbox's spike play ticks on its own clock)."""
        now = now or datetime.now(UTC)
        enabled = [s for s in self._store.all_enabled() if only is None or s.app == only]
        releases = self._observe({s.app for s in enabled if s.mode == "on"})
        done = []
        for settings in enabled:
            try:
                recorded = self._one(settings, now, releases.get(settings.app))
            except (PlatformError, UnknownApp) as error:
                log.warning(
                    "autoscale tick skipped", extra={"app": settings.app, "error": str(error)}
                )
                self._forget(settings.app)  # what we knew may be why it failed: read next time
                continue
            if recorded is not None:
                done.append(recorded)
        return done

    def _observe(self, acting: set[str]) -> dict[str, datetime]:
        """Take in what Heroku's webhooks told the web dyno (`bot.store.observations`): formation
        changes made by hand, and releases for the deploy guard. One query a tick; only the
        newest observation per app and subject is stored, so this stays small, and reading
        all of it every time means a late webhook is never skipped. A hand-made change to
        an app the autoscaler acts on (`acting`, by alias) is said in its channel once,
        with how to make it stick. Returns each app's last release time, by alias."""
        releases: dict[str, datetime] = {}
        for seen in self._services.observations.since(None):
            if seen.kind == "release":
                releases[seen.app] = max(seen.observed_at, releases.get(seen.app, seen.observed_at))
                continue
            try:
                target = self._services.registry.resolve(seen.app)
            except UnknownApp:
                continue  # no longer reachable: nothing to autoscale
            changed = self.observe_formation(
                target.name, seen.subject, seen.value, seen.observed_at
            )
            if changed and seen.app in acting:
                by = f" ({seen.detail})" if seen.detail else ""
                self._notify(
                    target.channel,
                    f"Autoscaler on `{seen.app}`: web was set to {seen.value} outside the "
                    f"bot{by}; I go on from there. To hold it, `/deploy pin {seen.app} "
                    f"web={seen.value} for 2h`.",
                )
        return releases

    def observe_formation(self, app: str, process_type: str, quantity: int, at: datetime) -> bool:
        """Heroku said (a formation webhook, stored by the web dyno) that `app`'s
        `process_type` now runs `quantity` dynos, as of `at`: believe it at once, so a
        hand-made scale is not undone by a tick working from an old count. `app` is the
        platform's name of the app. A report older than what we know is ignored: webhooks
        can arrive late and out of order. True when it changed what we believed (not when
        it is the first we hear of the app)."""
        if process_type != PROCESS:
            return False  # only web dynos are autoscaled
        with self._lock:
            known = self._known.get(app)
            if known is None:
                # As good as a read: an old one is simply read again when its refresh is due.
                self._known[app] = Known(quantity, at, at)
                return False
            if at < known.changed_at or quantity == known.quantity:
                return False
            self._known[app] = replace(known, quantity=quantity, changed_at=at)
        return True

    def known(self, app: str) -> Known | None:
        """What the cache holds for `app` (the platform's name), for status and tests."""
        with self._lock:
            return self._known.get(app)

    def budget(self, account: str) -> Budget:
        """The token bucket of a Heroku account (its API key's variable name)."""
        with self._lock:
            return self._budgets.get(account, self._fresh_budget)

    def _one(
        self, stored: StoredSettings, now: datetime, last_release_at: datetime | None = None
    ) -> Recorded | None:
        app = stored.app
        resolved = self._services.resolve(app)
        if resolved.target.platform != "heroku":
            return None  # refused by `/deploy autoscale`; settings from before are ignored
        name, platform = resolved.target.name, resolved.platform
        account = _account(resolved.target)
        known = self.known(name)
        read_formation = known is None or now - known.refreshed_at >= self._refresh
        watch_boot = (
            known is not None
            and known.scaled_up_at is not None
            and now - known.scaled_up_at <= BOOT_WATCH
        )
        cost = int(read_formation) + int(watch_boot)
        if cost and not self._allows(account, now, cost, app):
            return None

        if read_formation:
            current = self._read_formation(name, platform, account, now)
        else:
            assert known is not None
            current = known.quantity
        booting = self._booting(name, platform, account, now) if watch_boot else None

        policy = _policy(stored, resolved.target, self._store.overrides().of_app(app))
        past = self._store.decisions(app, limit=200, since=now - HISTORY)
        pin = self._store.pin(app, now)
        decision = autoscale.decide(
            policy,
            current,
            self._samples(app, now),
            now,
            recommendations=[autoscale.Recommendation(d.at, d.recommendation) for d in past],
            events=[autoscale.ScaleEvent(d.at, d.actual, d.desired) for d in past if d.acted],
            booting=booting,
            forecast=self._forecast(app, policy, now),
            last_release_at=last_release_at,
            pin=autoscale.Pin(pin.quantity, pin.until, pin.pinned_by) if pin else None,
        )
        acted, reason = False, decision.reason
        if stored.mode == "on" and decision.desired != current:
            if not self._allows(account, now, SCALE_COST, app):
                return None
            acted, reason = self._scale(resolved, app, decision, reason, account, now)
        if decision.stale:
            log.warning("autoscale metrics stale", extra={"app": app})
        recorded = Recorded(
            app, now, current, decision.desired, acted, reason, decision.recommendation
        )
        self._store.record(recorded)
        log.info(
            "autoscale decision",
            extra={
                "app": app,
                "mode": stored.mode,
                "current": current,
                "desired": decision.desired,
                "booting": booting,
                "api_calls": cost + (SCALE_COST if acted else 0),
            },
        )
        return recorded

    def _scale(
        self,
        resolved: Resolved,
        app: str,
        decision: autoscale.Decision,
        reason: str,
        account: str | None,
        now: datetime,
    ) -> tuple[bool, str]:
        target = resolved.target
        actor = Actor(AUTOSCALER, channel_id=target.channel, source=AUTOSCALER)
        try:
            result = self._services.actions.run(actor, parse(f"scale web={decision.desired} {app}"))
        finally:
            # Spent whatever happened: a refusal by a guardrail costs nothing, but we cannot
            # tell here how far it got, and Heroku's header below corrects the guess.
            self._spent(account, resolved.platform, now, SCALE_COST)
        acted = isinstance(result, Changed)
        if acted:
            after = formation_map(result.after).get(PROCESS, (decision.desired, ""))[0]
            with self._lock:
                self._known[target.name] = Known(
                    after,
                    # Heroku answered with the formation: as good as a read.
                    refreshed_at=now,
                    changed_at=now,
                    scaled_up_at=now if after > decision.current else None,
                )
        else:
            # A guardrail or a platform error said no: say why, in the app's channel.
            why = result.text if isinstance(result, Reply) else type(result).__name__
            reason = f"{reason} Not done: {why}"
        self._notify(target.channel, f"Autoscaler on `{app}`: {reason}")
        return acted, reason

    def _read_formation(
        self, name: str, platform: Platform, account: str | None, now: datetime
    ) -> int:
        try:
            formation = platform.formation(name)
        finally:
            self._spent(account, platform, now, 1)
        quantity = formation_map(formation).get(PROCESS, (0, ""))[0]
        with self._lock:
            known = self._known.get(name)
            if known is None or known.quantity != quantity:
                self._known[name] = Known(quantity, now, now)
            else:
                self._known[name] = replace(known, refreshed_at=now)
        return quantity

    def _booting(
        self, name: str, platform: Platform, account: str | None, now: datetime
    ) -> int | None:
        """Web dynos not `up` yet after our scale-up; None when the platform cannot say."""
        try:
            dynos = _web_dyno_states(platform, name)
        finally:
            self._spent(account, platform, now, 1)
        if dynos is None:
            return None
        booting = sum(1 for state in dynos if state != "up")
        if booting == 0:
            # All up: no need to ask again until our next scale-up.
            with self._lock:
                known = self._known.get(name)
                if known is not None:
                    self._known[name] = replace(known, scaled_up_at=None)
        return booting

    def _allows(self, account: str | None, now: datetime, cost: int, app: str) -> bool:
        if account is None:
            return True  # not Heroku: no shared per-account budget to keep
        with self._lock:
            # Stored refilled to now, so a fresh bucket starts counting from its first use.
            budget = self._budgets.get(account, self._fresh_budget).now(now)
            self._budgets[account] = budget
        if budget.allows(now, cost):
            return True
        log.warning(
            "autoscale tick skipped: Heroku API budget low",
            extra={
                "app": app,
                "remaining": budget.remaining(now),
                "reserve": budget.reserve,
                "cost": cost,
            },
        )
        return False

    def _spent(self, account: str | None, platform: Platform, now: datetime, cost: int) -> None:
        if account is None:
            return
        remaining = getattr(platform, "rate_limit_remaining", None)
        with self._lock:
            budget = self._budgets.get(account, self._fresh_budget)
            self._budgets[account] = budget.spend(now, cost).observe(remaining, now)

    def _forget(self, app: str) -> None:
        try:
            name = self._services.resolve(app).target.name
        except (PlatformError, UnknownApp):
            name = app
        with self._lock:
            self._known.pop(name, None)

    def _forecast(
        self, app: str, policy: autoscale.Settings, now: datetime
    ) -> autoscale.Forecast | None:
        """The seasonal forecast from stored per-minute traffic a day and a week ago (and
        today's, for its skill). The history is reloaded every few minutes, reaching a few
        minutes further ahead, so each tick costs no query."""
        if not policy.predictive:
            return None
        cached = self._history.get(app)
        if cached is None or now - cached.loaded_at >= FORECAST_RELOAD or now < cached.loaded_at:
            cached = _History(now, self._minutes(app, policy, now))
            self._history[app] = cached
        return autoscale.seasonal_forecast(policy, cached.minutes, now)

    def _minutes(self, app: str, policy: autoscale.Settings, now: datetime) -> dict[int, float]:
        ahead = int(FORECAST_RELOAD.total_seconds() // 60) + 1
        minutes: dict[int, float] = {}
        for index, (first, last) in enumerate(autoscale.history_minutes(policy, now)):
            # The first range is today's, which ends now; the seasonal ones can look ahead.
            last = last if index == 0 else last + ahead
            for window in self._metrics.windows(app, first * 60, last * 60):
                minute = window.start // 60
                minutes[minute] = minutes.get(minute, 0.0) + window.requests
        return minutes

    def _samples(self, app: str, now: datetime) -> list[autoscale.Sample]:
        """Whole minutes of drained traffic before `now`, oldest first."""
        end = int(now.timestamp()) // 60 * 60
        start = end - SAMPLE_MINUTES * 60
        windows = self._metrics.windows(app, start, end)
        samples = []
        for minute in range(start, end, 60):
            inside = [w for w in windows if minute <= w.start < minute + 60]
            if not inside:
                continue
            queue, service = Sketch(), Sketch()
            dynos: set[str] = set()
            for window in inside:
                queue.merge(window.queue)
                service.merge(window.service)
                dynos.update(window.dynos)
            samples.append(
                autoscale.Sample(
                    at=datetime.fromtimestamp(minute + 60, UTC),
                    # A 10 s window with no requests is never stored: a sum, not an average.
                    rpm=float(sum(w.requests for w in inside)),
                    queue_p95_ms=queue.quantile(0.95) if queue.count else None,
                    service_p95_ms=service.quantile(0.95) if service.count else None,
                    dynos=len(dynos) or None,
                )
            )
        return samples


def _policy(
    stored: StoredSettings, target: Target, overrides: dict[str, Override]
) -> autoscale.Settings:
    """The policy from the app's `/deploy autoscale` settings, its registry entry and what
    chat changed (`autoscale APP set|schedule`; the registry wins where it sets a key)."""
    found = effective(target, overrides)
    policy = autoscale.Settings(
        targets=(autoscale.Target(_METRIC[stored.target_kind], stored.target_value),),
        min_dynos=stored.min,
        max_dynos=stored.max,
        windows=found.windows,
        down_stabilization=found.down_stabilization,  # None: adaptive
        # The forecast drops itself while it predicts badly or has no history (a new app).
        predictive=True,
    )
    if found.max_step is not None:
        # `max_step=N`: the most one tick adds or removes, either way.
        step = found.max_step
        policy = replace(
            policy, up_max_percent=0.0, up_max_dynos=step, down_max_percent=0.0, down_max_dynos=step
        )
    return policy


def _account(target: Target) -> str | None:
    """The Heroku account an app's calls count against (its API key's variable)."""
    if target.platform != "heroku":
        return None
    return target.api_key_env or "HEROKU_API_KEY"


def _web_dyno_states(platform: Platform, name: str) -> list[str] | None:
    """The states of the app's web dynos (`up`, `starting`, …), in one API call; None when
    the platform has no way to list them."""
    lister = getattr(platform, "dynos", None)
    if lister is None:
        return None
    return [d.state for d in lister(name) if d.type == PROCESS]


def _refresh_from_env() -> timedelta:
    raw = os.environ.get("DEPLOYBOT_FORMATION_REFRESH_SECONDS", "")
    try:
        seconds = float(raw) if raw else FORMATION_REFRESH.total_seconds()
    except ValueError:
        log.warning("DEPLOYBOT_FORMATION_REFRESH_SECONDS is not a number; using 300 seconds.")
        seconds = FORMATION_REFRESH.total_seconds()
    return timedelta(seconds=max(seconds, 0.0))
