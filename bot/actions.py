"""The one path every request takes: authorize ▸ plan ▸ confirm ▸ record ▸ call ▸ record.

Slash commands, buttons and the console all call `Actions`; it returns plain result
objects that `handlers/render.py` turns into Block Kit. Nothing here knows about Slack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from threading import Event

from bot.audit import Actor, AuditLog, Entry, utcnow
from bot.confirmations import Confirmations
from bot.idempotency import RequestKeys
from bot.platforms.base import (
    AppStatus,
    Formation,
    Platform,
    PlatformError,
    Settled,
    formation_map,
)
from bot.registry import Target, UnknownApp
from policies import access
from policies.commands import (
    Command,
    CommandError,
    help_text,
    plan_kill,
    plan_scale,
    stops_dynos,
)
from policies.sizes import check_size

log = logging.getLogger(__name__)

# Beanstalk updates usually take 2–10 minutes; past this the follow-up says to look in AWS.
FOLLOW_UP_TIMEOUT = 30 * 60.0


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
    audit_id: int | None = None
    slow: bool = False  # the platform is still applying it: follow up when it settles


@dataclass(frozen=True)
class Restarted:
    app: str
    target: str | None
    user_id: str
    audit_id: int | None = None
    slow: bool = False
    unit: str = "dyno"


@dataclass(frozen=True)
class AppList:
    apps: tuple[Target, ...]
    may_change: bool
    unlisted_heroku: bool


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
    unit: str = "dyno"


@dataclass(frozen=True)
class History:
    app: str | None
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class Duplicate:
    """Another delivery of a request already handled (by this process or another): the
    first delivery answers, so this one says nothing."""

    key: str


Result = Reply | Changed | Restarted | Status | NeedsConfirmation | AppList | History | Duplicate


@dataclass(frozen=True)
class Resolved:
    """An alias resolved to its registry entry and the platform client that reaches it."""

    target: Target
    platform: Platform


class Actions:
    def __init__(
        self,
        resolve: Callable[[str], Resolved],
        audit: AuditLog,
        confirmations: Confirmations,
        admins: frozenset[str],
        now: Callable[[], datetime] = utcnow,
        targets: Callable[[], list[Target]] = list,
        unlisted_heroku: bool = True,
        request_keys: RequestKeys | None = None,
    ) -> None:
        self._resolve = resolve
        self._audit = audit
        self._confirmations = confirmations
        self._admins = admins
        self._now = now
        self._targets = targets
        self._unlisted_heroku = unlisted_heroku
        self._request_keys = request_keys

    def run(self, actor: Actor, command: Command) -> Result:
        """Carry out a parsed command for `actor`."""
        if command.verb == "help":
            return Reply(help_text(command.topic))
        decision = access.authorize(actor.user_id, command.verb, self._admins)
        if not decision.allowed:
            return Reply(decision.reason)
        if command.verb == "apps":
            return self._apps(actor)
        if command.verb == "history":
            entries = self._audit.recent(command.app, command.limit)
            return History(command.app, tuple(entries))
        if command.mutating and not self._claim(actor):
            log.info("duplicate delivery ignored", extra={"key": actor.request_key})
            return Duplicate(actor.request_key or "")
        assert command.app is not None  # the grammar guarantees an app for every other verb
        try:
            resolved = self._resolve(command.app)
            if command.verb == "status":
                return Status(
                    replace(resolved.platform.status(resolved.target.name), app=command.app)
                )
            if command.verb == "restart":
                return self._restart(actor, resolved, command)
            return self._scale_or_kill(actor, resolved, command)
        except (PlatformError, CommandError, UnknownApp) as error:
            return Reply(str(error))

    def _claim(self, actor: Actor) -> bool:
        if self._request_keys is None or actor.request_key is None:
            return True
        return self._request_keys.claim(actor.request_key, self._now())

    def follow_up(self, result: Changed | Restarted, stopping: Event) -> Settled:
        """Wait for a slow change to settle and complete its audit row with how it ended."""
        resolved = self._resolve(result.app)
        try:
            settled = resolved.platform.wait_until_settled(
                resolved.target.name, FOLLOW_UP_TIMEOUT, stopping
            )
        except PlatformError as error:
            settled = Settled(ok=False, summary=str(error))
        if stopping.is_set() and not settled.ok:
            settled = Settled(
                ok=False,
                summary=f"{settled.summary} The bot is restarting, so this thread ends here: "
                f"check `/deploy status {result.app}` in a few minutes.",
            )
        if result.audit_id is not None and not settled.ok:
            detail = "; ".join((settled.summary, *settled.events))
            self._audit.finish(result.audit_id, "error", error=detail)
        return settled

    def _apps(self, actor: Actor) -> AppList:
        return AppList(
            apps=tuple(self._targets()),
            may_change=access.authorize(actor.user_id, "scale", self._admins).allowed,
            unlisted_heroku=self._unlisted_heroku,
        )

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
        try:
            resolved = self._resolve(pending.app)
            before = resolved.platform.formation(resolved.target.name)
            return self._apply(
                actor, resolved, pending.app, verb, pending.command, before, targets, actor
            )
        except (PlatformError, UnknownApp) as error:
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

    def _restart(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app = command.app or ""
        entry = self._audit.start(
            actor, "restart", app, command.text(), None, {"target": command.target or "all"}
        )
        platform = resolved.platform
        try:
            platform.restart(resolved.target.name, command.target)
        except PlatformError as error:
            self._audit.finish(entry, _failed_outcome(error), error=str(error))
            raise
        except Exception as error:
            self._audit.finish(entry, "error", error=type(error).__name__)
            raise
        self._audit.finish(entry, "ok")
        return Restarted(
            app, command.target, actor.user_id, entry, platform.settles_slowly(), platform.unit
        )

    def _scale_or_kill(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app = command.app or ""
        problem = _check_sizes(resolved.target, command)
        if problem:
            return Reply(problem)
        before = resolved.platform.formation(resolved.target.name)
        current = formation_map(before)
        if command.verb == "kill":
            targets = plan_kill(current, command.target)
        else:
            targets = plan_scale(command.changes, current)
        problem = _check_limit(resolved.target, targets)
        if problem:
            return Reply(problem)
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
                unit=resolved.platform.unit,
            )
        return self._apply(actor, resolved, app, command.verb, command.text(), before, targets)

    def _apply(
        self,
        actor: Actor,
        resolved: Resolved,
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
        platform = resolved.platform
        try:
            after = platform.scale(resolved.target.name, targets)
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
            audit_id=entry,
            slow=platform.settles_slowly(),
        )


def _check_sizes(target: Target, command: Command) -> str | None:
    for change in command.changes:
        if change.size:
            problem = check_size(target.platform, change.size)
            if problem:
                return problem
    return None


def _check_limit(target: Target, targets: dict[str, tuple[int, str | None]]) -> str | None:
    if target.max is None:
        return None
    for ptype, (quantity, _) in targets.items():
        if quantity > target.max:
            return (
                f"`{target.alias}` allows at most {target.max} per process type "
                f"(the registry's `max`), so `{ptype}={quantity}` is refused."
            )
    return None


def _failed_outcome(error: PlatformError) -> str:
    # `changed=None` means the request may have landed: "unknown", not "error".
    return "unknown" if error.changed is None else "error"


def _as_json(formation: tuple[Formation, ...]) -> dict[str, list[object]]:
    return {f.type: [f.quantity, f.size] for f in formation}
