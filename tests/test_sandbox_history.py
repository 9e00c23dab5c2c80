"""The sandbox's seeded day of `demo-api` (`bot.sandbox.history`) reads as the real worker,
drain and detectors would have left it: what App Home, `metrics`, `chart` and `cost`
show of it in `make demo` must be what those would show of a real day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from bot.metrics.aggregate import WINDOW_SECONDS, summarize
from bot.metrics.store import MetricsStore
from bot.sandbox import history
from bot.store.autoscale_settings import AutoscaleStore
from bot.store.db import aware
from bot.store.models import IncidentOpening, IncidentRow
from bot.worker.detectors import minutes_of
from policies import detectors

NOW = datetime(2026, 12, 4, 7, 57, 35, tzinfo=UTC)  # mid-minute, as a user starts it


@pytest.fixture
def seeded(database):
    # No public URL: the seed's drain, which needs the fake Heroku, is the console's test's.
    config = SimpleNamespace(public_url="")
    services = SimpleNamespace(db=database, metrics=MetricsStore(database), config=config)
    assert history.seed(services, NOW)  # type: ignore[arg-type]
    return services


def test_the_seeded_day_s_latest_decision_is_its_newest_tick(seeded):
    # The scaling steps were stored after a day of ticks: App Home's "Last decision" was the
    # 3-hours-old step, since the newest decision is the newest row, as a worker writes them.
    store = AutoscaleStore(seeded.db)
    latest = store.latest_decisions([history.APP])[history.APP]
    assert NOW - timedelta(minutes=5) <= latest.at < NOW, latest
    day = store.decisions(history.APP, limit=10_000)
    assert [d.at for d in day] == sorted((d.at for d in day), reverse=True)
    assert len({d.at for d in day}) == len(day)  # one decision a tick
    acted = [d for d in day if d.acted]
    assert len(acted) >= 4 and {d.desired > d.actual for d in acted} == {True, False}


def test_the_seeded_autoscaler_steps_follow_the_seeded_queue_time(seeded):
    # Its web dynos had stepped up "p95 queue time above 300 ms" hours before the chart's
    # queue panel showed it above 2 ms, and held steady while it was over the target.
    until = int(NOW.timestamp())
    windows = seeded.metrics.windows(history.APP, until - 25 * 3600, until)
    day = AutoscaleStore(seeded.db).decisions(history.APP, limit=10_000)
    for decision in day:
        queue = summarize(windows, decision.at.timestamp(), 5).queue
        assert queue is not None
        if decision.desired > decision.actual:
            assert queue.p95 > 300, decision
        elif decision.desired < decision.actual:
            assert queue.p95 < 150, decision
        else:
            assert queue.p95 <= 330, decision  # within the policy's 10 % tolerance


def test_the_seeded_slow_incident_is_what_the_detector_finds_in_the_seeded_traffic(seeded):
    # It said "p95 service time above 800 ms" over traffic whose p95 peaked at 180 ms, and
    # the detector only calls a p95 over 2 s slow.
    with seeded.db.session() as session:
        [row] = session.scalars(select(IncidentRow)).all()
        [opening] = session.scalars(select(IncidentOpening)).all()
    first, last = aware(row.first_at), aware(row.last_at)
    since = int(first.timestamp()) - 3600
    minutes = minutes_of(seeded.metrics.windows(history.APP, since, int(last.timestamp()) + 60))
    [event] = detectors.slow(history.APP, minutes, last)
    assert (row.key, row.kind, row.subject, row.detail) == (
        event.key,
        event.kind,
        event.subject,
        event.detail,
    )
    assert detectors.slow(history.APP, minutes, first)
    assert not detectors.slow(history.APP, minutes, first - timedelta(minutes=1))
    assert opening.key == row.key and row.state == "resolved" and opening.resolved


def test_the_seeded_traffic_is_in_ten_second_windows_as_a_drain_stores_it(seeded):
    # One-minute blocks stored as 10-second windows: the last hour's summary, which starts on
    # a 10-second boundary, missed a block (its sparkline ended in ▁, its rate read low).
    until = int(NOW.timestamp())
    windows = seeded.metrics.windows(history.APP, until - 3 * 3600, until)
    starts = [w.start for w in windows]
    assert all(start % WINDOW_SECONDS == 0 for start in starts)
    assert starts == list(range(starts[0], starts[-1] + 1, WINDOW_SECONDS))
    assert starts[-1] + WINDOW_SECONDS <= until < starts[-1] + 2 * WINDOW_SECONDS
    summary = summarize(windows, NOW.timestamp(), 60)
    assert min(summary.per_minute) > 0.8 * max(summary.per_minute), summary.per_minute
    # The web dynos running then served it, as the router spreads requests.
    running = AutoscaleStore(seeded.db).decisions(history.APP, limit=1)[0].actual
    assert len(summary.dynos) == running
