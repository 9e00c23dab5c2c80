"""A day of made-up history for the sandbox's `demo-api`: traffic following office hours,
the autoscaler's ticks and scaling steps, and one resolved slow-response incident, so
`/deploy chart demo-api`, `/deploy cost` and App Home have something to show in `make demo`
before any spike is played. Seeded: every sandbox tells the same day.

Stored as the real parts would have stored it: 10-second windows, as the drain's flusher
writes them, spread over the web dynos running then; one decision a tick, oldest first, as
the worker writes them (the newest row is the newest decision), each stepping web by the
queue time of the 5 minutes before it, which the dynos it leaves running then shorten;
the incident `policies.detectors.slow` finds in those windows, in its own words; and the
log drain those windows came through, as `/deploy drain demo-api` makes it (its row and
Heroku's drain), so `/deploy about` names it and the sandbox's logplex keeps it fed.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from bot.metrics.aggregate import WINDOW_SECONDS, Window
from bot.services import Services
from bot.store.autoscale_settings import AutoscaleStore, Decision, Settings
from bot.store.drains import Drains
from bot.store.models import IncidentOpening, IncidentRow
from bot.worker.detectors import minutes_of
from policies import detectors
from policies.incidents import DEFAULT_SEVERITY
from policies.sketch import Sketch
from policies.slack_text import escape

APP = "demo-api"
TICK = timedelta(minutes=5)  # the made-up autoscaler's (the real one ticks every 15 s)
MIN, MAX, TARGET_MS = 2, 6, 300.0  # its settings: web 2–6, target p95 queue time 300 ms
# Requests a minute one web dyno serves before they queue, and the queue time each request
# a minute past that adds.
CAPACITY_RPM, QUEUE_MS_PER_RPM = 280, 5.0
# The slow stretch: its first minute (minutes before now) and how many minutes its p95
# service time stays over the detector's threshold.
SLOW_FROM, SLOW_MINUTES = 12 * 60 + 13, 38


def seed(services: Services, now: datetime) -> bool:
    """Store the day ending now, unless the last hour already has traffic."""
    end = int(now.timestamp()) // WINDOW_SECONDS * WINDOW_SECONDS  # the complete windows
    if services.metrics.windows(APP, end - 3600, end):
        return False
    windows, decisions = _day(now, end)
    services.metrics.save(windows)
    store = AutoscaleStore(services.db)
    store.save(Settings(APP, "on", MIN, MAX, "queue_p95", TARGET_MS, "U0CONSOLE", now))
    store.record_many(decisions)
    _incident(services, end)
    _drain(services, now - timedelta(hours=24))
    return True


def _drain(services: Services, made_at: datetime) -> None:
    """demo-api's log drain, made when its day began, unless a kept database has one."""
    drains = Drains(services.db)
    if drains.get(APP) is not None or not services.config.public_url:
        return
    drain = drains.get_or_create(APP, services.config.public_url, "U0CONSOLE", made_at)
    resolved = services.resolve(APP)
    drains.set_drain_id(APP, resolved.platform.add_log_drain(resolved.target.name, drain.url))


def _rpm(hours_ago: float) -> float:
    """A working day: quiet at night, up in the morning, a bump after lunch."""
    day = max(0.0, math.sin(math.pi * (18 - hours_ago) / 14)) if hours_ago <= 18 else 0.0
    return 230 + 1400 * day + 300 * day * max(0.0, math.sin(hours_ago))


def _day(now: datetime, end: int) -> tuple[list[Window], list[Decision]]:
    """The day's 10-second windows up to `end` (from one tick before it began, so its first
    tick has traffic to read) and its ticks, oldest first, played together: each tick reads
    the last 5 minutes' p95 queue time and rate, and the windows after it are served by the
    web dynos it leaves running."""
    rng = random.Random(18)
    first = now - timedelta(hours=24)
    lookback = int(TICK.total_seconds())
    start = end - 24 * 3600
    slow = range(end // 60 * 60 - SLOW_FROM * 60, end // 60 * 60 - (SLOW_FROM - SLOW_MINUTES) * 60)
    windows: list[Window] = []
    decisions: list[Decision] = []
    web = MIN
    for at in range(start - lookback, end, WINDOW_SECONDS):
        if at >= start and (at - start) % lookback == 0:
            recent = windows[-lookback // WINDOW_SECONDS :]
            decision = _decide(first + (at - start) * timedelta(seconds=1), web, recent)
            decisions.append(decision)
            web = decision.desired
        hours_ago = (end - at) / 3600
        rpm = _rpm(hours_ago)
        requests = int((rpm + rng.uniform(-30, 30)) * WINDOW_SECONDS / 60 + rng.random())
        # Slow for a while after noon: the app's own work (service time), which more dynos
        # do not shorten, so the autoscaler (on queue time) rightly left it alone.
        service_ms = 2300.0 if at // 60 * 60 in slow else 90 + rpm / 25
        queue_ms = max(2.0, (rpm / web - CAPACITY_RPM) * QUEUE_MS_PER_RPM + rng.uniform(0, 8))
        service, queue = Sketch(), Sketch()
        service.add(service_ms + rng.uniform(0, 25), requests)
        queue.add(queue_ms, requests)
        share, extra = divmod(requests, web)
        dynos = {f"web.{i + 1}": share + (i < extra) for i in range(web)}
        windows.append(
            Window(APP, at, requests, {"2xx": requests}, {}, dynos, service, queue=queue)
        )
    return windows, decisions


def _decide(at: datetime, web: int, recent: list[Window]) -> Decision:
    """One tick: a dyno more past the target's 10 % tolerance, one fewer when the queue is
    under half the target and the rate would not queue past that on one dyno fewer."""
    queue = Sketch()
    for window in recent:
        queue.merge(window.queue)
    p95 = queue.quantile(0.95)
    rpm = sum(w.requests for w in recent) * 60 / (len(recent) * WINDOW_SECONDS)
    fewer = web - 1
    if p95 > TARGET_MS * 1.1 and web < MAX:
        why, desired = f"p95 queue {p95:,.0f} ms > {TARGET_MS:g} ms", web + 1
    elif (
        p95 < TARGET_MS / 2
        and fewer >= MIN
        and (rpm / fewer - CAPACITY_RPM) * QUEUE_MS_PER_RPM < TARGET_MS / 2
    ):
        why, desired = f"p95 queue {p95:,.0f} ms, under half of {TARGET_MS:g} ms", fewer
    else:
        return Decision(APP, at, web, web, False, f"p95 queue {p95:,.0f} ms: web stays at {web}")
    # Stored as Slack text, as the worker stores its reasons.
    return Decision(APP, at, web, desired, True, escape(f"{why} → web {web}→{desired}"))


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
