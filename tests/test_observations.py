"""What Heroku's webhooks reported, kept newest-first per app, kind and subject."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.store.db import Database
from bot.store.observations import Observation, Observations

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def observations(database_url):
    database = Database(database_url)
    database.migrate()
    yield Observations(database)
    database.dispose()


def test_the_newest_observation_wins_whatever_the_delivery_order(observations):
    assert observations.record(Observation("myapp", "formation", "web", 3, T0))
    # A retried, older delivery arrives late: it must not undo the newer one.
    assert not observations.record(
        Observation("myapp", "formation", "web", 1, T0 - timedelta(seconds=5))
    )
    assert observations.record(Observation("myapp", "formation", "web", 5, T0 + timedelta(1)))
    [seen] = observations.since(None, "myapp")
    assert (seen.value, seen.observed_at) == (5, T0 + timedelta(1))


def test_since_returns_what_changed_after_a_moment(observations):
    observations.record(Observation("myapp", "formation", "web", 3, T0))
    observations.record(Observation("myapp", "release", "current", 42, T0 + timedelta(minutes=1)))
    observations.record(Observation("other", "formation", "web", 2, T0 + timedelta(minutes=2)))
    assert [o.app for o in observations.since(T0)] == ["myapp", "other"]
    assert observations.last_release_at("myapp") == T0 + timedelta(minutes=1)
    assert observations.last_release_at("other") is None


def test_an_unknown_kind_is_refused(observations):
    with pytest.raises(ValueError, match="kind must be one of"):
        observations.record(Observation("myapp", "deploy", "x", 1, T0))
