"""The deployment verbs: releases, rollback, maintenance, config, lock and unlock.

They take the same path as scale (the gate has already said the user may; here come the
deploy lock, the guardrails and freeze windows, the confirmation, the audit row and the
platform call). A rollback, a config change and maintenance mode going on always ask first
(maintenance takes the site offline for its users, as a kill does); the Confirm click acts
once, however often Slack delivers it, because `Confirmations.decide` is one conditional
UPDATE. Config values never reach an audit row, a log line or a confirmation's command.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.actions.deploy_guard import (
    LOOKBACK,
    DeployGuard,
    Judge,
    current_release,
    platform_of,
    version_by_label,
)
from bot.actions.gate import Gate
from bot.actions.reconcile import (
    ReadBack,
    Reconciler,
    call_reading_back,
    lost_note,
    record_lost,
    unsure,
)
from bot.actions.results import (
    BreakGlass,
    Builds,
    ConfigVars,
    Deployed,
    DeployPrompt,
    Releases,
    Reply,
    Resolved,
    Result,
    asked_again,
)
from bot.actions.shipping import Shipping
from bot.actions.usergroups import GroupLookupFailed
from bot.platforms.base import NO_MAINTENANCE, NotSupported, PlatformError, Release
from bot.registry import Target
from bot.store.audit import Actor, AuditLog, Entry
from bot.store.confirmations import Confirmations, Pending
from bot.store.locks import Locks
from policies import config_vars
from policies.commands import (
    DEPLOYMENT_VERBS,
    RELEASES_DEFAULT,
    Command,
    is_release_number,
    release_number,
)
from policies.slack_text import code, escape, listed, moment, shown

log = logging.getLogger(__name__)

VERBS = frozenset(DEPLOYMENT_VERBS)
# Verbs whose Confirm click lands here rather than in the formation path.
CONFIRMED_VERBS = frozenset({"rollback", "config", "maintenance"})
CONFIG_NAMED = 5  # config var names a rollback prompt lists before counting the rest
# An app's newest audit entries read for the version its environment ran before: the
# newest ship or rollback is what counts, so only other verbs (scales) lie in between.
RECORD_LOOKBACK = 50
# Verbs a freeze holds back that act at once: forced through one, the channel is told.
_FORCED_AT_ONCE = frozenset({"maintenance", "ship", "promote", "swap", "run"})


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
        targets: Callable[[], list[Target]] = list,
        own_secrets: Callable[[], frozenset[str]] = frozenset,
    ) -> None:
        self._resolve = resolve
        self._own_secrets = own_secrets
        self._audit = audit
        self._confirmations = confirmations
        self._locks = locks
        self._gate = gate
        self._now = now
        self._guard = DeployGuard(audit, locks, judge)
        self._reconciler = Reconciler(resolve, audit)
        self._shipping = Shipping(
            resolve, audit, locks, self._guard, gate, self._reconciler, secret, targets
        )

    def run(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        """A deployment verb, already allowed by the gate, for the resolved app."""
        result = self._run(actor, resolved, command)
        forced = command.force and command.verb in _FORCED_AT_ONCE
        if isinstance(result, Deployed) and forced and result.break_glass is None:
            notice = self._guard.forced(
                resolved.target, actor.user_id, command.verb, command.text(), command.force
            )
            result = replace(result, break_glass=notice)
        return result

    def _run(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        try:
            if command.verb == "releases":
                found = platform_of(resolved).releases(resolved.target.name, command.limit or 10)
                return Releases(command.app or "", resolved.target.platform, found)
            if command.verb == "builds":
                return self._builds(resolved, command)
            if command.verb == "lock":
                return self._lock(actor, command, resolved.target.platform)
            if command.verb == "unlock":
                return self._unlock(actor, command)
            if command.verb == "maintenance":
                return self._maintenance(actor, resolved, command)
            if command.verb == "config":
                return self._config(actor, resolved, command)
            if command.verb == "ship":
                return self._shipping.ship(actor, resolved, command)
            if command.verb == "promote":
                return self._shipping.promote(actor, resolved, command)
            if command.verb == "swap":
                return self._shipping.swap(actor, resolved, command)
            if command.verb == "run":
                return self._shipping.run(actor, resolved, command)
            if command.verb == "logs":
                return self._shipping.logs(resolved, command)
            return self._rollback(actor, resolved, command)
        except NotSupported as error:
            return Reply(str(error))

    def _builds(self, resolved: Resolved, command: Command) -> Result:
        app = command.app or ""
        if resolved.target.platform != "heroku":
            return Reply(
                f"{code(app)} is a Beanstalk environment, and Beanstalk has no builds: "
                f"`/deploy releases {app}` lists its application versions."
            )
        platform = platform_of(resolved)
        builds = platform.builds(resolved.target.name, command.limit or RELEASES_DEFAULT)
        # Why the newest failed is what someone asking after a red push wants; an older
        # failure was followed by a build since, so its output is the dashboard's to show.
        failed = builds[0].status == "failed" if builds else False
        output = platform.build_output(builds[0]) if failed else ()
        return Builds(app, builds, output)

    # -- rollback ---------------------------------------------------------------------------

    def _rollback(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app = command.app or ""
        refusal = self._guard.refusal(resolved.target, "rollback", command.force, actor.user_id)
        if refusal:
            return self._guard.refuse(actor, command, "rollback", refusal)
        releases = platform_of(resolved).releases(resolved.target.name, LOOKBACK)
        heroku = resolved.target.platform == "heroku"
        if heroku and command.target and not is_release_number(command.target):
            # Heroku numbers its releases, so `vX` is none, where "has no release `vX`" had
            # read as if it might have one; said once the read found the app (`rollback v2
            # demo` is told to put the app first). A Beanstalk version label is any text.
            return Reply(
                f"{shown(command.target)} is not a Heroku release: write it like v41, a v and "
                f"digits (`/deploy releases {app}` lists them)."
            )
        current = current_release(releases, resolved.target.platform)
        noun = "application version" if resolved.target.platform == "beanstalk" else "release"
        if not releases or (current is None and heroku):
            return Reply(f"`{app}` has no {noun}s yet, so there is nothing to roll back to.")
        unknown = None
        if current is None:
            # A Beanstalk environment that names no version: "back" from what is unknown.
            unknown = f"I cannot tell which {noun} `{app}` runs: its environment names none."
            if command.target is None:
                return Reply(
                    f"{unknown} Name the one to deploy: `/deploy rollback {app} VERSION` "
                    f"(`/deploy releases {app}` lists them)."
                )
        if heroku and command.target and not _spellings(command.target) & _versions(releases):
            # Older than the newest listed, perhaps: Heroku reads one by its number.
            older = platform_of(resolved).version(resolved.target.name, command.target)
            releases = (*releases, older) if older else releases
        if not heroku and command.target and all(r.version != command.target for r in releases):
            # Older than the newest listed, perhaps: looked up by its label, as ship does.
            older = version_by_label(
                platform_of(resolved), resolved.target.name, app, command.target
            )
            if isinstance(older, str):
                return Reply(older)
            releases = (*releases, older) if older else releases
        earlier = None
        if not heroku and current is not None and command.target is None:
            earlier = self._ran_before(resolved, app, releases, current)
        target = earlier or _rollback_target(app, releases, current, command.target, heroku)
        if isinstance(target, str):
            return Reply(target)
        text = f"rollback {app} {target.version}"
        again = asked_again(self._confirmations, actor.user_id, app, text, self._now())
        if again is not None:
            return again
        pending = self._ask(
            actor,
            resolved,
            command,
            text,
            _as_json(current) if current else {},
            _as_json(target),
        )
        return DeployPrompt(
            pending.id,
            app,
            "rollback",
            actor.user_id,
            pending.expires_at,
            current,
            target,
            undoes=(
                current.version
                if current and _rolled_back_from(releases, current) == target
                else None
            ),
            note=_config_undone(releases, current, target) if heroku and current else unknown,
        )

    def _ran_before(
        self, resolved: Resolved, app: str, releases: tuple[Release, ...], current: Release
    ) -> Release | None:
        """The good application version that ran before `current`, by the bot's own record
        (`_replaced`): Beanstalk keeps no history of what an environment ran, and the
        versions' dates had made "back" from a rolled-back-to old version "no earlier good
        version". None without a record, for the dates to decide."""
        label = _replaced(self._audit.recent(app, limit=RECORD_LOOKBACK), current.version)
        if label is None:
            return None
        found = next((r for r in releases if r.version == label), None)
        if found is None:
            # Older than the newest listed, perhaps. The label is one the bot deployed, so
            # `version_by_label`'s look for labels differing by case would be a wasted call.
            found = platform_of(resolved).version(resolved.target.name, label)
        return found if found is not None and found.good else None

    def _ask(
        self,
        actor: Actor,
        resolved: Resolved,
        command: Command,
        text: str,
        before: dict[str, Any],
        targets: dict[str, Any],
    ) -> Pending:
        """The prompt row of a change that asks first, kept as `text`; its `--force` reason
        is kept only when a freeze needs it, so the click breaks glass then too."""
        verdict = self._guard.judge(resolved.target, command.verb, command.force, actor.user_id)
        return self._confirmations.create(
            actor,
            command.app or "",
            text,
            before,
            targets,
            self._now(),
            force_reason=command.force if verdict.forced else None,
        )

    def confirmed(self, requester: Actor, confirmer: Actor, pending: Pending) -> Result:
        """Carry out a confirmed rollback or config change, judged again as things stand."""
        verb = pending.command.split()[0]
        resolved = self._resolve(pending.app)
        refusal = self._guard.refusal(
            resolved.target, verb, pending.force_reason, requester.user_id
        )
        if refusal:
            self._audit.record(requester, verb, pending.app, pending.command, "refused", refusal)
            return Reply(f"Nothing was changed: {refusal}", public=True)
        if verb == "config":
            return self._apply_config(requester, confirmer, resolved, pending)
        if verb == "maintenance":
            return self._apply_maintenance(requester, confirmer, resolved, pending)
        return self._apply_rollback(requester, confirmer, resolved, pending)

    def _apply_rollback(
        self, requester: Actor, confirmer: Actor, resolved: Resolved, pending: Pending
    ) -> Result:
        platform = platform_of(resolved)
        before, target = _release(pending.before), _release(pending.targets)
        releases = platform.releases(resolved.target.name, LOOKBACK)
        current = current_release(releases, resolved.target.platform)
        if current is not None and not before.version:
            # Asked when what ran could not be told; now it can: it may be what was asked.
            return Reply(
                f"Nothing was changed: {code(pending.app)} runs {code(current.version)} now, "
                "where I could not tell what it ran when the rollback was asked for. Run "
                f"`/deploy rollback {pending.app}` again.",
                public=True,
            )
        if (current.version if current else "") != before.version:
            now = code(current.version) if current else "nothing"
            return Reply(
                f"Nothing was changed: {code(pending.app)} moved from {code(before.version)} to {now} "
                f"since the rollback was asked for. Run `/deploy rollback {pending.app}` again.",
                public=True,
            )
        beanstalk = resolved.target.platform == "beanstalk"
        if all(r.version != target.version for r in releases):
            # One older than the newest is looked up by its label or number.
            older = platform.version(resolved.target.name, target.version)
            releases = (*releases, older) if older else releases
        if all(r.version != target.version for r in releases):
            # A Beanstalk version deleted meanwhile: every click would be refused alike.
            noun = "application versions" if beanstalk else "releases"
            return Reply(
                f"Nothing was changed: {code(target.version)} is no longer among "
                f"{code(pending.app)}'s {noun} (deleted since the rollback was asked for). "
                f"Pick another from `/deploy releases {pending.app}`.",
                public=True,
            )
        gone = [r for r in releases if r.version == target.version and not r.good]
        if gone:
            # Expired (its slug pruned) or failed meanwhile: every click would be refused.
            return Reply(
                f"Nothing was changed: {code(target.version)} of {code(pending.app)} "
                f"{escape(gone[0].status.lower())} since the rollback was asked for, so it "
                f"cannot be rolled back to. Pick another from `/deploy releases {pending.app}`.",
                public=True,
            )
        entry = self._audit.start(
            requester,
            "rollback",
            pending.app,
            pending.command,
            {"version": before.version or None},
            {"version": target.version},
            confirmed_by=confirmer.user_id,
        )
        new_release, note, phase = None, None, None
        try:
            after = self._guard.call(entry, lambda: platform.rollback(resolved.target.name, target))
        except PlatformError as error:
            if error.changed is not None:
                raise
            # The request went out and its answer was lost: read the releases back and
            # say what runs, never "try again" (a second rollback makes a second release).
            made, note = self._lost_rollback(resolved, pending, entry, error)
            if not made:
                asked = f"<@{requester.user_id}> asked to roll `{pending.app}` back to "
                return Reply(f"{asked}{code(target.version)}. {note}", public=True)
        else:
            self._audit.finish(entry, "ok", after={"version": after.version})
            # Heroku makes a new release (v43) from the old one (v41); Beanstalk redeploys it.
            new_release = after.version if after.version != target.version else None
            # Its release phase (a `release:` command) still runs: the thread follows it.
            phase = after.id if not beanstalk and after.status == "pending" else None
        log.info("rolled back", extra={"app": pending.app, "user": requester.user_id})
        # Read back as made, it is said as any rollback is: break-glass notice and follow-up.
        return Deployed(
            pending.app,
            "rollback",
            requester.user_id,
            before=before if before.version else None,
            after=target,
            mode=new_release,
            confirmed_by=confirmer.user_id,
            audit_id=entry,
            slow=platform.settles_slowly() or phase is not None,
            break_glass=self._break_glass(resolved.target, requester, pending),
            note=note,
            release_id=phase,
        )

    # -- maintenance ------------------------------------------------------------------------

    def _maintenance(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app, on = command.app or "", command.mode == "on"
        platform = platform_of(resolved)
        if resolved.target.platform == "beanstalk":
            # Said first, before any rule or freeze: Beanstalk has no such thing at all.
            return Reply(NO_MAINTENANCE.format(app=app))
        # The asker's own "on" prompt still waiting: pointed at, not asked twice or missed.
        now = self._now()
        asked = self._confirmations.open_for(actor.user_id, app, f"maintenance {app} on", now)
        if platform.maintenance(resolved.target.name) == on:
            already = f"`{app}`'s maintenance mode is already {command.mode}; nothing to do."
            if asked is not None and not on:
                already += (
                    f" Your request to turn it on is still open until "
                    f"{moment(asked.expires_at, now)}: Cancel it if it is no longer wanted."
                )
            return Reply(already)
        refusal = self._guard.refusal(resolved.target, "maintenance", command.force, actor.user_id)
        if refusal:
            return self._guard.refuse(actor, command, "maintenance", refusal)
        if not on:
            # Back online: nothing to ask.
            return self._switch_maintenance(actor, resolved, app, False, command.text())
        if asked is not None:
            # A second prompt would be refused as "turned on meanwhile" once either is pressed.
            return Reply(
                f"You already asked to turn maintenance mode on for `{app}`, and that prompt "
                f"is open until {moment(asked.expires_at, now)}: press its button, or Cancel it."
            )
        pending = self._ask(
            actor, resolved, command, command.text(), {"maintenance": False}, {"maintenance": True}
        )
        return DeployPrompt(pending.id, app, "maintenance", actor.user_id, pending.expires_at)

    def _apply_maintenance(
        self, requester: Actor, confirmer: Actor, resolved: Resolved, pending: Pending
    ) -> Result:
        if platform_of(resolved).maintenance(resolved.target.name):
            reason = f"`{pending.app}`'s maintenance mode was turned on meanwhile."
            self._audit.record(
                requester, "maintenance", pending.app, pending.command, "refused", reason
            )
            return Reply(f"Nothing was changed: {reason}", public=True)
        done = self._switch_maintenance(
            requester, resolved, pending.app, True, pending.command, confirmer.user_id
        )
        if not isinstance(done, Deployed):
            return done
        return replace(done, break_glass=self._break_glass(resolved.target, requester, pending))

    def _switch_maintenance(
        self,
        actor: Actor,
        resolved: Resolved,
        app: str,
        on: bool,
        command: str,
        confirmed_by: str | None = None,
    ) -> Result:
        """Turn `app`'s maintenance mode `on` (or off), audited as `command`."""
        platform = platform_of(resolved)
        entry = self._audit.start(
            actor,
            "maintenance",
            app,
            command,
            {"maintenance": not on},
            {"maintenance": on},
            confirmed_by=confirmed_by,
        )
        # A lost answer: switching again is harmless, but the user cannot know whether the
        # page is up, so the flag is read back and said.
        note = call_reading_back(
            self._audit,
            entry,
            lambda: platform.set_maintenance(resolved.target.name, on),
            lambda: self._reconciler.read_back_maintenance(resolved, not on, on, final=False),
            what="its maintenance mode",
            check="the app in the Heroku dashboard",
            after={"maintenance": on},
            asked=(actor.user_id, command),
        )
        if isinstance(note, Reply):
            return note
        mode = "on" if on else "off"
        return Deployed(
            app,
            "maintenance",
            actor.user_id,
            mode=mode,
            audit_id=entry,
            note=note,
            confirmed_by=confirmed_by,
        )

    def _lost_rollback(
        self, resolved: Resolved, pending: Pending, entry: int, error: PlatformError
    ) -> tuple[bool, str]:
        """Whether a rollback whose answer was lost was made, from the releases (its audit
        row settled `ok` if so), and what to say of it."""
        before, target = _release(pending.before), _release(pending.targets)
        found = self._reconciler.read_back_release(
            resolved, before.version or None, target.version, final=False
        )
        made, note = lost_note(error, found, "its releases", f"`/deploy releases {pending.app}`")
        record_lost(self._audit, entry, note, None, made=made)
        return made, note

    # -- config -----------------------------------------------------------------------------

    def _config(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app = command.app or ""
        platform = platform_of(resolved)
        if command.mode is None:
            values = platform.config_vars(resolved.target.name)
            try:
                masked = not self._gate.decide(actor, "config", app).allowed
            except GroupLookupFailed as error:
                return Reply(str(error))
            # By value, not by app: any app given the bot's key holds it as well.
            own = self._own_secrets()
            return ConfigVars(
                app,
                tuple(sorted(values.items())),
                masked,
                resolved.target.platform,
                resolved.target.name,
                frozenset(key for key, value in values.items() if value and value in own),
            )
        refusal = self._guard.refusal(resolved.target, "config", command.force, actor.user_id)
        if refusal:
            return self._guard.refuse(actor, command, "config", refusal)
        keys = tuple(key for key, _ in command.options)
        changes: dict[str, Any] = {
            key: (value if command.mode == "set" else None) for key, value in command.options
        }
        present = platform.config_vars(resolved.target.name)
        problem = config_vars.refusal(resolved.target.platform, changes, present)
        if problem:
            return Reply(problem)
        missing = [key for key in keys if key not in present]
        if command.mode == "unset" and missing:
            return Reply(f"`{missing[0]}` is not set on `{app}`; nothing to unset.")
        if command.mode == "set" and all(present.get(k) == v for k, v in command.options):
            # A release and a restart (on Beanstalk, an environment update) for nothing.
            names = listed(keys)
            has = "has that value" if len(keys) == 1 else "have those values"
            return Reply(f"{names} already {has} on `{app}`; nothing to set.")
        # The values wait in the confirmation row until it is decided or expires (then wiped),
        # with those the vars had, so a click after someone else changed them changes nothing.
        was = {key: present.get(key) for key in keys}
        targets = {"changes": changes, "was": was}
        # The same values asked for again while the first prompt waits: pointed at. Other
        # values (a typo mended) get a prompt of their own, as the text hides the values.
        text = command.text()
        again = asked_again(self._confirmations, actor.user_id, app, text, self._now(), targets)
        if again is not None:
            return again
        pending = self._ask(actor, resolved, command, text, {}, targets)
        return DeployPrompt(
            pending.id,
            app,
            "config",
            actor.user_id,
            pending.expires_at,
            keys=keys,
            emptied=_emptied(changes),
            unset=command.mode == "unset",
            note=_curled(changes),
        )

    def _apply_config(
        self, requester: Actor, confirmer: Actor, resolved: Resolved, pending: Pending
    ) -> Result:
        # Read before the click was decided; the row itself no longer holds the values.
        changes = dict(pending.targets.get("changes") or {})
        keys = tuple(sorted(changes))
        unset = all(value is None for value in changes.values())
        mode = "unset" if unset else "set"
        platform = platform_of(resolved)
        moved = self._config_moved(resolved, pending)
        if moved:
            self._audit.record(requester, "config", pending.app, pending.command, "refused", moved)
            return Reply(f"Nothing was changed: {moved}", public=True)
        entry = self._audit.start(
            requester,
            "config",
            pending.app,
            pending.command,
            None,
            {mode: list(keys)},
            confirmed_by=confirmer.user_id,
        )
        note = None
        try:
            self._guard.call(entry, lambda: platform.set_config(resolved.target.name, changes))
        except PlatformError as error:
            if error.changed is not None:
                raise
            # Its answer was lost: read the config back (values compared, never shown).
            made, note = self._lost_config(resolved, pending, changes, error)
            record_lost(self._audit, entry, note, {mode: list(keys)} if made else None, made=made)
            if not made:
                return unsure(requester.user_id, pending.command, note)
        else:
            self._audit.finish(entry, "ok", after={mode: list(keys)})
        return Deployed(
            pending.app,
            "config",
            requester.user_id,
            mode=mode,
            keys=keys,
            emptied=_emptied(changes),
            confirmed_by=confirmer.user_id,
            audit_id=entry,
            slow=platform.settles_slowly(),
            break_glass=self._break_glass(resolved.target, requester, pending),
            note=note,
        )

    def _config_moved(self, resolved: Resolved, pending: Pending) -> str | None:
        """Why a confirmed config prompt's vars no longer hold what they did when it was
        asked (someone changed them since: pressing it would undo that unsaid), or None. A
        prompt asked before the values were kept (no `was`) is not judged."""
        was = pending.targets.get("was")
        if not isinstance(was, dict):
            return None
        now = platform_of(resolved).config_vars(resolved.target.name)
        moved = sorted(key for key in was if now.get(key) != was[key])
        if not moved:
            return None
        it = "it" if len(moved) == 1 else "them"
        return (
            f"{listed(moved)} on `{pending.app}` changed since this was asked for. "
            f"`/deploy config {pending.app}` shows {it} now; ask again to change {it}."
        )

    def _lost_config(
        self,
        resolved: Resolved,
        pending: Pending,
        changes: dict[str, str | None],
        error: PlatformError,
    ) -> tuple[bool, str]:
        """Whether a config change whose answer was lost was made, from a read of the
        config (values compared, never shown), and what to say of it."""
        found = None
        try:
            now = platform_of(resolved).config_vars(resolved.target.name)
        except PlatformError:
            pass
        else:
            made, said = config_vars.read_back(changes, now)
            found = ReadBack("ok" if made else "unknown", None, said)
        return lost_note(
            error, found, f"the config of `{pending.app}`", f"`/deploy config {pending.app}`"
        )

    # -- lock and unlock --------------------------------------------------------------------

    def _lock(self, actor: Actor, command: Command, platform: str) -> Result:
        app, reason = command.app or "", command.reason or ""
        entry = self._audit.start(actor, "lock", app, command.text(), None, None)
        held, earlier = self._locks.take(app, actor.user_id, reason, self._now())
        if held.user_id != actor.user_id:
            self._audit.finish(entry, "refused", error=f"already locked by <@{held.user_id}>")
            return Reply(
                f"`{app}` is already locked by <@{held.user_id}> ({escape(held.reason)}). Ask them to "
                f"`/deploy unlock {app}` first."
            )
        # Their own lock again: a new reason replaces the old one, and the reply says which.
        replaced = earlier.reason if earlier and earlier.reason != reason else None
        self._audit.finish(entry, "ok")
        return Deployed(
            app,
            "lock",
            actor.user_id,
            mode=held.reason,
            audit_id=entry,
            replaced=replaced,
            platform=platform,
        )

    def _unlock(self, actor: Actor, command: Command) -> Result:
        app = command.app or ""
        held = self._locks.get(app)
        if held is None:
            return Reply(f"`{app}` is not locked; nothing to do.")
        if held.user_id != actor.user_id and not self._gate.is_admin(actor.user_id):
            refusal = (
                f"`{app}` is locked by <@{held.user_id}>; only they or an admin may unlock it."
            )
            return self._guard.refuse(actor, command, "unlock", refusal)
        entry = self._audit.start(actor, "unlock", app, command.text(), None, None)
        if not self._locks.release(held):
            # Unlocked meanwhile, and perhaps locked again by someone else: theirs stays.
            now = self._locks.get(app)
            self._audit.finish(entry, "not-applied", error="the lock changed meanwhile")
            if now is None:
                return Reply(f"`{app}` was unlocked meanwhile; nothing to do.")
            return Reply(
                f"`{app}` was unlocked meanwhile and is now locked by <@{now.user_id}> "
                f"({escape(now.reason)}); their lock stays."
            )
        self._audit.finish(entry, "ok")
        return Deployed(app, "unlock", actor.user_id, mode=held.user_id, audit_id=entry)

    def _break_glass(self, target: Target, actor: Actor, pending: Pending) -> BreakGlass | None:
        verb = pending.command.split()[0]
        return self._guard.forced(
            target, actor.user_id, verb, pending.command, pending.force_reason
        )


def _config_undone(releases: tuple[Release, ...], current: Release, target: Release) -> str | None:
    """What a Heroku rollback also undoes: the config vars changed by the releases after
    `target`, which Heroku puts back with its code (a secret rotated since comes back)."""
    low, high = release_number(target.version), release_number(current.version)
    since = [r.description for r in releases if low < release_number(r.version) <= high]
    names = config_vars.changed_by(since)
    if not names:
        return None
    shown_names = listed(names[:CONFIG_NAMED]) + (
        f" and {len(names) - CONFIG_NAMED} more" if len(names) > CONFIG_NAMED else ""
    )
    return (
        f"Heroku rolls config vars back too: {shown_names}, changed since "
        f"{code(target.version)}, go back to their values then."
    )


def _rollback_target(
    app: str,
    releases: tuple[Release, ...],
    current: Release | None,
    wanted: str | None,
    heroku: bool = True,
) -> Release | str:
    """The release to go back to, or the sentence saying why there is none. A Heroku
    release is named as `v41`, `V41` or `41`, among the newest; a Beanstalk application
    version by its exact label, `releases` holding it however old if it exists (labels
    differing only by case were answered before). With no `current` (what runs cannot be
    told), only a `wanted` one."""
    noun = "release" if heroku else "application version"
    if wanted is None:
        previous = _previous_good(releases, current) if current else None
        if previous is None:
            return f"`{app}` has no earlier good {noun} to roll back to."
        return previous
    if heroku:
        matches = [r for r in releases if r.version.lower() in _spellings(wanted)]
    else:
        matches = [r for r in releases if r.version == wanted]
    if not matches:
        return f"`{app}` has no {noun} {shown(wanted)}. See `/deploy releases {app}`."
    found = matches[0]
    if current is not None and found.version == current.version:
        return (
            f"{code(found.version)} is already the current {noun} of `{app}`; nothing to roll back."
        )
    if not found.good:
        return (
            f"{code(found.version)} of `{app}` {escape(found.status.lower())}, so it cannot be "
            "rolled back to. "
            f"Pick a good {noun} from `/deploy releases {app}`."
        )
    return found


def _replaced(entries: list[Entry], current: str) -> str | None:
    """The version the newest done change of an environment's version (a ship or a
    rollback, `entries` newest first) replaced, when that change put in `current`; None when
    it put in another (the version changed outside the bot since) or there is none."""
    for entry in entries:
        if entry.verb not in ("ship", "rollback") or entry.outcome != "ok":
            continue
        put_in = (entry.after or {}).get("version")
        if put_in is None:
            continue  # a Heroku build, or a rollback whose answer was lost
        was = (entry.before or {}).get("version")
        return was if put_in == current and was and was != current else None
    return None


def _rolled_back_from(releases: tuple[Release, ...], current: Release) -> Release | None:
    """The release that `current`, itself a rollback ("Rollback to v4"), rolled back from:
    the newest good one before it, which was live when it was made. None if `current` is
    no rollback. Going back to it undoes the rollback."""
    if not current.description.lower().startswith("rollback to "):
        return None
    return _previous_good(releases, current)


def _previous_good(releases: tuple[Release, ...], current: Release) -> Release | None:
    """The newest good release older than `current`: a rollback's default, as the Heroku
    CLI's."""
    older = [r for r in releases if r.good and _older(r, current, releases)]
    return older[0] if older else None


def _older(release: Release, current: Release, releases: tuple[Release, ...]) -> bool:
    # `releases` is newest first, so older means later in the list.
    return releases.index(release) > releases.index(current)


def _curled(changes: dict[str, str | None]) -> str | None:
    """A word on values with curly quotes: macOS and iOS turn a typed `"` into one, the
    value is stored as typed, and the prompt hides the values, so none was seen before the
    click."""
    curled = [key for key, value in changes.items() if value and any(q in value for q in "“”‘’")]
    if not curled:
        return None
    return (
        f"The value of {listed(curled)} has curly quotes (“ ” or ‘ ’), kept as typed: if "
        "your keyboard curled straight ones, cancel and type them again as `\"` or `'`."
    )


def _emptied(changes: dict[str, str | None]) -> tuple[str, ...]:
    """The config vars `changes` sets to an empty value (not unsets), in their order."""
    return tuple(key for key, value in changes.items() if value == "")


def _spellings(wanted: str) -> set[str]:
    """The ways Heroku's release `wanted` is listed: `12`, `v12` and `v012` are all v12."""
    if is_release_number(wanted):
        return {f"v{release_number(wanted)}"}
    return {wanted.lower()}


def _versions(releases: tuple[Release, ...]) -> set[str]:
    return {r.version.lower() for r in releases}


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
