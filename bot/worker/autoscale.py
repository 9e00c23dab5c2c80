"""The autoscale tick: for each app with autoscaling on (or in shadow), decide the web dyno
count from its drained traffic (`policies.autoscale.decide`) and, when on and different
from what runs, scale through the same actions path a person's command takes.

Level-triggered: every tick recomputes from the database and what runs, so a missed or
repeated tick changes nothing; the only durable state is what `bot.store.autoscale_settings` keeps.

Heroku gives an account 4,500 API requests an hour, shared with the people using the bot,
so what runs is not read every tick: the web formation is known from our own writes (the
scale result), from Heroku's formation webhooks (`observe_formation`) and, only when both
have been silent for `DEPLOYBOT_FORMATION_REFRESH_SECONDS` (default 900), from a read that
catches what a lost webhook did not tell us. A steady app costs 4 API calls an hour, so
one account's 4,500 cover more than 1,000 steady apps. Each account's calls go through a token bucket
(`policies.budget`) that mirrors `RateLimit-Remaining` (its latest figure from any dyno, kept
in `bot.store.throttles`) and keeps a reserve for people: when it says no, or a 429 seen by
any dyno asked to wait, the app's tick is skipped and logged. Dynos are listed (for `booting`) only in
the two minutes after our own scale-up, until they are all up. The seasonal forecast reads
yesterday's and last week's stored minutes, reloaded every few minutes, never the API.

Worker types scaled from their job queues (`bot.worker.autoscale_workers`) share this
knowledge and these budgets (`quantity`, `scale`): one formation read tells every type.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from bot.actions.autoscaling import effective
from bot.actions.gate import AUTOSCALER
from bot.actions.results import Changed, Reply
from bot.config import seconds_setting
from bot.metrics.aggregate import WINDOW_SECONDS
from bot.metrics.recent import MinuteTraffic, RecentTraffic
from bot.metrics.store import MetricsStore
from bot.platforms.base import Platform, PlatformError, Throttled, formation_map
from bot.registry import Target, UnknownApp
from bot.services import Resolved, Services
from bot.store.audit import Actor, Entry
from bot.store.autoscale_overrides import Override
from bot.store.autoscale_settings import AutoscaleStore
from bot.store.autoscale_settings import Decision as Recorded
from bot.store.autoscale_settings import Pin as StoredPin
from bot.store.autoscale_settings import Settings as StoredSettings
from bot.store.db import aware
from bot.store.observations import Observation
from policies import autoscale
from policies.budget import Budget
from policies.commands import parse
from policies.slack_text import clip, code, escape, moment

log = logging.getLogger(__name__)

# The policy reads the last few minutes, and measures the rate's noise over this many.
SAMPLE_MINUTES = int(autoscale.NOISE_SPAN.total_seconds() // 60)
# The freshest rate: the last two 10 s windows that ended at least 8 s ago. Logplex delivers
# within a second or two and each web dyno flushes every 5 s, so by then they are whole.
FRESH_WINDOWS = 2
FRESH_LAG_SECONDS = 8
# Characters of who scaled by hand (Heroku's actor, any text) and of the process type in
# the notice that says so: outside strings are clipped before Slack sees them.
ACTOR_SHOWN, TYPE_SHOWN = 120, 30
HISTORY = timedelta(minutes=10)
_METRIC = {"queue_p95": "queue_p95", "service_p95": "service_p95", "rpm": "rpm_per_dyno"}
FORMATION_REFRESH = timedelta(minutes=15)  # catches what a lost webhook did not tell us
BOOT_WATCH = timedelta(minutes=2)  # dynos take 30-60 s to boot; after that, stop asking
FORECAST_RELOAD = timedelta(minutes=5)  # the seasonal history barely changes in between
SCALE_COST = 2  # the actions path reads the formation, then writes it
# A change the path keeps holding back for the same reason is said once in this long, not
# every tick (every 15 s): the decisions keep each tick.
HELD_RETOLD = timedelta(minutes=30)
# What runs not read for this long (a revoked API key, an app renamed on Heroku, an outage)
# is said in the app's channel, then every HELD_RETOLD while the reason is the same: the
# tick had only logged it, and autoscaling stopped where nobody looks. A blip is no news.
UNREAD_TOLD_AFTER = timedelta(minutes=5)
PROCESS = "web"
# A tick that reaches an app this long after it read the fleet's traffic (a paused machine,
# a run of slow Heroku calls) does not act on it: a minute is four ticks, and the policy
# holds metrics two minutes old for stale.
LATE_AFTER = timedelta(minutes=1)
# A formation webhook this close to a change the audit log shows the bot made, to the same
# count, reports that change: Heroku dates it to the second, and delivers within seconds.
OWN_CHANGE = timedelta(minutes=2)
_DONE = frozenset({"ok"})


@dataclass(frozen=True)
class Known:
    """What we believe one process type of an app runs (web, or a worker type the
    worker-type tick scales), and since when."""

    quantity: int
    refreshed_at: datetime  # last read from the platform: the periodic refresh counts from it
    changed_at: datetime  # last change we saw (our write, a webhook, a read that differed)
    scaled_up_at: datetime | None = None  # our own scale-up whose dynos may still be booting


@dataclass(frozen=True)
class _Fleet:
    """What one tick read for all its apps at once, by app."""

    samples: dict[str, list[autoscale.Sample]]  # whole minutes, oldest first
    fresh: dict[str, autoscale.Sample]  # the freshest rate, newer than the last minute
    decisions: dict[str, list[Recorded]]  # the last HISTORY of them, newest first
    pins: dict[str, StoredPin]
    overrides: dict[str, dict[str, Override]]  # what chat set (`autoscale APP set`), by key
    read_at: datetime  # on the tick's clock, when the traffic above was read


@dataclass(frozen=True)
class _History:
    loaded_at: datetime
    minutes: dict[int, float]
    skill: float | None


# A decision not acted on because a person changed the settings or a pin meanwhile.
MOVED = "its settings or pin changed while this tick ran; the next tick decides with them."
NOT_LEADING = "this worker lost its lease on the database; the worker that leads next decides."


class Autoscaler:
    def __init__(
        self,
        services: Services,
        notify: Callable[[str | None, str], None],
        *,
        formation_refresh: timedelta | None = None,
        budget: Budget | None = None,
        clock: Callable[[], datetime] | None = None,
        leading: Callable[[], bool] | None = None,
    ) -> None:
        """`leading`: whether this worker still holds the lease, asked before each scale."""
        self._services = services
        self._leading = leading
        # How much time passes while a tick runs: the wall clock, or the closed-loop
        # benchmark's compressed one (the tick's `now` may be anything a caller chose).
        self._clock = clock or (lambda: datetime.now(UTC))
        self._store = AutoscaleStore(services.db)
        self._metrics = MetricsStore(services.db)
        self._recent = RecentTraffic(services.db)
        self._notify = notify
        self._refresh = formation_refresh or formation_refresh_from_env()
        self._fresh_budget = budget or Budget()
        # Per Heroku account (its API key's variable), as Heroku counts per account.
        self._budgets: dict[str, Budget] = {}
        # By the platform's app name and process type: one formation read (or our scale's
        # answer) tells every type, so web and worker ticks share what they learn.
        self._known: dict[tuple[str, str], Known] = {}
        self._history: dict[str, _History] = {}
        self._due: set[str] = set()
        self._held: dict[tuple[str, str], tuple[str, datetime]] = {}  # why not done, when said
        # By app and type: since when what runs could not be read, and what was said when.
        self._unread: dict[tuple[str, str], tuple[datetime, str, datetime | None]] = {}
        self._reloaded: dict[tuple[tuple[int, int], ...], dict[str, dict[int, float]]] = {}
        # The scheduler runs ticks on its thread pool; `known()` and `budget()` may be read
        # from another thread (status, tests).
        self._lock = threading.Lock()

    def tick(self, now: datetime | None = None, only: str | None = None) -> list[Recorded]:
        """Decide (and act) for every app with autoscaling on or in shadow (`only`: for that
        app alone, as the sandbox's spike play ticks on its own clock)."""
        now = now or datetime.now(UTC)
        enabled = [s for s in self._store.all_enabled() if only is None or s.app == only]
        acting = {(s.app, PROCESS) for s in enabled if s.mode == "on"}
        acting |= {
            (w.app, w.process_type) for w in self._store.workers().all_enabled() if w.mode == "on"
        }
        releases = self._observe(acting)
        # What every app's decision reads, in a few queries for the whole fleet, not a few
        # per app: a thousand apps' tick is then mostly the policy's arithmetic.
        apps = {s.app for s in enabled}
        # Apps whose forecast history is due: their reload is one query per range for them
        # all, made when the first of them needs it (`_forecast`).
        self._due = {app for app in apps if self._history_due(app, now)}
        self._reloaded = {}
        read_at = self._clock()
        samples, fresh = self._samples_of(apps, now)
        fleet = _Fleet(
            samples,
            fresh,
            self._store.recent_decisions(apps, now - HISTORY, reasons=False) if apps else {},
            self._store.pins(now) if apps else {},
            self._store.overrides().of_apps(apps),
            read_at,
        )
        done: list[Recorded] = []
        try:
            for settings in enabled:
                try:
                    recorded = self._one(settings, now, releases.get(settings.app), fleet)
                except (PlatformError, UnknownApp) as error:
                    log.warning(
                        "autoscale tick skipped", extra={"app": settings.app, "error": str(error)}
                    )
                    self.forget(settings.app)  # what we knew may be why: read next time
                    self.not_read(settings.app, PROCESS, error, now)
                    continue
                self.read(settings.app, PROCESS)
                if recorded is not None:
                    done.append(recorded)
        finally:
            self._store.record_many(done)  # one transaction for the tick's decisions
            self._due, self._reloaded = set(), {}
        return done

    def not_read(self, app: str, process_type: str, error: Exception, now: datetime) -> None:
        """The tick could not read or act on `app`'s `process_type`: said in the app's
        channel once it has lasted `UNREAD_TOLD_AFTER` (a 429 is Heroku's limit, which
        passes: logged only)."""
        why = str(error)
        key = (app, process_type)
        with self._lock:
            since, told, told_at = self._unread.get(key, (now, "", None))
            self._unread[key] = (since, told, told_at)
            if isinstance(error, Throttled) or now - since < UNREAD_TOLD_AFTER:
                return
            if told_at is not None and told == why and now - told_at < HELD_RETOLD:
                return
            self._unread[key] = (since, why, now)
        try:
            channel = self._services.registry.resolve(app).channel
        except UnknownApp:
            return  # no longer listed: no channel to tell
        minutes = int((now - since).total_seconds() // 60)
        self._notify(
            channel,
            f"Autoscaler on `{app}`: not autoscaled for {minutes} min, as what runs could not "
            f"be read: {why} I try again each tick.",
        )

    def read(self, app: str, process_type: str) -> None:
        """The tick got through `app`'s `process_type`: a later failure is news again."""
        with self._lock:
            self._unread.pop((app, process_type), None)

    def _observe(self, acting: set[tuple[str, str]]) -> dict[str, datetime]:
        """Take in what Heroku's webhooks told the web dyno (`bot.store.observations`): formation
        changes made by hand, and releases for the deploy guard. One query a tick; only the
        newest observation per app and subject is stored, so this stays small, and reading
        all of it every time means a late webhook is never skipped. A hand-made change to
        a type the autoscaler acts on (`acting`, by alias and type) is said in its channel once,
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
            if changed and (seen.app, seen.subject) in acting:
                made = self._made_with_bot(seen)
                if made is not None and made.source == AUTOSCALER:
                    continue  # our own scale, its webhook read before we knew it was done
                if made is not None:
                    # Heroku's actor is the API key's owner: say who used the bot, and how.
                    by = f" by <@{made.user_id}> with {code('/deploy ' + made.command)}"
                elif seen.detail:
                    by = f" outside the bot ({escape(clip(seen.detail, ACTOR_SHOWN))})"
                else:
                    by = " outside the bot"
                hold = (
                    f" To hold it, `/deploy pin {seen.app} web={seen.value} for 2h`."
                    if seen.subject == PROCESS
                    else f" To hold it, `/deploy autoscale {seen.app} {seen.subject} off`."
                )
                self._notify(
                    target.channel,
                    f"Autoscaler on `{seen.app}`: {escape(clip(seen.subject, TYPE_SHOWN))} was set to "
                    f"{seen.value}{by}; I go on from there.{hold}",
                )
        return releases

    def _made_with_bot(self, seen: Observation) -> Entry | None:
        """The bot's own change `seen` reports, from the audit log: a command that set the
        type to that count, done within `OWN_CHANGE` of when Heroku made it."""
        for entry in self._services.audit.recent(seen.app, limit=20, outcomes=_DONE):
            after = (entry.after or {}).get(seen.subject)
            done = entry.finished_at or entry.started_at
            if (
                isinstance(after, list)
                and after[:1] == [seen.value]
                and abs(aware(done) - seen.observed_at) <= OWN_CHANGE
            ):
                return entry
        return None

    def observe_formation(self, app: str, process_type: str, quantity: int, at: datetime) -> bool:
        """Heroku said (a formation webhook, stored by the web dyno) that `app`'s
        `process_type` now runs `quantity` dynos, as of `at`: believe it at once, so a
        hand-made scale is not undone by a tick working from an old count. `app` is the
        platform's name of the app. A report older than what we know is ignored: webhooks
        can arrive late and out of order. True when it changed what we believed (not when
        it is the first we hear of the type)."""
        key = (app, process_type)
        with self._lock:
            known = self._known.get(key)
            if known is None:
                # As good as a read: an old one is simply read again when its refresh is due.
                self._known[key] = Known(quantity, at, at)
                return False
            # Heroku telling us is as good as a read: the periodic refresh counts from it.
            refreshed = max(known.refreshed_at, at)
            if at < known.changed_at or quantity == known.quantity:
                self._known[key] = replace(known, refreshed_at=refreshed)
                return False
            self._known[key] = replace(
                known, quantity=quantity, changed_at=at, refreshed_at=refreshed
            )
        return True

    def known(self, app: str, process_type: str = PROCESS) -> Known | None:
        """What the cache holds for `app` (the platform's name), for status and tests."""
        with self._lock:
            return self._known.get((app, process_type))

    def quantity(self, resolved: Resolved, process_type: str, now: datetime) -> int | None:
        """How many `process_type` dynos the app runs, for the worker-type tick: what we
        know, read from Heroku only when webhooks and our writes have been silent for the
        refresh period, within the account's budget as the web tick's reads are. None when
        the budget says not now (logged)."""
        target = resolved.target
        account = _account(target)
        known = self.known(target.name, process_type)
        if known is not None and now - known.refreshed_at < self._refresh:
            return known.quantity
        if not self._allows(account, now, 1, target.alias):
            return None
        return self._read_formation(target.name, resolved.platform, account, now, process_type)

    def scale(
        self,
        resolved: Resolved,
        process_type: str,
        desired: int,
        current: int,
        reason: str,
        now: datetime,
    ) -> tuple[bool, str] | None:
        """Scale `process_type` to `desired` through the actions path, within the account's
        budget, and say so in the app's channel: (acted, reason), or None when the budget
        says not now (logged)."""
        account = _account(resolved.target)
        if not self._allows(account, now, SCALE_COST, resolved.target.alias):
            return None
        return self._scale(
            resolved, resolved.target.alias, process_type, desired, current, reason, account, now
        )

    def budget(self, account: str) -> Budget:
        """The token bucket of a Heroku account (its API key's variable name)."""
        with self._lock:
            return self._budgets.get(account, self._fresh_budget)

    def _one(
        self,
        stored: StoredSettings,
        now: datetime,
        last_release_at: datetime | None,
        fleet: _Fleet,
    ) -> Recorded | None:
        app = stored.app
        resolved = self._services.resolve(app)
        if resolved.target.platform != "heroku":
            return None  # refused by `/deploy autoscale`; settings from before are ignored
        name, platform = resolved.target.name, resolved.platform
        account = _account(resolved.target)
        known = self.known(name, PROCESS)
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
            current = self._read_formation(name, platform, account, now, PROCESS)
        else:
            assert known is not None
            current = known.quantity
        booting = self._booting(name, platform, account, now) if watch_boot else None

        policy = policy_of(stored, resolved.target, fleet.overrides.get(app, {}))
        samples = fleet.samples.get(app, [])
        fresh = fleet.fresh.get(app)
        past = fleet.decisions.get(app, [])
        pin = fleet.pins.get(app)
        decision = autoscale.decide(
            policy,
            current,
            [*samples, fresh] if fresh is not None else samples,
            now,
            recommendations=[autoscale.Recommendation(d.at, d.recommendation) for d in past],
            events=[autoscale.ScaleEvent(d.at, d.actual, d.desired) for d in past if d.acted],
            booting=booting,
            forecast=self._forecast(app, policy, now, samples),
            last_release_at=last_release_at,
            pin=autoscale.Pin(pin.quantity, pin.until, pin.pinned_by) if pin else None,
        )
        # The policy's sentence is plain text ("480 ms > 300 ms"); from here on the reason is
        # Slack text, stored and shown as it is, and a refusal's Slack text may follow it.
        acted, reason = False, escape(decision.reason)
        if pin is not None:
            # Who pinned it, as Slack shows a person (the raw user ID had been shown): a
            # Slack user ID has no character `escape` changes, so the words are found as is.
            said = f"pinned by {pin.pinned_by} "
            reason = reason.replace(said, f"pinned by <@{pin.pinned_by}> ", 1)
            # Its end as `/deploy pin`, `autoscale status` and App Home give it: in each
            # reader's time zone (the policy's plain text says UTC; the fallback still does).
            ends = f" until {autoscale.pin_end(pin.until, now)}"
            reason = reason.replace(ends, f" until {moment(pin.until, now)}", 1)
        if stored.mode == "on" and decision.desired != current:
            if not self._allows(account, now, SCALE_COST, app):
                return None
            late = self._clock() - fleet.read_at
            if late > LATE_AFTER:
                log.warning(
                    "autoscale tick late", extra={"app": app, "seconds": int(late.total_seconds())}
                )
                reason = f"{reason} Not done: {_late(late)}"
            elif self._moved_meanwhile(stored, pin, now):
                reason = f"{reason} Not done: {MOVED}"
            else:
                acted, reason = self._scale(
                    resolved, app, PROCESS, decision.desired, current, reason, account, now
                )
        recorded = Recorded(
            app, now, current, decision.desired, acted, reason, decision.recommendation
        )
        log.info(
            "autoscale decision",
            extra={
                "app": app,
                "mode": stored.mode,
                "current": current,
                "desired": decision.desired,
                "booting": booting,
                "api_calls": cost + (SCALE_COST if acted else 0),
                # Not a warning each tick: the "metrics stale" alert says it in the channel.
                "stale": decision.stale,
            },
        )
        return recorded

    def _moved_meanwhile(
        self, stored: StoredSettings, pin: StoredPin | None, now: datetime
    ) -> bool:
        """Whether a person changed the app's settings or pin since the tick read them, read
        again just before a scale: at a thousand apps a tick takes a second or more, and a
        pin or an `off` in that time had been overridden until the next tick."""
        return self._store.settings(stored.app) != stored or self._store.pin(stored.app, now) != pin

    def _scale(
        self,
        resolved: Resolved,
        app: str,
        process_type: str,
        desired: int,
        current: int,
        reason: str,
        account: str | None,
        now: datetime,
    ) -> tuple[bool, str]:
        target = resolved.target
        # A network cut ends the lease's session: another worker may lead already, while
        # this one would learn it only at its next lease check, seconds away.
        if self._leading is not None and not self._leading():
            log.warning("autoscale: the lease is gone; not scaling", extra={"app": app})
            return False, f"{reason} Not done: {NOT_LEADING}"
        actor = Actor(AUTOSCALER, channel_id=target.channel, source=AUTOSCALER)
        try:
            result = self._services.actions.run(
                actor, parse(f"scale {process_type}={desired} {app}")
            )
        finally:
            # Spent whatever happened: a refusal by a guardrail costs nothing, but we cannot
            # tell here how far it got, and Heroku's header below corrects the guess.
            self._spent(account, resolved.platform, now, SCALE_COST)
        acted = isinstance(result, Changed)
        if acted:
            after = formation_map(result.after).get(process_type, (desired, ""))[0]
            with self._lock:
                # Held again later, for the same reason, is news again.
                self._held.pop((app, process_type), None)
                self._known[(target.name, process_type)] = Known(
                    after,
                    # Heroku answered with the formation: as good as a read.
                    refreshed_at=now,
                    changed_at=now,
                    # Only web's booting dynos are watched (they take traffic when up).
                    scaled_up_at=now if after > current and process_type == PROCESS else None,
                )
        elif isinstance(result, Reply) and result.maybe_made:
            # Its answer was lost and the formation not seen to change, yet: not a refusal.
            # Forget the quantity, so the next tick reads what runs instead of trusting it.
            reason = f"{reason} It may have been made: {result.text}"
            with self._lock:
                self._known.pop((target.name, process_type), None)
        else:
            # A guardrail or a platform error said no: say why, in the app's channel.
            why = _not_done(result)
            reason = f"{reason} Not done: {why}"
            with self._lock:
                told = self._held.get((app, process_type))
                if told is not None and told[0] == why and now - told[1] < HELD_RETOLD:
                    return acted, reason
                self._held[(app, process_type)] = (why, now)
        self._notify(target.channel, f"Autoscaler on `{app}`: {reason}")
        return acted, reason

    def _read_formation(
        self, name: str, platform: Platform, account: str | None, now: datetime, process_type: str
    ) -> int:
        """`process_type`'s quantity from one read, which also refreshes every other type."""
        try:
            formation = platform.formation(name)
        finally:
            self._spent(account, platform, now, 1)
        quantities = {ptype: q for ptype, (q, _) in formation_map(formation).items()}
        quantities.setdefault(process_type, 0)
        with self._lock:
            for ptype, quantity in quantities.items():
                known = self._known.get((name, ptype))
                if known is None or known.quantity != quantity:
                    self._known[(name, ptype)] = Known(quantity, now, now)
                else:
                    self._known[(name, ptype)] = replace(known, refreshed_at=now)
        return quantities[process_type]

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
                known = self._known.get((name, PROCESS))
                if known is not None:
                    self._known[(name, PROCESS)] = replace(known, scaled_up_at=None)
        return booting

    def _allows(self, account: str | None, now: datetime, cost: int, app: str) -> bool:
        if account is None:
            return True  # not Heroku: no shared per-account budget to keep
        shared = self._services.throttles.get(account)
        if shared is not None and shared.throttled_until and shared.throttled_until > now:
            # Heroku said 429 to some dyno: nobody calls before its Retry-After.
            log.warning(
                "autoscale tick skipped: Heroku throttles the account",
                extra={"app": app, "until": shared.throttled_until.isoformat()},
            )
            return False
        with self._lock:
            budget = self._budgets.get(account, self._fresh_budget)
            if shared is not None and (budget.at is None or shared.observed_at > budget.at):
                # The web dyno's calls spend from the same account: its last figure counts,
                # and a bucket never used knows nothing newer (a worker just started).
                budget = budget.observe(shared.remaining, shared.observed_at)
            # Stored refilled to now, so a fresh bucket starts counting from its first use.
            budget = budget.now(now)
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

    def forget(self, app: str) -> None:
        """Drop what we know of `app`'s formation (an error may be why): read next time."""
        try:
            name = self._services.resolve(app).target.name
        except (PlatformError, UnknownApp):
            name = app
        with self._lock:
            for key in [key for key in self._known if key[0] == name]:
                del self._known[key]

    def _forecast(
        self,
        app: str,
        policy: autoscale.Settings,
        now: datetime,
        samples: list[autoscale.Sample],
    ) -> autoscale.Forecast | None:
        """The seasonal forecast from stored per-minute traffic a day and a week ago (and
        today's, for its skill). Those are plain counts compaction wrote
        (`MetricsStore.minutes`), reloaded every few minutes, reaching a few minutes
        further ahead, so a tick costs no query for them; the minutes compaction has not
        folded yet come from this tick's samples, which are read anyway."""
        if not policy.predictive:
            return None
        cached = self._history.get(app)
        if self._history_due(app, now):
            minutes = self._minutes(app, policy, now)
            _add_samples(minutes, samples)
            # The skill judges three hours and moves slowly: scored at each reload only.
            cached = _History(now, minutes, autoscale.forecast_skill(policy, minutes, now))
            self._history[app] = cached
        else:
            _add_samples(cached.minutes, samples)
        growth = autoscale.forecast_growth(policy, cached.minutes, now)
        if growth is None or cached.skill is None:
            return None
        base = autoscale.forecast_base(cached.minutes, now)
        return autoscale.Forecast(growth, cached.skill, base)

    def _history_due(self, app: str, now: datetime) -> bool:
        cached = self._history.get(app)
        return cached is None or now - cached.loaded_at >= FORECAST_RELOAD or now < cached.loaded_at

    def _minutes(self, app: str, policy: autoscale.Settings, now: datetime) -> dict[int, float]:
        ahead = int(FORECAST_RELOAD.total_seconds() // 60) + 1
        ranges = tuple(
            # The first range is today's, which ends now; the seasonal ones can look ahead.
            (first, last if index == 0 else last + ahead)
            for index, (first, last) in enumerate(autoscale.history_minutes(policy, now))
        )
        if app not in self._due:
            return self._metrics.minutes(app, ranges)
        loaded = self._reloaded.get(ranges)
        if loaded is None:
            # Every app due this tick shares these ranges (they depend on the forecast's
            # settings and the clock, not the app): one read for all of them.
            loaded = self._reloaded[ranges] = self._metrics.minutes_of(self._due, ranges)
        return loaded.pop(app, {})

    def _samples_of(
        self, apps: Collection[str], now: datetime
    ) -> tuple[dict[str, list[autoscale.Sample]], dict[str, autoscale.Sample]]:
        """Each app's whole minutes of drained traffic before `now`, oldest first, and its
        freshest rate (`_fresh`): one incremental read for the whole fleet
        (`bot.metrics.recent`), which reaches into the current minute only as far as its
        complete 10 s windows."""
        second = int(now.timestamp())
        end = second // 60 * 60
        start = end - SAMPLE_MINUTES * 60
        fresh_end = (second - FRESH_LAG_SECONDS) // WINDOW_SECONDS * WINDOW_SECONDS
        found = self._recent.minutes(apps, start, max(end, fresh_end))
        samples: dict[str, list[autoscale.Sample]] = {}
        fresh: dict[str, autoscale.Sample] = {}
        for app, minutes in found.items():
            whole = [_sample(minute) for minute in minutes if minute.start + 60 <= end]
            samples[app] = whole
            if whole:
                newest = _fresh(minutes, fresh_end, whole[-1])
                if newest is not None:
                    fresh[app] = newest
        return samples, fresh


def _late(late: timedelta) -> str:
    minutes = int(late.total_seconds() // 60)
    return (
        f"this tick read its traffic {minutes} min ago (the worker was paused or slow), so it "
        "says nothing of now; the next tick decides from fresh traffic."
    )


def _sample(minute: MinuteTraffic) -> autoscale.Sample:
    """A whole minute as the policy reads it; made once for a sealed minute, which no
    longer changes (a thousand apps' half hour is 30,000 of them a tick)."""
    if minute.memo is not None:
        return minute.memo
    queue_p95, service_p95 = minute.p95s()
    sample = autoscale.Sample(
        at=datetime.fromtimestamp(minute.start + 60, UTC),
        # A 10 s window with no requests is never stored: a sum, not an average.
        rpm=float(minute.requests),
        queue_p95_ms=queue_p95,
        service_p95_ms=service_p95,
        dynos=len(minute.dynos) or None,
    )
    if minute.sealed:
        minute.memo = sample
    return sample


def _fresh(
    minutes: list[MinuteTraffic], until: int, last: autoscale.Sample
) -> autoscale.Sample | None:
    """The request rate of the `FRESH_WINDOWS` complete 10 s windows before `until`, as a
    sample with the p95s and dynos of the last whole minute (`last`; a p95 needs more
    requests than 20 s bring), stamped `until` or, when those windows lie inside that
    minute (the first seconds of a minute), at its end, so samples stay in time order and
    every tick has one. A rise then counts within a tick, not a minute later, as
    `policies.simulator` models the tick. None when those windows hold no request: nothing
    stored may as well be a drain running late, and the minutes decide."""
    first = until - FRESH_WINDOWS * WINDOW_SECONDS
    counts = [
        requests
        for minute in minutes
        for start, requests in minute.windows.items()
        if first <= start < until
    ]
    if not counts:
        return None
    return replace(
        last,
        at=max(last.at, datetime.fromtimestamp(until, UTC)),
        rpm=sum(counts) * 60 / (FRESH_WINDOWS * WINDOW_SECONDS),
    )


def _add_samples(minutes: dict[int, float], samples: list[autoscale.Sample]) -> None:
    """The minutes compaction has not folded yet, from the tick's samples. A sample is
    stamped at its minute's end; a later tick saw more of that minute, so it wins."""
    for sample in samples:
        minutes[int(sample.at.timestamp()) // 60 - 1] = sample.rpm


def policy_of(
    stored: StoredSettings, target: Target, overrides: dict[str, Override]
) -> autoscale.Settings:
    """The policy from the app's `/deploy autoscale` settings, its registry entry and what
    chat changed (`autoscale APP set|schedule`; the registry wins where it sets a key). The
    detectors read its bounds too, so "pinned at max" is the max the tick works within."""
    found = effective(target, overrides)
    policy = autoscale.Settings(
        targets=(autoscale.Target(_METRIC[stored.target_kind], stored.target_value),),
        min_dynos=stored.min,
        max_dynos=stored.max,
        windows=found.windows,
        down_stabilization=found.down_stabilization,  # None: adaptive
        # The forecast drops itself while it predicts badly or has no history (a new app).
        predictive=True,
        max_step=target.guardrails.max_step,
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


def formation_refresh_from_env() -> timedelta:
    """`DEPLOYBOT_FORMATION_REFRESH_SECONDS`: how long webhooks and the bot's own writes may be
    silent before a formation is read again (tests shorten it)."""
    default = FORMATION_REFRESH.total_seconds()
    return timedelta(seconds=seconds_setting("DEPLOYBOT_FORMATION_REFRESH_SECONDS", default))


def _not_done(result: object) -> str:
    """Why the actions path did not make the autoscaler's change, for the app's channel:
    its refusals, a protected app's approval included, come back as a Reply."""
    return result.text if isinstance(result, Reply) else "the change was not made."
