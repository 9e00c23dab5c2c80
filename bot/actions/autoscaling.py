"""`/deploy autoscale` and `/deploy pin`: the autoscaler's settings and pins as commands,
audited like every change, and the status text that explains what it is doing. The
autoscale tick itself is the worker's (`bot.worker.autoscale`); the arithmetic is
`policies.autoscale`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bot.actions.results import Reply, Resolved, Result
from bot.platforms.base import formation_map
from bot.registry import Target
from bot.store.audit import Actor, AuditLog
from bot.store.autoscale_settings import DEFAULT_TARGET, AutoscaleStore, Pin, Settings, parse_target
from bot.store.worker_autoscale_settings import WorkerSettings
from policies.commands import Command
from policies.worker_autoscale import WorkerTarget, parse_worker_target


class AutoscaleCommands:
    def __init__(self, store: AutoscaleStore, audit: AuditLog, now: Callable[[], datetime]) -> None:
        self._autoscale = store
        self._audit = audit
        self._now = now

    def run(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app = command.app or ""
        now = self._now()
        if command.verb == "autoscale" and command.mode == "status":
            return Reply(self.status(app, now, resolved.target))
        entry = self._audit.start(actor, command.verb, app, command.text(), None, None)
        if command.verb == "pin":
            if command.mode == "off":
                gone = self._autoscale.unpin(app)
                text = (
                    f"<@{actor.user_id}> unpinned `{app}`." if gone else f"`{app}` was not pinned."
                )
            else:
                quantity = command.changes[0].amount
                until = now + timedelta(minutes=command.limit or 60)
                self._autoscale.set_pin(Pin(app, quantity, until, actor.user_id))
                text = (
                    f"<@{actor.user_id}> pinned `{app}` at web={quantity} until "
                    f"<!date^{int(until.timestamp())}^{{time}}|{until:%H:%M} UTC>: "
                    "the autoscaler holds it there."
                )
            self._audit.finish(entry, "ok")
            return Reply(text, public=True)
        if resolved.target.platform != "heroku" and command.mode != "off":
            # The tick reads drained router logs and Heroku formations; a Beanstalk
            # environment has neither, and its own Auto Scaling group scales it.
            self._audit.finish(entry, "refused", error="autoscale is Heroku-only")
            return Reply(
                f"`{app}` is an Elastic Beanstalk environment: the autoscaler scales Heroku "
                "dynos only. Set its Auto Scaling group's MinSize/MaxSize and triggers in "
                "Beanstalk (`aws:autoscaling:asg`), or `/deploy scale` it by hand."
            )
        if command.target:
            return self._worker(actor, resolved, command, entry, now)
        current = self._autoscale.settings(app)
        options = dict(command.options)
        web = formation_map(resolved.platform.formation(resolved.target.name)).get("web", (1, ""))[
            0
        ]
        cap = resolved.target.guardrails.most("web")
        kind, value = (
            parse_target(options["target"])
            if "target" in options
            else ((current.target_kind, current.target_value) if current else DEFAULT_TARGET)
        )
        low = int(options.get("min", current.min if current else max(1, web)))
        high = int(options.get("max", current.max if current else max(low, cap or 10)))
        if low > high:
            self._audit.finish(entry, "refused", error="min above max")
            return Reply(
                f"min={low} is more than max={high}: give both, or one that fits the other."
            )
        if cap is not None and high > cap:
            self._audit.finish(entry, "refused", error="max above guardrail")
            return Reply(
                f"`{app}` allows at most {cap} web dynos (the registry's `max`), so max={high} is refused."
            )
        settings = Settings(app, command.mode or "off", low, high, kind, value, actor.user_id, now)
        self._autoscale.save(settings)
        self._audit.finish(entry, "ok", after={"autoscale": settings.describe()})
        return Reply(
            f"<@{actor.user_id}> set autoscaling of `{app}`: {settings.describe()}.", public=True
        )

    def _worker(
        self, actor: Actor, resolved: Resolved, command: Command, entry: int, now: datetime
    ) -> Result:
        """`autoscale APP worker on target=latency:30s min=0 max=10`: a worker type from
        the app's job queue (`policies.worker_autoscale`)."""
        app, ptype = command.app or "", command.target or ""
        store = self._autoscale.workers()
        if command.mode == "status":
            return Reply(self.status(app, now, resolved.target))
        if resolved.target.queue_url is None and command.mode != "off":
            self._audit.finish(entry, "refused", error="no queue_url")
            return Reply(
                f"`{app}` has no `autoscale: queue_url:` in the registry: the bot reads worker "
                "queues from the app's HireFire endpoint, `<queue_url>/hirefire/<token>/info`."
            )
        current = store.settings(app, ptype)
        options = dict(command.options)
        running = formation_map(resolved.platform.formation(resolved.target.name))
        if ptype not in running:
            self._audit.finish(entry, "refused", error="no such process type")
            return Reply(f"`{app}` has no `{ptype}` process type in its formation.")
        target = (
            parse_worker_target(options["target"])
            if "target" in options
            else (current.target if current else WorkerTarget("latency", 30.0))
        )
        cap = resolved.target.guardrails.most(ptype)
        low = int(options.get("min", current.min if current else 0))
        high = int(options.get("max", current.max if current else max(low, cap or 10)))
        if low > high:
            self._audit.finish(entry, "refused", error="min above max")
            return Reply(f"min={low} is more than max={high}: give both, or one that fits.")
        if cap is not None and high > cap:
            self._audit.finish(entry, "refused", error="max above guardrail")
            return Reply(f"`{app}` allows at most {cap} `{ptype}` dynos, so max={high} is refused.")
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
        return Reply(
            f"<@{actor.user_id}> set autoscaling of `{app}`: {settings.describe()}.", public=True
        )

    def status(self, app: str, now: datetime, target: Target) -> str:
        settings = self._autoscale.settings(app)
        lines = [
            f"Autoscaling of `{app}`: {settings.describe() if settings else 'off (never set)'}."
        ]
        if target.down_stabilization is not None:
            minutes = target.down_stabilization.total_seconds() / 60
            lines.append(
                f"Scale-down follows the highest wish of the last {minutes:g} min (registry)."
            )
        else:
            lines.append(
                "Scale-down follows the highest wish of the last 1–5 min, longer the jumpier "
                "the traffic (default)."
            )
        for window in target.schedule:
            limits = ", ".join(
                f"{word} {value}"
                for word, value in (("min", window.min), ("max", window.max))
                if value is not None
            )
            active = " (now)" if window.covers(now) else ""
            lines.append(f"Schedule: {window.describe()}: {limits}{active}.")
        pin = self._autoscale.pin(app, now)
        if pin:
            lines.append(
                f"Pinned at web={pin.quantity} until {pin.until:%H:%M} UTC by <@{pin.pinned_by}>."
            )
        for worker in self._autoscale.workers().of_app(app):
            lines.append(f"Worker `{worker.process_type}`: {worker.describe()}.")
        for decision in self._autoscale.decisions(app):
            mark = "acted" if decision.acted else "held"
            lines.append(f"• {decision.at:%H:%M:%S} {mark}: {decision.reason}")
        return "\n".join(lines)
