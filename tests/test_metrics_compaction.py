"""Compaction works on what arrived since its last run: it folds new parts once, writes each
minute's request count once as a plain number, rolls up only windows that crossed the
48-hour line, and leaves standing history alone."""

from __future__ import annotations

import pytest

from bot.metrics.aggregate import Window, summarize
from bot.metrics.store import KEEP_FINE, KEEP_MINUTES, MetricsStore
from bot.store.db import Database
from policies.sketch import Sketch

NOW = 1_700_000_000 // 60 * 60  # a whole minute


def part(start: int, requests: int = 6, dyno: str = "web.1", app: str = "myapp") -> Window:
    service = Sketch()
    service.add_counts({20.0 + requests: requests})
    return Window(app=app, start=start, requests=requests, dynos={dyno: requests}, service=service)


@pytest.fixture
def store(database_url):
    database = Database(database_url)
    yield MetricsStore(database)
    database.dispose()


def test_a_second_run_without_new_data_takes_nothing(store):
    minute = NOW - 600
    store.save([part(minute + s, dyno=d) for s in range(0, 60, 10) for d in ("web.1", "web.2")])
    first = store.compact(NOW)
    assert first["parts_taken"] == 12 and first["fine_written"] == 6
    assert store.compact(NOW) == {
        "parts_taken": 0,
        "fine_written": 0,
        "rolled_up": 0,
        "forgotten": 0,
    }
    assert store.minutes("myapp", [(minute // 60, minute // 60 + 1)]) == {minute // 60: 72.0}
    windows = store.windows("myapp", minute, minute + 60)
    assert [w.requests for w in windows] == [12] * 6
    assert windows[0].dynos == {"web.1": 6, "web.2": 6}


def test_new_parts_are_folded_and_old_ones_left_alone(store):
    old, new = NOW - 3600, NOW - 300
    store.save([part(old), part(old, dyno="web.2")])
    store.compact(NOW)
    store.save([part(new), part(new, dyno="web.2")])
    done = store.compact(NOW)
    assert done["parts_taken"] == 2 and done["fine_written"] == 1
    assert store.rows("myapp") == 2


def test_unsettled_minutes_wait_for_a_later_run(store):
    store.save([part(NOW - 30)])
    assert store.compact(NOW)["parts_taken"] == 0
    assert store.compact(NOW + 180)["parts_taken"] == 1


def test_a_late_part_adds_to_its_minute_and_reads_back_merged(store):
    start = NOW - 600
    store.save([part(start, requests=5)])
    store.compact(NOW)
    store.save([part(start, requests=7, dyno="web.2")])  # Heroku delivered it late
    store.compact(NOW + 60)
    assert store.minutes("myapp", [(start // 60, start // 60 + 1)]) == {start // 60: 12.0}
    [window] = store.windows("myapp", start, start + 10)
    assert window.requests == 12 and window.dynos == {"web.1": 5, "web.2": 7}


def test_fine_windows_past_48_hours_roll_up_once(store):
    minute = NOW - 3600
    store.save([part(minute + s) for s in range(0, 60, 10)])
    store.compact(NOW)
    later = minute + KEEP_FINE + 120
    done = store.compact(later)
    assert done["rolled_up"] == 1 and store.rows("myapp") == 1
    assert store.compact(later)["rolled_up"] == 0
    [window] = store.windows("myapp", minute, minute + 60)
    whole = summarize([part(minute + s) for s in range(0, 60, 10)], minute + 60, 1)
    assert window.requests == 36
    assert summarize([window], minute + 60, 1).service == whole.service


def test_minute_counts_are_forgotten_after_their_keeping(store):
    start = NOW - 600
    store.save([part(start)])
    store.compact(NOW)
    assert store.compact(start + KEEP_MINUTES + 60)["forgotten"] >= 1
    assert store.minutes("myapp", [(start // 60, start // 60 + 1)]) == {}


def test_recent_traffic_reads_new_rows_only_and_survives_a_fold(store):
    from bot.metrics.recent import RecentTraffic

    recent = RecentTraffic(store._db)
    minute = NOW - 600
    store.save([part(minute + s, dyno=d) for s in range(0, 60, 10) for d in ("web.1", "web.2")])
    [before] = recent.minutes({"myapp"}, minute, minute + 60)["myapp"]
    assert before.requests == 72 and before.dynos == {"web.1", "web.2"}
    store.save([part(minute + 50, requests=8, dyno="web.3")])  # a later flush
    [grown] = recent.minutes({"myapp"}, minute, minute + 60)["myapp"]
    assert grown.requests == 80 and len(grown.ids) == 13
    store.compact(NOW)  # parts become one folded row per window: rebuilt, same counts
    [after] = recent.minutes({"myapp"}, minute, minute + 60)["myapp"]
    assert after.requests == 80 and len(after.ids) == 6
    assert after.service.quantile(0.95) == grown.service.quantile(0.95)
    assert recent.minutes({"myapp"}, minute + 60, minute + 120) == {"myapp": []}


def test_a_past_minute_is_sealed_and_a_late_part_rebuilds_it(store):
    from bot.metrics.recent import RecentTraffic

    recent = RecentTraffic(store._db)
    minute = NOW - 600
    store.save([part(minute + s, dyno="web.1") for s in range(0, 60, 10)])
    [open_] = recent.minutes({"myapp"}, minute, minute + 60)["myapp"]
    assert not open_.sealed and open_.service.count == 36
    p95s = open_.p95s()
    [sealed] = recent.minutes({"myapp"}, minute, minute + 180)["myapp"]  # a minute past its end
    assert sealed.sealed and sealed.service.count == 0 and sealed.p95s() == p95s
    store.save([part(minute + 50, requests=400, dyno="web.2")])  # a very late flush
    [rebuilt] = recent.minutes({"myapp"}, minute, minute + 180)["myapp"]
    assert rebuilt.requests == 36 + 400 and rebuilt.dynos == {"web.1", "web.2"}
    assert rebuilt.p95s()[1] > p95s[1]  # the late part's slow requests count


def test_recent_traffic_finds_a_row_committed_after_a_higher_one(store):
    # PostgreSQL hands out ids at insert: a flush that commits late can sit below an id the
    # last tick already read. The next tick still asks from below it.
    from sqlalchemy import insert

    from bot.metrics.recent import RecentTraffic
    from bot.store.models import MetricWindow

    if store._db.is_sqlite:
        pytest.skip("SQLite lets one transaction write at a time, and its reader reads all ids")
    recent = RecentTraffic(store._db)
    minute = NOW - 120
    store.save([part(minute, dyno="web.1")])
    assert recent.minutes({"myapp"}, minute, minute + 60)["myapp"][0].requests == 6
    slow = store._db.engine.connect()
    try:
        transaction = slow.begin()
        row = {"app": "myapp", "resolution": 10, "start": minute + 10, "folded": False}
        slow.execute(
            insert(MetricWindow.__table__), [{**row, "data": part(minute + 10, 5).to_dict()}]
        )
        store.save([part(minute + 20, requests=7, dyno="web.2")])  # a higher id, committed first
        assert recent.minutes({"myapp"}, minute, minute + 60)["myapp"][0].requests == 13
        transaction.commit()
    finally:
        slow.close()
    [whole] = recent.minutes({"myapp"}, minute, minute + 60)["myapp"]
    assert whole.requests == 18 and sorted(whole.windows) == [minute, minute + 10, minute + 20]


def test_recent_traffic_reads_windows_past_the_range_once_it_reaches_them(store):
    from bot.metrics.recent import RecentTraffic

    recent = RecentTraffic(store._db)
    minute = NOW - 120
    store.save([part(minute + s) for s in range(0, 60, 10)])
    [first] = recent.minutes({"myapp"}, minute, minute + 30)["myapp"]
    assert first.requests == 18  # the windows at 30, 40 and 50 s are not in range yet
    [grown] = recent.minutes({"myapp"}, minute, minute + 50)["myapp"]
    assert grown.requests == 30 and max(grown.windows) == minute + 40
    store.save([part(minute + 10, requests=1, app="other")])  # a new app: read whole
    found = recent.minutes({"myapp", "other"}, minute, minute + 60)
    assert found["myapp"][0].requests == 36 and found["other"][0].requests == 1
    assert recent.minutes({"other"}, minute, minute + 60) == {"other": [found["other"][0]]}


def test_a_minutes_p95s_follow_what_is_added_to_it():
    from bot.metrics.recent import MinuteTraffic

    minute = MinuteTraffic(NOW - 600)
    assert minute.p95s() == (None, None)
    minute.add(part(NOW - 600, requests=10).to_dict())
    queue, service = minute.p95s()
    assert queue is None and service == pytest.approx(30.0, rel=0.01)
    minute.add(part(NOW - 590, requests=400).to_dict())  # worked out again, not the cache
    assert minute.p95s()[1] == pytest.approx(420.0, rel=0.01)
    assert minute.p95s()[1] == minute.service.quantile(0.95)


def test_compaction_takes_the_same_rows_however_much_history_stands(store):
    # What makes its time independent of history: each run takes one minute's new parts,
    # and the minute crossing 48 hours, whatever else is stored.
    for days in (0, 3):
        for day in range(1, days + 1):  # older history, already folded or rolled up
            store.save([part(NOW - KEEP_FINE - day * 86400)])
        store.compact(NOW - 120)
        minute = NOW // 60 * 60 - 240
        store.save([part(minute + s, dyno=d) for s in range(0, 60, 10) for d in ("a", "b")])
        done = store.compact(NOW)
        assert done["parts_taken"] == 12 and done["fine_written"] == 6
