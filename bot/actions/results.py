"""What the actions path returns: plain result objects that `handlers/render.py` turns into
Block Kit and the console prints. Nothing here knows about Slack."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from bot.metrics.aggregate import Summary
from bot.metrics.chart_data import ChartData
from bot.platforms.base import (
    AppStatus,
    Build,
    Formation,
    Platform,
    Promotion,
    Release,
    Traffic,
)
from bot.registry import Target
from bot.store.audit import Entry
from bot.store.confirmations import Confirmations, Pending
from bot.store.heartbeats import Beat, Undelivered
from bot.store.locks import Lock
from policies.costs import MonthlyCost
from policies.digest import DayNumbers, Span
from policies.slack_text import code, moment

# What a person is told while the database cannot be used (`bot.store.db.unreachable`).
CHANGED_NOTHING = (
    "I cannot reach my database just now, so I changed nothing: every change is recorded "
    "there first. Try again in a minute."
)
# Past the first write a change may have been made: the platform call can precede the
# statement that failed.
CANNOT_ANSWER = (
    "I cannot reach my database just now, so I could not finish this; if you asked for a "
    "change, check the app before trying again. If it goes on, whoever runs deploybot can "
    "look with `heroku pg:info`."
)


@dataclass(frozen=True)
class Reply:
    """A sentence for the asker; `public` replies are shown to the whole channel."""

    text: str
    public: bool = False
    # A change whose answer was lost and not read back as made: not a refusal (`unsure`).
    maybe_made: bool = False
    # What ends the reply when it is cut to one Slack message ({n}: the lines left out),
    # where the verb knows where to read the rest; None: the count alone.
    more: str | None = None
    # A change made, said in plain words to the asker alone (`drain`): what a `--force`
    # that passed no freeze is said beside, as a public answer is.
    made: bool = False


@dataclass(frozen=True)
class BreakGlass:
    """An admin forced a change through a freeze: said in the app's home channel."""

    user_id: str
    command: str
    freeze_reason: str
    reason: str
    channel: str | None  # the app's home channel; None: the channel it was asked in


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
    break_glass: BreakGlass | None = None
    note: str | None = None  # how we know, when the platform's answer was lost


@dataclass(frozen=True)
class Restarted:
    app: str
    target: str | None
    user_id: str
    audit_id: int | None = None
    slow: bool = False
    unit: str = "dyno"
    break_glass: BreakGlass | None = None
    note: str | None = None  # e.g. that its `--force` passed no freeze


@dataclass(frozen=True)
class AppList:
    apps: tuple[Target, ...]
    may_change: bool
    unlisted_heroku: bool
    matching: str | None = None  # `apps WORD`: only the apps whose alias or name holds it
    of: int = 0  # with `matching`: how many apps there are in all


@dataclass(frozen=True)
class Status:
    status: AppStatus
    lock: Lock | None = None  # the app's deploy lock, if someone holds it


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
    approval: str | None = None  # why a second person must approve; None: requester confirms
    cost: str | None = None  # the monthly cost change, e.g. "≈ $75/month → $0/month"
    costly: str | None = None  # why the cost made it ask first (`costs.why_ask`)
    note: str | None = None  # e.g. that its `--force` passed no freeze


@dataclass(frozen=True)
class History:
    app: str | None
    entries: tuple[Entry, ...]
    only: str | None = None  # a filter word: refused, cancelled, expired, failed, …
    hidden: int = 0  # across apps: how many apps the access rules keep from the asker
    # Why some of `hidden` are only because Slack could not say who is in a group, and how
    # many, as `Home.unsure`: they are not the rules' doing.
    unsure: tuple[str, int] | None = None


@dataclass(frozen=True)
class Metrics:
    app: str
    minutes: int
    summary: Summary
    drained: bool  # whether the bot has a drain on this app at all
    rates: tuple[float | None, ...] = ()  # requests per minute, for a sparkline
    p95s: tuple[float | None, ...] = ()  # p95 service time (ms) per bucket


@dataclass(frozen=True)
class PlatformMetrics:
    """Traffic the platform itself reports (Beanstalk: CloudWatch and its health)."""

    app: str
    minutes: int
    traffic: Traffic


@dataclass(frozen=True)
class Chart:
    """`/deploy chart`: the numbers to draw; the handler renders and uploads them."""

    data: ChartData


@dataclass(frozen=True)
class AppCost:
    app: str
    platform: str
    formation: dict[str, tuple[int, str]]
    monthly: MonthlyCost | None  # None when the formation could not be read
    problem: str | None = None  # why not, as Slack text (a PlatformError's message)
    web_hours: float | None = None  # the last 7 days' web dyno-hours from the autoscaler
    covered_hours: float = 0.0  # how much of the 7 days that record covers
    web_usd: float | None = None  # what those dyno-hours cost at list prices


@dataclass(frozen=True)
class CostReport:
    apps: tuple[AppCost, ...]
    days: int = 7
    reserve_kept: bool = False  # some apps were left unpriced to keep the API reserve


@dataclass(frozen=True)
class About:
    """`/deploy about` and the App Home header: the bot's own health."""

    release: str | None
    beat: Beat | None  # the worker leader's newest tick; None if it never ticked
    worker_down: bool
    outbox_backlog: int
    drains: tuple[tuple[str, datetime | None], ...]  # app, its newest traffic
    now: datetime
    hidden: int = 0  # drains left out: the access rules keep their apps from the asker
    undelivered: tuple[Undelivered, ...] = ()  # channels refusing alerts, and why
    outbox_stalled: str | None = None  # Slack's answer holding the waiting alerts back
    worker_runs: bool = True  # False in the sandbox console, where no worker is meant to run


@dataclass(frozen=True)
class AppCard:
    """One app on App Home."""

    alias: str
    platform: str
    formation: dict[str, tuple[int, str]] | None  # None when it could not be read
    problem: str | None  # why no formation, as Slack text (a PlatformError's message)
    autoscale: tuple[str, ...]  # state, pin, last decision: Slack text
    incidents: tuple[str, ...]  # open incidents, worst first, as their alerts word them: Slack text
    changes: tuple[Entry, ...]  # the last three, newest first
    monthly: MonthlyCost | None


@dataclass(frozen=True)
class Home:
    """App Home: the bot's health and a page of the apps the user may see."""

    about: About
    cards: tuple[AppCard, ...]
    page: int  # from 0
    pages: int
    total: int  # apps the user may see, on every page
    hidden: int = 0  # apps the access rules keep from the user
    # Why some of `hidden` are only because Slack could not say who is in a group (a
    # GroupLookupFailed's text), and how many: they are not the rules' doing.
    unsure: tuple[str, int] | None = None
    # Of HOME_CHANGES, the verbs the user may run on each card's app (by alias).
    may: dict[str, frozenset[str]] = field(default_factory=dict)
    unlisted_heroku: bool = False  # Heroku apps the registry does not list work by name


@dataclass(frozen=True)
class Digest:
    """One app's day: posted to its channel by the worker at the registry's `digest` time."""

    app: str
    day: date
    timezone: str
    numbers: DayNumbers
    actions: tuple[Span, ...]  # each web count change, held until the next (or day's end)
    incidents: tuple[Span, ...]
    chart: ChartData | None  # None: no traffic that day
    estimate: bool  # Beanstalk's EC2 prices
    unreadable: str | None = None  # why the web size (so the prices) is unknown: no API key
    unit: str = "dyno"  # what runs the app: Heroku dynos, Beanstalk instances


@dataclass(frozen=True)
class Duplicate:
    """Another delivery of a request already handled (by this process or another): the
    first delivery answers, so this one says nothing."""

    key: str


@dataclass(frozen=True)
class Releases:
    """An app's releases (Heroku) or application versions (Beanstalk), newest first."""

    app: str
    platform: str
    releases: tuple[Release, ...]


@dataclass(frozen=True)
class Builds:
    """A Heroku app's builds, newest first, and the newest one's output tail if it failed."""

    app: str
    builds: tuple[Build, ...]
    failed_output: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeployPrompt:
    """A deployment change (rollback, config, maintenance on) waiting for its requester's
    Confirm click."""

    id: str
    app: str
    verb: str
    user_id: str
    expires_at: datetime
    before: Release | None = None  # rollback: from this release…
    after: Release | None = None  # …to this one
    keys: tuple[str, ...] = ()  # config: the names set or unset (never the values)
    # config set: the names given an empty value (Heroku takes one), said so none is unseen
    emptied: tuple[str, ...] = ()
    unset: bool = False
    # rollback: the current release (a rollback itself) that going back to `after` undoes
    undoes: str | None = None
    note: str | None = None  # e.g. that its `--force` passed no freeze


@dataclass(frozen=True)
class Deployed:
    """A deployment change done: a rollback, maintenance on or off, config set or unset,
    a lock taken or released."""

    app: str
    verb: str
    user_id: str
    before: Release | None = None
    after: Release | None = None
    mode: str | None = None  # maintenance: on/off; config: set/unset; lock: the reason
    keys: tuple[str, ...] = ()
    emptied: tuple[str, ...] = ()  # config set: the names given an empty value
    confirmed_by: str | None = None
    audit_id: int | None = None
    slow: bool = False  # Beanstalk: the update takes minutes, follow it up in a thread
    break_glass: BreakGlass | None = None
    build_id: str | None = None  # ship on Heroku: the build the thread follows
    release_id: str | None = None  # rollback on Heroku: a release in its release phase
    promotions: tuple[Promotion, ...] = ()  # promote: each downstream app's result
    promotion_id: str | None = None  # promote on Heroku: a pending promotion the thread follows
    note: str | None = None  # rollback, config: how a lost answer was read back (Slack text)
    replaced: str | None = None  # lock: the reason the holder's own earlier lock had
    platform: str | None = None  # lock: the app's, so it names only what it holds back there


@dataclass(frozen=True)
class Logs:
    """The last log lines of an app (or one dyno), secrets already masked."""

    app: str
    dyno: str | None
    lines: tuple[str, ...]
    asked: int  # how many lines were asked for: more than a message holds are cut
    platform: str
    name: str  # the app's name on its platform, for the platform's own tools
    # Beanstalk, no instance named: `dyno` is the one the bot showed, `others` those that
    # also sent a tail (to name next).
    picked: bool = False
    others: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConfigVars:
    app: str
    values: tuple[tuple[str, str], ...]
    masked: bool  # the asker may not see values: names only
    platform: str = "heroku"
    name: str = ""  # the app's name on its platform, which its own tools take
    own: frozenset[str] = frozenset()  # keys holding the bot's own credentials: hidden always


Result = (
    Reply
    | Changed
    | Restarted
    | Status
    | NeedsConfirmation
    | AppList
    | History
    | Metrics
    | Duplicate
    | Releases
    | Builds
    | DeployPrompt
    | Deployed
    | ConfigVars
    | Logs
    | Chart
    | CostReport
    | About
)


@dataclass(frozen=True)
class Resolved:
    """An alias resolved to its registry entry and the platform client that reaches it."""

    target: Target
    platform: Platform


def expired_text(pending: Pending) -> str:
    """What an expired prompt turns into (on a late click, or when the worker sweeps)."""
    expired = pending.expires_at.strftime("%H:%M UTC")
    return (
        f"<@{pending.user_id}>'s request {code(pending.command)} expired at {expired}, so "
        f"nothing was changed. Run {code('/deploy ' + pending.command)} again if it is still wanted."
    )


def asked_again(
    confirmations: Confirmations,
    user_id: str,
    app: str,
    text: str,
    now: datetime,
    targets: dict[str, Any] | None = None,
) -> Reply | None:
    """Said instead of a second prompt for a change the asker's first still waits on (with
    the same `targets`, when given): both had been live, two buttons for one change, the one
    left over expiring into the history. None when no such prompt waits."""
    asked = confirmations.asked_again(user_id, app, text, now)
    if asked is None or (targets is not None and asked.targets != targets):
        return None
    return Reply(
        f"You already asked for {code(text)} at {moment(asked.created_at or now, now)}, and "
        f"that prompt is open until {moment(asked.expires_at, now)}: press its button, or "
        "Cancel it."
    )


def no_traffic_hint(app: str, drained: bool) -> str:
    """What to do about an app with no stored traffic (`metrics`, `chart`, `simulate`),
    from whether it has a log drain of ours."""
    if drained:
        return "Heroku may not have sent any yet: give it a minute."
    return f"Add a log drain with `/deploy drain {app}` first."
