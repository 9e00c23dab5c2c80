"""The deployment verbs: releases, rollback, maintenance, config, lock and unlock.

They take the same path as scale (the gate has already said the user may; here come the
deploy lock, the guardrails and freeze windows, the confirmation, the audit row and the
platform call). A rollback and a config change always ask first; the Confirm click acts
once, however often Slack delivers it, because `Confirmations.decide` is one conditional
UPDATE. Config values never reach an audit row, a log line or a confirmation's command.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from bot.actions.gate import Gate
from bot.actions.results import (
    BreakGlass,
    ConfigVars,
    Deployed,
    DeployPrompt,
    Logs,
    Releases,
    Reply,
    Resolved,
    Result,
)
from bot.platforms.base import NotSupported, PlatformError, Release
from bot.platforms.beanstalk import NO_MAINTENANCE
from bot.platforms.sources import SourceError, signed_url
from bot.registry import Target
from bot.store.audit import Actor, AuditLog
from bot.store.confirmations import Confirmations, Pending
from bot.store.locks import Locks
from policies import guardrails
from policies.commands import Command
from policies.redact import mask

log = logging.getLogger(__name__)

VERBS = frozenset(
    {
        "releases",
        "rollback",
        "maintenance",
        "config",
        "lock",
        "unlock",
        "ship",
        "promote",
        "swap",
        "run",
        "logs",
    }
)
DEFAULT_REF = "main"
# Verbs whose Confirm click lands here rather than in the formation path.
CONFIRMED_VERBS = frozenset({"rollback", "config"})
# How far back a rollback looks for its target (and `releases` at most shows).
LOOKBACK = 50

# (target, verb, force reason, user) → the guardrails' verdict on a change with no formation.
Judge = Callable[[Target, str, str | None, str], guardrails.Verdict]


class Deployments:
    def __init__(
        self,
        resolve: Callable[[str], Resolved],
        audit: AuditLog,
        confirmations: Confirmations,
        locks: Locks,
        gate: Gate,
        judge: Judge,
        now: Callable[[], datetime],
        secret: Callable[[str], str | None] = lambda name: None,
    ) -> None:
        self._resolve = resolve
        self._audit = audit
        self._confirmations = confirmations
        self._locks = locks
        self._gate = gate
        self._judge = judge
        self._now = now
        self._secret = secret  # reads a named env var (a private source's token)

    def run(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        """A deployment verb, already allowed by the gate, for the resolved app."""
        try:
            if command.verb == "releases":
                found = self._platform(resolved).releases(resolved.target.name, command.limit or 10)
                return Releases(command.app or "", resolved.target.platform, found)
            if command.verb == "lock":
                return self._lock(actor, command)
            if command.verb == "unlock":
                return self._unlock(actor, command)
            if command.verb == "maintenance":
                return self._maintenance(actor, resolved, command)
            if command.verb == "config":
                return self._config(actor, resolved, command)
            if command.verb == "ship":
                return self._ship(actor, resolved, command)
            if command.verb == "promote":
                return self._promote(actor, resolved, command)
            if command.verb == "swap":
                return self._swap(actor, resolved, command)
            if command.verb == "run":
                return self._run(actor, resolved, command)
            if command.verb == "logs":
                return self._logs(resolved, command)
            return self._rollback(actor, resolved, command)
        except NotSupported as error:
            return Reply(str(error))

    # -- rollback ---------------------------------------------------------------------------

    def _rollback(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app = command.app or ""
        refusal = self._refusal(resolved.target, "rollback", command.force, actor.user_id)
        if refusal:
            return Reply(refusal)
        releases = self._platform(resolved).releases(resolved.target.name, LOOKBACK)
        current = _current(releases)
        if current is None:
            return Reply(f"`{app}` has no releases yet, so there is nothing to roll back to.")
        target = _rollback_target(app, releases, current, command.target)
        if isinstance(target, str):
            return Reply(target)
        verdict = self._judge(resolved.target, "rollback", command.force, actor.user_id)
        pending = self._confirmations.create(
            actor,
            app,
            f"rollback {app} {target.version}",
            _as_json(current),
            _as_json(target),
            self._now(),
            force_reason=command.force if verdict.forced else None,
        )
        return DeployPrompt(
            pending.id, app, "rollback", actor.user_id, pending.expires_at, current, target
        )

    def confirmed(self, requester: Actor, confirmer: Actor, pending: Pending) -> Result:
        """Carry out a confirmed rollback or config change, judged again as things stand."""
        verb = pending.command.split()[0]
        resolved = self._resolve(pending.app)
        refusal = self._refusal(resolved.target, verb, pending.force_reason, requester.user_id)
        if refusal:
            return Reply(f"Nothing was changed: {refusal}", public=True)
        if verb == "config":
            return self._apply_config(requester, confirmer, resolved, pending)
        return self._apply_rollback(requester, confirmer, resolved, pending)

    def _apply_rollback(
        self, requester: Actor, confirmer: Actor, resolved: Resolved, pending: Pending
    ) -> Result:
        platform = self._platform(resolved)
        before, target = _release(pending.before), _release(pending.targets)
        current = _current(platform.releases(resolved.target.name, LOOKBACK))
        if current is None or current.version != before.version:
            now = current.version if current else "nothing"
            return Reply(
                f"Nothing was changed: `{pending.app}` moved from {before.version} to {now} "
                f"since the rollback was asked for. Run `/deploy rollback {pending.app}` again.",
                public=True,
            )
        entry = self._audit.start(
            requester,
            "rollback",
            pending.app,
            pending.command,
            {"version": before.version},
            {"version": target.version},
        )
        after = self._call(entry, lambda: platform.rollback(resolved.target.name, target))
        self._audit.finish(entry, "ok", after={"version": after.version})
        log.info("rolled back", extra={"app": pending.app, "user": requester.user_id})
        return Deployed(
            pending.app,
            "rollback",
            requester.user_id,
            before=before,
            after=target,
            # Heroku makes a new release (v43) from the old one (v41); Beanstalk redeploys it.
            mode=after.version if after.version != target.version else None,
            confirmed_by=confirmer.user_id,
            audit_id=entry,
            slow=platform.settles_slowly(),
            break_glass=self._break_glass(resolved.target, requester, pending),
        )

    # -- ship, promote, swap ---------------------------------------------------------------

    def _ship(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app, target = command.app or "", resolved.target
        refusal = self._refusal(target, "ship", command.force, actor.user_id)
        if refusal:
            return Reply(refusal)
        platform = self._platform(resolved)
        if target.platform == "beanstalk":
            return self._ship_version(actor, resolved, command)
        if not target.source:
            return Reply(
                f"`{app}` has no `source:` in the registry, so I do not know what to build. "
                "An admin can add a tarball URL with `{ref}` in it."
            )
        ref = command.target or DEFAULT_REF
        url = target.source.replace("{ref}", quote(ref, safe="/"))
        if target.source_token_env:
            token = self._secret(target.source_token_env)
            if not token:
                return Reply(
                    f"`{app}`'s source needs a token, and {target.source_token_env} is not set "
                    "on the bot. An admin should set it."
                )
            try:
                url = signed_url(url, token)
            except SourceError as error:
                return Reply(str(error))
        entry = self._audit.start(actor, "ship", app, command.text(), None, {"ref": ref})
        build = self._call(entry, lambda: platform.build(target.name, url, ref))
        self._audit.finish(entry, "ok", after={"build": build.id})
        log.info("build started", extra={"app": app, "user": actor.user_id})
        return Deployed(
            app, "ship", actor.user_id, mode=ref, audit_id=entry, slow=True, build_id=build.id
        )

    def _ship_version(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app, platform = command.app or "", self._platform(resolved)
        if command.target is None:
            return Reply(
                f"Say which application version to deploy to `{app}`: "
                f"`/deploy ship {app} LABEL` (see `/deploy releases {app}`)."
            )
        releases = platform.releases(resolved.target.name, LOOKBACK)
        found = [r for r in releases if r.version == command.target]
        bundle = resolved.target.bundle
        if not found and bundle is None:
            return Reply(
                f"`{app}` has no application version {_clip(command.target)}, and no `bundle:` "
                f"in the registry to make one from. See `/deploy releases {app}`."
            )
        if not found:
            return self._ship_bundle(actor, resolved, command, _current(releases))
        if found[0].current:
            return Reply(f"{found[0].version} is already deployed to `{app}`; nothing to ship.")
        before = _current(releases)
        entry = self._audit.start(
            actor,
            "ship",
            app,
            command.text(),
            {"version": before.version if before else None},
            {"version": found[0].version},
        )
        self._call(entry, lambda: platform.deploy_version(resolved.target.name, found[0].version))
        self._audit.finish(entry, "ok", after={"version": found[0].version})
        return Deployed(
            app,
            "ship",
            actor.user_id,
            before=before,
            after=found[0],
            mode=found[0].version,
            audit_id=entry,
            slow=True,
        )

    def _ship_bundle(
        self, actor: Actor, resolved: Resolved, command: Command, before: Release | None
    ) -> Result:
        """A new application version from the registry's S3 bundle, then deployed."""
        app, label, platform = command.app or "", command.target or "", self._platform(resolved)
        bucket, template = resolved.target.bundle or ("", "")
        key = template.replace("{ref}", label)
        entry = self._audit.start(
            actor,
            "ship",
            app,
            command.text(),
            {"version": before.version if before else None},
            {"version": label, "bundle": f"s3://{bucket}/{key}"},
        )

        def create_and_deploy() -> None:
            platform.create_version(resolved.target.name, label, bucket, key)
            platform.deploy_version(resolved.target.name, label)

        self._call(entry, create_and_deploy)
        self._audit.finish(entry, "ok", after={"version": label})
        after = Release(label, f"from s3://{bucket}/{key}", None, "", id=label)
        return Deployed(
            app,
            "ship",
            actor.user_id,
            before=before,
            after=after,
            mode=label,
            audit_id=entry,
            slow=True,
        )

    def _promote(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app, target = command.app or "", resolved.target
        if target.platform != "heroku":
            return Reply(
                f"`{app}` is a Beanstalk environment, and Beanstalk has no pipelines. For "
                f"blue/green, swap two environments: `/deploy swap {app} OTHER`."
            )
        refusal = self._refusal(target, "promote", command.force, actor.user_id)
        if refusal:
            return Reply(refusal)
        platform = self._platform(resolved)
        pipeline, source, stage, downstream = platform.downstream(target.name)
        if not downstream:
            return Reply(
                f"`{app}` is in the {stage} stage of its pipeline and no stage after it has an "
                "app, so there is nothing to promote to."
            )
        for _, name in downstream:
            held = self._locks.get(name)
            if held is not None and held.user_id != actor.user_id:
                refusal = guardrails.lock_refusal(
                    "promote", name, held.user_id, held.reason, actor.user_id
                )
                return Reply(refusal or "")
        names = [name for _, name in downstream]
        entry = self._audit.start(actor, "promote", app, command.text(), None, {"to": names})
        results = self._call(
            entry, lambda: platform.promote(target.name, pipeline, source, downstream)
        )
        failed = [r for r in results if r.status == "failed"]
        outcome = "error" if failed else "ok"
        self._audit.finish(
            entry,
            outcome,
            after={r.app: r.status for r in results},
            error="; ".join(f"{r.app}: {r.error}" for r in failed) or None,
        )
        return Deployed(app, "promote", actor.user_id, audit_id=entry, promotions=results)

    def _swap(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app, other_alias = command.app or "", command.target or ""
        if resolved.target.platform != "beanstalk":
            return Reply(
                f"`{app}` is a Heroku app: swapping CNAMEs is for Beanstalk environments. "
                f"To move a release between Heroku apps, use `/deploy promote {app}`."
            )
        other = self._resolve(other_alias)
        if other.target.platform != "beanstalk" or other.target.region != resolved.target.region:
            return Reply(
                f"`{other_alias}` is not a Beanstalk environment in {resolved.target.region}, "
                f"so it cannot swap CNAMEs with `{app}`."
            )
        for target in (resolved.target, other.target):
            refusal = self._refusal(target, "swap", command.force, actor.user_id)
            if refusal:
                return Reply(refusal)
        platform = self._platform(resolved)
        entry = self._audit.start(actor, "swap", app, command.text(), None, {"with": other_alias})
        self._call(entry, lambda: platform.swap(resolved.target.name, other.target.name))
        self._audit.finish(entry, "ok")
        return Deployed(app, "swap", actor.user_id, mode=other_alias, audit_id=entry)

    # -- run and logs -----------------------------------------------------------------------

    def _run(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app, target, wanted = command.app or "", resolved.target, command.reason or ""
        if target.platform != "heroku":
            return Reply(
                f"`{app}` is a Beanstalk environment, which has no one-off processes, so "
                "`run` is not supported there."
            )
        if wanted not in target.run:
            allowed = ", ".join(f"`{c}`" for c in target.run)
            listed = f"It allows: {allowed}." if allowed else "It allows none yet."
            return Reply(
                f"`{_clip(wanted)}` is not a command `{app}` may run from chat. {listed} "
                "An admin can add commands under the app's `run:` in the registry."
            )
        refusal = self._refusal(target, "run", command.force, actor.user_id)
        if refusal:
            return Reply(refusal)
        platform = self._platform(resolved)
        entry = self._audit.start(actor, "run", app, command.text(), None, {"command": wanted})
        dyno = self._call(entry, lambda: platform.run_detached(target.name, wanted))
        self._audit.finish(entry, "ok", after={"dyno": dyno})
        return Deployed(
            app, "run", actor.user_id, mode=dyno, keys=(wanted,), audit_id=entry, slow=True
        )

    def _logs(self, resolved: Resolved, command: Command) -> Result:
        platform = self._platform(resolved)
        dyno = command.target if resolved.target.platform == "heroku" else None
        lines = platform.log_lines(resolved.target.name, dyno, command.limit or 100)
        return Logs(command.app or "", dyno, tuple(mask(line) for line in lines))

    # -- maintenance ------------------------------------------------------------------------

    def _maintenance(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app, on = command.app or "", command.mode == "on"
        platform = self._platform(resolved)
        if resolved.target.platform == "beanstalk":
            # Said first, before any rule or freeze: Beanstalk has no such thing at all.
            return Reply(NO_MAINTENANCE.format(app=app))
        if platform.maintenance(resolved.target.name) == on:
            return Reply(f"`{app}` is already in maintenance mode {command.mode}; nothing to do.")
        refusal = self._refusal(resolved.target, "maintenance", command.force, actor.user_id)
        if refusal:
            return Reply(refusal)
        entry = self._audit.start(
            actor, "maintenance", app, command.text(), {"maintenance": not on}, {"maintenance": on}
        )
        self._call(entry, lambda: platform.set_maintenance(resolved.target.name, on))
        self._audit.finish(entry, "ok", after={"maintenance": on})
        return Deployed(app, "maintenance", actor.user_id, mode=command.mode, audit_id=entry)

    # -- config -----------------------------------------------------------------------------

    def _config(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app = command.app or ""
        platform = self._platform(resolved)
        if command.mode is None:
            values = platform.config_vars(resolved.target.name)
            masked = not self._gate.decide(actor, "config", app).allowed
            return ConfigVars(app, tuple(sorted(values.items())), masked)
        refusal = self._refusal(resolved.target, "config", command.force, actor.user_id)
        if refusal:
            return Reply(refusal)
        keys = tuple(key for key, _ in command.options)
        if command.mode == "unset":
            present = platform.config_vars(resolved.target.name)
            missing = [key for key in keys if key not in present]
            if missing:
                return Reply(f"`{missing[0]}` is not set on `{app}`; nothing to unset.")
        verdict = self._judge(resolved.target, "config", command.force, actor.user_id)
        changes: dict[str, Any] = {
            key: (value if command.mode == "set" else None) for key, value in command.options
        }
        # The values wait in the confirmation row until it is decided or expires (then wiped).
        pending = self._confirmations.create(
            actor,
            app,
            command.text(),
            {},
            {"changes": changes},
            self._now(),
            force_reason=command.force if verdict.forced else None,
        )
        return DeployPrompt(
            pending.id,
            app,
            "config",
            actor.user_id,
            pending.expires_at,
            keys=keys,
            unset=command.mode == "unset",
        )

    def _apply_config(
        self, requester: Actor, confirmer: Actor, resolved: Resolved, pending: Pending
    ) -> Result:
        # Read before the click was decided; the row itself no longer holds the values.
        changes = dict(pending.targets.get("changes") or {})
        keys = tuple(sorted(changes))
        unset = all(value is None for value in changes.values())
        mode = "unset" if unset else "set"
        entry = self._audit.start(
            requester, "config", pending.app, pending.command, None, {mode: list(keys)}
        )
        platform = self._platform(resolved)
        self._call(entry, lambda: platform.set_config(resolved.target.name, changes))
        self._audit.finish(entry, "ok", after={mode: list(keys)})
        return Deployed(
            pending.app,
            "config",
            requester.user_id,
            mode=mode,
            keys=keys,
            confirmed_by=confirmer.user_id,
            audit_id=entry,
            slow=platform.settles_slowly(),
        )

    # -- lock and unlock --------------------------------------------------------------------

    def _lock(self, actor: Actor, command: Command) -> Result:
        app, reason = command.app or "", command.reason or ""
        entry = self._audit.start(actor, "lock", app, command.text(), None, None)
        held = self._locks.take(app, actor.user_id, reason, self._now())
        if held.user_id != actor.user_id:
            self._audit.finish(entry, "refused", error=f"already locked by {held.user_id}")
            return Reply(
                f"`{app}` is already locked by <@{held.user_id}> ({held.reason}). Ask them to "
                f"`/deploy unlock {app}` first."
            )
        self._audit.finish(entry, "ok")
        return Deployed(app, "lock", actor.user_id, mode=held.reason, audit_id=entry)

    def _unlock(self, actor: Actor, command: Command) -> Result:
        app = command.app or ""
        held = self._locks.get(app)
        if held is None:
            return Reply(f"`{app}` is not locked; nothing to do.")
        if held.user_id != actor.user_id and not self._gate.is_admin(actor.user_id):
            return Reply(
                f"`{app}` is locked by <@{held.user_id}>; only they or an admin may unlock it."
            )
        entry = self._audit.start(actor, "unlock", app, command.text(), None, None)
        self._locks.release(app)
        self._audit.finish(entry, "ok")
        return Deployed(app, "unlock", actor.user_id, mode=held.user_id, audit_id=entry)

    # -- shared -----------------------------------------------------------------------------

    def _refusal(self, target: Target, verb: str, force: str | None, user_id: str) -> str | None:
        held = self._locks.get(target.alias)
        refusal = guardrails.lock_refusal(
            verb,
            target.alias,
            held.user_id if held else None,
            held.reason if held else None,
            user_id,
        )
        if refusal:
            return refusal
        verdict = self._judge(target, verb, force, user_id)
        return verdict.reason if verdict.refused else None

    def _break_glass(self, target: Target, actor: Actor, pending: Pending) -> BreakGlass | None:
        if not pending.force_reason:
            return None
        verdict = self._judge(target, "rollback", pending.force_reason, actor.user_id)
        if not verdict.forced:
            return None
        return BreakGlass(
            actor.user_id,
            pending.command,
            verdict.freeze_reason or "",
            pending.force_reason,
            target.channel,
        )

    def _call(self, entry: int, work: Callable[[], Any]) -> Any:
        """Run the platform call, completing the audit row with how it failed if it did."""
        try:
            return work()
        except PlatformError as error:
            self._audit.finish(entry, error.outcome, error=str(error))
            raise
        except Exception as error:
            self._audit.finish(entry, "error", error=type(error).__name__)
            raise

    @staticmethod
    def _platform(resolved: Resolved) -> Any:
        # Both platform clients have the deployment calls; `Platform` stays the scale protocol.
        return resolved.platform


def _current(releases: tuple[Release, ...]) -> Release | None:
    marked = [r for r in releases if r.current]
    if marked:
        return marked[0]
    good = [r for r in releases if r.good]
    return good[0] if good else None


def _rollback_target(
    app: str, releases: tuple[Release, ...], current: Release, wanted: str | None
) -> Release | str:
    """The release to go back to, or the sentence saying why there is none."""
    if wanted is None:
        older = [r for r in releases if r.good and _older(r, current, releases)]
        if not older:
            return f"`{app}` has no earlier good release to roll back to."
        return older[0]
    matches = [r for r in releases if r.version.lower() in _spellings(wanted)]
    if not matches:
        return (
            f"`{app}` has no release {_clip(wanted)} among its last {LOOKBACK}. "
            f"See `/deploy releases {app}`."
        )
    found = matches[0]
    if found.version == current.version:
        return f"{found.version} is already the current release of `{app}`; nothing to roll back."
    if not found.good:
        return (
            f"{found.version} of `{app}` {found.status.lower()}, so it cannot be rolled back to. "
            f"Pick a good release from `/deploy releases {app}`."
        )
    return found


def _older(release: Release, current: Release, releases: tuple[Release, ...]) -> bool:
    # `releases` is newest first, so older means later in the list.
    return releases.index(release) > releases.index(current)


def _spellings(wanted: str) -> set[str]:
    word = wanted.lower()
    if word.isdigit():
        return {word, f"v{word}"}
    return {word}


def _clip(word: str) -> str:
    return word.replace("`", "'")[:40]


def _as_json(release: Release) -> dict[str, Any]:
    return {
        "version": release.version,
        "description": release.description,
        "id": release.id,
        "status": release.status,
    }


def _release(data: dict[str, Any]) -> Release:
    return Release(
        version=str(data.get("version", "")),
        description=str(data.get("description", "")),
        created_at=None,
        user="",
        id=str(data.get("id", "")),
        status=str(data.get("status", "succeeded")),
    )
