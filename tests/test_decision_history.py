"""The tick's decision history, read incrementally, always says what a full read of the
database would: new decisions appear, old ones age out, a new app or an earlier range is
read whole, and apps the call does not ask for are left out."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from bot.store.autoscale_settings import AutoscaleStore, Decision
from bot.store.db import Database
from bot.worker.decision_history import LIMIT, SCAN_EVERY, DecisionHistory

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


@pytest.fixture
def store(database_url):
    database = Database(database_url)
    yield AutoscaleStore(database)
    database.dispose()


def truth(store: AutoscaleStore, apps: set[str], since: datetime) -> dict[str, list[Decision]]:
    found: dict[str, list[Decision]] = {}
    for _, decision in store.decision_rows(apps, since):
        if len(found.setdefault(decision.app, [])) < LIMIT:
            found[decision.app].append(decision)
    return found


def test_what_it_keeps_matches_a_full_read_tick_after_tick(store):
    history = DecisionHistory(store)  # incremental on SQLite too: the rows here are never deleted
    chance = random.Random(7)
    apps = {"a", "b", "c"}
    now = NOW
    for tick in range(3 * SCAN_EVERY):
        if tick == SCAN_EVERY + 3:
            apps = apps | {"d"}  # a new app is read whole
        if tick == 2 * SCAN_EVERY + 1:
            apps = apps - {"a"}
        store.record_many(
            Decision(app, now, n := chance.randint(1, 5), n + chance.choice((-1, 0, 1)), True, "")
            for app in sorted(apps)
            if chance.random() < 0.7
        )
        now += timedelta(seconds=15)
        assert history.of(apps, now - WINDOW) == truth(store, apps, now - WINDOW), tick
    assert history.of({"b"}, now - WINDOW) == truth(store, {"b"}, now - WINDOW)
    earlier = now - 2 * WINDOW  # a range reaching further back: read whole again
    assert history.of(apps, earlier) == truth(store, apps, earlier)


def test_new_decisions_come_from_new_ids_only(store, monkeypatch):
    history = DecisionHistory(store)
    store.record(Decision("a", NOW, 1, 2, True, ""))
    history.of({"a"}, NOW - WINDOW)
    asked: list[int | None] = []
    rows = store.decision_rows
    monkeypatch.setattr(
        store,
        "decision_rows",
        lambda *args, above=None: asked.append(above) or rows(*args, above=above),
    )
    store.record(Decision("a", NOW + timedelta(seconds=15), 2, 2, False, ""))
    [newest, first] = history.of({"a"}, NOW - WINDOW)["a"]
    assert asked and asked[0] is not None  # not the whole range
    assert (newest.actual, first.actual) == (2, 1)
