"""Shipping verbs: `ship` (a Heroku build from the registry's source, or a Beanstalk
application version), `promote` (Heroku pipelines), `swap` (Beanstalk CNAMEs), `run` (a
registry-allowed one-off dyno) and `logs`. Each is refused plainly where its platform has no
such thing, before anything is sent to it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from bot.actions.deploy_guard import (
    LOOKBACK,
    DeployGuard,
    current_release,
    platform_of,
    version_by_label,
)
from bot.actions.gate import Gate
from bot.actions.reconcile import Reconciler, call_reading_back, lost_note, record_lost, unsure
from bot.actions.results import BreakGlass, Deployed, Logs, Reply, Resolved, Result
from bot.actions.usergroups import GroupLookupFailed
from bot.platforms.base import Build, PlatformError, Promotion, Release
from bot.platforms.registered import Registered
from bot.platforms.sources import SourceError, signed_url
from bot.registry import Target, UnknownApp
from bot.store.audit import Actor, AuditLog
from bot.store.locks import Locks
from policies import guardrails
from policies.commands import Command
from policies.names import suggest_app
from policies.redact import mask
from policies.slack_text import code, listed, shown

log = logging.getLogger(__name__)

DEFAULT_REF = "main"
# An EC2 instance ID (8 or 17 hex digits): what Beanstalk's logs take, never a Heroku dyno.
_INSTANCE_ID = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})\Z")


def _build_since(platform: Any, name: str, ref: str, since: datetime) -> Build | None:
    """The build of `ref` started at or after `since` (less 30 s for Heroku's clock and
    ours), if the newest builds hold one; None when none does or they cannot be read. A
    build of the same ref started in those 30 s before is taken for it."""
    try:
        builds = platform.builds(name)
    except PlatformError:
        return None
    slack = since - timedelta(seconds=30)
    return next(
        (b for b in builds if b.version == ref and (b.created_at is None or b.created_at >= slack)),
        None,
    )


class Shipping:
    def __init__(
        self,
        resolve: Callable[[str], Resolved],
        audit: AuditLog,
        locks: Locks,
        guard: DeployGuard,
        gate: Gate,
        reconciler: Reconciler,
        secret: Callable[[str], str | None],
        targets: Callable[[], list[Target]] = list,
    ) -> None:
        self._resolve = resolve
        # The gate allowed the verb on the app typed; promote and swap change another app
        # too, which the asker must also be allowed to change.
        self._gate = gate
        self._audit = audit
        self._reconciler = reconciler
        self._locks = locks
        self._guard = guard
        self._secret = secret  # reads a named env var (a private source's token)
        self._targets = targets  # the registry's apps

    def ship(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app, target = command.app or "", resolved.target
        refusal = self._guard.refusal(target, "ship", command.force, actor.user_id)
        if refusal:
            return self._guard.refuse(actor, command, "ship", refusal)
        platform = platform_of(resolved)
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
        asked_at = datetime.now(UTC)
        try:
            build = self._guard.call(entry, lambda: platform.build(target.name, url, ref))
        except PlatformError as error:
            if error.changed is not None:
                raise
            # The request went out and its answer was lost: a second send would build
            # and release twice. Look for the build among the newest instead.
            found = _build_since(platform, target.name, ref, asked_at)
            if found is None:
                note = (
                    f"{error.fact} I see no build of {code(ref)} on `{app}` among its newest, "
                    "yet. Check the app's builds in the Heroku dashboard before asking again."
                )
                record_lost(self._audit, entry, note, None, made=False)
                return Reply(
                    f"<@{actor.user_id}> asked {code(command.text())}. {note}", public=True
                )
            build = found
            note = f"{error.fact} I found its build, so it was made."
            record_lost(self._audit, entry, note, {"build": build.id}, made=True)
            log.info("build found after a lost answer", extra={"app": app})
            return Deployed(
                app, "ship", actor.user_id, mode=ref, audit_id=entry, slow=True,
                build_id=build.id, note=note,
            )  # fmt: skip
        self._audit.finish(entry, "ok", after={"build": build.id})
        log.info("build started", extra={"app": app, "user": actor.user_id})
        return Deployed(
            app, "ship", actor.user_id, mode=ref, audit_id=entry, slow=True, build_id=build.id
        )

    def _ship_version(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app, platform = command.app or "", platform_of(resolved)
        if command.target is None:
            return Reply(
                f"Say which application version to deploy to `{app}`: "
                f"`/deploy ship {app} LABEL` (see `/deploy releases {app}`)."
            )
        releases = platform.releases(resolved.target.name, LOOKBACK)
        found = [r for r in releases if r.version == command.target]
        if not found:
            # Older than the newest listed, perhaps, or `SHOP-1.0` for `shop-1.0`: asked
            # again, never made beside it from a bundle.
            older = version_by_label(platform, resolved.target.name, app, command.target)
            if isinstance(older, str):
                return Reply(older)
            found = [older] if older is not None else []
        bundle = resolved.target.bundle
        if not found and bundle is None:
            return Reply(
                f"`{app}` has no application version {shown(command.target)}, and no `bundle:` "
                f"in the registry to make one from. See `/deploy releases {app}`."
            )
        if not found:
            running = current_release(releases, "beanstalk")
            return self._ship_bundle(actor, resolved, command, running)
        if found[0].current:
            return Reply(
                f"{shown(found[0].version)} is already deployed to `{app}`; nothing to ship."
            )
        before = current_release(releases, "beanstalk")
        entry = self._audit.start(
            actor,
            "ship",
            app,
            command.text(),
            {"version": before.version if before else None},
            {"version": found[0].version},
        )
        return self._deploy_version(
            actor,
            resolved,
            command,
            entry,
            before,
            found[0],
            lambda: platform.deploy_version(resolved.target.name, found[0].version),
        )

    def _ship_bundle(
        self, actor: Actor, resolved: Resolved, command: Command, before: Release | None
    ) -> Result:
        """A new application version from the registry's S3 bundle, then deployed."""
        app, label, platform = command.app or "", command.target or "", platform_of(resolved)
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
            try:
                platform.deploy_version(resolved.target.name, label)
            except PlatformError as error:
                if error.changed is not False:
                    raise
                # The version exists now: "try again" alone would say nothing was made.
                raise PlatformError(
                    f"I made application version {code(label)} but could not deploy it: "
                    f"{error} `/deploy ship {app} {label}` deploys it."
                ) from error

        after = Release(label, f"from s3://{bucket}/{key}", None, "", id=label)
        return self._deploy_version(
            actor, resolved, command, entry, before, after, create_and_deploy
        )

    def _deploy_version(
        self,
        actor: Actor,
        resolved: Resolved,
        command: Command,
        entry: int,
        before: Release | None,
        after: Release,
        work: Callable[[], object],
    ) -> Result:
        """Run `work`, which deploys application version `after` (audit row `entry`); when
        its answer is lost, read the environment's version back and say what runs."""
        app, was = command.app or "", before.version if before else None
        note = call_reading_back(
            self._audit,
            entry,
            work,
            lambda: self._reconciler.read_back_release(resolved, was, after.version, final=False),
            what="its version",
            check=f"`/deploy releases {app}`",
            after={"version": after.version},
            asked=(actor.user_id, command.text()),
        )
        if isinstance(note, Reply):
            return note
        return Deployed(
            app,
            "ship",
            actor.user_id,
            before=before,
            after=after,
            mode=after.version,
            audit_id=entry,
            slow=True,
            note=note,
        )

    def _not_allowed(self, actor: Actor, verb: str, app: str) -> str | None:
        """Why the access rules do not let `actor` `verb` the other app `app`, or None."""
        try:
            decision = self._gate.decide(actor, verb, app)
        except GroupLookupFailed as error:
            return str(error)
        if decision.allowed:
            return None
        # "You may not promote `prod`: no rule allows it…" names the app already.
        if decision.reason.startswith("You may not"):
            return decision.reason
        return f"You may not {verb} into `{app}`: {decision.reason}"

    def _aliases(self, name: str) -> list[str]:
        """The registry's names for Heroku app `name`: a lock is taken by the name typed."""
        return [t.alias for t in self._targets() if t.platform == "heroku" and t.name == name]

    def _downstream_refusal(self, name: str, force: str | None, actor: Actor) -> str | None:
        """Why a promotion may not go into Heroku app `name` (the access rules, a lock, a
        freeze window of the registry entry that names it), or None. Rules and locks are
        kept by the name people type; an app outside the registry by its own name."""
        aliases = self._aliases(name)
        for alias in aliases or [name]:
            refusal = self._not_allowed(actor, "promote", alias)
            if refusal:
                return refusal
        for alias in aliases:
            try:
                target = self._resolve(alias).target
            except (UnknownApp, PlatformError):
                continue  # the lock, by name, is still checked below
            refusal = self._guard.refusal(target, "promote", force, actor.user_id)
            if refusal:
                return refusal
        held = self._locks.get(name)
        if held is None:
            return None
        return guardrails.lock_refusal("promote", name, held.user_id, held.reason, actor.user_id)

    def _downstream_forced(
        self, names: list[str], command: Command, actor: Actor
    ) -> BreakGlass | None:
        """The break-glass notice of a promotion `--force`d through a next-stage app's
        freeze, for that app's channel; None if no freeze there was forced."""
        for name in names if command.force else []:
            for alias in self._aliases(name):
                try:
                    target = self._resolve(alias).target
                except (UnknownApp, PlatformError):
                    continue
                notice = self._guard.forced(
                    target, actor.user_id, "promote", command.text(), command.force
                )
                if notice is not None:
                    return notice
        return None

    def promote(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app, target = command.app or "", resolved.target
        if target.platform != "heroku":
            return Reply(
                f"`{app}` is a Beanstalk environment, and Beanstalk has no pipelines. For "
                f"blue/green, swap two environments: `/deploy swap {app} OTHER`."
            )
        refusal = self._guard.refusal(target, "promote", command.force, actor.user_id)
        if refusal:
            return self._guard.refuse(actor, command, "promote", refusal)
        platform = platform_of(resolved)
        pipeline, source, stage, downstream = platform.downstream(target.name)
        if not downstream:
            return Reply(
                f"`{app}` is in the {stage} stage of its pipeline and no stage after it has an "
                "app, so there is nothing to promote to."
            )
        names = [name for _, name in downstream]
        reaches = self._reaches(names)
        for name in names:
            refusal = self._downstream_refusal(name, command.force, actor)
            if refusal:
                return self._guard.refuse(actor, command, "promote", refusal, reaches)
        # What goes out: the slug of the release this stage runs, named in the answer.
        going = current_release(platform.releases(target.name, 5))
        # Each next-stage app's newest release: a lost answer is read back as a newer one.
        latest = {name: next(iter(platform.releases(name, 1)), None) for name in names}
        # A second `promote` had released the same slug again downstream: a release that
        # changes nothing but restarts every dyno, and reads as a deploy in the history.
        running = [name for name in names if _runs_slug_of(latest[name], going)]
        skipped = None
        if running and going is not None:
            ran = self._already_running(app, going, running)
            if len(running) == len(names):
                first = self._shown_as(running[0])
                return Reply(
                    f"{ran}, so there is nothing new to promote: `/deploy releases {first}` "
                    "shows what it runs."
                )
            skipped = f"{ran}, so I left {'it' if len(running) == 1 else 'them'} out."
            downstream = tuple(pair for pair in downstream if pair[1] not in running)
            names = [name for _, name in downstream]
            reaches = self._reaches(names)
        newest = {
            name: release.version if release else "v0"
            for name, release in latest.items()
            if name in names
        }
        entry = self._audit.start(
            actor,
            "promote",
            app,
            command.text(),
            {"newest": newest},
            {"to": names},
            reaches=reaches,
        )

        def promoted(
            results: tuple[Promotion, ...], note: str | None, following: str | None = None
        ) -> Deployed:
            return Deployed(
                app,
                "promote",
                actor.user_id,
                audit_id=entry,
                promotions=results,
                after=going,
                note=note,
                break_glass=self._downstream_forced(names, command, actor),
                slow=following is not None,
                promotion_id=following,
            )

        note = skipped
        try:
            results = self._guard.call(
                entry, lambda: platform.promote(target.name, pipeline, source, downstream)
            )
        except PlatformError as error:
            if error.changed is not None:
                raise
            # Its answer was lost: a second promotion would release twice downstream.
            found = self._reconciler.read_back_promotion(resolved, newest, final=False)
            made, note = lost_note(
                error, found, "the next stage's releases", f"`/deploy releases {names[0]}`"
            )
            after = {name: "succeeded" for name in names}
            record_lost(self._audit, entry, note, after if made else None, made=made)
            if not made:
                return unsure(actor.user_id, command.text(), note)
            results = tuple(Promotion(name, "succeeded", None) for name in names)
            return promoted(results, _sentences(skipped, note))
        failed = [r for r in results if r.status == "failed"]
        # Pending (Heroku's promotions are, for seconds): followed in a thread, as a build
        # is; until it ends the worker's pass may read the releases back.
        outcome = "error" if failed else "ok"
        following = None
        if any(r.status == "pending" for r in results):
            outcome = "unknown"
            following = next((r.promotion for r in results if r.promotion), None)
            if following is None:
                note = _sentences(
                    skipped,
                    "Heroku had not said how it went when I looked: check "
                    f"`/deploy releases {names[0]}` in a minute.",
                )
        self._audit.finish(
            entry,
            outcome,
            after={r.app: r.status for r in results},
            error="; ".join(f"{r.app}: {r.error}" for r in failed) or None,
        )
        return promoted(results, note, following)

    def _reaches(self, names: list[str]) -> list[str]:
        """The registry's names for Heroku apps `names` (an app outside it by its own)."""
        return [alias for name in names for alias in self._aliases(name) or [name]]

    def _shown_as(self, name: str) -> str:
        """Heroku app `name` as the registry calls it (its first alias), else by its name."""
        return (self._aliases(name) or [name])[0]

    def _already_running(self, app: str, going: Release, running: list[str]) -> str:
        """That the next-stage apps `running` run the slug of `app`'s release `going`."""
        runs = "runs" if len(running) == 1 else "run"
        them = listed(self._shown_as(name) for name in running)
        return f"{them} already {runs} the slug of `{app}`'s {going.version}"

    def _no_heroku_swap(self, app: str, resolved: Resolved, other_alias: str) -> str:
        """Why Heroku app `app` cannot swap with `other_alias`, and what moves a release
        between them instead: the promotion of the one whose next stage holds the other,
        found from the pipeline, never a guess that names a Beanstalk environment, an app
        outside the pipeline or its production stage (each refused by `promote`)."""
        said = f"`{app}` is a Heroku app: swapping CNAMEs is for Beanstalk environments."
        try:
            other = self._resolve(other_alias)
        except (UnknownApp, PlatformError):
            return said
        if other.target.platform != "heroku":
            return f"{said} {code(other_alias)} is a Beanstalk environment, so the two cannot swap."
        pair = ((app, resolved, other.target.name), (other_alias, other, resolved.target.name))
        for alias, found, into in pair:
            try:
                _, _, _, downstream = platform_of(found).downstream(found.target.name)
            except PlatformError:
                continue
            if into in [name for _, name in downstream]:
                return (
                    f"{said} To move {code(alias)}'s release to the next stage of their "
                    f"pipeline, promote it: `/deploy promote {alias}`."
                )
        return (
            f"{said} Heroku moves a release between apps by promoting it to the next stage "
            f"of a pipeline they share, and {code(app)} and {code(other_alias)} are not "
            "next to each other in one."
        )

    def swap(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app, other_alias = command.app or "", command.target or ""
        if resolved.target.platform != "beanstalk":
            return Reply(self._no_heroku_swap(app, resolved, other_alias))
        other = self._resolve(other_alias)
        region = resolved.target.region
        if other.target.platform != "beanstalk" or other.target.region != region:
            # A name outside the registry may be mistyped (`shop-gren`): it gets the
            # environments it may have meant, as an app mistyped elsewhere does, of those it
            # could swap with, by either of their names.
            known = {
                name: t.alias
                for t in self._targets()
                if t.platform == "beanstalk" and t.region == region and t.alias != app
                for name in (t.alias, t.name)
            }
            hint = None if other.target.listed else suggest_app(other_alias, known)
            meant = f" Did you mean {hint}?" if hint else ""
            return Reply(
                f"`{other_alias}` is not a Beanstalk environment in {region}, so it cannot "
                f"swap CNAMEs with `{app}`.{meant}"
            )
        same = (other.target.name, other.target.aws_profile)
        if same == (resolved.target.name, resolved.target.aws_profile):
            # The words differed (`shop SHOP`, an alias and its environment's name), but not
            # the environment: Beanstalk would refuse it, leaving a failed row in history.
            return Reply(
                f"{code(other_alias)} is `{app}` again (both are `{resolved.target.name}`): "
                "name two different environments to swap."
            )
        reaches = [other.target.alias]
        refusal = self._not_allowed(actor, "swap", other.target.alias)
        if refusal:
            return self._guard.refuse(actor, command, "swap", refusal, reaches)
        for target in (resolved.target, other.target):
            refusal = self._guard.refusal(target, "swap", command.force, actor.user_id)
            if refusal:
                return self._guard.refuse(actor, command, "swap", refusal, reaches)
        # One client reaches both: what it says of the other environment names it as typed too.
        platform = Registered(platform_of(resolved), other.target.name, other.target.alias)
        names = (resolved.target.name, other.target.name)
        # Read first: a lost answer is read back from them, and the user told to "check"
        # would otherwise swap again, which swaps back.
        cnames = {resolved.target.name: platform.cname(resolved.target.name)}
        try:
            cnames[other.target.name] = platform.cname(other.target.name)
        except PlatformError as error:
            # Read with `app`'s credentials: another profile's environment may be in another
            # account, where "check the registry's environment" would blame a right entry.
            unseen = error.own and error.app == other.target.name
            if not unseen or other.target.aws_profile == resolved.target.aws_profile:
                raise
            return Reply(
                f"{code(other_alias)} is reached with another AWS profile than `{app}`, whose "
                "credentials cannot see it. Beanstalk swaps CNAMEs only between environments "
                "of one AWS account, so these two cannot swap."
            )
        entry = self._audit.start(
            actor,
            "swap",
            app,
            command.text(),
            {"cnames": cnames},
            {"with": other_alias},
            reaches=reaches,
        )
        note = call_reading_back(
            self._audit,
            entry,
            lambda: platform.swap(*names),
            lambda: self._reconciler.read_back_swap(resolved, cnames, final=False),
            what="their addresses",
            check=f"`/deploy status {app}`",
            after=None,
            asked=(actor.user_id, command.text()),
        )
        if isinstance(note, Reply):
            return note
        return Deployed(
            app,
            "swap",
            actor.user_id,
            mode=other_alias,
            audit_id=entry,
            note=note,
            # The other environment's freeze, forced: its channel is told.
            break_glass=self._guard.forced(
                other.target, actor.user_id, "swap", command.text(), command.force
            ),
        )

    # -- run and logs -----------------------------------------------------------------------

    def run(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app, target, wanted = command.app or "", resolved.target, command.reason or ""
        if target.platform != "heroku":
            return Reply(
                f"`{app}` is a Beanstalk environment, which has no one-off processes, so "
                "`run` is not supported there."
            )
        if wanted not in target.run:
            allows = f"only {listed(target.run)}" if target.run else "none yet"
            more = "more" if target.run else "some"
            return Reply(
                f"{shown(wanted)} is not a command `{app}` may run from chat: it allows {allows}. "
                f"An admin can add {more} under the app's `run:` in the registry."
            )
        refusal = self._guard.refusal(target, "run", command.force, actor.user_id)
        if refusal:
            return self._guard.refuse(actor, command, "run", refusal)
        platform = platform_of(resolved)
        entry = self._audit.start(actor, "run", app, command.text(), None, {"command": wanted})
        dyno = self._guard.call(entry, lambda: platform.run_detached(target.name, wanted))
        self._audit.finish(entry, "ok", after={"dyno": dyno})
        return Deployed(
            app, "run", actor.user_id, mode=dyno, keys=(wanted,), audit_id=entry, slow=True
        )

    def logs(self, resolved: Resolved, command: Command) -> Result:
        platform, target = platform_of(resolved), resolved.target
        app, dyno, asked = command.app or "", command.target, command.limit or 100
        if target.platform != "beanstalk" and dyno and _INSTANCE_ID.match(dyno):
            return Reply(
                f"`{app}` is a Heroku app: logs take a dyno such as `web.1` or a process type, "
                f"not the Beanstalk instance ID {code(dyno)}. `/deploy status {app}` lists the "
                "dynos."
            )
        if target.platform != "beanstalk":
            lines = platform.log_lines(target.name, dyno, asked)
            # No lines from a dyno or type the app does not have: none will come, so say
            # what it has. Read only then: a one-off dyno gone since keeps its lines.
            if not lines and dyno and (said := platform.missing(target.name, dyno, app)):
                return Reply(said)
            return Logs(app, dyno, _masked(lines), asked, target.platform, target.name)
        # An environment's one process type is `web`: every instance runs it.
        dyno = None if dyno == "web" else dyno
        if dyno is not None and not dyno.startswith("i-"):
            return Reply(
                f"On Beanstalk, logs take an instance ID such as `i-0abc…`, not "
                f"{code(dyno)}: `/deploy status {app}` lists the instances."
            )
        tail = platform.log_tail(target.name, dyno, asked)
        # No instance named: one instance's tail all the same, so it is named, and others.
        return Logs(
            app,
            tail.instance,
            _masked(tail.lines),
            asked,
            target.platform,
            target.name,
            picked=dyno is None and tail.instance is not None,
            others=tail.others,
        )


def _masked(lines: list[str]) -> tuple[str, ...]:
    return tuple(mask(line) for line in lines)


def _sentences(*said: str | None) -> str | None:
    """The sentences of `said` that were said, as one note; None if none was."""
    return " ".join(part for part in said if part) or None


def _runs_slug_of(release: Release | None, going: Release | None) -> bool:
    """Whether `release`, a next stage's newest, is live and runs the slug of `going`, the
    release a promotion would send: known slugs only (a release may have none)."""
    return (
        release is not None
        and going is not None
        and release.current
        and bool(going.slug)
        and release.slug == going.slug
    )
