"""Alert noise control: events from detectors and webhooks become incidents and the Slack
notices they deserve, decided on plain data.

An `Event` says one thing happened once ("web.3 crashed at 15:02"); an `Incident` is what
a person wants to hear about ("web dynos of myapp are crash-looping: 50 crashes since
15:02"). Events with the same key (kind, app, subject) fold into one open incident with a
count, so a storm is one message updated in place, not fifty. `step()` also:

- posts at most `Rules.channel_limit` new messages per channel per `channel_window`
  (counting what the caller says was posted recently); incidents beyond that are folded
  into one summary message for the channel and get no message of their own; alerts folded
  later in the same window edit that summary rather than post another;
- resolves an open incident once it has been quiet for `Rules.quiet`, updating its message
  and saying so in its thread (an `info` notice, such as a release, closes silently);
- reopens an alert that comes back within `Rules.comeback` of resolving on its own message,
  edited back and told in its thread, so a flapping check is one thread, not a new message
  with buttons every quarter of an hour;
- honours a silence: a silenced incident keeps counting but notifies nobody.

Pure: the caller passes `now`, the known incidents and the events; nothing reads a clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from policies.slack_text import channel as channel_link
from policies.slack_text import code, escape, listed, one_line

NoticeKind = Literal["post", "update", "reply"]
SUMMARY_PREFIX = "summary:"  # the keys of storm summaries, beside incidents' keys

SEVERITIES = ("info", "warning", "critical")
DETAIL_SHOWN = 300  # characters of an event's detail in its alert
SUMMARY_NAMES_AT_MOST = 2800  # characters of a storm's summary that name alerts
_VERSION_RE = re.compile(r"v\d+")  # a Heroku release, leading a release event's detail

# The default severity of each kind of event; an event may carry its own.
DEFAULT_SEVERITY = {
    "crash": "critical",
    "health": "critical",
    "router_error": "warning",
    "slow": "warning",
    "errors": "warning",
    "pinned": "warning",
    "stale": "warning",
    "queue_unread": "warning",
    "release": "info",
    "release_failed": "critical",
    "formation": "info",
    # A one-off dyno's command failed: the app itself runs on, so a notice, no remedy.
    "one_off_failed": "info",
}

# Kinds that are a condition the worker's detectors find on each check, not one event
# each: their count is of checks, so the message says since when, not how many times.
CONDITIONS = frozenset(
    {"router_error", "slow", "errors", "health", "pinned", "stale", "queue_unread"}
)

# Kinds whose subject lists names, ", "-joined: the worker types one unread job-queue endpoint
# holds (`policies.detectors.queue_unread`). The list grows and shrinks as types reach and
# leave their hold, but it is one cause: an event naming any type of an open incident is
# that incident, its list as the event says now, not a second alert (and the first resolved).
LISTING = frozenset({"queue_unread"})
# Kinds an app has one of at a time, whatever the subject: a Beanstalk environment's health,
# its colour the subject. Yellow then Red is one alert, its message turned Red (and said
# in its thread and the channel, as it got worse), not a second one beside a Yellow one
# that later said "Resolved" while the environment was down.
ONE_AT_A_TIME = frozenset({"health"})

_ICONS = {"info": ":information_source:", "warning": ":warning:", "critical": ":red_circle:"}


@dataclass(frozen=True)
class Event:
    """One observation: `subject` narrows `kind`, e.g. a process type or a router code."""

    app: str
    kind: str
    subject: str
    at: datetime
    detail: str = ""
    severity: str | None = None
    # A condition's: when it began, as far back as the detector looked (before `at`, the
    # check that found it held long enough). The incident's "since" starts there, not ten
    # minutes later, and keeps the earliest across the detector's limited look back.
    since: datetime | None = None

    @property
    def key(self) -> str:
        return incident_key(self.kind, self.app, self.subject)


@dataclass(frozen=True)
class Incident:
    key: str
    app: str
    kind: str
    subject: str
    severity: str
    state: Literal["open", "resolved"]
    detail: str
    first_at: datetime
    last_at: datetime
    count: int
    channel: str | None = None
    folded: bool = False  # announced only in a channel summary, so it has no message
    silenced_until: datetime | None = None
    # Its message of this opening is posted or queued. False for one opened under a silence
    # (or whose post Slack refused): when it is next heard, it posts, rather than edit the
    # message of an earlier opening, resolved long ago and far up the channel.
    posted: bool = True

    def silenced(self, now: datetime) -> bool:
        return self.silenced_until is not None and now < self.silenced_until


@dataclass(frozen=True)
class Rules:
    quiet: timedelta = timedelta(minutes=10)  # no event for this long: resolved
    # Back this soon after it resolved: the same alert again, on its own message.
    comeback: timedelta = timedelta(minutes=30)
    channel_limit: int = 5  # new messages per channel per window
    channel_window: timedelta = timedelta(minutes=1)


@dataclass(frozen=True)
class Notice:
    """A Slack message owed: `key` is the incident's (or a summary's), so the outbox keeps
    one incident's notices in order and finds the message to update or reply under."""

    key: str
    channel: str
    kind: NoticeKind
    text: str
    names: tuple[str, ...] = ()  # a summary's: the keys of the incidents it names
    # A thread reply shown in the channel too (Slack's `reply_broadcast`), which notifies it.
    broadcast: bool = False


@dataclass(frozen=True)
class Summarised:
    """A channel's storm summary posted within the window: later folds edit it."""

    key: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class Step:
    incidents: tuple[Incident, ...]  # new or changed, to store
    notices: tuple[Notice, ...]  # in the order they should be sent
    # Resolved incidents reopened on their earlier message (`Rules.comeback`): a reopening
    # that keeps the message, where any other gets a new one.
    comebacks: tuple[str, ...] = ()


DEFAULT_RULES = Rules()


def incident_key(kind: str, app: str, subject: str) -> str:
    return f"{kind}:{app}:{subject}"


def key_subject(key: str, kind: str, app: str) -> str:
    """The subject of the incident `incident_key(kind, app, subject)` named."""
    return key.removeprefix(f"{kind}:{app}:")


def step(
    known: Mapping[str, Incident],
    events: Iterable[Event],
    now: datetime,
    channel_of: Callable[[str], str | None],
    recent_posts: Mapping[str, int] | None = None,
    rules: Rules = DEFAULT_RULES,
    summaries: Mapping[str, Summarised] | None = None,
    unobserved: Collection[tuple[str, str]] = (),
) -> Step:
    """Fold `events` into the incidents and decide the notices.

    `known` holds every open incident and any resolved one an event names (a new event
    reopens it, keeping its silence); `channel_of(app)` is the app's home channel or None
    (the incident is kept but nobody is told); `recent_posts` counts, per channel, the new
    messages posted within `rules.channel_window` before `now`; `summaries` the channels'
    storm summaries posted within it. Heroku's webhooks come one crash per request, each a
    step of its own: each fold past the limit had posted a summary of one alert, so a
    storm of twenty crashes was twenty messages; it now edits the window's one summary.
    `unobserved` holds the (app, kind) pairs the caller could not look at this time (a
    Beanstalk environment whose health could not be read): their open incidents do not
    resolve, since silence from them is no news that the trouble is over.
    """
    current = dict(known)
    changed: dict[str, Incident] = {}
    # Alerts whose channel is no longer the app's home (taken out of the registry, or given
    # another channel): nobody watches them there, so no quiet would mean it is over. They
    # close now, saying so, and the app's next event opens afresh in its new home.
    moved: dict[str, str | None] = {}  # their keys → where the app's alerts go now
    for key, incident in known.items():
        if incident.state == "open" and incident.channel is not None:
            home = channel_of(incident.app)
            if home != incident.channel:
                moved[key] = home
                current[key] = changed[key] = replace(incident, state="resolved")
    # Keys in the order first seen, as dicts: lists looked up per event were quadratic in
    # a storm across a fleet.
    opened: dict[str, None] = {}
    grown: dict[str, None] = {}
    comebacks: dict[str, None] = {}
    claimed: dict[str, str] = {}  # listing incidents' keys: the subject that took each
    worsened: set[str] = set()  # open incidents whose severity rose in this step
    # The open incidents an event of another subject may belong to, by app and kind: looked
    # up per event, a scan of them all was quadratic across a fleet's health alerts.
    shared: dict[tuple[str, str], list[str]] = {}
    for incident in current.values():
        if incident.state == "open" and incident.kind in LISTING | ONE_AT_A_TIME:
            shared.setdefault((incident.app, incident.kind), []).append(incident.key)
    for event in sorted(events, key=lambda e: e.at):
        key = _home(event, [current[k] for k in shared.get((event.app, event.kind), ())], claimed)
        before = current.get(key)
        if before is not None and before.state == "open":
            # A late delivery of an older event (Heroku retries for days, in any order) is
            # counted, but the message keeps saying what came last: "Last: `v7`" had
            # followed v8's notice.
            newest = event.at >= before.last_at
            after = replace(
                before,
                subject=event.subject if newest else before.subject,
                count=before.count + 1,
                first_at=min(before.first_at, _began(event)),
                last_at=max(before.last_at, event.at),
                detail=(event.detail or before.detail) if newest else before.detail,
                severity=_worse(before.severity, _severity(event)),
            )
            if key not in opened and key not in grown:
                grown[key] = None
            if key not in opened and _rank(after.severity) > _rank(before.severity):
                worsened.add(key)
        elif before is not None and _covered(before, event, now, rules):
            # A late delivery (Heroku retries for days) of an event from before the incident
            # resolved, and past its own quiet period too: counted, not a fresh alert that
            # the next tick would resolve again.
            after = replace(before, count=before.count + 1, last_at=max(before.last_at, event.at))
        else:
            # Past its quiet period already when it comes (Heroku retries a delivery for
            # days): reported once, as late and over, not opened with a Restart button and
            # resolved by the next tick ("no new event for 1201 min").
            late = now - event.at >= rules.quiet
            home = channel_of(event.app)
            back = not late and before is not None and _comes_back(before, event, home, now, rules)
            after = Incident(
                key=key,
                app=event.app,
                kind=event.kind,
                subject=event.subject,
                severity=_severity(event),
                state="resolved" if late else "open",
                detail=event.detail,
                first_at=_began(event),
                last_at=event.at,
                count=1,
                channel=home,
                # A silence still in force holds across the reopening; an ended one is done.
                silenced_until=before.silenced_until if before and before.silenced(now) else None,
                posted=back,
            )
            opened[key] = None
            grown.pop(key, None)
            if back:
                comebacks[key] = None
            if after.state == "open" and after.kind in LISTING | ONE_AT_A_TIME:
                shared.setdefault((after.app, after.kind), []).append(key)
        current[key] = changed[key] = after

    # An incident an event touched in this step is not quiet, however old the event.
    touched = set(opened) | set(grown)
    resolved = [
        key
        for key, incident in current.items()
        if incident.state == "open"
        and key not in touched
        and now - incident.last_at >= rules.quiet
        and (incident.app, incident.kind) not in unobserved
    ]
    for key in resolved:
        current[key] = changed[key] = replace(current[key], state="resolved")

    notices: list[Notice] = []
    posted = dict(recent_posts or {})
    for key, home in moved.items():
        incident = known[key]  # as it stood: an event of this step may have reopened it
        if incident.severity == "info" or incident.folded or not incident.posted:
            continue
        assert incident.channel is not None
        notices.append(Notice(key, incident.channel, "update", closed(incident)))
        if _audible(incident, now):
            notices.append(Notice(key, incident.channel, "reply", moved_away(incident.app, home)))
    folded: dict[str, list[Incident]] = {}
    for key in opened:
        incident = current[key]
        if not _audible(incident, now):
            continue
        channel = incident.channel
        assert channel is not None
        if key in comebacks:
            # An edit and a thread reply, no new message, so the channel's limit is not
            # spent; said in the channel only when it came back worse than it went.
            worse = _rank(incident.severity) > _rank(known[key].severity)
            notices.append(Notice(key, channel, "update", describe(incident)))
            notices.append(
                Notice(key, channel, "reply", came_back(incident, known[key]), broadcast=worse)
            )
            continue
        if posted.get(channel, 0) >= rules.channel_limit:
            incident = current[key] = changed[key] = replace(incident, folded=True)
            folded.setdefault(channel, []).append(incident)
            continue
        posted[channel] = posted.get(channel, 0) + 1
        current[key] = changed[key] = replace(incident, posted=True)
        text = describe(incident) if incident.state == "open" else late_report(incident, now)
        notices.append(Notice(key, channel, "post", text))
    for channel, incidents in folded.items():
        earlier = (summaries or {}).get(channel)
        if earlier is None:
            key, edit = f"{SUMMARY_PREFIX}{channel}:{now.isoformat()}", False
        else:
            key, edit = earlier.key, True
            fresh = {incident.key for incident in incidents}
            incidents = [
                current[k] for k in earlier.names if k in current and k not in fresh
            ] + incidents
        names = tuple(incident.key for incident in incidents)
        notices.append(
            Notice(key, channel, "update" if edit else "post", summary(incidents), names)
        )
    for key in grown:
        incident = current[key]
        if _audible(incident, now) and not incident.folded and incident.channel:
            # Heard for the first time since it opened under a silence: a message of its own
            # (one incident, so no summary fold: its count is what the channel missed).
            kind: NoticeKind = "update" if incident.posted else "post"
            ended = incident.silenced_until  # audible, so any silence it had is over
            current[key] = changed[key] = replace(incident, posted=True, silenced_until=None)
            notices.append(Notice(key, incident.channel, kind, describe(incident)))
            if incident.posted and ended is not None:
                # Still going when its silence ended: an edit of its message notifies
                # nobody, so the channel is told once, in its thread and in the channel.
                text = f"{describe(incident)}\nThe silence ended at {_clock(ended)} and this is still happening."
                notices.append(Notice(key, incident.channel, "reply", text, broadcast=True))
            elif incident.posted and key in worsened:
                # Worse than its message said (Yellow to Red): an edit notifies nobody.
                text = f"{describe(incident)}\nIt got worse since this alert was posted."
                notices.append(Notice(key, incident.channel, "reply", text, broadcast=True))
    for key in resolved:
        incident = current[key]
        # A notice (a release) was never a problem: it ends without a "resolved" message;
        # nor does an alert that never got a message (it opened, and ended, silenced).
        if incident.severity == "info" or incident.folded or not incident.posted:
            continue
        if incident.channel and _audible(incident, now):
            notices.append(Notice(key, incident.channel, "update", describe(incident)))
            notices.append(Notice(key, incident.channel, "reply", resolution(incident, now)))
        elif incident.channel:
            # Silenced: its message still reads "Resolved" and loses its buttons (an edit
            # notifies nobody), but nothing is said in its thread.
            notices.append(Notice(key, incident.channel, "update", describe(incident)))
    return Step(tuple(changed.values()), tuple(notices), tuple(comebacks))


def _comes_back(
    resolved: Incident, event: Event, home: str | None, now: datetime, rules: Rules
) -> bool:
    """Whether `event` reopens `resolved` on its own message: an alert (not a notice, which
    is news each time) whose message was posted in `home`, the channel its app's alerts go
    to now, coming back within `rules.comeback` of its resolution. Not under a silence: it
    is heard an hour on, when its message is far up the channel, so it posts then."""
    return (
        resolved.state == "resolved"
        and not resolved.silenced(now)
        and resolved.posted
        and resolved.channel == home
        and home is not None
        and not resolved.folded
        and "info" not in (resolved.severity, _severity(event))
        and event.at < resolved.last_at + rules.quiet + rules.comeback
    )


def silence(incident: Incident, until: datetime) -> Incident:
    """The Silence button: it keeps counting, and nobody is told until `until`."""
    return replace(incident, silenced_until=until)


def describe(incident: Incident) -> str:
    """The incident's message text, as it stands: posted first, then updated in place."""
    what = _what(incident)
    since = _clock(incident.first_at)
    condition = incident.kind in CONDITIONS
    if incident.state == "resolved":
        return f":white_check_mark: Resolved: *{escape(incident.app)}* {what} {_when(incident)}."
    mark = icon(incident.severity)
    if condition:
        # How long, counted from when it began to its latest check: the detectors look back
        # a quarter of an hour only, so their own "for N min" stopped there.
        lasted = int((incident.last_at - incident.first_at).total_seconds() // 60)
        count = f" since {since}" + (f" ({_span(lasted)})" if lasted >= 1 else "")
    else:
        count = f" {incident.count} times since {since}" if incident.count > 1 else f" at {since}"
    detail = f" Last: {_detail(incident)}" if incident.detail else ""
    if incident.kind == "release_failed":
        # Heroku never puts a failed release live: rolling back would undo the good one.
        detail += (
            f" {code(incident.app)} still runs its last good release, since a failed release "
            f"never goes live: {code('/deploy releases ' + incident.app)} shows which."
        )
    return f"{mark} *{escape(incident.app)}* {what}{count}.{detail}"


def icon(severity: str) -> str:
    """The emoji an alert of `severity` leads with."""
    return _ICONS.get(severity, _ICONS["warning"])


def _detail(incident: Incident) -> str:
    """The detail as shown. Details carry outside words (release descriptions, who deployed):
    shown as typed, and clipped, since Slack refuses a message past its limits and the alert
    would be lost. A release's version leads its detail as plain text (escaping would turn a
    backtick into its look-alike), and is put in code here, as every other reply names one."""
    version, space, rest = incident.detail.partition(" ")
    if incident.kind in ("release", "release_failed") and _VERSION_RE.fullmatch(version):
        return f"{code(version)}{space}{escape(one_line(rest, DETAIL_SHOWN))}"
    return escape(one_line(incident.detail, DETAIL_SHOWN))


def late_report(incident: Incident, now: datetime) -> str:
    """The one message of an event that came past its quiet period: when it happened,
    with the day when that was not today, and how late it came."""
    when = incident.first_at
    day = "" if when.date() == now.date() else f" on {when.strftime('%a %d %b')}"
    age = _span(int((now - when).total_seconds() // 60))
    return (
        f":hourglass: Reported late: *{escape(incident.app)}* {_what(incident)} at "
        f"{_clock(when)}{day}, delivered {age} after. Nothing newer has come: "
        f"{code('/deploy status ' + incident.app)} shows how it runs now."
    )


def closed(incident: Incident) -> str:
    """The message of an alert closed because its app's alerts no longer come to its
    channel: what it was, and not "Resolved", since nobody saw it end."""
    return (
        f":heavy_minus_sign: Closed: *{escape(incident.app)}* {_what(incident)} "
        f"{_when(incident)}. Alerts about it no longer come to this channel."
    )


def _when(incident: Incident) -> str:
    """How often and when an ended incident happened: "3 times between 07:10 UTC and 07:20
    UTC"; a condition is not counted, as it is seen on every check."""
    times = (
        f"{incident.count} times " if incident.count > 1 and incident.kind not in CONDITIONS else ""
    )
    since, until = _clock(incident.first_at), _clock(incident.last_at)
    # Seen within one minute: "between 07:10 UTC and 07:10 UTC" had read as a slip.
    return times + (f"at {since}" if until == since else f"between {since} and {until}")


def moved_away(app: str, home: str | None) -> str:
    """The thread reply of `closed`: why, and where the app's alerts go now."""
    there = f" Its alerts go to {channel_link(home)} now." if home else ""
    return (
        "Closed without knowing how it ended: the registry no longer lists "
        f"{code(app)} with this channel for alerts, so the bot stopped following it here.{there}"
    )


def came_back(incident: Incident, resolved: Incident) -> str:
    """The thread reply of an alert reopened on its message: when, and how long after."""
    # A condition's "since" reaches back as far as its detector looked, maybe into the
    # quiet that resolved it: back no earlier than that quiet began.
    back = max(incident.first_at, resolved.last_at)
    gap = int((back - resolved.last_at).total_seconds() // 60)
    return (
        f"Back at {_clock(back)}, {_span(gap)} after its last event "
        "before it resolved: this alert is open again."
    )


def resolution(incident: Incident, now: datetime) -> str:
    quiet = int((now - incident.last_at).total_seconds() // 60)
    return f"Resolved: no new event for {quiet} min (last at {_clock(incident.last_at)})."


def summary(incidents: list[Incident]) -> str:
    """One message for a storm's folded alerts. It names them while they fit one Slack
    section (3,000 characters) and counts the rest: past that, Slack refused the whole
    message and nobody was told of any."""
    alerts = "alert" if len(incidents) == 1 else "alerts"
    head = f":rotating_light: {len(incidents)} more {alerts} in this channel just now: "
    items: list[str] = []
    used = len(head)
    for incident in incidents:
        item = f"*{escape(incident.app)}* {_what(incident)}"
        if used + len(item) + 2 > SUMMARY_NAMES_AT_MOST:
            rest = len(incidents) - len(items)
            return f"{head}{', '.join(items)} and {rest} more: `/deploy alerts` lists them all."
        items.append(item)
        used += len(item) + 2
    return f"{head}{', '.join(items)}."


def _what(incident: Incident) -> str:
    return headline(incident.kind, incident.subject)


def headline(kind: str, subject: str) -> str:
    """What went wrong, in words (Slack text): "`web` dynos crashed", "router errors `H12`"."""
    if kind == "queue_unread":
        # The worker types one unread endpoint holds (`policies.detectors.queue_unread`).
        return f"job queue unread for {listed(subject.split(', '))}"
    subject = code(subject)
    phrases = {
        "crash": f"{subject} dynos crashed",
        "router_error": f"router errors {subject}",
        "slow": f"slow responses on {subject}",
        "errors": f"5xx responses on {subject}",
        "health": f"health turned {subject}",
        "pinned": f"autoscaler pinned at max for {subject}",
        "stale": f"metrics stale for {subject}",
        "release": "released",
        "release_failed": "release failed",
        "one_off_failed": f"one-off {subject} dyno failed",
    }
    return phrases.get(kind, f"{kind.replace('_', ' ')} {subject}")


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M UTC")


def _span(minutes: int) -> str:
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def _home(event: Event, candidates: Iterable[Incident], claimed: dict[str, str]) -> str:
    """The key of the incident `event` belongs to: its own, or for a kind in `LISTING`, the
    open incident of its app and kind that names one of its names (unless an event of
    another list took it this step: causes that split are alerts of their own), and for a
    kind in `ONE_AT_A_TIME`, the open incident of its app and kind. `candidates`: the open
    incidents of its app and kind."""
    if event.kind not in LISTING | ONE_AT_A_TIME:
        return event.key
    names = set(event.subject.split(", "))
    homes = [
        incident
        for incident in candidates
        if incident.state == "open"
        and (incident.app, incident.kind) == (event.app, event.kind)
        and (event.kind in ONE_AT_A_TIME or names & set(incident.subject.split(", ")))
        and claimed.get(incident.key, event.subject) == event.subject
    ]
    # Its own key first, then the oldest: a key never changes while its message stands.
    oldest = min(homes, key=lambda incident: (incident.first_at, incident.key), default=None)
    own = any(incident.key == event.key for incident in homes)
    key = event.key if own or oldest is None else oldest.key
    claimed[key] = event.subject
    return key


def _began(event: Event) -> datetime:
    return min(event.at, event.since) if event.since is not None else event.at


def _covered(resolved: Incident, event: Event, now: datetime, rules: Rules) -> bool:
    """Whether `event` belongs to the resolved incident's time, and would have ended by `now`
    had it come in time: it falls within the quiet period after the incident's last event,
    and is itself at least that quiet period old."""
    return event.at < resolved.last_at + rules.quiet and now - event.at >= rules.quiet


def _audible(incident: Incident, now: datetime) -> bool:
    return incident.channel is not None and not incident.silenced(now)


def _severity(event: Event) -> str:
    return event.severity or DEFAULT_SEVERITY.get(event.kind, "warning")


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 1


def _worse(a: str, b: str) -> str:
    return a if _rank(a) >= _rank(b) else b
