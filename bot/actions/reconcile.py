"""What became of a change the bot cannot be sure about: read it back and say.

A timeout or a dropped connection after a request was sent (`PlatformError.changed is
None`) leaves the change maybe made; a process that died between the platform call and
the audit outcome leaves its row `pending`. Both are settled the same way: read what runs
now and compare it with what ran before and what was asked. Right after the error the
user is told what runs now; a few minutes later the worker's pass (`sweep`) gives every
such row its final outcome:

- `ok`: what was asked is what runs;
- `not-applied`: what ran before still runs (only final after a few minutes: a slow
  request may still land);
- `unknown`: neither (someone else changed it too), or nothing can tell (restarts).

A scale or kill is read back from the formation, a rollback or a Beanstalk ship from the
releases (the environment's version), a promotion from the downstream apps' releases, a
swap from the two environments' CNAMEs, maintenance from the app's maintenance flag.
`lost_note` says what was found, in the same words for every verb.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.actions.deploy_guard import audited_call, current_release
from bot.actions.results import Reply, Resolved
from bot.platforms.base import Formation, PlatformError, formation_map
from bot.registry import UnknownApp
from bot.store.audit import AuditLog, Entry
from policies.commands import release_number
from policies.slack_text import clip, code, escape

# The read-back for one audit row: (resolved, final) → what was found, None if unreadable.
Reader = Callable[[Resolved, bool], "ReadBack | None"]

log = logging.getLogger(__name__)

SETTLE_AFTER = timedelta(minutes=3)  # older pending/unknown rows are read back by the worker
RELEASES_READ = 5  # a rollback's new release is the newest; a few more cover a deploy since
# Characters of a release's description in a read-back: the app owner writes it, and a long
# one pushed the advice after it out of the reply.
DESCRIPTION_SHOWN = 120
GIVE_UP_AFTER = timedelta(days=1)  # a row whose app cannot be read for this long: unknown
_FORMATION_VERBS = frozenset({"scale", "kill"})


@dataclass(frozen=True)
class ReadBack:
    outcome: str  # ok, not-applied, unknown
    formation: tuple[Formation, ...] | None  # None: it could not be read
    sentence: str  # "web is now 2", for the user and the audit row


def judge(
    before: Mapping[str, Any] | None,
    requested: Mapping[str, Any],
    now: Mapping[str, tuple[int, str]],
) -> str:
    """`ok`, `not-applied` or `unknown` for a formation change, from three plain maps:
    type → [quantity, size] before and asked (size None: kept), type → (quantity, size) now."""

    def matches(ptype: str, quantity: int, size: str | None) -> bool:
        current = now.get(ptype)
        if current is None:
            return False
        return current[0] == quantity and (not size or size.lower() == current[1].lower())

    if all(matches(t, int(q), s) for t, (q, s) in requested.items()):
        return "ok"
    if before and all(
        t in before and matches(t, int(before[t][0]), before[t][1]) for t in requested
    ):
        return "not-applied"
    return "unknown"


def lost_note(
    error: PlatformError, found: ReadBack | None, what: str, check: str
) -> tuple[bool, str]:
    """Whether a change whose answer was lost (`error`) was made, from what its read-back
    `found` (None: `what` could not be read), and the sentences that tell the user so,
    ending with where to `check` when the bot cannot say it was made."""
    if found is None:
        return False, (
            f"{error.fact} I could not read {what} back, so I cannot tell whether it was "
            f"made. Check {check} before asking again."
        )
    if found.outcome == "ok":
        return True, f"{error.fact} I read it back: {found.sentence}, so it was made."
    return False, (
        f"{error.fact} I read it back: {found.sentence}, not what was asked, yet: it may "
        f"still be under way. Check {check} in a minute before asking again."
    )


def record_lost(
    audit: AuditLog, entry: int, note: str, after: dict[str, Any] | None, *, made: bool
) -> None:
    """The trail of a change whose answer was lost, read back at once: row `entry` says what
    the user was told (`lost_note`'s sentences), where it had kept the platform's generic
    "Check `/deploy status`", even on a change read back as made. Not known to be made, it
    stays `unknown`, for the worker's pass to read back again."""
    if made:
        audit.settle(entry, "ok", after, note, replace=True)
    else:
        audit.finish(entry, "unknown", after=after, error=note)


def unsure(user_id: str, text: str, note: str) -> Reply:
    """The reply, in the channel, to a change the bot cannot say was made: who asked for
    what, and `lost_note`'s sentences."""
    return Reply(f"<@{user_id}> asked {code(text)}. {note}", public=True, maybe_made=True)


def call_reading_back(
    audit: AuditLog,
    entry: int,
    work: Callable[[], object],
    read_back: Callable[[], ReadBack | None],
    *,
    what: str,
    check: str,
    after: dict[str, Any] | None,
    asked: tuple[str, str],
) -> Reply | str | None:
    """Run `work`, a change audited as row `entry`, finishing the row `ok` with `after`.
    When its answer is lost, `read_back` says what runs (None: `what` could not be read):
    read back as made, the row is settled `ok` and `lost_note`'s sentence returned, to be
    said with the change; otherwise the `unsure` Reply to `asked` (who, and what they
    typed), to be said instead. None when the platform answered. A refusal is raised."""
    try:
        audited_call(audit, entry, work)
    except PlatformError as error:
        if error.changed is not None:
            raise
        made, note = lost_note(error, read_back(), what, check)
        record_lost(audit, entry, note, after if made else None, made=made)
        return note if made else unsure(*asked, note)
    audit.finish(entry, "ok", after=after)
    return None


def now_running(requested: Mapping[str, Any], now: Mapping[str, tuple[int, str]]) -> str:
    """`web is now 2, worker is now 0`: the asked-about types as they run now."""
    parts = []
    for ptype in requested:
        quantity, size = now.get(ptype, (0, "?"))
        parts.append(f"{escape(ptype)} is now {quantity} × {escape(size)}")
    return ", ".join(parts)


class Reconciler:
    def __init__(self, resolve: Callable[[str], Resolved], audit: AuditLog) -> None:
        self._resolve = resolve
        self._audit = audit

    def read_back(
        self,
        resolved: Resolved,
        before: Mapping[str, Any] | None,
        requested: Mapping[str, Any],
        *,
        final: bool,
    ) -> ReadBack:
        """Read the formation and judge it; `final=False` (right after the error) keeps a
        not-yet-applied change `unknown`, since a slow request may still land."""
        try:
            formation = resolved.platform.formation(resolved.target.name)
        except PlatformError as error:
            log.info("formation read-back failed", extra={"app": resolved.target.alias})
            return ReadBack("unknown", None, f"reading it back failed too ({error})")
        now = formation_map(formation)
        outcome = judge(before, requested, now)
        if outcome == "not-applied" and not final:
            outcome = "unknown"
        return ReadBack(outcome, formation, now_running(requested, now))

    def read_back_release(
        self, resolved: Resolved, before: str | None, asked: str, *, final: bool
    ) -> ReadBack | None:
        """What a maybe-made rollback did: the app runs `asked` (Beanstalk) or a new
        release made from it (Heroku's "Rollback to v41"), still `before` (None: a
        Beanstalk environment that named no version, and still names none), or neither.
        None when the releases cannot be read."""
        try:
            releases = resolved.platform.releases(resolved.target.name, RELEASES_READ)
        except PlatformError:
            log.info("release read-back failed", extra={"app": resolved.target.alias})
            return None
        current = current_release(releases, resolved.target.platform)
        if current is None and before is None and resolved.target.platform == "beanstalk":
            outcome = "not-applied" if final else "unknown"
            return ReadBack(outcome, None, "its environment names no version")
        if current is None:
            return None
        # Word by word: "Rollback to v41" is not a rollback to v4.
        described = current.description.lower().split()[:3]
        made = current.version == asked or (
            current.version != before and described == ["rollback", "to", asked.lower()]
        )
        outcome = "ok" if made else "not-applied" if current.version == before else "unknown"
        if outcome == "not-applied" and not final:
            outcome = "unknown"
        described = escape(clip(current.description, DESCRIPTION_SHOWN))
        words = f"it runs {escape(current.version)} ({described})"
        return ReadBack(outcome, None, words)

    def read_back_promotion(
        self, resolved: Resolved, newest: Mapping[str, str], *, final: bool
    ) -> ReadBack | None:
        """What a maybe-made promotion of `resolved` did: whether each downstream Heroku app
        (the keys of `newest`, each with its newest release when the promotion was asked)
        has a newer release promoted from it ("Promote myapp-staging v12 …"). None when one
        cannot be read."""
        source = resolved.target.name.lower()
        promoted, missing = [], []
        for name, before in newest.items():
            try:
                releases = resolved.platform.releases(name, RELEASES_READ)
            except PlatformError:
                log.info("promotion read-back failed", extra={"app": resolved.target.alias})
                return None
            made = next(
                (
                    r
                    for r in releases
                    if release_number(r.version) > release_number(before)
                    and r.description.lower().split()[:2] == ["promote", source]
                ),
                None,
            )
            if made is None:
                missing.append(code(name))
            else:
                words = f"({escape(clip(made.description, DESCRIPTION_SHOWN))})"
                promoted.append(f"{code(name)} runs {escape(made.version)} {words}")
        if not missing:
            return ReadBack("ok", None, "; ".join(promoted))
        # A promotion makes its releases within seconds; none after the pass's minutes is final.
        outcome = "not-applied" if final and not promoted else "unknown"
        nothing = f"no new release promoted to {', '.join(missing)}"
        return ReadBack(outcome, None, "; ".join([*promoted, nothing]))

    def read_back_swap(
        self, resolved: Resolved, before: Mapping[str, str], *, final: bool
    ) -> ReadBack | None:
        """What a maybe-made CNAME swap did: `before` maps the two environments to the
        CNAMEs they had; swapped when each has the other's. None when one cannot be read."""
        (one, had), (other, other_had) = before.items()
        if not had and not other_had:
            return None  # no CNAMEs to compare (worker tiers): nothing tells
        try:
            now = {name: resolved.platform.cname(name) for name in (one, other)}
        except PlatformError:
            log.info("swap read-back failed", extra={"app": resolved.target.alias})
            return None
        if (now[one], now[other]) == (other_had, had):
            outcome = "ok"
        elif (now[one], now[other]) == (had, other_had):
            outcome = "not-applied" if final else "unknown"
        else:
            outcome = "unknown"
        # The first is the app the swap was asked of: said as typed, not as its environment.
        said = resolved.target.alias if one == resolved.target.name else one
        words = f"{code(said)} answers at {escape(now[one])}"
        return ReadBack(outcome, None, words)

    def read_back_maintenance(
        self, resolved: Resolved, before: bool, asked: bool, *, final: bool
    ) -> ReadBack | None:
        """What a maybe-made maintenance switch did, from the app's flag; None when it
        cannot be read."""
        try:
            on = resolved.platform.maintenance(resolved.target.name)
        except PlatformError:
            log.info("maintenance read-back failed", extra={"app": resolved.target.alias})
            return None
        outcome = "ok" if on == asked else "not-applied" if final and on == before else "unknown"
        return ReadBack(outcome, None, f"maintenance mode is {'on' if on else 'off'}")

    def sweep(self, now: datetime) -> int:
        """Give every pending or unknown row older than SETTLE_AFTER its final outcome.
        Returns how many rows were settled."""
        settled = 0
        for entry in self._audit.unsettled(now - SETTLE_AFTER):
            if self._settle(entry, now):
                settled += 1
        if settled:
            log.info("audit rows reconciled", extra={"count": settled})
        return settled

    def _settle(self, entry: Entry, now: datetime) -> bool:
        died = "The bot stopped before it heard back." if entry.outcome == "pending" else None
        reader = self._reader(entry)
        if reader is None:
            # Nothing to read back that would tell (a restart leaves no trace in the formation).
            return self._audit.settle(entry.id, "unknown", None, died or "Nothing to read back.")
        try:
            resolved = self._resolve(entry.app)
        except (PlatformError, UnknownApp):
            return self._give_up(entry, now, died)
        found = reader(resolved, True)
        if found is None:
            return self._give_up(entry, now, died)
        note = " ".join(part for part in (died, f"Read back: {found.sentence}.") if part)
        after = formation_json(found.formation) if found.formation is not None else None
        return self._audit.settle(entry.id, found.outcome, after, note)

    def _reader(self, entry: Entry) -> Reader | None:
        """How to read back what `entry` asked for, or None when nothing would tell."""
        before, asked = entry.before or {}, entry.requested or {}
        if entry.verb in _FORMATION_VERBS and asked:

            def formation(resolved: Resolved, final: bool) -> ReadBack | None:
                found = self.read_back(resolved, entry.before, asked, final=final)
                return found if found.formation is not None else None

            return formation
        # A rollback, or a Beanstalk ship (a Heroku ship asks for a ref, not a version).
        if entry.verb in ("rollback", "ship") and "version" in asked and "version" in before:
            # None: what ran could not be told (an environment that named no version).
            was = None if before["version"] is None else str(before["version"])
            wanted = str(asked["version"])
            return lambda resolved, final: self.read_back_release(
                resolved, was, wanted, final=final
            )
        if entry.verb == "promote" and isinstance(before.get("newest"), dict):
            newest = {str(k): str(v) for k, v in before["newest"].items()}
            return lambda resolved, final: self.read_back_promotion(resolved, newest, final=final)
        cnames = before.get("cnames")
        if entry.verb == "swap" and isinstance(cnames, dict) and len(cnames) == 2:
            had = {str(k): str(v) for k, v in cnames.items()}
            return lambda resolved, final: self.read_back_swap(resolved, had, final=final)
        if entry.verb == "maintenance" and "maintenance" in asked and "maintenance" in before:
            was_on, on = bool(before["maintenance"]), bool(asked["maintenance"])
            return lambda resolved, final: self.read_back_maintenance(
                resolved, was_on, on, final=final
            )
        return None

    def _give_up(self, entry: Entry, now: datetime, died: str | None) -> bool:
        if now - entry.started_at < GIVE_UP_AFTER:
            return False  # try again on the next pass
        note = " ".join(
            part for part in (died, "What runs could not be read back for a day.") if part
        )
        return self._audit.settle(entry.id, "unknown", None, note)


def formation_json(formation: tuple[Formation, ...]) -> dict[str, list[object]]:
    return {f.type: [f.quantity, f.size] for f in formation}
