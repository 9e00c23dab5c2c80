"""What every deployment verb shares: the deploy lock and the guardrails' verdict as one
refusal, the audited platform call, and small helpers on release lists."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from bot.actions.results import BreakGlass, Reply, Resolved
from bot.platforms.base import PlatformError, Release
from bot.registry import Target
from bot.store.audit import Actor, AuditLog
from bot.store.locks import Locks
from policies import guardrails
from policies.commands import Command
from policies.slack_text import code, listed, shown

T = TypeVar("T")

# How far back a rollback (or a Beanstalk ship) looks for its release or version.
LOOKBACK = 50

# (target, verb, force reason, user) → the guardrails' verdict on a change with no formation.
Judge = Callable[[Target, str, str | None, str], guardrails.Verdict]


class DeployGuard:
    def __init__(self, audit: AuditLog, locks: Locks, judge: Judge) -> None:
        self._audit = audit
        self._locks = locks
        self.judge = judge

    def refusal(self, target: Target, verb: str, force: str | None, user_id: str) -> str | None:
        """Why `user_id` may not `verb` the app now (someone else's lock, a freeze), or None."""
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
        verdict = self.judge(target, verb, force, user_id)
        return verdict.reason if verdict.refused else None

    def forced(
        self, target: Target, user_id: str, verb: str, command: str, force: str | None
    ) -> BreakGlass | None:
        """The break-glass notice for `target`'s channel when `command` was `--force`d
        through its freeze, or None (no force, or no freeze it had to pass)."""
        if not force:
            return None
        verdict = self.judge(target, verb, force, user_id)
        if not verdict.forced:
            return None
        return BreakGlass(user_id, command, verdict.freeze_reason or "", force, target.channel)

    def refuse(
        self, actor: Actor, command: Command, verb: str, reason: str, reaches: Iterable[str] = ()
    ) -> Reply:
        """Say why, and keep the refusal in the audit trail, as the gate's refusals are: in
        the history of the other apps the change would have `reaches` too (a swap's other
        environment, a promotion's next stage), whose lock or freeze may be why."""
        app, text = command.app or "", command.text()
        self._audit.record(actor, verb, app, text, "refused", reason, reaches=reaches)
        return Reply(reason)

    def call(self, entry: int, work: Callable[[], T]) -> T:
        """Run the platform call, completing the audit row with how it failed if it did."""
        return audited_call(self._audit, entry, work)


def audited_call(audit: AuditLog, entry: int, work: Callable[[], T]) -> T:
    """Run `work` (a platform call); if it fails, finish audit row `entry` with how, and
    re-raise. A PlatformError that may have landed is `unknown`, anything else `error`."""
    try:
        return work()
    except PlatformError as error:
        audit.finish(entry, error.outcome, error=str(error))
        error.audited = True  # the path's catch-all must not record it a second time
        raise
    except Exception as error:
        audit.finish(entry, "error", error=type(error).__name__)
        raise


def platform_of(resolved: Resolved) -> Any:
    # Both platform clients have the deployment calls; `Platform` stays the scale protocol,
    # and a verb only one platform has checks `target.platform` before calling it.
    return resolved.platform


def current_release(releases: tuple[Release, ...], platform: str = "heroku") -> Release | None:
    """The release the app runs: the one marked current, else (Heroku) the newest good one.
    A Beanstalk environment that names no version (launched with AWS's sample application)
    runs none of its application's versions that can be told: None."""
    marked = [r for r in releases if r.current]
    if marked:
        return marked[0]
    if platform == "beanstalk":
        return None
    good = [r for r in releases if r.good]
    return good[0] if good else None


def version_by_label(platform: Any, environment: str, app: str, label: str) -> Release | str | None:
    """Beanstalk `app`'s application version `label` when it is not among the newest listed:
    looked up by its exact label; else the "did you mean" for labels that differ from it
    only by case (`differ_by_case`); else None. Rollback and ship ask alike."""
    found = platform.version(environment, label)
    if found is not None:
        return found
    twins = platform.case_twins(environment, label)
    return differ_by_case(app, label, twins) if twins else None


def differ_by_case(app: str, wanted: str, twins: tuple[str, ...]) -> str:
    """Why Beanstalk `app` has no application version `wanted`, when the labels `twins`
    differ from it only by case: a "did you mean" for one, each of them for more. Never
    taken for a new label (a `bundle:` ship would make one beside them)."""
    said = f"`{app}` has no application version {shown(wanted)} (labels differ by case)"
    if len(twins) == 1:
        return f"{said}. Did you mean {code(twins[0])}?"
    return f"{said}: {listed(twins)}. Say which, as its label is written."
