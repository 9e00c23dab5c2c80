"""Autoscaling arithmetic: from settings, recent metrics and history to one desired dyno count.

This is the calculator half of Kubernetes' HPA split (`replica_calculator.go` against
`horizontal.go`): the worker fetches metrics and history, `decide` works out what *should*
be, and the worker acts only when that differs from what is. The core rule is the HPA's,
desired = ceil(current * metric / target), with no change while the metric is within the
tolerance band; with several targets the largest answer wins, as in the HPA. A request
rate is read twice, from the newest sample and averaged over `smoothing`, and the larger
answer wins too: a rise counts at once, a fall once it has lasted. Around it:

- scale up at once, but by at most +100 % or +4 dynos (whichever is larger) per tick, and
  not a second time until the dynos of the last scale-up are up or `boot_cooldown` passed;
  a rate reading that more than doubles what runs takes that whole step at once (the
  first reading after a step understates the new level);
- scale down only to the highest recommendation of the last `down_stabilization`, by at
  most -1 dyno or -10 % (whichever is larger) per tick, and never within `deploy_guard`
  of a release, nor on missing or stale metrics (which set `Decision.stale`); with the
  adaptive window, a fall of the rate beyond `_LEVEL_SIGMAS` deviations of its own
  measured noise (`fell_beyond_noise`) is a new level, taken at once;
- with the adaptive window (the default) and a rate target, never fewer dynos than carry
  the rate's level (the mean of the minutes since it last stepped, `rate_level`) plus 2
  deviations of how far the next minute may lie from it within the band (`headroom`), up
  and down: a count sized for the mean sits at the SLO's edge whenever the rate wobbles
  up, and the scale-up then comes a drain lag and a boot too late. While this allowance
  is in force, the scale-down hold is the shortest (a minute): the allowance is the room
  for the wobbles that a longer hold waited out;
- with a latency target, scale down only from a count seen to carry the current rate
  within the target, one step at a time, and never to a count seen to break it at about
  this rate per dyno (`carried`): an over-provisioned app queues ~0 ms, so the HPA rule
  asks for the minimum at every tick and would walk down until queueing came back;
- schedule windows replace min and max at certain times of the week; a pin from Slack
  replaces the whole calculation until it expires;
- optionally (`predictive`), a seasonal forecast: how traffic moved from this time to
  `forecast_lead` later, yesterday and a week ago, applied to today's traffic, so that
  dynos are asked for one boot time before a rise that happens every day. It is dropped
  while it has recently predicted worse than "no change" (`forecast_skill`), so traffic
  without a daily rhythm is left to the reactive rule.

Shadow mode is the caller's business: it decides the same way and does not act. Pure: the
caller passes `now` (timezone-aware) and every sample and event; nothing here reads a clock.
"""

from __future__ import annotations

import itertools
import math
import re
import statistics
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal

from policies.guardrails import within_max_step
from policies.slack_text import code, shown

MetricName = Literal["queue_p95", "service_p95", "rpm_per_dyno"]
METRICS: tuple[MetricName, ...] = ("queue_p95", "service_p95", "rpm_per_dyno")

# A ratio this close to a whole number of dynos is that number: float noise in
# current × metric / target must not cost a dyno.
_EPSILON = 1e-9
# A sample's p95s cover the minute before `Sample.at`; its middle is this much earlier.
_SAMPLE_HALF_WINDOW = timedelta(seconds=30)
_SEASONAL_LAGS_MIN = (24 * 60, 7 * 24 * 60)  # a day and a week, in minutes
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# An IANA zone's shape (`America/Argentina/Buenos_Aires` is the longest kind). Checked before
# zoneinfo sees it: zoneinfo imports a package per `/`, so a few hundred of them had ended in
# a RecursionError where a user should read "unknown timezone".
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+){0,2}")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NUMBERS = {name.lower(): i for i, name in enumerate(_DAY_NAMES)} | {
    name: i for i, name in enumerate(_FULL_DAY_NAMES)
}


@dataclass(frozen=True)
class Target:
    """What to keep the metric at: milliseconds for the p95s, requests per dyno per minute
    for `rpm_per_dyno`."""

    metric: MetricName
    value: float


@dataclass(frozen=True)
class Window:
    """A schedule window: at these days and wall-clock times, min and/or max change."""

    days: frozenset[int]  # 0 = Monday … 6 = Sunday, as datetime.weekday()
    start: time  # wall clock in `timezone`; end <= start runs past midnight
    end: time
    timezone: str  # IANA name, e.g. "Europe/Paris"
    min: int | None = None
    max: int | None = None

    def covers(self, now: datetime) -> bool:
        local = now.astimezone(zoneinfo.ZoneInfo(self.timezone))
        clock, day = local.time().replace(tzinfo=None), local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= clock < self.end
        # Past midnight: the window belongs to the day it opened on.
        return (day in self.days and clock >= self.start) or (
            (day - 1) % 7 in self.days and clock < self.end
        )

    def describe(self) -> str:
        """For people: weekday runs and times joined by en dashes, "daily" for every day;
        a window from 00:00 to 00:00 is all day, one from 09:00 to 09:00 ends "the next day",
        and one running to midnight ends at 24:00, as it may be written."""
        end = "24:00" if self.end == time(0) and self.start != time(0) else f"{self.end:%H:%M}"
        if self.start == self.end != time(0):
            # "09:00–09:00" read as no time at all; it is a whole day from 09:00.
            end += " the next day"
        return f"{_describe_days(self.days)} {self.start:%H:%M}–{end} {self.timezone}"


def _describe_days(days: frozenset[int]) -> str:
    if len(days) == 7:
        return "daily"
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(
        f"{_DAY_NAMES[run[0]]}–{_DAY_NAMES[run[-1]]}"
        if len(run) >= 3
        else ",".join(_DAY_NAMES[d] for d in run)
        for run in runs
    )


def parse_window(
    days: str,
    start: str,
    end: str,
    timezone: str = "UTC",
    low: int | None = None,
    high: int | None = None,
) -> Window:
    """A schedule window from the registry's words: `days` such as "mon-fri", "sat,sun" or
    "daily", `start` and `end` as "08:00" (an end at or before the start runs past
    midnight; an end of "24:00" is that midnight), an IANA `timezone`, and the `low` (min) and `high` (max) it sets. A
    ValueError says which word is wrong, as Slack text: what was typed in escaped code spans."""
    if low is None and high is None:
        raise ValueError("a schedule window needs `min:`, `max:` or both")
    if low is not None and high is not None and low > high:
        raise ValueError(f"a schedule window's min ({low}) is more than its max ({high})")
    # Read in the order typed, so the first wrong word is the one named.
    on = _days(days)
    # "18:00-24:00": an end may be written as the midnight it runs to.
    if start.strip() == "24:00":
        raise ValueError("time `24:00` may end a window, not start it: start it at `00:00`")
    begins = _clock(start)
    ends = _clock("00:00") if end.strip() == "24:00" else _clock(end)
    try:
        if len(timezone) > 64 or not _ZONE_NAME.fullmatch(timezone):
            raise ValueError
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        # Zone names are case-sensitive; `europe/paris` means one, named back.
        meant = [z for z in zoneinfo.available_timezones() if z.lower() == timezone.lower()]
        hint = (
            f"did you mean {code(meant[0])}?"
            if meant
            else "use an IANA name such as `Europe/Paris`"
        )
        raise ValueError(f"unknown timezone {shown(timezone)}; {hint}") from None
    return Window(on, begins, ends, timezone, low, high)


def _days(text: str) -> frozenset[int]:
    if text.strip().lower() in ("daily", "every day", "*"):
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        a, b = _DAY_NUMBERS.get(first), _DAY_NUMBERS.get(last if dash else first)
        if a is None or b is None:
            raise ValueError(
                f"days {shown(text)}: use `mon`, `tue`, … `sun`, ranges (`mon-fri`) or `daily`"
            )
        # A range may wrap around the week: fri-mon is Friday to Monday.
        days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return frozenset(days)


def _clock(text: str) -> time:
    try:
        hours, minutes = text.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"time {shown(text)}: use 24-hour HH:MM, such as `08:00`") from None


@dataclass(frozen=True)
class Pin:
    """`/deploy pin APP web=5 for 2h`: hold this count until `until`."""

    count: int
    until: datetime
    by: str = ""  # who pinned it, for the reason


def pin_end(until: datetime, now: datetime) -> str:
    """When a pin (of up to 7 days) ends, in UTC: its time of day when that is today, its date
    too when not ("until 05:37 UTC" read as minutes from now for a pin a week long)."""
    return f"{until:%H:%M} UTC" if until.date() == now.date() else f"{until:%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True)
class Settings:
    targets: tuple[Target, ...] = (Target("queue_p95", 300.0),)
    tolerance: float = 0.10  # no change while |metric / target − 1| <= this
    min_dynos: int = 1
    max_dynos: int = 10
    up_max_percent: float = 100.0  # one tick adds at most the larger of these two
    up_max_dynos: int = 4
    down_max_percent: float = 10.0  # one tick removes at most the larger of these two
    down_max_dynos: int = 1
    # None: adaptive (`stabilization`), from 1 minute on steady traffic up to
    # `down_stabilization_max` as the recent request rate grows volatile.
    down_stabilization: timedelta | None = None
    down_stabilization_max: timedelta = timedelta(minutes=5)
    boot_cooldown: timedelta = timedelta(seconds=60)
    stale_after: timedelta = timedelta(minutes=2)  # the newest sample must be younger
    deploy_guard: timedelta = timedelta(minutes=10)  # no scale-down this long after a release
    smoothing: timedelta = timedelta(minutes=1)  # a rate is also read averaged over this
    windows: tuple[Window, ...] = ()  # the first one that covers `now` applies
    predictive: bool = False
    forecast_lead: timedelta = timedelta(minutes=2)  # a boot and a tick; whole minutes
    forecast_weight: float = 1.0  # 0: reactive only; 1: trust the forecast fully
    forecast_max_growth: float = 3.0  # a forecast never asks for more than this × today
    forecast_min_skill: float = -0.1  # unused once it errs 10 % more than "no change"
    forecast_skill_window: timedelta = timedelta(hours=3)
    process_type: str = "web"
    # The registry's `guardrails: max_step`: no tick moves further, whatever asks (a pin, a
    # schedule window's min, a fall), since the scale it asks for would be refused whole.
    max_step: int | None = None


@dataclass(frozen=True, slots=True)  # slots: the worker keeps a fleet's half hour of them
class Sample:
    """The app's metrics at `at`, as the drain aggregates them (one a tick is plenty)."""

    at: datetime
    rpm: float  # request rate per minute over the newest drain windows (10-60 s), all dynos
    queue_p95_ms: float | None = None  # over the last minute; None: no request in it
    service_p95_ms: float | None = None
    dynos: int | None = None  # web dynos up at `at`, when known


@dataclass(frozen=True)
class Recommendation:
    """What `decide` recommended at `at` (`Decision.recommendation`); keep 5 minutes."""

    at: datetime
    count: int


@dataclass(frozen=True)
class ScaleEvent:
    """A change of the web formation, by the autoscaler or by a person."""

    at: datetime
    before: int
    after: int


@dataclass(frozen=True)
class Forecast:
    """The seasonal forecast at one tick, from `seasonal_forecast`."""

    growth: float  # traffic `forecast_lead` from now over traffic now, as a day and a week ago
    skill: float  # 1 - its error / the error of "no change", over the recent past; 1 is perfect
    # The requests of the last whole minute, which `growth` starts from (`forecast_base`);
    # None: unknown, and the growth is applied to the newest sample's rate instead.
    base_rpm: float | None = None


@dataclass(frozen=True)
class Decision:
    current: int
    desired: int
    reason: str  # one sentence for the channel, e.g. "p95 queue 480 ms > 300 ms … → web 3→5"
    recommendation: int  # store as Recommendation(now, recommendation) for later ticks
    stale: bool = False  # metrics missing or old: raise the "metrics stale" alert
    bounds: tuple[int, int] = (0, 0)  # the min and max that applied
    forecast_rpm: float | None = None  # the seasonal forecast, when predictive and known

    @property
    def changed(self) -> bool:
        return self.desired != self.current


def decide(
    settings: Settings,
    current: int,
    samples: Sequence[Sample],
    now: datetime,
    *,
    recommendations: Sequence[Recommendation] = (),
    events: Sequence[ScaleEvent] = (),
    booting: int | None = None,
    forecast: Forecast | None = None,
    pin: Pin | None = None,
    last_release_at: datetime | None = None,
) -> Decision:
    """The desired web dyno count at `now`.

    `samples` are the recent ones, oldest first (the last 5 minutes are plenty); `current`
    is the formation's quantity; `recommendations` the earlier `Decision.recommendation`s
    with their times; `events` the recent formation changes; `booting` how many web dynos
    are not up yet (None: unknown); `forecast` is `seasonal_forecast`'s, when predictive.
    """
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware (UTC).")
    ptype = settings.process_type
    lo, hi, window = bounds(settings, now)

    if pin is not None and pin.until > now:
        count = min(max(pin.count, settings.min_dynos), settings.max_dynos)
        who = f" by {pin.by}" if pin.by else ""
        clamp = f" (clamped to {count})" if count != pin.count else ""
        reason = f"pinned{who} at {ptype}={pin.count} until {pin_end(pin.until, now)}{clamp}"
        desired, step = within_max_step(settings.max_step, current, count)
        return Decision(
            current, desired, _arrow(reason + step, ptype, current, desired), count, False, (lo, hi)
        )

    latest = samples[-1] if samples else None
    readings = _readings(settings, samples, current, now)
    stale = latest is None or now - latest.at > settings.stale_after or readings is None
    if stale:
        # Old numbers say nothing about now: keep what runs, within the bounds.
        desired, step = within_max_step(settings.max_step, current, min(max(current, lo), hi))
        age = "no metrics" if latest is None else _stale_text(latest, now, settings)
        binding = window if desired != current else None
        reason = _arrow(f"metrics stale ({age}){step}", ptype, current, desired, binding)
        return Decision(current, desired, reason, current, True, (lo, hi))

    assert readings is not None and latest is not None
    reactive, driver = _reactive(settings, readings, current, latest)
    # The noise allowance is a floor under the HPA rule's answer, up and down; with
    # nothing running there is no noise to measure, and the rule starts what is needed.
    room = headroom(settings, samples, now) if current > 0 else None
    roomy = room is not None and room.count > reactive
    if room is not None and roomy:
        reactive = room.count
    recommendation = min(max(reactive, lo), hi)
    # Name the schedule window only when it is what moved the count.
    binding = window if window is not None and reactive != recommendation else None
    forecast_rpm, ahead = None, 0
    if (
        settings.predictive
        and forecast is not None
        and forecast.growth > 1
        and forecast.skill >= settings.forecast_min_skill
        and current > 0
    ):
        # The growth is measured from the last whole minute, so it applies to that
        # minute's rate: applied to a fresher rate that has already risen, it would count
        # the same rise twice.
        base = latest.rpm if forecast.base_rpm is None else forecast.base_rpm
        forecast_rpm = base * _usable(settings, forecast.growth)
        if forecast_rpm > latest.rpm:
            count = _forecast_count(settings, readings, current, latest, forecast_rpm)
            weight = settings.forecast_weight
            ahead = min(math.ceil((1 - weight) * reactive + weight * count - _EPSILON), hi)

    # The forecast raises the count but is not a recommendation: when the rise it expected
    # does not come, the dynos it asked for go again as soon as it stops expecting it,
    # instead of being held for the stabilization window like measured traffic.
    if max(recommendation, ahead) > current:
        if ahead > recommendation:
            driver = None
        wanted = max(recommendation, ahead)
        # A rate target counts the booting dynos already (rate / formation), so asking
        # again before they boot does not pay twice; a latency stays high until they serve.
        by_rate = driver is None or driver[0].metric == "rpm_per_dyno"
        # A measured rate, not the forecast: only a reading can straddle a step (`_up`).
        # With the adaptive window only, as the noise allowance: a window the user set is
        # the HPA's rule alone.
        # The reading's own count, not one a raised min lifted it to: a schedule window or
        # min opening asks for what it names, not a whole step more.
        measured = (
            settings.down_stabilization is None
            and driver is not None
            and driver[0].metric == "rpm_per_dyno"
            and reactive > 2 * current
        )
        desired, why = _up(settings, current, wanted, events, booting, now, by_rate, measured)
    elif recommendation < current:
        desired, why = _down(
            settings,
            current,
            recommendation,
            recommendations,
            last_release_at,
            now,
            ahead,
            samples,
            room is not None,
            carried(settings, samples, events, now),
        )
    else:
        desired, why = current, ""
    # Bounds come last: a schedule window's min is met at once, step limits or not (but for
    # the registry's max_step, which no command may pass).
    desired, step = within_max_step(settings.max_step, current, min(max(desired, lo), hi))
    why += step
    what = _what(settings, driver, latest, samples, forecast_rpm, current, desired != current)
    if room is not None and roomy and driver is not None:
        what = (
            f"{room.rate:,.0f} rpm and {room.allowance:,.0f} of noise "
            f"({_HEADROOM_SIGMAS:g} deviations) "
            f"need {room.count}"
        )
    reason = _arrow(f"{what}{why}", ptype, current, desired, binding)
    return Decision(current, desired, reason, recommendation, False, (lo, hi), forecast_rpm)


# Volatility (`volatility`) at and above which the adaptive stabilization is longest; at 0
# it is `_SHORTEST`. A minute's Poisson noise at 1,000 rpm moves the rate ~4 % a minute;
# traffic whose minutes differ by a tenth is jumpy.
_VOLATILE = 0.20
_SHORTEST = timedelta(minutes=1)


def volatility(samples: Sequence[Sample]) -> float:
    """How jumpy the request rate is from one minute to the next: the samples' rates
    averaged per clock minute, then the median absolute change between consecutive
    minutes over their mean rate. The median, so that one step up or down (a level
    change, which the stabilization need not wait out) does not count as noise; 0 with
    fewer than three minutes or no traffic."""
    rates = _minute_rates(samples)
    if len(rates) < 3:
        return 0.0
    mean = sum(rates) / len(rates)
    if mean <= 0:
        return 0.0
    return statistics.median(abs(b - a) for a, b in itertools.pairwise(rates)) / mean


# How many noise deviations a fall must exceed to count as a new level: a Gaussian
# minute falls this far below its level about once in 3.5 million minutes; the margin
# is for the noise estimate, which from 15 minutes can be a third too low.
_LEVEL_SIGMAS = 5.0
# The minutes that the volatility and a fall are judged on; the noise is measured over
# every sample given, and callers give `NOISE_SPAN`, so that a few calm minutes in a row
# do not make ordinary noise look like a fall. Thirty minutes, not fifteen: the noise
# measured from 15 minutes varied by a third from one tick to the next, and the allowance
# with it (`make bench-autoscale`: 15 of 30 shapes met at 15 minutes, 20 at 30).
_RECENT = timedelta(minutes=5)
NOISE_SPAN = timedelta(minutes=30)


def _last(samples: Sequence[Sample], span: timedelta) -> list[Sample]:
    if not samples:
        return []
    return _newest(samples, samples[-1].at - span)[::-1]


def _minute_rates(samples: Sequence[Sample]) -> list[float]:
    """The samples' rates averaged per clock minute. A sample covers the time before its
    `at` (a whole minute stamped at its end, or the last tick), so one stamped on the
    minute belongs to the minute that just ended."""
    minutes: dict[int, list[float]] = {}
    for sample in samples:
        minute = math.ceil(sample.at.timestamp() / 60) - 1
        minutes.setdefault(minute, []).append(sample.rpm)
    return [sum(v) / len(v) for _, v in sorted(minutes.items())]


def noise(samples: Sequence[Sample]) -> float:
    """The request rate's minute-to-minute noise, rpm, as one standard deviation: from the
    mean absolute change between consecutive minutes, the largest left out (it may be a
    change of level), and never less than a minute's Poisson noise, √rate."""
    rates = _minute_rates(samples)
    if len(rates) < 2:
        return 0.0
    poisson = math.sqrt(max(0.0, sum(rates) / len(rates)))
    changes = sorted(abs(b - a) for a, b in itertools.pairwise(rates))
    if len(changes) > 2:
        changes.pop()  # the largest may be a change of level, not noise
    # E|a - b| = 2σ/√π for two independent Gaussian minutes of deviation σ.
    return max(poisson, sum(changes) / len(changes) * math.sqrt(math.pi) / 2)


def fell_beyond_noise(samples: Sequence[Sample], now: datetime, settings: Settings) -> bool:
    """Whether every reading of the last `smoothing` of traffic sits below every earlier
    minute of the window and below their mean by more than `_LEVEL_SIGMAS` times the noise:
    a fall that noise does not explain (a batch that ended, a crowd gone), not a dip."""
    recent = _newest(samples, now - max(settings.smoothing, _SHORTEST))
    window = _last(samples, _RECENT)
    older = window[: len(window) - len(recent)]
    if not recent:
        return False
    before = _minute_rates(older)
    if len(before) < 2:
        return False
    # The largest reading of the last minute, not their mean: the freshest reading covers
    # only 20 s and wobbles more than a whole minute, and one low reading beside a whole
    # minute near the level is a dip, not a new level. Shedding dynos at once on it lost
    # the next minute when the rate came back (launch-step#1: 9→7 on a minute 1,000 rpm
    # low, back at the level a minute later). A real fall shows in every reading.
    rate = max(s.rpm for s in recent)
    mean = sum(before) / len(before)
    return rate < min(before) and rate < mean - _LEVEL_SIGMAS * noise(samples)


# How many deviations of the rate's measured noise the default keeps room for. A count
# chosen for the mean rate runs a dyno at the band's upper edge (which a load-tested rate
# target puts at the SLO) whenever the rate wobbles up, and the scale-up that follows
# comes a drain lag and a boot too late for that minute; the rate exceeds its mean by 2
# deviations in about one minute of 40.
_HEADROOM_SIGMAS = 2.0
# Φ⁻¹(3/4): the median of |N(0, 1)|.
_QUARTILE = statistics.NormalDist().inv_cdf(0.75)
# Fewer minutes than this say too little about the noise (two minutes give one change,
# which may be a start-up or a step): no allowance until they have been seen.
_NOISE_MINUTES = 5


@dataclass(frozen=True)
class Headroom:
    """What `headroom` found: the dynos that carry `rate` plus `allowance` within the band."""

    count: int
    rate: float  # the rate's current level (`rate_level`), rpm
    allowance: float  # `_HEADROOM_SIGMAS` deviations of the next minute from it, rpm


def headroom(settings: Settings, samples: Sequence[Sample], now: datetime) -> Headroom | None:
    """With the adaptive stabilization (the default), the fewest dynos that carry the
    rate's current level (`rate_level`) plus `_HEADROOM_SIGMAS` deviations of how far the
    next minute may lie from it (its noise and the level's own error) within each rate
    target's tolerance band: a floor under the recommendation, up and down. None
    without a rate target, traffic or `_NOISE_MINUTES` minutes of samples, or with a fixed
    stabilization window (a setting chosen by hand is kept as the HPA's)."""
    if settings.down_stabilization is not None:
        return None
    recent = _newest(samples, now - max(settings.smoothing, _SHORTEST))
    edges = [
        t.value * (1 + settings.tolerance) for t in settings.targets if t.metric == "rpm_per_dyno"
    ]
    rates = _minute_rates(samples)
    if not recent or not edges or len(rates) < _NOISE_MINUTES:
        return None
    sigma = _detrended(rates)
    rate, minutes = rate_level(rates, sigma)
    if rate <= 0:
        return None
    # The level is itself a mean of `minutes` noisy minutes: the next minute may differ
    # from it by the noise of one minute and of that mean together.
    allowance = _HEADROOM_SIGMAS * sigma * math.sqrt(1 + 1 / minutes)
    count = max(math.ceil((rate + allowance) / edge - _EPSILON) for edge in edges)
    return Headroom(count, rate, allowance)


# A minute this many deviations (of the noise and of the mean so far together) away from
# the mean of the newer minutes belongs to another level: the level starts after it.
_CHANGE_SIGMAS = 3.0
# A slope beyond this many of its standard errors is a trend, not noise; fewer minutes
# than `_TREND_MINUTES` say too little about one.
_TREND_SIGMAS = 2.0
_TREND_MINUTES = 5


def rate_level(rates: Sequence[float], sigma: float) -> tuple[float, int]:
    """The rate's current level and how many minutes it is the mean of: the newest minute,
    and the older ones back to the first that lies beyond `_CHANGE_SIGMAS` deviations of
    the mean of those newer than it (a step, up or down, starts a new level). The mean of
    n minutes of one level errs by sigma / sqrt(n), where one minute alone errs by sigma.
    When those minutes rise or fall beyond their noise (`_TREND_SIGMAS`), the level is
    the end of their least-squares line instead, and the count the minutes whose mean
    would err as much as that end does. (0, 1) without minutes."""
    if not rates:
        return 0.0, 1
    total, count = rates[-1], 1
    for rate in reversed(rates[:-1]):
        mean = total / count
        if abs(rate - mean) > _CHANGE_SIGMAS * sigma * math.sqrt(1 + 1 / count):
            break
        total, count = total + rate, count + 1
    if count >= _TREND_MINUTES:
        # A trend the minutes show beyond their noise (a crowd decaying, a daily rise): the
        # level is the fitted line's end, not the mean, which lags it by half the window.
        # The line's end errs more than the mean does (by σ √(1/n + (n-1-x̄)²/Sxx)), said
        # as the count of minutes whose mean would err as much.
        xbar = (count - 1) / 2
        sxx = sum((x - xbar) ** 2 for x in range(count))
        ybar = total / count
        slope = sum((x - xbar) * (y - ybar) for x, y in enumerate(rates[-count:])) / sxx
        if abs(slope) > _TREND_SIGMAS * sigma / math.sqrt(sxx):
            spread = 1 / count + (count - 1 - xbar) ** 2 / sxx
            return ybar + slope * (count - 1 - xbar), max(1, round(1 / spread))
    return total / count, count


def noise_detrended(samples: Sequence[Sample]) -> float:
    """The rate's minute-to-minute noise, rpm, as one standard deviation, from second
    differences of the minute rates (a - 2b + c), so a steady rise or fall (a ramp) does
    not count as noise: their median, scaled to read one deviation on Gaussian minutes
    (a step or a batch job's start and end do not move it); at least a minute's Poisson
    noise, √rate. With fewer than three minutes, `noise`."""
    rates = _minute_rates(samples)
    if len(rates) < 3:
        return noise(samples)
    return _detrended(rates)


def _detrended(rates: Sequence[float]) -> float:
    """`noise_detrended` of at least three minute rates."""
    poisson = math.sqrt(max(0.0, sum(rates) / len(rates)))
    seconds = sorted(
        abs(a - 2 * b + c) for a, b, c in zip(rates, rates[1:], rates[2:], strict=False)
    )
    # The median, not a mean: a change of level gives two large second differences (into
    # and out of the step), a batch job four, and a mean that leaves out the largest two
    # still read a third low on plain Gaussian minutes. |a - 2b + c| of independent
    # Gaussian minutes of deviation σ is |N(0, 6σ²)|, whose median is √6 σ Φ⁻¹(3/4).
    return max(poisson, statistics.median(seconds) / (math.sqrt(6) * _QUARTILE))


def stabilization(settings: Settings, samples: Sequence[Sample]) -> timedelta:
    """The scale-down stabilization window in force: the setting when one is set, else
    adaptive, from `_SHORTEST` on a steady rate to `down_stabilization_max` on a jumpy one
    (a fall in jumpy traffic is as likely to come back as to last)."""
    if settings.down_stabilization is not None:
        return settings.down_stabilization
    longest = max(settings.down_stabilization_max, _SHORTEST)
    share = min(1.0, volatility(_last(samples, _RECENT)) / _VOLATILE)
    return timedelta(seconds=round((_SHORTEST + (longest - _SHORTEST) * share).total_seconds()))


def bounds(settings: Settings, now: datetime) -> tuple[int, int, Window | None]:
    """The min and max at `now`: the first schedule window covering `now` replaces those
    it names; a window's min above the settings' max lifts the max with it."""
    lo, hi = settings.min_dynos, settings.max_dynos
    if not settings.windows:
        return lo, hi, None
    for window in settings.windows:
        if window.covers(now):
            lo = window.min if window.min is not None else lo
            hi = window.max if window.max is not None else hi
            return lo, max(hi, lo), window
    return lo, hi, None


def history_minutes(settings: Settings, now: datetime) -> tuple[tuple[int, int], ...]:
    """The per-minute history `seasonal_forecast` reads, as [first, last) epoch minutes:
    the skill window of today and, a day and a week earlier, that window and the lead."""
    if not settings.predictive:
        return ()
    current = _epoch_minute(now)
    span = _minutes(settings.forecast_skill_window) + 1
    lead = _minutes(settings.forecast_lead)
    ranges = [(current - span, current)]
    ranges += [(current - span - lag, current - lag + lead) for lag in _SEASONAL_LAGS_MIN]
    return tuple(ranges)


def seasonal_forecast(
    settings: Settings, history: Mapping[int, float], now: datetime
) -> Forecast | None:
    """`forecast_growth` and `forecast_skill` together; None when either is unknown.
    `history` maps epoch minutes (seconds // 60) to the requests in that minute."""
    growth = forecast_growth(settings, history, now)
    if growth is None:
        return None
    skill = forecast_skill(settings, history, now)
    return None if skill is None else Forecast(growth, skill, forecast_base(history, now))


def forecast_base(history: Mapping[int, float], now: datetime) -> float | None:
    """The requests of the last whole minute before `now`, which `forecast_growth` starts
    from; None when unknown."""
    return history.get(_epoch_minute(now) - 1)


def forecast_growth(
    settings: Settings, history: Mapping[int, float], now: datetime
) -> float | None:
    """How traffic grew from the last whole minute to `forecast_lead` later, a day and a
    week ago: the geometric mean of the two, or the one known; None when neither is."""
    return _growth(history, _epoch_minute(now) - 1, _minutes(settings.forecast_lead))


def forecast_skill(settings: Settings, history: Mapping[int, float], now: datetime) -> float | None:
    """How much better than "no change" the forecast (as `decide` uses it: growth only,
    capped) predicted each minute of the last `forecast_skill_window`, one lead ahead:
    1 - its total error / no change's, at least -1; 0 when nothing moved (no evidence
    either way), None without history. It changes slowly: a caller may compute it every few minutes."""
    lead = _minutes(settings.forecast_lead)
    last = _epoch_minute(now) - 1
    first = last - _minutes(settings.forecast_skill_window)
    ours = naive = 0.0
    seen = judged = False
    for minute in range(first, last - lead + 1):
        before, after = history.get(minute), history.get(minute + lead)
        growth = _growth(history, minute, lead)
        if before is None or after is None or growth is None:
            continue
        seen = True
        growth = _usable(settings, growth)
        # Only minutes where the traffic moved beyond the band or the forecast said it
        # would: elsewhere both are right but for noise, which would drown the score.
        if growth == 1.0 and abs(after - before) <= settings.tolerance * before:
            continue
        judged = True
        ours += abs(after - before * growth)
        naive += abs(after - before)
    if not judged:
        return 0.0 if seen else None
    if naive == 0:
        return 1.0 if ours == 0 else -1.0
    return max(-1.0, 1 - ours / naive)


def _usable(settings: Settings, growth: float) -> float:
    """The growth `decide` acts on: rises beyond the tolerance band, capped; a smaller
    one is noise in a minute's count as often as a real rise."""
    if growth <= 1 + settings.tolerance:
        return 1.0
    return min(growth, settings.forecast_max_growth)


def _growth(history: Mapping[int, float], minute: int, lead: int) -> float | None:
    growths = []
    for lag in _SEASONAL_LAGS_MIN:
        base, ahead = history.get(minute - lag), history.get(minute - lag + lead)
        if base is not None and ahead is not None and base > 0:
            growths.append(max(ahead, 0.0) / base)
    if not growths:
        return None
    return math.prod(growths) ** (1 / len(growths))


def _epoch_minute(now: datetime) -> int:
    return int(now.timestamp() // 60)


def _minutes(delta: timedelta) -> int:
    return max(1, round(delta.total_seconds() / 60))


def _readings(
    settings: Settings, samples: Sequence[Sample], current: int, now: datetime
) -> list[tuple[Target, float]] | None:
    """Each target with its metric's value, or None when one of them is missing. A rate is
    read twice, from the newest sample and averaged over `smoothing`: the larger answer
    wins, so a rise counts at once and a fall once it has lasted (and a noisy window
    does not shed a dyno that the next one wants back)."""
    if not samples:
        return None
    latest = samples[-1]
    readings = []
    for target in settings.targets:
        if target.metric == "rpm_per_dyno":
            per = current if current > 0 else 1
            readings.append((target, latest.rpm / per))
            since = now - settings.smoothing
            recent = [s.rpm for s in _newest(samples, since)]
            if len(recent) > 1:
                readings.append((target, sum(recent) / len(recent) / per))
            continue
        value = latest.queue_p95_ms if target.metric == "queue_p95" else latest.service_p95_ms
        if value is None and latest.rpm == 0:
            value = 0.0  # no requests, so none waited
        if value is None:
            return None
        readings.append((target, value))
    return readings


def _newest(samples: Sequence[Sample], since: datetime) -> list[Sample]:
    newest = []
    for sample in reversed(samples):
        if sample.at <= since:
            break
        newest.append(sample)
    return newest


def _reactive(
    settings: Settings, readings: list[tuple[Target, float]], current: int, latest: Sample
) -> tuple[int, tuple[Target, float, float] | None]:
    """The HPA rule per target, the largest answer, and the target that gave it."""
    best, driver = -1, None
    for target, value in readings:
        ratio = value / target.value
        if current == 0:
            # Nothing runs, so there is no ratio: start what the traffic needs, if any.
            wanted = math.ceil(latest.rpm / target.value - _EPSILON) if latest.rpm > 0 else 0
            if target.metric != "rpm_per_dyno":
                wanted = 1 if latest.rpm > 0 else 0
        elif abs(ratio - 1) <= settings.tolerance:
            wanted = current
        else:
            wanted = math.ceil(current * ratio - _EPSILON)
        if wanted > best:
            best, driver = wanted, (target, value, ratio)
    return best, driver


def _forecast_count(
    settings: Settings,
    readings: list[tuple[Target, float]],
    current: int,
    latest: Sample,
    forecast_rpm: float,
) -> float:
    """Dynos for the forecast traffic: rpm targets divide it; latency targets scale what
    the traffic needs now (at least the current count) by the forecast growth."""
    growth = forecast_rpm / latest.rpm if latest.rpm > 0 else 1.0
    need = 0.0
    for target, value in readings:
        if target.metric == "rpm_per_dyno":
            need = max(need, forecast_rpm / target.value)
        else:
            need = max(need, max(current, current * value / target.value) * growth)
    return need


def _up(
    settings: Settings,
    current: int,
    recommendation: int,
    events: Sequence[ScaleEvent],
    booting: int | None,
    now: datetime,
    by_rate: bool = False,
    measured: bool = False,
) -> tuple[int, str]:
    last_up = max((e.at for e in events if e.after > e.before), default=None)
    cooling = last_up is not None and now - last_up < settings.boot_cooldown
    if cooling and booting != 0 and not by_rate:
        # The dynos just asked for are not serving yet, so today's numbers do not count
        # them: asking again would pay twice for the same traffic.
        waited = _duration(now - last_up)
        return current, f", but the dynos started {waited} ago are still booting"
    step = max(math.ceil(current * settings.up_max_percent / 100), settings.up_max_dynos)
    # A rate reading that more than doubles what runs is a step to a new level, and the
    # first fresh reading after it mixes the old rate with the new one (its 20 s window
    # straddles the step), so it understates where the rate went: take the whole step
    # allowance now rather than a second step a tick later. (launch-step#1: the last dyno
    # of a 2→6 step was ordered a tick later and the minute after the step was lost.) Dynos
    # it asked for beyond the new rate may go from the next tick, often before they boot:
    # the one-minute hold covers recommendations, not this step. Holding them for the
    # minute changed no verdict in `make bench-autoscale` (ELB 1,419 minutes either way):
    # dynos ordered 30 s into a rise serve after the minute whose backlog they were for.
    if measured and current > 0 and 2 * current < recommendation < current + step:
        return current + step, f" (a step to a new level: +{step} at once; {recommendation} asked)"
    if recommendation > current + step:
        return current + step, f" (step limit +{step}; {recommendation} wanted)"
    return recommendation, ""


def _down(
    settings: Settings,
    current: int,
    recommendation: int,
    recommendations: Sequence[Recommendation],
    last_release_at: datetime | None,
    now: datetime,
    ahead: int,
    samples: Sequence[Sample],
    noise_kept: bool = False,
    seen: Carried | None = None,
) -> tuple[int, str]:
    if last_release_at is not None and now - last_release_at < settings.deploy_guard:
        since = _duration(now - last_release_at)
        return (
            current,
            f", but a release {since} ago holds scale-down for {_duration(settings.deploy_guard)}",
        )
    level = settings.down_stabilization is None and fell_beyond_noise(samples, now, settings)
    # A fall that the noise cannot explain is a new level, not a dip that comes back: the
    # minute's average behind `recommendation` already confirmed it, so nothing is held.
    if level:
        hold = timedelta(0)
    elif noise_kept:
        # The noise allowance already keeps room for the wobbles a longer hold waits out
        # (a dip within the noise leaves the level where it was), so a minute is enough.
        hold = _SHORTEST
    else:
        hold = stabilization(settings, samples)
    since = now - hold
    highest = max((r.count for r in recommendations if r.at > since), default=recommendation)
    floor = max(recommendation, highest)
    step = max(math.floor(current * settings.down_max_percent / 100), settings.down_max_dynos)
    held = f" (the highest of the last {_duration(hold)})"
    if seen is not None:
        # A latency target reads ~0 on any count above what the traffic needs, so the HPA
        # rule asks for the minimum at every tick: a count is left only once it was seen
        # to carry the rate, by one step, and never for one seen to break the target.
        if seen.count > current:
            return current, (
                f", but {current} dynos are not yet seen to carry {seen.rate:,.0f} rpm within "
                f"the target (at most {seen.per_dyno:,.0f} rpm per dyno so far)"
            )
        if seen.failed >= current and seen.broke_per_dyno is not None and current > 1:
            return current, (
                f", but {current - 1} dynos would take {seen.rate / (current - 1):,.0f} rpm "
                f"each, about the {seen.broke_per_dyno:,.0f} that broke the target"
            )
        if seen.failed >= current:
            return current, f", but {seen.rate:,.0f} rpm needs a dyno"
        if seen.count - step > floor and seen.count - step >= seen.failed:
            floor = seen.count - step
            held = f" (a step below the {seen.count} seen to carry {seen.rate:,.0f} rpm)"
        elif seen.failed > floor:
            floor = seen.failed
            held = f" (fewer broke the target at about {seen.rate:,.0f} rpm)"
    if ahead >= current > floor:
        return current, ", but the forecast expects more traffic"
    if floor >= current:
        return current, f", but the last {_duration(hold)} asked for up to {floor}"
    floor = max(floor, ahead)
    if level:
        return floor, " (traffic fell beyond its noise)"
    if floor < current - step:
        return current - step, f" (step limit −{step})"
    if floor > recommendation:
        return floor, held
    return floor, ""


@dataclass(frozen=True)
class Carried:
    """What `carried` found for a latency target: the dynos seen to carry `rate`."""

    count: int  # the fewest dynos that carry `rate` at `per_dyno` each
    rate: float  # the request rate now, rpm
    per_dyno: float  # the most rpm per dyno seen served within every latency target
    failed: int  # the fewest dynos not seen to break a target at about this rate per dyno
    broke_per_dyno: float | None = None  # the least rpm per dyno seen to break one


def carried(
    settings: Settings, samples: Sequence[Sample], events: Sequence[ScaleEvent], now: datetime
) -> Carried | None:
    """For latency targets (a p95 reads ~0 on every count above what the traffic needs, so
    it says nothing of how far down is safe): the most requests per dyno the samples show
    served within every latency target, the dynos the current rate needs at that, and
    the fewest that stay clear of the least rate per dyno seen to break one (less the
    tolerance band, for the rate's noise). A minute served is credited to the most dynos
    that ran in it; a broken one is blamed on the fewest, and only when the minute before it
    was within the targets, so that a backlog left by an earlier minute is not blamed on
    its count. None without a latency target, traffic, or a sample that knows its dynos
    and was served within the targets."""
    latency = [t for t in settings.targets if t.metric != "rpm_per_dyno"]
    if not latency or not samples or samples[-1].rpm <= 0:
        return None
    changes = [e for e in events if e.after != e.before]
    served = broke = None
    within_before = False
    for sample in samples:
        values = [
            sample.queue_p95_ms if t.metric == "queue_p95" else sample.service_p95_ms
            for t in latency
        ]
        if any(v is None for v in values) or not sample.dynos or sample.rpm <= 0:
            within_before = False
            continue
        within = all(v <= t.value for v, t in zip(values, latency, strict=True))  # type: ignore[operator]
        opened = sample.at - timedelta(minutes=1)
        if within:
            # The most dynos that ran in the minute: it says no more than that they carried it.
            during = [n for e in changes if opened < e.at < sample.at for n in (e.before, e.after)]
            per = sample.rpm / max([sample.dynos, *during])
            served = per if served is None else max(served, per)
        elif within_before:
            # The fewest that ran in it, as a scale-down at its start left them (the dynos it
            # stopped may still have served a request or two, and counted in `dynos`).
            fewest = min([sample.dynos, *(e.after for e in changes if opened <= e.at < sample.at)])
            if fewest > 0:
                per = sample.rpm / fewest
                broke = per if broke is None else min(broke, per)
        within_before = within
    if served is None:
        return None
    recent = [s.rpm for s in _newest(samples, now - settings.smoothing)] or [samples[-1].rpm]
    rate = sum(recent) / len(recent)
    count = max(1, math.ceil(rate / served - _EPSILON))
    failed = 1
    if broke is not None:
        failed = max(1, math.floor(rate / (broke * (1 - settings.tolerance)) + _EPSILON) + 1)
    return Carried(count, rate, served, failed, broke)


_METRIC_TEXT = {"queue_p95": "p95 queue", "service_p95": "p95 service"}


def _what(
    settings: Settings,
    driver: tuple[Target, float, float] | None,
    latest: Sample,
    samples: Sequence[Sample],
    forecast_rpm: float | None,
    current: int,
    changed: bool,
) -> str:
    if driver is None:
        lead = _duration(settings.forecast_lead)
        return (
            f"{latest.rpm:,.0f} rpm now, {forecast_rpm:,.0f} expected in {lead} "
            "(same time yesterday and last week)"
        )
    target, value, ratio = driver
    if target.metric == "rpm_per_dyno":
        shown = f"{value:,.0f} rpm per dyno"
        goal = f"{target.value:,.0f}"
    else:
        shown = f"{_METRIC_TEXT[target.metric]} {value:,.0f} ms"
        goal = f"{target.value:,.0f} ms"
    if current > 0 and abs(ratio - 1) <= settings.tolerance:
        return f"{shown} within {settings.tolerance:.0%} of {goal}"
    above = ratio > 1
    # How long it has lasted matters to whoever reads an action; a hold is said often.
    run = _run_length(target, samples, above, settings.tolerance, current) if changed else ""
    return f"{shown} {'>' if above else '<'} {goal}{run}"


def _run_length(
    target: Target, samples: Sequence[Sample], above: bool, tolerance: float, current: int
) -> str:
    """' for 2 min': how long the metric has stayed on this side of the band."""
    first = None
    for sample in reversed(samples):
        if target.metric == "rpm_per_dyno":
            dynos = sample.dynos or current
            value: float | None = sample.rpm / dynos if dynos else None
        else:
            value = sample.queue_p95_ms if target.metric == "queue_p95" else sample.service_p95_ms
        if value is None:
            break
        ratio = value / target.value
        if (ratio > 1 + tolerance) if above else (ratio < 1 - tolerance):
            first = sample
        else:
            break
    if first is None or first is samples[-1]:
        return ""
    # The run started with the first minute of `first`, which ends at `first.at`.
    return f" for {_duration(samples[-1].at - first.at + 2 * _SAMPLE_HALF_WINDOW)}"


def _arrow(what: str, ptype: str, current: int, desired: int, window: Window | None = None) -> str:
    where = ""
    if window is not None:
        limits = []
        if window.min is not None:
            limits.append(f"min {window.min}")
        if window.max is not None:
            limits.append(f"max {window.max}")
        where = f"; schedule {window.describe()} sets {', '.join(limits)}"
    if desired == current:
        return f"{what}{where}: {ptype} stays at {current}"
    return f"{what}{where} → {ptype} {current}→{desired}"


def _stale_text(latest: Sample, now: datetime, settings: Settings) -> str:
    age = now - latest.at
    if age > settings.stale_after:
        return f"the newest sample is {_duration(age)} old"
    return "a target's metric is missing"


def _duration(delta: timedelta) -> str:
    seconds = max(0, round(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
