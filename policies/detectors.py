"""Alert detectors: what the worker's watch tick sees in one app's recent traffic, autoscaler
decisions and Beanstalk health, as `policies.incidents.Event`s.

Level-triggered like the rest of the worker: each function looks at the data as it stands
at `now` and returns an event for every condition that holds right now, every tick it
holds. `policies.incidents.step` folds the repeats into one open incident and resolves it
once the condition has not been seen for `Rules.quiet`. So a detector keeps no state and a
missed or repeated tick changes nothing.

Subjects are fixed words ("H12", "web p95", "web", "Red", ...), never numbers, so the
incident key stays the same while the numbers in the detail change (a health colour that
changes, or the worker types an unread endpoint holds, stay one incident all the same:
`policies.incidents.ONE_AT_A_TIME`, `LISTING`).

Pure: plain frozen dataclasses in, events out; the caller reads the database and the
platforms (`bot.worker.detectors`) and passes `now`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from policies.incidents import Event
from policies.worker_autoscale import unread_cause

MINUTE = timedelta(minutes=1)

# Heroku router codes worth an alert, in words a person recognises. H27 (client request
# interrupted) and H28 (client connection idle) are left out on purpose: the client went
# away (a closed tab, a mobile network), the app did nothing wrong and can do nothing about
# it, so a burst of them is noise. Their 499 status is no 5xx either.
ROUTER_CODES = {
    "H10": "app crashed",
    "H12": "request timeout",
    "H13": "connection closed without response",
}
# Client-side codes: never an alert, even where a caller's rules list them.
CLIENT_CODES = frozenset({"H27", "H28"})
# Heroku's maintenance page (`at=info code=H80 ... status=503`): the site taken offline on
# purpose (`/deploy maintenance APP on`), not the app failing, so no 5xx of the app's.
MAINTENANCE_CODES = frozenset({"H80"})

# Beanstalk's colours: Red is down or failing; Yellow degraded; Grey unknown or updating.
HEALTH_SEVERITY = {"Red": "critical", "Yellow": "warning", "Grey": "warning"}
# Grey with status Pending is an operation in progress within its grace period (every
# deploy and every scale of the environment shows it): expected, so no alert. Grey
# Unknown (no data) and Suspended (monitoring stopped) still are.
EXPECTED_GREY = frozenset({"Pending"})


@dataclass(frozen=True)
class Minute:
    """One app's traffic in [start, start + 1 min). A minute nobody requested is simply
    absent: no traffic is never an error."""

    start: datetime  # aligned to a whole minute, UTC
    requests: int = 0
    errors: int = 0  # responses with a 5xx status
    codes: Mapping[str, int] = field(default_factory=dict)  # router error code -> n
    service_p95_ms: float | None = None  # None without timed requests

    @property
    def end(self) -> datetime:
        return self.start + MINUTE


@dataclass(frozen=True)
class ScaleDecision:
    """One autoscaler verdict: the web count it wanted at `at` (after the min/max clamp)."""

    at: datetime
    desired: int


@dataclass(frozen=True)
class Health:
    """A Beanstalk enhanced-health report: `color` Green/Yellow/Red/Grey, `status` Ok,
    Warning, Degraded, Severe, ... and the causes the service gives."""

    color: str | None
    status: str | None = None
    causes: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueueRead:
    """One worker-type autoscaler decision: when, for which type, and the reason it gave
    when the app's job-queue endpoint could not be read (None: it was read)."""

    at: datetime
    process_type: str
    unread: str | None = None


@dataclass(frozen=True)
class AppState:
    """Everything the detectors look at for one app; a field left empty runs no detector."""

    app: str
    minutes: tuple[Minute, ...] = ()
    # End of the newest stored traffic window at any age; None: never any.
    newest_metrics: datetime | None = None
    # Since when metrics are expected (a drain made, autoscaling turned on); None: they
    # are not expected, so their absence is no alert.
    watched_since: datetime | None = None
    decisions: tuple[ScaleDecision, ...] = ()
    autoscale_min: int | None = None
    autoscale_max: int | None = None  # None: autoscaling off
    health: Health | None = None
    queue_reads: tuple[QueueRead, ...] = ()


@dataclass(frozen=True)
class DetectorRules:
    # A minute is judged once it ended this long ago, so late drain flushes are in it.
    settle: timedelta = timedelta(seconds=10)
    router_codes: frozenset[str] = frozenset(ROUTER_CODES)
    router_burst: int = 10  # of one code in one minute
    # Complete minutes searched for a burst: two, so a tick that runs a little late or
    # early never skips a minute (a minute seen twice only folds into the same incident).
    router_minutes: int = 2
    slow_p95_ms: float = 2000.0  # over this (not at it)
    slow_minutes: int = 3  # consecutive minutes
    # The p95 of a handful of requests is just the slowest one: not worth waking anyone.
    slow_min_requests: int = 5
    error_rate: float = 0.05  # share of 5xx, over this (not at it)
    error_min_requests: int = 20  # per minute
    error_minutes: int = 3
    pinned_for: timedelta = timedelta(minutes=10)
    queue_unread_for: timedelta = timedelta(minutes=10)
    # Longer than this between two decisions (or since the newest) and the autoscaler was
    # not running: the pinned run is broken, since nobody knows what it wanted meanwhile.
    decision_gap: timedelta = timedelta(minutes=2)
    stale_after: timedelta = timedelta(minutes=5)


DEFAULT_DETECTOR_RULES = DetectorRules()


def detect(
    state: AppState, now: datetime, rules: DetectorRules = DEFAULT_DETECTOR_RULES
) -> list[Event]:
    """Every detector over one app's state: the events to hand to `Alerts.record`."""
    events: list[Event] = []
    events += router_errors(state.app, state.minutes, now, rules)
    events += slow(state.app, state.minutes, now, rules)
    events += errors(state.app, state.minutes, now, rules)
    if state.autoscale_max is not None:
        events += pinned(
            state.app, state.decisions, state.autoscale_max, now, rules, state.autoscale_min
        )
    events += stale(state.app, state.newest_metrics, state.watched_since, now, rules)
    events += queue_unread(state.app, state.queue_reads, now, rules)
    if state.health is not None:
        events += health(state.app, state.health, now)
    return events


def complete_minutes(
    minutes: Iterable[Minute], now: datetime, rules: DetectorRules = DEFAULT_DETECTOR_RULES
) -> dict[datetime, Minute]:
    """The minutes that ended at least `rules.settle` before `now`, by start."""
    return {m.start: m for m in minutes if m.end + rules.settle <= now}


def newest_complete_start(now: datetime, rules: DetectorRules = DEFAULT_DETECTOR_RULES) -> datetime:
    """Start of the newest minute `complete_minutes` keeps (present in the data or not)."""
    settled = now - rules.settle
    floor = settled.replace(second=0, microsecond=0)
    return floor - MINUTE


def router_errors(
    app: str,
    minutes: Iterable[Minute],
    now: datetime,
    rules: DetectorRules = DEFAULT_DETECTOR_RULES,
) -> list[Event]:
    """One `router_error` event per code seen at least `router_burst` times in one of the
    last `router_minutes` complete minutes; the detail names the worst minute."""
    by_start = complete_minutes(minutes, now, rules)
    newest = newest_complete_start(now, rules)
    worst: dict[str, tuple[int, datetime]] = {}
    for back in range(rules.router_minutes):
        start = newest - back * MINUTE
        minute = by_start.get(start)
        if minute is None:
            continue
        for code, count in minute.codes.items():
            if code in CLIENT_CODES:
                continue
            burst = code in rules.router_codes and count >= rules.router_burst
            if burst and (code not in worst or count > worst[code][0]):
                worst[code] = (count, start)
    events = []
    for code in sorted(worst):
        count, start = worst[code]
        what = ROUTER_CODES.get(code, "router error")
        events.append(
            Event(
                app,
                "router_error",
                code,
                now,
                f"{count:,} {code} ({what}) in the minute from {_clock(start)}, "
                f"threshold {rules.router_burst} a minute.",
            )
        )
    return events


def slow(
    app: str,
    minutes: Iterable[Minute],
    now: datetime,
    rules: DetectorRules = DEFAULT_DETECTOR_RULES,
) -> list[Event]:
    """A `slow` event ("web p95") while the p95 service time has been over `slow_p95_ms`
    in each of the last `slow_minutes` complete minutes (a minute without enough requests
    breaks the run)."""

    def over(minute: Minute) -> bool:
        return (
            minute.requests >= rules.slow_min_requests
            and minute.service_p95_ms is not None
            and minute.service_p95_ms > rules.slow_p95_ms
        )

    run = _run(minutes, now, rules, over)
    if len(run) < rules.slow_minutes:
        return []
    latest = run[0].service_p95_ms
    assert latest is not None
    return [
        Event(
            app,
            "slow",
            "web p95",
            now,
            f"p95 service {_seconds(latest)} > {_seconds(rules.slow_p95_ms)}.",
            since=run[-1].start,
        )
    ]


def errors(
    app: str,
    minutes: Iterable[Minute],
    now: datetime,
    rules: DetectorRules = DEFAULT_DETECTOR_RULES,
) -> list[Event]:
    """An `errors` event ("web") while more than `error_rate` of responses were 5xx in
    each of the last `error_minutes` complete minutes, each with `error_min_requests`
    (Heroku's maintenance page, H80, is neither a response of the app's nor a 5xx of it)."""

    def served(minute: Minute) -> tuple[int, int]:
        """The minute's requests and 5xx, the maintenance page's left out of both."""
        page = sum(minute.codes.get(code, 0) for code in MAINTENANCE_CODES)
        return max(minute.requests - page, 0), max(minute.errors - page, 0)

    def over(minute: Minute) -> bool:
        requests, failed = served(minute)
        return requests >= rules.error_min_requests and failed > rules.error_rate * requests

    run = _run(minutes, now, rules, over)
    if len(run) < rules.error_minutes:
        return []
    requests, failed = served(run[0])
    return [
        Event(
            app,
            "errors",
            "web",
            now,
            f"5xx rate {_percent(failed / requests)} ({failed} of {requests}) > "
            f"{_percent(rules.error_rate)}.",
            since=run[-1].start,
        )
    ]


def pinned(
    app: str,
    decisions: Iterable[ScaleDecision],
    maximum: int,
    now: datetime,
    rules: DetectorRules = DEFAULT_DETECTOR_RULES,
    minimum: int | None = None,
) -> list[Event]:
    """A `pinned` event ("web") while every autoscaler decision for `pinned_for` has
    wanted the maximum: traffic wants more than the app is allowed."""
    if minimum is not None and minimum >= maximum:
        return []  # a fixed count: always "at max", and nothing to raise
    run = _held_for(((d.at, d.desired >= maximum) for d in decisions), now, rules)
    if run is None or run[1] - run[0] < rules.pinned_for:
        return []
    return [
        Event(
            app,
            "pinned",
            "web",
            now,
            f"The autoscaler wants its max of {maximum} web.",
            since=run[0],
        )
    ]


def queue_unread(
    app: str,
    reads: Iterable[QueueRead],
    now: datetime,
    rules: DetectorRules = DEFAULT_DETECTOR_RULES,
) -> list[Event]:
    """A `queue_unread` event while every decision of a worker type for `queue_unread_for`
    found the app's job-queue endpoint unreadable: the autoscaler holds the type where it
    is, through a backlog too, and says so only in its status. Types held for the same
    cause (the app's one endpoint unreachable) are one event, their names the subject
    ("mailer, worker"): one cause, one alert."""
    by_type: dict[str, list[QueueRead]] = {}
    for read in reads:
        by_type.setdefault(read.process_type, []).append(read)
    by_cause: dict[str, list[tuple[str, datetime, str]]] = {}
    for ptype, of_type in sorted(by_type.items()):
        run = _held_for(((r.at, r.unread is not None) for r in of_type), now, rules)
        if run is None or run[1] - run[0] < rules.queue_unread_for:
            continue
        newest = max(of_type, key=lambda r: r.at)
        cause, held = unread_cause(newest.unread or "")
        by_cause.setdefault(cause, []).append((ptype, run[0], held))
    events = []
    for cause, held in by_cause.items():
        subject = ", ".join(ptype for ptype, _, _ in held)
        what = "; ".join(what for _, _, what in held if what)
        detail = f"{cause}: {what}." if what else f"{cause}."
        since = min(began for _, began, _ in held)
        events.append(Event(app, "queue_unread", subject, now, detail, since=since))
    return sorted(events, key=lambda e: e.subject)


def _held_for(
    decisions: Iterable[tuple[datetime, bool]], now: datetime, rules: DetectorRules
) -> tuple[datetime, datetime] | None:
    """The first and the last decision of the newest unbroken run for which the condition
    holds (no gap over `decision_gap`); None when the newest does not hold, or is older
    than that gap (the autoscaler stopped, so nobody knows what holds meanwhile). The
    caller's look back bounds the run: the incident keeps when it began."""
    ordered = sorted(decisions, reverse=True)
    if not ordered or now - ordered[0][0] > rules.decision_gap:
        return None
    run_start, later = None, ordered[0][0]
    for at, holds in ordered:
        if not holds or later - at > rules.decision_gap:
            break
        run_start, later = at, at
    return None if run_start is None else (run_start, ordered[0][0])


def stale(
    app: str,
    newest: datetime | None,
    watched_since: datetime | None,
    now: datetime,
    rules: DetectorRules = DEFAULT_DETECTOR_RULES,
) -> list[Event]:
    """A `stale` event ("traffic") when metrics are expected (`watched_since`) and none
    arrived for `stale_after`, counting from the newest window's end or, when there was
    never one since watching began, from `watched_since`."""
    if watched_since is None:
        return []
    since = max(newest, watched_since) if newest is not None else watched_since
    age = now - since
    if age <= rules.stale_after:
        return []
    if newest is None or newest < watched_since:
        detail = f"No traffic window has arrived in the {_minutes(age)} min since it was expected."
    else:
        detail = (
            f"The newest traffic window ended {_minutes(age)} min ago at {_clock(newest)}, "
            f"limit {_minutes(rules.stale_after)} min."
        )
    return [Event(app, "stale", "traffic", now, detail)]


def health(app: str, report: Health, now: datetime) -> list[Event]:
    """A `health` event with the colour as subject while Beanstalk's colour is not Green
    (nor Grey while an operation is pending); the detail carries the status and causes."""
    if report.color is None or report.color == "Green":
        return []
    if report.color == "Grey" and report.status in EXPECTED_GREY:
        return []
    status = f"{report.status} ({report.color})" if report.status else report.color
    causes = "; ".join(c.strip().rstrip(".") for c in report.causes if c.strip())
    count = len([c for c in report.causes if c.strip()])
    detail = (
        f"Health {status}, {count} cause{'s' if count != 1 else ''}: {causes}."
        if causes
        else f"Health {status}, Beanstalk gave no cause."
    )
    return [Event(app, "health", report.color, now, detail, HEALTH_SEVERITY.get(report.color))]


# ---------------------------------------------------------------------------------------------
# Helpers.


def _run(
    minutes: Iterable[Minute],
    now: datetime,
    rules: DetectorRules,
    over: Callable[[Minute], bool],
) -> list[Minute]:
    """The consecutive complete minutes, newest first, ending with the newest complete
    minute, for which `over` holds; a missing minute ends the run."""
    by_start = complete_minutes(minutes, now, rules)
    run: list[Minute] = []
    start = newest_complete_start(now, rules)
    while (minute := by_start.get(start)) is not None and over(minute):
        run.append(minute)
        start -= MINUTE
    return run


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M UTC")


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.3g} s" if ms < 100_000 else f"{ms / 1000:.0f} s"


def _percent(share: float) -> str:
    return f"{share * 100:.3g} %"


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)
