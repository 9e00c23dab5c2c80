"""Per-app guardrails: count limits, step sizes, allowed sizes, protection and freeze windows.

`check` looks at one change (the formation before, the targets after) and says whether it
may go ahead, needs a second person's approval, or is refused, with a sentence saying why.
Freeze windows are crontab schedules in a time zone, read with APScheduler 3's CronTrigger,
the same scheduler the worker runs on. Pure: the caller passes `now`.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from apscheduler.triggers.cron import CronTrigger

from policies.names import suggest
from policies.rules import doing, is_read_only
from policies.slack_text import code, escape, listed

# A freeze refuses every change except these: `watch` changes no app, and `approve` only
# releases a change that the actions path must pass through `check` again when it runs.
# `lock` and `unlock` change no app either: they say who may deploy it.
FREEZE_EXEMPT_VERBS = frozenset({"approve", "watch", "lock", "unlock"})
# What a deploy lock holds back from everyone but its holder (as Atlantis and heaven do):
# what puts other code or settings live. A config change makes a release and restarts every
# dyno (an environment update on Beanstalk). Maintenance mode is left out: it is what
# whoever is on call reaches for in an incident, whether the holder is around or not.
# `run` starts the registry's one-off commands, migrations among them, which change what is
# live as a release does.
_LOCKED = ("rollback", "ship", "promote", "swap", "config", "run")
LOCKED_VERBS = frozenset(_LOCKED)
# Of those, what a platform has not: a Heroku app has no CNAMEs to swap, a Beanstalk
# environment no pipeline to promote along and no one-off dynos to run commands in.
_LOCKED_ELSEWHERE = {"heroku": ("swap",), "beanstalk": ("promote", "run")}


def lock_holds_back(platform: str | None = None) -> str:
    """ "roll it back, ship it, …, or run commands on it": what a lock holds back, on
    `platform` (None: on any)."""
    verbs = [v for v in _LOCKED if v not in _LOCKED_ELSEWHERE.get(platform or "", ())]
    return ", ".join(doing(verb, "it") for verb in verbs[:-1]) + f", or {doing(verbs[-1], 'it')}"


LOCK_HOLDS_BACK = lock_holds_back()  # every reply that says what a lock holds, anywhere
# Verbs that set counts; `restart` and `drain` keep the formation as it is.
_COUNT_VERBS = frozenset({"scale", "kill", "autoscale", "pin"})
# The process type whose loss would leave nobody able to scale the bot back up.
_SELF_TYPE = "web"
# A limit under this key applies to every process type without a limit of its own.
ANY_TYPE = "*"
# Enough to chain back-to-back windows; a schedule that fires more often than this in one
# window is treated as ending after the last one counted.
_MAX_CHAINED_FIRES = 500
# Longer than any gap a time zone's clocks skip (an hour at a daylight-saving change, two
# for double summer time): a window that opened in one is looked for from before it.
_CLOCK_GAP = timedelta(hours=3)

_DURATION_RE = re.compile(r"^\s*(\d+)\s*(m|min|mins|minutes?|h|hours?|d|days?)\s*$", re.I)
_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
_WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True)
class Freeze:
    """A recurring window: it opens at each cron fire time and lasts `duration`."""

    cron: str  # five-field crontab, read in `timezone`, e.g. "0 17 * * FRI"
    duration: timedelta  # elapsed time, so a window across a DST change keeps its length
    timezone: str  # IANA name, e.g. "Europe/Paris"
    reason: str  # shown to whoever is refused, e.g. "release freeze"


@dataclass(frozen=True)
class Guardrails:
    min: dict[str, int] = field(default_factory=dict)  # process type (or "*") → fewest
    max: dict[str, int] = field(default_factory=dict)  # process type (or "*") → most
    max_step: int | None = None  # largest change in count per type in one command
    sizes: frozenset[str] | None = None  # allowed sizes, lowercase; None: any size
    protected: bool = False  # kill and scale-to-zero need a second person's approval
    freezes: tuple[Freeze, ...] = ()

    def most(self, ptype: str) -> int | None:
        """The most `ptype` may run (its own limit, else the one for every type)."""
        return _limit(self.max, ptype)[0]


Outcome = Literal["allowed", "needs_approval", "refused"]


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str = ""  # why it is refused or needs approval; empty when simply allowed
    forced: bool = False  # --force passed an active freeze: post it as break-glass
    freeze_reason: str | None = None  # the freeze that was forced, when forced

    @property
    def allowed(self) -> bool:
        return self.outcome == "allowed"

    @property
    def refused(self) -> bool:
        return self.outcome == "refused"

    @property
    def needs_approval(self) -> bool:
        return self.outcome == "needs_approval"


def check(
    guardrails: Guardrails,
    verb: str,
    before: Mapping[str, tuple[int, str]],
    targets: Mapping[str, tuple[int, str | None]],
    now: datetime,
    *,
    force_reason: str | None,
    is_admin: bool,
    self_app: bool,
    app: str | None = None,
) -> Verdict:
    """Judge one change. `before` is type → (quantity, size); `targets` type → (quantity,
    size or None to keep it). `self_app` is True for the bot's own Heroku app; `app` names
    the app in messages."""
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware (UTC).")
    verb = verb.lower()
    name = f"`{app}`" if app else "this app"
    if is_read_only(verb):
        return Verdict("allowed")
    if self_app:
        refusal = _self_protection(verb, targets, name)
        if refusal:
            return Verdict("refused", refusal)
    if verb in _COUNT_VERBS:
        refusal = _limits(guardrails, verb, before, targets, name)
        if refusal:
            return Verdict("refused", refusal)
    forced, freeze_reason = False, None
    if verb not in FREEZE_EXEMPT_VERBS:
        active = active_freeze(guardrails.freezes, now)
        if active is not None:
            freeze, until = active
            frozen = f"{name[0].upper()}{name[1:]} is frozen until {_until(until, now, freeze)}"
            if force_reason is None or not force_reason.strip():
                return Verdict(
                    "refused",
                    f'{frozen} ({escape(freeze.reason)}). An admin can pass it with `--force "reason"`.',
                )
            if not is_admin:
                return Verdict(
                    "refused",
                    f"{frozen} ({escape(freeze.reason)}). Only an admin can pass it with `--force`; "
                    "ask one of them.",
                )
            forced, freeze_reason = True, freeze.reason
    if guardrails.protected and verb in _COUNT_VERBS:
        stopping = sorted(
            ptype
            for ptype, (quantity, _) in targets.items()
            if quantity == 0 and before.get(ptype, (0, ""))[0] > 0
        )
        if verb == "kill" or stopping:
            what = (
                f"killing {name}"
                if verb == "kill"
                else f"scaling {', '.join(f'`{p}`' for p in stopping)} of {name} to 0"
            )
            return Verdict(
                "needs_approval",
                f"{name[0].upper()}{name[1:]} is protected: {what} needs a second person's "
                "approval.",
                forced,
                freeze_reason,
            )
    return Verdict("allowed", "", forced, freeze_reason)


# Said beside a change whose `--force "reason"` passed no freeze: the reason is kept in the
# history all the same, and the asker should not believe it broke glass.
UNNEEDED_FORCE = "No freeze window was in force, so `--force` changed nothing."


def unneeded_force(verdict: Verdict, force_reason: str | None) -> str | None:
    """`UNNEEDED_FORCE` when `--force` was given but the verdict passed no freeze with it."""
    if not force_reason or verdict.forced or verdict.refused:
        return None
    return UNNEEDED_FORCE


def within_max_step(max_step: int | None, current: int, desired: int) -> tuple[int, str]:
    """`desired`, moved no further from `current` than the registry's `max_step` lets one
    command move a process type, and the words that say so ('' when it was within). The
    autoscaler asks through the same path as a person: a larger step is refused whole, so
    it takes the steps the guardrail allows, one a tick."""
    if max_step is None or abs(desired - current) <= max_step:
        return desired, ""
    held = current + max_step if desired > current else current - max_step
    return held, f" (the registry's max_step allows {max_step} at a time; {desired} wanted)"


def lock_refusal(
    verb: str, app: str, holder: str | None, reason: str | None, user_id: str
) -> str | None:
    """Why `user_id` may not `verb` the app while `holder` holds its deploy lock, or None."""
    if holder is None or holder == user_id or verb not in LOCKED_VERBS:
        return None
    return (
        f"`{app}` is locked by <@{holder}> ({escape(reason or 'no reason given')}), so only they may "
        f"{doing(verb, 'it')}. Ask them to `/deploy unlock {app}` when they are done."
    )


def _self_protection(verb: str, targets: Mapping[str, tuple[int, str | None]], name: str) -> str:
    web_to_zero = targets.get(_SELF_TYPE, (1, None))[0] == 0
    if verb == "kill" and (not targets or web_to_zero):
        return (
            f"I will not kill myself: {name} is the app deploybot runs on, and with its web "
            "dynos stopped nobody could ask me to start them again. Use the Heroku dashboard "
            "or CLI if you really mean it."
        )
    if web_to_zero:
        return (
            f"I will not scale my own web dynos to 0: {name} is the app deploybot runs on. "
            "Use the Heroku dashboard or CLI if you really mean it."
        )
    return ""


def _limits(
    guardrails: Guardrails,
    verb: str,
    before: Mapping[str, tuple[int, str]],
    targets: Mapping[str, tuple[int, str | None]],
    name: str,
) -> str:
    subject = f"{name[0].upper()}{name[1:]}"
    for ptype, (quantity, size) in sorted(targets.items()):
        term = f"`{ptype}={quantity}`"
        low, low_key = _limit(guardrails.min, ptype)
        high, high_key = _limit(guardrails.max, ptype)
        if high is not None and quantity > high:
            per = "per process type" if high_key == ANY_TYPE else f"for `{ptype}`"
            return f"{subject} allows at most {high} {per} (the registry's `max`), so {term} is refused."
        if low is not None and quantity < low:
            per = "per process type" if low_key == ANY_TYPE else f"for `{ptype}`"
            return f"{subject} needs at least {low} {per} (the registry's `min`), so {term} is refused."
        current = before.get(ptype, (0, ""))[0]
        step = abs(quantity - current)
        # A kill is asked for by name and confirmed, so it may take any count to zero at once.
        if verb != "kill" and guardrails.max_step is not None and step > guardrails.max_step:
            return (
                f"{subject} changes a process type by at most {guardrails.max_step} per command "
                f"(the registry's `max_step`), and `{ptype}` {current} → {quantity} is {step}. "
                "Scale in smaller steps."
            )
        if (
            size is not None
            and guardrails.sizes is not None
            and size.lower() not in guardrails.sizes
        ):
            allowed = listed(sorted(guardrails.sizes))
            return f"{code(size.lower())} is not an allowed size for {name}: use one of {allowed}."
    return ""


def _limit(limits: Mapping[str, int], ptype: str) -> tuple[int | None, str]:
    if ptype in limits:
        return limits[ptype], ptype
    if ANY_TYPE in limits:
        return limits[ANY_TYPE], ANY_TYPE
    return None, ""


def active_freeze(
    freezes: tuple[Freeze, ...] | list[Freeze], now: datetime
) -> tuple[Freeze, datetime] | None:
    """The first freeze whose window is open at `now`, with when it closes (UTC)."""
    for freeze in freezes:
        until = window_end(freeze, now)
        if until is not None:
            return freeze, until
    return None


def window_end(freeze: Freeze, now: datetime) -> datetime | None:
    """When the window open at `now` closes (UTC), or None if none is open.

    A window is open when some fire time t has now - duration < t <= now. Windows that
    touch or overlap are one window, so the end is that of the last one in the chain.
    """
    trigger = _trigger(freeze)
    utc_now = now.astimezone(UTC)
    # The trigger rounds its start up to a whole second; fire times are whole minutes.
    start = utc_now - freeze.duration + timedelta(microseconds=1)
    fire = trigger.get_next_fire_time(None, start)
    if fire is None or fire.astimezone(UTC) > utc_now:
        fire = _fire_after_a_gap(trigger, start)
    if fire is None or fire.astimezone(UTC) > utc_now:
        return None
    # Arithmetic in UTC: adding to a local time would add wall-clock time across DST.
    end = fire.astimezone(UTC) + freeze.duration
    for _ in range(_MAX_CHAINED_FIRES):
        fire = trigger.get_next_fire_time(None, fire.astimezone(UTC) + timedelta(seconds=1))
        if fire is None or fire.astimezone(UTC) > end:
            break
        end = max(end, fire.astimezone(UTC) + freeze.duration)
    return end


def _fire_after_a_gap(trigger: CronTrigger, start: datetime) -> datetime | None:
    """The first fire time at or after `start`, looked for from before a gap the clocks
    skip. A time the clocks skip (02:30 on a spring-forward night) fires once they have
    moved on (03:30), but the trigger finds that fire only when it looks from before the
    gap: from 03:15 it looks for 02:30 tomorrow, and a window still open read as closed."""
    fire = trigger.get_next_fire_time(None, start - _CLOCK_GAP)
    for _ in range(_MAX_CHAINED_FIRES):
        if fire is None or fire.astimezone(UTC) >= start:
            return fire
        fire = trigger.get_next_fire_time(None, fire.astimezone(UTC) + timedelta(seconds=1))
    return None


def _until(end: datetime, now: datetime, freeze: Freeze) -> str:
    zone = zoneinfo.ZoneInfo(freeze.timezone)
    local_end, local_now = end.astimezone(zone), now.astimezone(zone)
    if local_end.date() == local_now.date():
        text = local_end.strftime("%H:%M")
    elif local_end - local_now < timedelta(days=6):
        text = local_end.strftime("%a %H:%M")
    else:
        text = local_end.strftime("%a %d %b %H:%M")
    return f"{text} {freeze.timezone}"


def _trigger(freeze: Freeze) -> CronTrigger:
    return CronTrigger.from_crontab(
        _apscheduler_crontab(freeze.cron), timezone=zoneinfo.ZoneInfo(freeze.timezone)
    )


def _apscheduler_crontab(expr: str) -> str:
    """`expr` with its weekday field spelled as names.

    APScheduler 3 numbers weekdays from Monday = 0, crontab from Sunday = 0 (issue 286), so a
    numeric weekday is translated to names, which both read alike.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"it has {len(fields)} fields where a crontab schedule has five")
    minute, hour, day, month, weekday = fields
    return " ".join((minute, hour, day, month, _weekday_names(weekday)))


def _weekday_names(text: str) -> str:
    if text == "*":
        return text
    days: set[int] = set()
    for item in text.lower().split(","):
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"the weekday step in `{item}` is not a positive number")
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            start, _, stop = base.partition("-")
            first, last = _weekday(start), _weekday(stop)
            if stop.strip() in ("7",):
                last = 7
            if first > last:
                raise ValueError(f"the weekday range `{base}` runs backwards; write two ranges")
        else:
            first = last = _weekday(base)
            if step:
                last = 6
        days.update(day % 7 for day in range(first, last + 1, step or 1))
    return ",".join(_WEEKDAY_NAMES[day] for day in sorted(days))


def _weekday(text: str) -> int:
    text = text.strip()
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text) % 7
    if text in _WEEKDAY_NAMES:
        return _WEEKDAY_NAMES.index(text)
    raise ValueError(f"`{text}` is not a weekday (0-7 or sun..sat)")


def parse_duration(text: str) -> timedelta:
    """`90m`, `2h`, `1d` (also `2 hours`) → timedelta; ValueError on anything else."""
    match = _DURATION_RE.match(text)
    if match is None:
        raise ValueError(
            f"`{text}` is not a duration: write a whole number and a unit, like 90m, 2h or 1d."
        )
    unit = _DURATION_UNITS[match[2][0].lower()]
    if int(match[1]) > 1_000_000:  # past timedelta's range before a billion days
        raise ValueError(
            f"`{text}` is far too long a duration: write a whole number and a unit, like 90m, "
            "2h or 1d."
        )
    return timedelta(**{unit: int(match[1])})


def parse_freeze(cron: str, duration: str | timedelta, timezone: str, reason: str) -> Freeze:
    """A validated `Freeze`; ValueError names the field that is wrong and how to write it."""
    length = parse_duration(duration) if isinstance(duration, str) else duration
    if length <= timedelta(0):
        raise ValueError(f"A freeze must last longer than zero, not `{duration}`.")
    zone = _zone(timezone)
    try:
        CronTrigger.from_crontab(_apscheduler_crontab(cron), timezone=zone)
        if cron.split()[2] != "*" and cron.split()[4] != "*":
            # crontab fires when either matches, APScheduler only when both do.
            raise ValueError(
                "it restricts both the day of the month and the weekday, which cron and "
                "APScheduler read differently; restrict only one"
            )
    except ValueError as error:
        detail = str(error).rstrip(".")
        raise ValueError(
            f"The freeze schedule `{cron}` is not valid: {detail[:1].lower()}{detail[1:]}. "
            'Write five fields, minute hour day month weekday, like "0 17 * * FRI".'
        ) from None
    if not reason.strip():
        raise ValueError("Give the freeze a reason: it is shown to whoever it stops.")
    return Freeze(cron.strip(), length, timezone, reason.strip())


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        pass
    known = sorted(zoneinfo.available_timezones())
    # "Paris" and "utc" are common slips: match the last part, ignoring case, first.
    wanted = name.strip().lower()
    same = [zone for zone in known if zone.lower() == wanted]
    same += [zone for zone in known if zone.lower().endswith(f"/{wanted}")]
    quoted = [f"`{zone}`" for zone in same[:3]]
    hint = (
        " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)
        if quoted
        else suggest(name, known)
    )
    tip = f" Did you mean {hint}?" if hint else " Write it like Europe/Paris or UTC."
    raise ValueError(f"`{name}` is not an IANA time zone.{tip}")
