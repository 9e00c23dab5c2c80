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
from policies.commands import Command

DEFAULT_MAX = 10  # web dynos, when `/deploy autoscale APP on` names no max


class AutoscaleCommands:
    def __init__(
        self,
        store: AutoscaleStore,
        audit: AuditLog,
        now: Callable[[], datetime],
        worker_runs: bool = True,
    ) -> None:
        self._autoscale = store
        self._audit = audit
        self._now = now
        # False in the sandbox console, where no worker runs the autoscaler between lines.
        self._worker_runs = worker_runs

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
                    f"{self._who_holds(app)}."
                )
            self._audit.finish(entry, "ok")
            return Reply(text, public=True)
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
        # With no max given: the app's cap, but never more than ten by default.
        default = min(cap, DEFAULT_MAX) if cap is not None else DEFAULT_MAX
        high = int(options.get("max", current.max if current else max(low, default)))
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

    def _who_holds(self, app: str) -> str:
        """What a pin does now, truthfully: only the worker's autoscaler acts on it, and
        only for an app whose autoscaling is on."""
        settings = self._autoscale.settings(app)
        mode = settings.mode if settings else "off"
        if mode != "on":
            return (
                f"autoscaling of `{app}` is {mode}, so nothing acts on the pin until "
                f"`/deploy autoscale {app} on`"
            )
        if not self._worker_runs:
            return (
                "no worker runs in this console, so nothing holds it yet: the autoscaler "
                f"applies it when `deploybot worker` runs, and `/deploy simulate spike {app}` "
                "plays it here"
            )
        return "the autoscaler holds it there"

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
        for decision in self._autoscale.decisions(app):
            mark = "acted" if decision.acted else "held"
            lines.append(f"• {decision.at:%H:%M:%S} {mark}: {decision.reason}")
        return "\n".join(lines)
