"""A day of made-up history for the sandbox's `demo-api`: traffic following office hours,
the autoscaler's ticks and scaling steps, and one resolved slow-response incident, so
`/deploy chart demo-api`, `/deploy cost` and App Home have something to show in `make demo`
before any spike is played. Seeded: every sandbox tells the same day.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from bot.metrics.aggregate import Window
from bot.services import Services
from bot.store.autoscale_settings import AutoscaleStore, Decision, Settings
from bot.store.models import IncidentOpening, IncidentRow
from policies.sketch import Sketch

APP = "demo-api"
# (hours before now, web before, web after): the day's scaling steps, oldest first.
STEPS = ((16.5, 2, 3), (15.0, 3, 4), (11.5, 4, 5), (7.0, 5, 3), (3.0, 3, 2))


def seed(services: Services, now: datetime) -> bool:
    """Store the day ending now, unless the last hour already has traffic."""
    end = int(now.timestamp()) // 60 * 60
    if services.metrics.windows(APP, end - 3600, end):
        return False
    rng = random.Random(18)
    windows = []
    for minute in range(24 * 60):
        start = end - (24 * 60 - minute) * 60
        hours_ago = (end - start) / 3600
        # A working day: quiet at night, up in the morning, a bump after lunch.
        day = max(0.0, math.sin(math.pi * (18 - hours_ago) / 14)) if hours_ago <= 18 else 0.0
        rpm = int(200 + 1400 * day + 300 * day * max(0.0, math.sin(hours_ago)) + rng.uniform(0, 60))
        service, queue = Sketch(), Sketch()
        service.add(90 + rpm / 25 + rng.uniform(0, 25), rpm)
        queue.add(max(2.0, (rpm - 1000) / 1.8 + rng.uniform(0, 8)), rpm)
        windows.append(
            Window(APP, start, rpm, {"2xx": rpm}, {}, {"web.1": rpm}, service, queue=queue)
        )
    services.metrics.save(windows)
    store = AutoscaleStore(services.db)
    store.save(Settings(APP, "on", 2, 6, "queue_p95", 300.0, "U0CONSOLE", now))
    counts = [(now - timedelta(hours=24), STEPS[0][1])] + [
        (now - timedelta(hours=ago), after) for ago, _, after in STEPS
    ]
    tick = now - timedelta(hours=24)
    while tick < now:
        actual = [count for at, count in counts if at <= tick][-1]
        store.record(Decision(APP, tick, actual, actual, False, "steady: queue time near target"))
        tick += timedelta(minutes=5)
    for ago, before, after in STEPS:
        reason = "p95 queue time above 300 ms" if after > before else "p95 queue time well below"
        store.record(Decision(APP, now - timedelta(hours=ago), before, after, True, reason))
    slow_from = now - timedelta(hours=12, minutes=10)
    key, start = f"slow:{APP}:web:{int(slow_from.timestamp())}", slow_from.astimezone(UTC)
    end = start + timedelta(minutes=35)
    with services.db.session() as session, session.begin():
        session.add(
            IncidentRow(
                key=key,
                app=APP,
                kind="slow",
                subject="web",
                severity="warning",
                state="resolved",
                detail="p95 service time above 800 ms",
                channel=None,
                message_ts=None,
                folded=False,
                first_at=start,
                last_at=end,
                count=1,
            )
        )
        # Charts and digests read an incident's openings.
        session.add(
            IncidentOpening(
                key=key,
                app=APP,
                kind="slow",
                severity="warning",
                opened_at=start,
                last_at=end,
                resolved=True,
            )
        )
    return True
