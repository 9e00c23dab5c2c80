"""The one path every request takes: authorize ▸ plan ▸ confirm ▸ record ▸ call ▸ record.

Slash commands, buttons and the console all call `Actions`; it returns plain result
objects that `handlers/render.py` turns into Block Kit. Nothing here knows about Slack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.audit import Actor, AuditLog, utcnow
from bot.confirmations import Confirmations
from bot.platforms.base import AppStatus, Formation, Platform, PlatformError, formation_map
from policies import access
from policies.commands import (
    Command,
    CommandError,
    help_text,
    plan_kill,
    plan_scale,
    stops_dynos,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """A sentence for the asker; `public` replies are shown to the whole channel."""

    text: str
    public: bool = False


@dataclass(frozen=True)
class Changed:
    app: str
    verb: str
    user_id: str
    before: tuple[Formation, ...]
    after: tuple[Formation, ...]
    confirmed_by: str | None = None


@dataclass(frozen=True)
class Restarted:
    app: str
    target: str | None
    user_id: str


@dataclass(frozen=True)
class Status:
    status: AppStatus


@dataclass(frozen=True)
class NeedsConfirmation:
    id: str
    app: str
    verb: str
    user_id: str
    before: dict[str, tuple[int, str]]
    targets: dict[str, tuple[int, str | None]]
    expires_at: datetime


Result = Reply | Changed | Restarted | Status | NeedsConfirmation


class Actions:
    def __init__(
        self,
        platform_for: Callable[[str], Platform],
        audit: AuditLog,
        confirmations: Confirmations,
        admins: frozenset[str],
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._platform_for = platform_for
        self._audit = audit
        self._confirmations = confirmations
        self._admins = admins
        self._now = now

    def run(self, actor: Actor, command: Command) -> Result:
        """Carry out a parsed command for `actor`."""
        if command.verb == "help":
            return Reply(help_text(command.topic))
        decision = access.authorize(actor.user_id, command.verb, self._admins)
        if not decision.allowed:
            return Reply(decision.reason)
        assert command.app is not None  # the grammar guarantees an app for every other verb
        platform = self._platform_for(command.app)
        try:
            if command.verb == "status":
                return Status(platform.status(command.app))
            if command.verb == "restart":
                return self._restart(actor, platform, command)
            return self._scale_or_kill(actor, platform, command)
        except (PlatformError, CommandError) as error:
            return Reply(str(error))

    def confirm(self, actor: Actor, confirmation_id: str) -> Result:
        """The requester clicked Confirm: act once, however many clicks arrive."""
        pending = self._confirmations.get(confirmation_id)
        if pending is None:
            return Reply("I have no record of that request. Run the command again.")
        if pending.user_id != actor.user_id:
            return Reply(f"Only <@{pending.user_id}>, who asked, can confirm this.")
        verb = pending.command.split()[0]
        decision = access.authorize(actor.user_id, verb, self._admins)
        if not decision.allowed:
            return Reply(decision.reason)
        now = self._now()
        if not self._confirmations.decide(confirmation_id, actor.user_id, "confirmed", now):
            return self._already_decided(confirmation_id, now)
        targets = {ptype: (qty, size) for ptype, (qty, size) in pending.targets.items()}
        platform = self._platform_for(pending.app)
        try:
            before = platform.formation(pending.app)
            return self._apply(
                actor, platform, pending.app, verb, pending.command, before, targets, actor
            )
        except PlatformError as error:
            return Reply(str(error))

    def cancel(self, actor: Actor, confirmation_id: str) -> Result:
        pending = self._confirmations.get(confirmation_id)
        if pending is None:
            return Reply("I have no record of that request.")
        if pending.user_id != actor.user_id:
            return Reply(f"Only <@{pending.user_id}>, who asked, can cancel this.")
        now = self._now()
        if not self._confirmations.decide(confirmation_id, actor.user_id, "cancelled", now):
            return self._already_decided(confirmation_id, now)
        return Reply(
            f"<@{actor.user_id}> cancelled `{pending.command}`. Nothing was changed.", public=True
        )

    def _already_decided(self, confirmation_id: str, now: datetime) -> Reply:
        self._confirmations.expire(confirmation_id, now)
        pending = self._confirmations.get(confirmation_id)
        assert pending is not None
        if pending.state == "confirmed":
            return Reply(f"`{pending.command}` was already confirmed by <@{pending.decided_by}>.")
        if pending.state == "cancelled":
            return Reply(f"`{pending.command}` was cancelled; nothing was changed.")
        return Reply(
            f"This request expired, so nothing was changed. Run `/deploy {pending.command}` again."
        )

    def _restart(self, actor: Actor, platform: Platform, command: Command) -> Result:
        app = command.app or ""
        entry = self._audit.start(
            actor, "restart", app, command.text(), None, {"target": command.target or "all"}
        )
        try:
            platform.restart(app, command.target)
        except PlatformError as error:
            self._audit.finish(entry, _failed_outcome(error), error=str(error))
            raise
        except Exception as error:
            self._audit.finish(entry, "error", error=type(error).__name__)
            raise
        self._audit.finish(entry, "ok")
        return Restarted(app, command.target, actor.user_id)

    def _scale_or_kill(self, actor: Actor, platform: Platform, command: Command) -> Result:
        app = command.app or ""
        before = platform.formation(app)
        current = formation_map(before)
        if command.verb == "kill":
            targets = plan_kill(current, command.target)
        else:
            targets = plan_scale(command.changes, current)
        if all(
            current[ptype][0] == qty and (size is None or size == current[ptype][1].lower())
            for ptype, (qty, size) in targets.items()
        ):
            return Reply(f"`{app}` already runs that formation; nothing to change.")
        if command.verb == "kill" or stops_dynos(current, targets):
            pending = self._confirmations.create(
                actor, app, command.text(), current, dict(targets), self._now()
            )
            return NeedsConfirmation(
                id=pending.id,
                app=app,
                verb=command.verb,
                user_id=actor.user_id,
                before=current,
                targets=dict(targets),
                expires_at=pending.expires_at,
            )
        return self._apply(actor, platform, app, command.verb, command.text(), before, targets)

    def _apply(
        self,
        actor: Actor,
        platform: Platform,
        app: str,
        verb: str,
        text: str,
        before: tuple[Formation, ...],
        targets: dict[str, tuple[int, str | None]],
        confirmer: Actor | None = None,
    ) -> Result:
        entry = self._audit.start(
            actor, verb, app, text, _as_json(before), {t: list(v) for t, v in targets.items()}
        )
        try:
            after = platform.scale(app, targets)
        except PlatformError as error:
            self._audit.finish(entry, _failed_outcome(error), error=str(error))
            raise
        except Exception as error:
            self._audit.finish(entry, "error", error=type(error).__name__)
            raise
        self._audit.finish(entry, "ok", after=_as_json(after))
        log.info("formation changed", extra={"app": app, "verb": verb, "user": actor.user_id})
        return Changed(
            app=app,
            verb=verb,
            user_id=actor.user_id,
            before=before,
            after=after,
            confirmed_by=confirmer.user_id if confirmer else None,
        )


def _failed_outcome(error: PlatformError) -> str:
    # `changed=None` means the request may have landed: "unknown", not "error".
    return "unknown" if error.changed is None else "error"


def _as_json(formation: tuple[Formation, ...]) -> dict[str, list[object]]:
    return {f.type: [f.quantity, f.size] for f in formation}
