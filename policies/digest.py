"""The daily digest, as pure decisions: when an app's digest is due (`digest: "09:00
Europe/Paris"` in the registry), which local day it covers, and its numbers from plain data:
dyno-hours and their cost, what a static formation at the day's peak would have cost,
scale actions and incidents with their durations, and the busiest hour.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from policies import costs

HOUR = 3600
_SPEC = re.compile(r"^(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?:\s+(?P<tz>\S+))?\Z")


@dataclass(frozen=True)
class DigestTime:
    at: time
    timezone: str

    def describe(self) -> str:
        return f"{self.at:%H:%M} {self.timezone}"


def parse_digest(text: str) -> DigestTime:
    """`"09:00 Europe/Paris"` (the zone defaults to UTC); ValueError saying what is wrong."""
    match = _SPEC.match(text.strip())
    if match is None:
        raise ValueError(f"`{text}` is not a digest time: write it like `09:00 Europe/Paris`")
    zone = match["tz"] or "UTC"
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"`{zone}` is not a time zone (use an IANA name like Europe/Paris)"
        ) from None
    return DigestTime(time(int(match["h"]), int(match["m"])), zone)


def due(spec: DigestTime, now: datetime) -> tuple[date, datetime, datetime] | None:
    """When the digest is due at `now` (past its local time today): (the local day it
    covers, that day's start and end in UTC). None before the time."""
    zone = zoneinfo.ZoneInfo(spec.timezone)
    local = now.astimezone(zone)
    if local.time() < spec.at:
        return None
    day = local.date() - timedelta(days=1)
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(local.date(), time(0), zone)
    return day, start.astimezone(now.tzinfo), end.astimezone(now.tzinfo)


@dataclass(frozen=True)
class Span:
    """Something that lasted: a web count held, an incident open."""

    start: float  # epoch seconds
    end: float
    label: str  # Slack text, shown as it is

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(frozen=True)
class DayNumbers:
    dyno_hours: float | None  # web, from the autoscaler's record; None without one
    cost_usd: float | None
    peak: int | None  # the most web dynos at once
    static_usd: float | None  # the peak held for the hours the record covers
    saving_usd: float | None
    busiest_start: float | None  # epoch seconds: the start of the hour with most requests
    busiest_requests: int
    # Of the day's hours, those the autoscaler's record speaks for (the worker may have been
    # down, or autoscaling begun mid-day); None without a record.
    covered_hours: float | None = None
    day_hours: float = 24.0


def day_words(day: date) -> str:
    """A digest's day as its text and its chart's title name it: Sunday 29 November 2026."""
    return f"{day:%A %d %B %Y}"


def day_numbers(
    platform: str,
    size: str | None,
    samples: Sequence[tuple[float, int]],
    start: float,
    end: float,
    requests_by_hour: Sequence[int],
) -> DayNumbers:
    """The digest's numbers. `samples` are (epoch seconds, web count) from the day's
    autoscaler ticks, oldest first; `requests_by_hour` the requests of each hour from
    `start` (`by_hour`: 23 or 25 of them on a day the clocks change)."""
    hour = max(range(len(requests_by_hour)), key=lambda h: requests_by_hour[h], default=None)
    most = requests_by_hour[hour] if hour is not None else 0
    busiest = start + hour * HOUR if hour is not None and most else None
    day_hours = (end - start) / 3600
    if not samples:
        return DayNumbers(None, None, None, None, None, busiest, most, None, day_hours)
    hours, covered = costs.dyno_hours(list(samples), end)
    peak = max(count for _, count in samples)
    hourly = costs.hourly_price(platform, size) if size else None
    if hourly is None:
        return DayNumbers(hours, None, peak, None, None, busiest, most, covered, day_hours)
    cost = hours * hourly
    # Over the same hours as `cost`: priced for the whole day, a record begun at 18:00 had
    # "saved" the static formation's first 18 hours.
    static = peak * covered * hourly
    return DayNumbers(hours, cost, peak, static, static - cost, busiest, most, covered, day_hours)


def by_hour(requests: Iterable[tuple[float, int]], start: float, end: float) -> list[int]:
    """The requests of each hour from `start` to `end`, from (epoch seconds, requests):
    hours that passed, not local hours, which on a day the clocks go back had added both
    02:00s into one, busier than any real hour."""
    hours = [0] * max(1, math.ceil((end - start) / HOUR))
    for at, count in requests:
        hours[min(len(hours) - 1, max(0, int((at - start) // HOUR)))] += count
    return hours


def hour_label(at: float, timezone: str) -> str:
    """The local hour that starts at `at`, as 14:00 to 15:00 in `timezone`. An hour the
    clocks change in, or one that comes twice, names its offset (`CET`, `CEST`), as the
    wall clock alone cannot tell which it was."""
    zone = zoneinfo.ZoneInfo(timezone)
    local, end = datetime.fromtimestamp(at, zone), datetime.fromtimestamp(at + HOUR, zone)
    wall = local.replace(tzinfo=None)
    label = f"{wall:%H:%M}–{wall + timedelta(hours=1):%H:%M}"
    repeated = local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset()
    if repeated or end.utcoffset() != local.utcoffset():
        label += f" {local.tzname()}"
    return label


def duration(seconds: float) -> str:
    """`1 h 20 min`, `45 min`, `30 s`."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
