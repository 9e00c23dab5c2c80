"""`/deploy autoscale` and `/deploy pin`: the autoscaler's settings and pins as commands,
audited like every change, and the status text that explains what it is doing. The
autoscale tick itself is the worker's (`bot.worker.autoscale`); the arithmetic is
`policies.autoscale`."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.actions.results import Reply, Resolved, Result, no_traffic_hint
from bot.config import pasted
from bot.metrics.aggregate import summarize
from bot.metrics.replay import replay_app
from bot.metrics.store import MetricsStore
from bot.platforms.base import PlatformError, formation_map
from bot.registry import Target, waits_too_long
from bot.store.audit import Actor, AuditLog
from bot.store.autoscale_overrides import SCHEDULE, Override, OverrideStore
from bot.store.autoscale_settings import (
    DEFAULT_TARGET,
    AutoscaleStore,
    Decision,
    Pin,
    Settings,
    parse_target,
)
from bot.store.worker_autoscale_settings import WorkerSettings
from policies import autoscale as policy
from policies.commands import Command
from policies.costs import monthly_price, usd
from policies.names import not_on_app
from policies.sizes import PastLimit, past_heroku_limit
from policies.slack_text import code, moment, more_note, shown
from policies.worker_autoscale import WorkerTarget, parse_worker_target


@dataclass(frozen=True)
class Effective:
    """The autoscaler settings in force for one app, each with where it came from:
    "registry", "chat (<@U…>, date)" or "default" (the one precedence rule is in
    `bot.store.autoscale_overrides`)."""

    down_stabilization: timedelta | None  # None: adaptive
    down_source: str
    max_step: int | None  # None: the policy's +100 % or +4, -10 % or -1
    step_source: str
    windows: tuple[policy.Window, ...]
    windows_source: str


def effective(target: Target, overrides: dict[str, Override]) -> Effective:
    def chat(key: str) -> str:
        return _chat(overrides[key].updated_by, overrides[key].updated_at)

    down, down_source = target.down_stabilization, "registry"
    if down is None and "down_stabilization" in overrides:
        down, down_source = (
            _duration(overrides["down_stabilization"].value),
            chat("down_stabilization"),
        )
    elif down is None:
        down_source = "default"
    step, step_source = None, "default"
    if "max_step" in overrides:
        step, step_source = int(overrides["max_step"].value), chat("max_step")
    windows, windows_source = target.schedule, "registry"
    if not windows and SCHEDULE in overrides:
        windows, windows_source = tuple(_windows(overrides)), chat(SCHEDULE)
    elif not windows:
        windows_source = "default"
    return Effective(down, down_source, step, step_source, windows, windows_source)


def _windows(overrides: dict[str, Override]) -> list[policy.Window]:
    words = json.loads(overrides[SCHEDULE].value)
    return [_window(w) for w in words]


def _window(w: dict[str, str]) -> policy.Window:
    low, high = w.get("min"), w.get("max")
    return policy.parse_window(
        w["days"],
        w["start"],
        w["end"],
        w.get("tz", "UTC"),
        int(low) if low is not None else None,
        int(high) if high is not None else None,
    )


def _duration(text: str) -> timedelta:
    """`90s`, `2m`, `1h` (the grammar checked the form). A count past a million reads as a
    million: any of them is refused as longer than an hour, where timedelta overflowed."""
    unit = {"s": "seconds", "m": "minutes", "h": "hours"}[text[-1]]
    return timedelta(**{unit: min(int(text[:-1]), 1_000_000)})


def _ceiling_cost(mode: str, ptype: str, running: dict[str, tuple[int, str]], high: int) -> str:
    """What `high` dynos of `ptype` cost a month at list prices, said when autoscaling goes
    on: the autoscaler is never asked about cost, so the max is the bill it may run up."""
    size = running.get(ptype, (0, ""))[1]
    price = monthly_price("heroku", size) if mode != "off" and size else None
    if price is None:
        return ""
    return f" At max={high}, {ptype} costs ≈ {usd(price * high)}/month at list prices."


def _span(since: timedelta) -> str:
    hours = int(since.total_seconds() // 3600)
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


def _minutes_text(minutes: int) -> str:
    """A replayed span for people, rounded as they would say it: `1 day`, `2.5 days`, `3 h`."""
    if minutes >= 1440:
        days = round(minutes / 1440, 1)
        return f"{days:g} day" + ("" if days == 1 else "s")
    if minutes >= 60:
        return f"{round(minutes / 60, 1):g} h"
    return f"{minutes} min"


def _limits_text(window: policy.Window) -> str:
    return ", ".join(
        f"{word} {value}"
        for word, value in (("min", window.min), ("max", window.max))
        if value is not None
    )


DEFAULT_MAX = 10  # dynos of a type, when `/deploy autoscale APP [TYPE] on` names no max
WORKER_DECISIONS = 3  # each worker type's latest decisions in `status`, after web's five
STATUS_WINDOWS = 10  # schedule windows listed in `status`; `schedule list` lists them all
# `autoscale APP on` with a service-time target looks this far back for traffic that
# already misses it; fewer requests than this and the p95 is just the slowest few.
ALREADY_MINUTES = 15
ALREADY_REQUESTS = 100
QUEUE_TARGET_EXAMPLE = "queue:300ms"


# `ask_first(actor, resolved, command, targets)`: the prompt a change of `targets` needs
# before it is made (a cost past the app's threshold), or None to go ahead.
AskFirst = Callable[[Actor, Resolved, Command, dict[str, tuple[int, str | None]]], Result | None]


class AutoscaleCommands:
    def __init__(
        self,
        store: AutoscaleStore,
        audit: AuditLog,
        now: Callable[[], datetime],
        worker_runs: bool = True,
        ask_first: AskFirst = lambda actor, resolved, command, targets: None,
        metrics: MetricsStore | None = None,
    ) -> None:
        self._autoscale = store
        self._metrics = metrics
        self._audit = audit
        self._now = now
        # False in the sandbox console, where no worker runs the autoscaler between lines.
        self._worker_runs = worker_runs
        self._ask_first = ask_first

    def run(
        self, actor: Actor, resolved: Resolved, command: Command, confirmer: Actor | None = None
    ) -> Result:
        """`confirmer`: who clicked Confirm on the cost prompt this command waited for."""
        app = command.app or ""
        now = self._now()
        if resolved.target.platform != "heroku" and command.verb == "autoscale":
            answer = self._beanstalk(app, command)
            if answer is not None:
                return Reply(answer)
        if command.verb == "autoscale" and command.mode == "status":
            types = self._types(app, resolved, command.target)
            return Reply(self.status(app, now, resolved.target, command.target, types))
        if command.mode == "schedule" and command.topic == "list":
            return self._schedule_list(app, resolved.target)
        held = self._held(resolved, command)
        if held is not None and confirmer is None:
            # The autoscaler is never asked about cost, so a count it will hold for a person
            # (a pin, a min) asks here as `scale` to it would; no audit row until answered.
            asked = self._ask_first(actor, resolved, command, held)
            if asked is not None:
                return asked
        entry = self._audit.start(
            actor,
            command.verb,
            app,
            command.text(),
            None,
            None,
            confirmed_by=confirmer.user_id if confirmer else None,
        )
        if resolved.target.platform != "heroku" and command.mode != "off":
            # The tick reads drained router logs and Heroku formations; a Beanstalk
            # environment has neither, and its own Auto Scaling group scales it.
            self._audit.finish(entry, "refused", error=f"{command.verb} is Heroku-only")
            what = "a pin holds" if command.verb == "pin" else "the autoscaler scales"
            return Reply(
                f"`{app}` is an Elastic Beanstalk environment: {what} Heroku dynos only. Set "
                "its Auto Scaling group's MinSize/MaxSize and triggers in Beanstalk "
                "(`aws:autoscaling:asg`), or `/deploy scale` it by hand."
            )
        if command.verb == "pin":
            return self._pin(actor, resolved, command, entry, now)
        if command.target:
            return self._worker(actor, resolved, command, entry, now)
        if command.mode == "set":
            return self._set(actor, resolved.target, command, entry, now)
        if command.mode == "schedule":
            return self._schedule(actor, resolved, command, entry, now)
        current = self._autoscale.settings(app)
        options = dict(command.options)
        running = self._running(resolved, entry)
        web = running.get("web", (1, ""))[0]
        kind, value = (
            parse_target(options["target"])
            if "target" in options
            else ((current.target_kind, current.target_value) if current else DEFAULT_TARGET)
        )
        low = int(options.get("min", current.min if current else max(1, web)))
        # The dynos running now, when no min is typed, may be past the default max: it is
        # raised to them. A typed min past it is refused below, saying so.
        default = max(low if "min" not in options else 0, _default_max(resolved, "web"))
        high = int(options.get("max", current.max if current else default))
        if low > high:
            return self._min_above_max(entry, resolved, command, low, high, current is not None)
        refused, past = self._beyond(
            entry, resolved, command, "web", high, running, kept=current is not None
        )
        if refused is not None:
            return refused
        settings = Settings(app, command.mode or "off", low, high, kind, value, actor.user_id, now)
        self._autoscale.save(settings)
        self._audit.finish(entry, "ok", after={"autoscale": settings.describe()})
        return Reply(
            f"<@{actor.user_id}> set autoscaling of `{app}`: {settings.describe()}."
            + _ceiling_cost(settings.mode, "web", running, high)
            + self._missed_already(settings, now)
            + _warned(past),
            public=True,
        )

    def _min_above_max(
        self, entry: int, resolved: Resolved, command: Command, low: int, high: int, kept: bool
    ) -> Reply:
        """Refuses, audited, a min above the max given, kept (`kept`) or, neither, the
        default one, where a typed min past the default had quietly raised the max to it."""
        self._audit.finish(entry, "refused", error="min above max")
        if "max" in dict(command.options) or kept:
            return Reply(
                f"min={low} is more than max={high}: give both, or one that fits the other."
            )
        ptype, app = command.target or "web", command.app or ""
        cap = resolved.target.guardrails.most(ptype)
        if cap is not None and low > cap:
            return Reply(
                f"`{app}` allows at most {cap} {code(ptype)} dynos (the registry's `max`), "
                f"so min={low} is refused. Ask for {cap} or fewer, or raise the registry's `max`."
            )
        most = max(low, 2 * high) if cap is None else min(max(low, 2 * high), cap)
        typed = " ".join([app, *([ptype] if command.target else []), command.mode or "on"])
        return Reply(
            f"min={low} is more than the default max={high} (none was given): give a max too, "
            f"{low} or more, as in {code(f'/deploy autoscale {typed} min={low} max={most}')}."
        )

    def _running(self, resolved: Resolved, entry: int) -> dict[str, tuple[int, str]]:
        """The formation, read for the command `entry` records; a failed read finishes
        that row (the actions path adds none), where it had stayed under way for good."""
        try:
            return formation_map(resolved.platform.formation(resolved.target.name))
        except PlatformError as error:
            self._audit.finish(entry, error.outcome, error=str(error))
            error.audited = True
            raise

    def _beyond(
        self,
        entry: int,
        resolved: Resolved,
        command: Command,
        ptype: str,
        count: int,
        running: dict[str, tuple[int, str]] | None = None,
        kept: bool = False,
    ) -> tuple[Reply | None, PastLimit | None]:
        """Refuses, audited, a max, pin or schedule window asking for `count` `ptype` dynos
        past the registry's guardrail or past what Heroku runs at their size; else None and
        the warning to add when Heroku's limit may be raised. `kept`: a max not typed is
        the one set before, not the default. `off` asks for no dynos: never refused."""
        if command.mode == "off" and command.verb == "autoscale":
            return None, None
        app = command.app or ""
        if command.verb == "pin":
            kind, what = "pin", f"a pin at {ptype}={count}"
        elif command.mode == "schedule":
            kind, what = "window", f"a window asking for {count}"
        elif "max" in dict(command.options):
            kind, what = "max", f"max={count}"
        else:
            kind = "max"
            what = f"the max={count} already set" if kept else f"the default max={count}"
        cap = resolved.target.guardrails.most(ptype)
        if cap is not None and count > cap:
            # The autoscaler would clamp it in silence; say so while the asker is here.
            self._audit.finish(entry, "refused", error=f"{kind} above guardrail")
            return Reply(
                f"`{app}` allows at most {cap} {code(ptype)} dynos (the registry's `max`), "
                f"so {what} is refused. Ask for {cap} or fewer, or raise the registry's `max`."
            ), None
        past = self._past_limit(resolved, command, ptype, count, what, running)
        if past is not None and past.refused:
            self._audit.finish(entry, "refused", error="past Heroku's limit")
            return Reply(past.text), past
        return None, past

    def _past_limit(
        self,
        resolved: Resolved,
        command: Command,
        ptype: str,
        count: int,
        asked: str,
        running: dict[str, tuple[int, str]] | None = None,
    ) -> PastLimit | None:
        """Whether the autoscaler would ask Heroku for more `ptype` dynos than it runs at
        their size by default (None for `off`, a count that fits, or a formation that cannot
        be read now: the setting is then kept as before, and the tick meets the limit)."""
        if command.mode == "off":
            return None
        if running is None:
            try:
                running = formation_map(resolved.platform.formation(resolved.target.name))
            except PlatformError:
                return None
        size = running.get(ptype, (0, ""))[1]
        return past_heroku_limit(command.app or "", ptype, size, count, asked)

    def _missed_already(self, settings: Settings, now: datetime) -> str:
        """A note when the app's drained traffic already misses a service-time target.

        Service time is mostly the app's own work: if it is over the target before any
        spike, more dynos will not bring it under, and the autoscaler climbs to max and
        stays there ("pinned at max") while the app pays for every dyno."""
        if settings.mode == "off" or settings.target_kind != "service_p95" or not self._metrics:
            return ""
        until = int(now.timestamp())
        since = until - (ALREADY_MINUTES + 1) * 60
        summary = summarize(
            self._metrics.windows(settings.app, since, until), until, ALREADY_MINUTES
        )
        if summary.service is None or summary.requests < ALREADY_REQUESTS:
            return ""
        p95 = summary.service.p95
        if p95 <= settings.target_value:
            return ""
        # A fifth above today's p95, in whole 100 ms: room for an ordinary busy minute.
        above = math.ceil(p95 * 1.2 / 100) * 100
        return (
            f"\nIts p95 service time over the last {ALREADY_MINUTES} min is already {p95:,.0f} ms,"
            " above this target. If that is the app's own work rather than load, more dynos "
            f"will not bring it under and the autoscaler will run max={settings.max} and stay "
            f"there: set `target=service:{above}ms` or so, or `target={QUEUE_TARGET_EXAMPLE}` "
            "to track the wait that dynos do shorten."
        )

    def _beanstalk(self, app: str, command: Command) -> str | None:
        """What `autoscale` reads or turns off on a Beanstalk environment, which its own Auto
        Scaling group scales; None where settings kept from before are to be turned off."""
        stored = self._stored(app, command.target)
        own = (
            f"`{app}` is an Elastic Beanstalk environment: its Auto Scaling group scales it "
            "(`aws:autoscaling:asg` MinSize/MaxSize and triggers), not this autoscaler"
        )
        kept = stored is not None and stored.mode != "off"
        if command.mode == "off" and not kept:
            return f"Autoscaling of `{app}` is off. {own}."
        if command.mode == "status" or (command.mode == "schedule" and command.topic == "list"):
            if kept and stored is not None:
                return (
                    f"{own}. Settings kept from before ({stored.describe()}) do nothing; "
                    f"`/deploy autoscale {app} off` turns them off."
                )
            return f"{own}."
        return None

    def moves_again(self, app: str, counts: dict[str, int]) -> str | None:
        """What the reply to a person's scale of `app` to `counts` (by process type) says
        of the types the autoscaler acts on: it will move them again, and how to hold one,
        as its own notice of a hand-made change says (`bot.worker.autoscale`)."""
        said = []
        for ptype, count in sorted(counts.items()):
            stored = self._stored(app, None if ptype == "web" else ptype)
            if stored is None or stored.mode != "on":
                continue  # off, or a shadow that only decides
            if ptype == "web":
                said.append(
                    "The autoscaler is on for its web dynos and will move them again from "
                    f"traffic. To hold it, `/deploy pin {app} web={count} for 2h`."
                )
            else:
                said.append(
                    f"The autoscaler is on for its {code(ptype)} dynos and will move them "
                    f"again from their queue. To hold it, `/deploy autoscale {app} {ptype} off`."
                )
        return " ".join(said) or None

    def _stored(self, app: str, worker_type: str | None) -> Settings | WorkerSettings | None:
        """What `/deploy autoscale` keeps for the app's web dynos, or for `worker_type`."""
        if worker_type:
            return self._autoscale.workers().settings(app, worker_type)
        return self._autoscale.settings(app)

    def _held(
        self, resolved: Resolved, command: Command
    ) -> dict[str, tuple[int, str | None]] | None:
        """The count the autoscaler will hold for this command whatever the traffic: a pin's,
        the min of `autoscale … on` (a shadow decides only) or of a schedule window it adds
        (asked when added, whatever the mode: turning autoscaling on later asks about the
        app's own min only); None for anything else, and
        for what is refused below (a Beanstalk app, above the registry's max)."""
        ptype = command.target or "web"
        if command.verb == "pin" and command.mode != "off":
            quantity = command.changes[0].amount
        elif command.verb == "autoscale" and command.mode == "on":
            stored = self._stored(command.app or "", command.target)
            options = dict(command.options)
            given = options.get("min")
            if given is None and stored is None:
                return None  # the default min is what runs
            quantity = int(given) if given is not None else stored.min if stored else 0
            most = (
                int(options["max"])
                if "max" in options
                else stored.max
                if stored
                else _default_max(resolved, ptype)
            )
            if quantity > most:
                return None  # refused below: min above max
        elif command.verb == "autoscale" and command.mode == "schedule" and command.topic == "add":
            # A window's min is held each time the window opens, as a pin's count is.
            if resolved.target.schedule:
                return None  # refused below: the registry's windows win
            try:
                quantity = _window(dict(command.options)).min or 0
            except ValueError:
                return None  # refused below, with what is wrong
            if not quantity:
                return None
        else:
            return None
        cap = resolved.target.guardrails.most(ptype)
        if resolved.target.platform != "heroku" or (cap is not None and quantity > cap):
            return None
        return {ptype: (quantity, None)}

    def _pin(
        self, actor: Actor, resolved: Resolved, command: Command, entry: int, now: datetime
    ) -> Result:
        app = command.app or ""
        if command.mode == "off":
            gone = self._autoscale.unpin(app)
            text = f"<@{actor.user_id}> unpinned `{app}`." if gone else f"`{app}` was not pinned."
            self._audit.finish(entry, "ok")
            return Reply(text, public=True)
        quantity = command.changes[0].amount
        refused, past = self._beyond(entry, resolved, command, "web", quantity)
        if refused is not None:
            return refused
        until = now + timedelta(minutes=command.limit or 60)
        self._autoscale.set_pin(Pin(app, quantity, until, actor.user_id))
        self._audit.finish(entry, "ok")
        return Reply(
            f"<@{actor.user_id}> pinned `{app}` at web={quantity} until "
            f"{moment(until, now)}: {self._who_holds(app)}." + _warned(past),
            public=True,
        )

    def _set(
        self, actor: Actor, target: Target, command: Command, entry: int, now: datetime
    ) -> Result:
        """`autoscale APP set down_stabilization=2m max_step=4`; `=default` drops chat's value."""
        app = command.app or ""
        overrides = self._overrides()
        for key, value in command.options:
            if key == "down_stabilization" and target.down_stabilization is not None:
                # The registry is the source of truth where it says so.
                self._audit.finish(entry, "refused", error="set in the registry")
                return Reply(
                    f"`{app}`'s registry entry sets `autoscale: down_stabilization:`; "
                    "change it there (the registry wins over chat)."
                )
            most = target.guardrails.max_step
            if key == "max_step" and value != "default" and most is not None and int(value) > most:
                # The guardrail would refuse each larger step the autoscaler then asked for.
                self._audit.finish(entry, "refused", error="step above guardrail")
                return Reply(
                    f"`{app}` changes a process type by at most {most} per command (the "
                    f"registry's `guardrails: max_step:`), so max_step={value} is refused."
                )
            timed = key == "down_stabilization" and value != "default"
            if timed and _duration(value) > timedelta(hours=1):
                self._audit.finish(entry, "refused", error="too long")
                return Reply(f"{waits_too_long(value)}: write a span such as 5m or 30m.")
        before = {k: o.value for k, o in overrides.of_app(app).items() if k != SCHEDULE}
        for key, value in command.options:
            if value == "default":
                overrides.drop(app, key)
            else:
                overrides.put(Override(app, key, value, actor.user_id, now))
        after = {k: o.value for k, o in overrides.of_app(app).items() if k != SCHEDULE}
        self._audit.finish(entry, "ok", after={"autoscale_set": after, "before": before})
        said = ", ".join(f"{k}={v}" for k, v in command.options)
        return Reply(
            f"<@{actor.user_id}> set `{app}`'s autoscaler: {said}.{self._idle_note(app)}",
            public=True,
        )

    def _schedule(
        self, actor: Actor, resolved: Resolved, command: Command, entry: int, now: datetime
    ) -> Result:
        """`autoscale APP schedule add …` and `… remove N`."""
        app, target = command.app or "", resolved.target
        if target.schedule:
            self._audit.finish(entry, "refused", error="schedule in the registry")
            return Reply(
                f"`{app}`'s registry entry has `autoscale: schedule:`; change the windows there "
                "(the registry wins over chat)."
            )
        overrides = self._overrides()
        windows = overrides.windows(app)
        if command.topic == "remove":
            number = command.limit or 0
            if not 1 <= number <= len(windows):
                self._audit.finish(entry, "refused", error="no such window")
                return Reply(f"`{app}` has no schedule window {number}; see `schedule list`.")
            gone = _window(windows.pop(number - 1)).describe()
            overrides.put_windows(app, windows, actor.user_id, now)
            self._audit.finish(entry, "ok", after={"schedule": windows})
            return Reply(f"<@{actor.user_id}> removed `{app}`'s window {gone}.", public=True)
        words = {k: v for k, v in command.options}
        try:
            added = _window(words)
        except ValueError as exc:
            self._audit.finish(entry, "refused", error=str(exc))
            said = str(exc)
            # The registry's loader shows the same words as a clause; here they end a sentence.
            # They are Slack text already: what was typed is in code spans, escaped.
            said += "" if said.endswith((".", "?", "!")) else "."
            return Reply(f"Not a schedule window: {said}")
        asks = max(added.min or 0, added.max or 0)
        refused, past = self._beyond(entry, resolved, command, "web", asks)
        if refused is not None:
            return refused
        same = [
            n
            for n, w in enumerate(map(_window, windows), 1)
            if (w.days, w.start, w.end, w.timezone)
            == (added.days, added.start, added.end, added.timezone)
        ]
        if same:
            # Only the first window covering a moment applies (`policy.bounds`): a second
            # one at the same hours would never apply.
            self._audit.finish(entry, "refused", error="window already there")
            return Reply(
                f"`{app}`'s window {same[0]} already covers {added.describe()}: "
                f"`schedule remove {same[0]}` first to change its limits."
            )
        windows.append(words)
        overrides.put_windows(app, windows, actor.user_id, now)
        self._audit.finish(entry, "ok", after={"schedule": windows})
        return Reply(
            f"<@{actor.user_id}> added to `{app}`'s schedule: {_limits_text(added)} "
            f"{added.describe()} (window {len(windows)}).{self._idle_note(app)}" + _warned(past),
            public=True,
        )

    def _schedule_list(self, app: str, target: Target) -> Reply:
        found = effective(target, self._overrides().of_app(app))
        if not found.windows:
            return Reply(
                f"`{app}` has no schedule windows. Add one with `schedule add mon-fri 08:00-18:00 min=3`."
            )
        lines = [f"Schedule windows of `{app}` ({found.windows_source}):"]
        for number, window in enumerate(found.windows, 1):
            lines.append(f"{number}. {window.describe()}: {_limits_text(window)}")
        where = (
            f"The registry's `autoscale: schedule:` for `{app}` has them all."
            if found.windows_source == "registry"
            else f"`/deploy autoscale {app} schedule remove N` takes one out by its number."
        )
        more = more_note("windows", where)
        return Reply("\n".join(lines), more=more)

    def replay(
        self, app: str, target: Target, metrics: MetricsStore, since: timedelta, drained: bool
    ) -> Result:
        """The default policy against the app's current settings on its stored traffic, for
        the channel; or why there is none, for the asker (`drained`: whether the app has a
        log drain of ours)."""
        current = replayed_settings(self._autoscale, app, target)
        tried = current | {"down_stabilization": None}
        replayed = replay_app(metrics, app, since, self._now(), tried, current)
        span = _span(since)
        if target.platform != "heroku":
            return Reply(
                f"{code(app)} is an Elastic Beanstalk environment: the autoscaler, whose "
                "settings this replays, scales Heroku dynos only."
            )
        if replayed is None:
            # With what to do: it had asked "is its log drain on?", even right after
            # `/deploy drain` had answered that it was.
            return Reply(
                f"{code(app)} has no stored traffic in the last {span}, so there is nothing "
                f"to replay. {no_traffic_hint(app, drained)}"
            )
        default, mine, context = replayed
        minutes = len(context.trace.counts)
        asked = int(since.total_seconds() // 60)
        # The drain may have stored less than was asked for: say what was replayed.
        stored = _minutes_text(minutes)
        replaying = (
            f"{code(app)}'s traffic: the {stored} stored of the {span} asked"
            if minutes < asked and stored != _minutes_text(asked)
            else f"{code(app)}'s last {span}"
        )
        if tried == current:
            # The same settings twice would print the same numbers twice, as if they differed.
            results = (
                "with your current settings, whose scale-down hold is already the default "
                f"(adaptive) one, it would have cost {mine.dyno_hours:,.1f} dyno-hours and "
                f"{mine.slo_violation_minutes:,} violation minutes"
            )
        else:
            results = (
                "with your settings but the default (adaptive) scale-down hold it would have cost "
                f"{default.dyno_hours:,.1f} dyno-hours and {default.slo_violation_minutes:,} "
                f"violation minutes; your current settings: {mine.dyno_hours:,.1f} dyno-hours "
                f"and {mine.slo_violation_minutes:,} violation minutes"
            )
        return Reply(
            f"Replaying {replaying} ({minutes:,} minutes, peak {context.peak_rpm:,.0f} rpm) "
            f"through the simulator's dyno model: {results}. Try others with "
            "`python -m bot simulate --app` where the bot runs "
            "(`heroku run` on Heroku; --target, --min, --max, --down-stabilization).",
            public=True,
        )

    def _overrides(self) -> OverrideStore:
        return self._autoscale.overrides()

    def _worker(
        self, actor: Actor, resolved: Resolved, command: Command, entry: int, now: datetime
    ) -> Result:
        """`autoscale APP worker on target=latency:30s min=0 max=10`: a worker type from
        the app's job queue (`policies.worker_autoscale`)."""
        app, ptype = command.app or "", command.target or ""
        store = self._autoscale.workers()
        if command.mode == "status":
            return Reply(self.status(app, now, resolved.target, ptype))
        if resolved.target.queue_url is None and command.mode != "off":
            self._audit.finish(entry, "refused", error="no queue_url")
            return Reply(
                f"`{app}` has no job-queue endpoint: worker dynos scale from the app's HireFire "
                "endpoint (`QUEUE_URL/hirefire/TOKEN/info`), so its registry entry needs "
                "`autoscale: queue_url: https://…`."
            )
        current = store.settings(app, ptype)
        options = dict(command.options)
        running = self._running(resolved, entry)
        # A type gone from the formation (dropped from the Procfile) may still be turned
        # off: its setting would otherwise stay on with no way to end it.
        if ptype not in running and not (command.mode == "off" and current is not None):
            self._audit.finish(entry, "refused", error="no such process type")
            return Reply(
                f"{not_on_app(app, ptype, sorted(running))} "
                f"Name one, as in `/deploy autoscale {app} worker on target=latency:30s`."
            )
        try:
            target = (
                parse_worker_target(options["target"])
                if "target" in options
                else (current.target if current else WorkerTarget("latency", 30.0))
            )
        except ValueError as exc:
            self._audit.finish(entry, "refused", error="bad target")
            return Reply(f"{str(exc)[0].upper()}{str(exc)[1:]}.")
        low = int(options.get("min", current.min if current else 0))
        high = int(options.get("max", current.max if current else _default_max(resolved, ptype)))
        if low > high:
            return self._min_above_max(entry, resolved, command, low, high, current is not None)
        refused, past = self._beyond(
            entry, resolved, command, ptype, high, running, kept=current is not None
        )
        if refused is not None:
            return refused
        settings = WorkerSettings(
            app,
            ptype,
            command.mode or "off",
            low,
            high,
            target.kind,
            target.value,
            actor.user_id,
            now,
        )
        store.save(settings)
        self._audit.finish(entry, "ok", after={"autoscale": settings.describe()})
        idle = ""
        if settings.mode != "off" and not self._worker_runs:
            idle = (
                " No worker runs in this console, so nothing reads the queue yet: "
                f"`/deploy simulate queue {app}` plays a backlog of jobs against it."
            )
        if settings.mode != "off" and _token_unset(resolved.target):
            # Saved all the same (the variable may be set next), but said while the asker
            # is here: the tick reads nothing until then.
            idle += (
                f" `{resolved.target.queue_token_env}` is not set in the bot, so the queue "
                "cannot be read until it is: set it to the token in the app's HireFire endpoint."
            )
        return Reply(
            f"<@{actor.user_id}> set autoscaling of `{app}`: {settings.describe()}."
            + _ceiling_cost(settings.mode, ptype, running, high)
            + idle
            + _warned(past),
            public=True,
        )

    def _idle(self, app: str, what: str = "it") -> str:
        """Why nothing acts on a setting of `app` yet ("" when its autoscaling is on)."""
        settings = self._autoscale.settings(app)
        mode = settings.mode if settings else "off"
        if mode == "on":
            return ""
        return (
            f"autoscaling of `{app}` is {mode}, so nothing acts on {what} until "
            f"`/deploy autoscale {app} on`"
        )

    def _idle_note(self, app: str) -> str:
        idle = self._idle(app)
        return f" {idle[0].upper()}{idle[1:]}." if idle else ""

    def _who_holds(self, app: str) -> str:
        """What a pin does now, truthfully: only the worker's autoscaler acts on it, and
        only for an app whose autoscaling is on."""
        idle = self._idle(app, "the pin")
        if idle:
            return idle
        if not self._worker_runs:
            return (
                "no worker runs in this console, so nothing holds it yet: the autoscaler "
                f"applies it when the worker (`python -m bot worker`) runs, and `/deploy simulate spike {app}` "
                "plays it here"
            )
        return "the autoscaler holds it there"

    def _types(self, app: str, resolved: Resolved, asked: str | None) -> tuple[str, ...] | None:
        """The process types of the app's formation, read only for a worker type named
        that has no settings yet; None when not read or not readable now."""
        if asked is None or self._autoscale.workers().settings(app, asked):
            return None
        try:
            return tuple(sorted(formation_map(resolved.platform.formation(resolved.target.name))))
        except PlatformError:
            return None

    def status(
        self,
        app: str,
        now: datetime,
        target: Target,
        asked: str | None = None,
        types: tuple[str, ...] | None = None,
    ) -> str:
        """What the autoscaler does for `app`; `asked`: a worker type the person named, of
        which alone it speaks; `types`: the formation's process types, when read."""
        lines = self._web_status(app, now, target) if asked is None else []
        lines.extend(self._workers_status(app, target, asked, types))
        return "\n".join(lines)

    def _web_status(self, app: str, now: datetime, target: Target) -> list[str]:
        """Web's settings, scale-down hold, step, schedule, pin and decisions."""
        settings = self._autoscale.settings(app)
        said = (
            f"{settings.describe()} ({_chat(settings.updated_by, settings.updated_at)})"
            if settings
            else "web off (never set)"
        )
        lines = [f"Autoscaling of `{app}`: {said}."]
        found = effective(target, self._overrides().of_app(app))
        if found.down_stabilization is not None and not found.down_stabilization:
            lines.append(
                f"Scale-down follows each tick's own wish, with no hold ({found.down_source})."
            )
        elif found.down_stabilization is not None:
            minutes = found.down_stabilization.total_seconds() / 60
            lines.append(
                f"Scale-down follows the highest wish of the last {minutes:g} min "
                f"({found.down_source})."
            )
        elif settings is not None and settings.target_kind == "rpm":
            # `policies.autoscale.headroom`: with a rate target the noise allowance is the
            # room a longer hold would keep.
            lines.append(
                "Scale-down keeps room for the rate's noise (its level plus two deviations) "
                "and follows the highest wish of the last minute (default)."
            )
        else:
            lines.append(
                "Scale-down follows the highest wish of the last 1–5 min, longer the jumpier "
                "the traffic (default)."
            )
        step = f"{found.max_step} dynos" if found.max_step else "+100 % or +4 up, -10 % or -1 down"
        lines.append(f"Step per tick: {step} ({found.step_source}).")
        # Only the first window covering now applies (`policy.bounds`).
        first = next((w for w in found.windows if w.covers(now)), None)
        # A few, and the one in force: hundreds had filled the message and pushed the pin,
        # the decisions and the workers out of it.
        shown = found.windows[:STATUS_WINDOWS]
        if first is not None and first not in shown:
            shown = (*shown[:-1], first)
        for window in shown:
            active = " (now)" if window is first else ""
            lines.append(
                f"Schedule: {window.describe()}: {_limits_text(window)}{active} "
                f"({found.windows_source})."
            )
        if len(found.windows) > len(shown):
            lines.append(
                f"…and {len(found.windows) - len(shown):,} more schedule windows: "
                f"`/deploy autoscale {app} schedule list` lists them."
            )
        pin = self._autoscale.pin(app, now)
        if pin:
            lines.append(
                f"Pinned at web={pin.quantity} until {moment(pin.until, now)} "
                f"by <@{pin.pinned_by}>."
            )
        lines.extend(_decided(self._autoscale.decisions(app)))
        return lines

    def _workers_status(
        self, app: str, target: Target, asked: str | None, types: tuple[str, ...] | None
    ) -> list[str]:
        """Each worker type's settings and decisions (only `asked`'s when one is named),
        or what `asked` needs when it has none."""
        lines: list[str] = []
        workers = [
            worker
            for worker in self._autoscale.workers().of_app(app)
            if asked is None or worker.process_type == asked
        ]
        for worker in workers:
            endpoint = (
                f"its queue from the registry's `queue_url`, token from `{target.queue_token_env}`"
                + (" (not set in the bot)" if _token_unset(target) else "")
                if target.queue_url
                else "no `queue_url` in the registry, so nothing is read"
            )
            lines.append(
                f"Worker `{worker.process_type}`: {worker.describe()} "
                f"({_chat(worker.updated_by, worker.updated_at)}); {endpoint}."
            )
            if asked is not None and target.guardrails.max_step is not None:
                # The one step that moves a worker type: web's (chat's max_step, the
                # policy's +100 %) does not (`policies.worker_autoscale.decide_worker`).
                lines.append(
                    f"Step per tick: at most {target.guardrails.max_step} dynos "
                    "(the registry's `guardrails: max_step:`)."
                )
            decided = self._autoscale.decisions(
                app, WORKER_DECISIONS, process_type=worker.process_type
            )
            lines.extend(_decided(decided))
        if workers:
            return lines
        if asked is not None and types is not None and asked not in types:
            # `on` would be refused for the type: offer no command to type.
            lines.append(f"Worker {shown(asked)}: {not_on_app(app, asked, types)}")
        elif asked is not None and target.queue_url is None:
            # The command below would be refused for the endpoint: say what comes first.
            lines.append(
                f"Worker `{asked}`: off (never set); it scales from the app's job queue once "
                "the registry names its endpoint (`autoscale: queue_url:`)."
            )
        elif asked is not None:
            lines.append(
                f"Worker `{asked}`: off (never set); `/deploy autoscale {app} {asked} on "
                "target=latency:30s` scales it from its job queue."
            )
        return lines


def replayed_settings(store: AutoscaleStore, app: str, target: Target) -> dict[str, object]:
    """The app's settings in force as `replay_app` takes them (target, low, high,
    down_stabilization), for `/deploy simulate APP 7d` and `deploybot simulate --app` alike."""
    found = effective(target, store.overrides().of_app(app))
    current: dict[str, object] = {"down_stabilization": found.down_stabilization}
    stored = store.settings(app)
    if stored is not None:
        # The store says "rpm" where the policy says "rpm_per_dyno".
        kind = "rpm_per_dyno" if stored.target_kind == "rpm" else stored.target_kind
        current |= {
            "target": policy.Target(kind, stored.target_value),  # type: ignore[arg-type]
            "low": stored.min,
            "high": stored.max,
        }
    return current


def _token_unset(target: Target) -> bool:
    """Whether the bot lacks the token of `target`'s HireFire endpoint (its environment is
    the worker's, which reads the endpoint: on Heroku, the same app's config vars)."""
    return not pasted(os.environ.get(target.queue_token_env))


def _default_max(resolved: Resolved, ptype: str) -> int:
    """The max when none is given or kept: the app's cap, but never more than ten, so an
    unlisted app's `heroku.unlisted_max` of 100 is not what a bare `on` spends up to."""
    cap = resolved.target.guardrails.most(ptype)
    return min(cap, DEFAULT_MAX) if cap is not None else DEFAULT_MAX


def _warned(past: PastLimit | None) -> str:
    """A line after a kept setting whose count is past a limit Heroku support can raise."""
    return f"\n{past.text}" if past is not None else ""


def _chat(user: str, at: datetime) -> str:
    """Where a setting made by a command came from, as `effective` says it."""
    return f"chat, <@{user}> {at:%Y-%m-%d %H:%M} UTC"


def _decided(decisions: list[Decision]) -> list[str]:
    """The newest decisions, a line each, their time to the second (the ticks are 15 s
    apart) and named UTC, as App Home's "Last decision" is."""
    return [
        f"• {d.at:%H:%M:%S} UTC {'acted' if d.acted else 'held'}: {d.reason}" for d in decisions
    ]
