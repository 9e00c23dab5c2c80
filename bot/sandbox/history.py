"""A day of made-up history for the sandbox's `demo-api`: traffic following office hours,
the autoscaler's ticks and scaling steps, and one resolved slow-response incident, so
`/deploy chart demo-api`, `/deploy cost` and App Home have something to show in `make demo`
before any spike is played. Seeded: every sandbox tells the same day.

Stored as the real parts would have stored it: 10-second windows, as the drain's flusher
writes them, spread over the web dynos running then; one decision a tick, oldest first, as
the worker writes them (the newest row is the newest decision); the incident is the one
`policies.detectors.slow` finds in those windows, in its own words.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from datetime import UTC, datetime, timedelta

from bot.metrics.aggregate import WINDOW_SECONDS, Window
from bot.services import Services
from bot.store.autoscale_settings import AutoscaleStore, Decision, Settings
from bot.store.models import IncidentOpening, IncidentRow
from bot.worker.detectors import minutes_of
from policies import detectors
from policies.incidents import DEFAULT_SEVERITY
from policies.sketch import Sketch

APP = "demo-api"
# (hours before now, web before, web after): the day's scaling steps, oldest first, each on
# a tick (a multiple of TICK after the day's start).
STEPS = ((16.5, 2, 3), (15.0, 3, 4), (11.5, 4, 5), (7.0, 5, 3), (3.0, 3, 2))
TICK = timedelta(minutes=5)
# The slow stretch: its first minute (minutes before now) and how many minutes its p95
# service time stays over the detector's threshold.
SLOW_FROM, SLOW_MINUTES = 12 * 60 + 13, 38


def seed(services: Services, now: datetime) -> bool:
    """Store the day ending now, unless the last hour already has traffic."""
    end = int(now.timestamp()) // WINDOW_SECONDS * WINDOW_SECONDS  # the complete windows
    if services.metrics.windows(APP, end - 3600, end):
        return False
    decisions = _decisions(now)
    services.metrics.save(_windows(end, decisions))
    store = AutoscaleStore(services.db)
    store.save(Settings(APP, "on", 2, 6, "queue_p95", 300.0, "U0CONSOLE", now))
    store.record_many(decisions)
    _incident(services, end)
    return True


def _decisions(now: datetime) -> list[Decision]:
    """The day's ticks, oldest first: steady between the steps, acted at each."""
    start = now - timedelta(hours=24)
    steps = {round((24 - ago) * 3600 / TICK.total_seconds()): (b, a) for ago, b, a in STEPS}
    web, decisions = STEPS[0][1], []
    for tick in range(int(timedelta(hours=24) / TICK)):
        at = start + tick * TICK
        if tick in steps:
            before, web = steps[tick]
            up = web > before
            reason = "p95 queue time above 300 ms" if up else "p95 queue time well below 300 ms"
            decisions.append(Decision(APP, at, before, web, True, reason))
        else:
            decisions.append(Decision(APP, at, web, web, False, "steady: queue time near target"))
    return decisions


def _windows(end: int, decisions: list[Decision]) -> list[Window]:
    """The day's 10-second windows, up to `end`, each served by the web dynos then running."""
    rng = random.Random(18)
    slow = range(end // 60 * 60 - SLOW_FROM * 60, end // 60 * 60 - (SLOW_FROM - SLOW_MINUTES) * 60)
    # What each tick left running: a window is served by the dynos of the tick before it.
    ticks = [d.at.timestamp() for d in decisions]
    running = [d.desired for d in decisions]
    windows = []
    for start in range(end - 24 * 3600, end, WINDOW_SECONDS):
        hours_ago = (end - start) / 3600
        # A working day: quiet at night, up in the morning, a bump after lunch.
        day = max(0.0, math.sin(math.pi * (18 - hours_ago) / 14)) if hours_ago <= 18 else 0.0
        rpm = 200 + 1400 * day + 300 * day * max(0.0, math.sin(hours_ago)) + rng.uniform(0, 60)
        requests = int(rpm * WINDOW_SECONDS / 60 + rng.random())
        # Slow for a while after noon: the app's own work (service time), which more dynos
        # do not shorten, so the autoscaler (on queue time) rightly left it alone.
        service_ms = 2300.0 if start // 60 * 60 in slow else 90 + rpm / 25
        service, queue = Sketch(), Sketch()
        service.add(service_ms + rng.uniform(0, 25), requests)
        queue.add(max(2.0, (rpm - 1000) / 1.8 + rng.uniform(0, 8)), requests)
        web = running[max(0, bisect_right(ticks, start) - 1)]
        share, extra = divmod(requests, web)
        dynos = {f"web.{i + 1}": share + (i < extra) for i in range(web)}
        windows.append(
            Window(APP, start, requests, {"2xx": requests}, {}, dynos, service, queue=queue)
        )
    return windows


def _incident(services: Services, end: int) -> None:
    """The slow stretch as the worker's detectors saw it, a check a minute, stored resolved."""
    first = end // 60 * 60 - SLOW_FROM * 60
    since, until = first - 600, first + (SLOW_MINUTES + 15) * 60
    minutes = minutes_of(services.metrics.windows(APP, since, until))
    events = [
        event
        for check in range(first, until, 60)
        for event in detectors.slow(APP, minutes, datetime.fromtimestamp(check + 15, UTC))
    ]
    opened, last = events[0], events[-1]
    severity = DEFAULT_SEVERITY[opened.kind]
    with services.db.session() as session, session.begin():
        session.add(
            IncidentRow(
                key=opened.key,
                app=APP,
                kind=opened.kind,
                subject=opened.subject,
                severity=severity,
                state="resolved",
                detail=last.detail,
                channel=None,
                message_ts=None,
                folded=False,
                first_at=opened.at,
                last_at=last.at,
                count=len(events),
            )
        )
        # Charts and digests read an incident's openings.
        session.add(
            IncidentOpening(
                key=opened.key,
                app=APP,
                kind=opened.kind,
                severity=severity,
                opened_at=opened.at,
                last_at=last.at,
                resolved=True,
            )
        )
