"""Drain batch ids are claimed in groups: one commit for the POSTs that arrive together,
and still exactly one winner per id, in any process."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from bot.store.db import Database
from bot.store.request_keys import GroupClaims, RequestKeys

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class CountingKeys(RequestKeys):
    """Counts the commits, and holds each one open a moment so claims pile up behind it."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.commits = 0
        self.entered = threading.Event()

    def claim_many(self, keys, now):  # type: ignore[no-untyped-def]
        self.commits += 1
        self.entered.set()
        time.sleep(0.05)
        return super().claim_many(keys, now)


@pytest.fixture
def keys(database_url):
    database = Database(database_url)
    yield CountingKeys(database)
    database.dispose()


def test_claims_made_together_share_a_commit_and_each_id_wins_once(keys):
    claims = GroupClaims(keys, lambda: NOW)
    names = [f"drain:myapp:{i % 20}" for i in range(60)]  # each id POSTed three times
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(claims.claim, names))
    assert sum(results) == 20
    assert {n for n, won in zip(names, results, strict=True) if won} == set(names)
    assert keys.commits < 20


def test_another_process_claim_is_respected(keys):
    assert keys.claim("drain:myapp:frame-1", NOW)  # another dyno got there first
    claims = GroupClaims(keys, lambda: NOW)
    assert not claims.claim("drain:myapp:frame-1")
    assert claims.claim("drain:myapp:frame-2")
