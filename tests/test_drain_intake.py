"""The drain intake parses on the request thread and claims batch ids on one thread of its
own: many POSTs share a commit, each id still counts once in any process, a failed claim
still counts its batch, and nothing queued is lost at shutdown."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from bot.store.db import Database
from bot.store.drain_claims import DrainClaims
from bot.web.log_drain import DrainIntake
from tests.test_drain import stream

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HEADERS = {"Content-Type": "application/logplex-1"}


class CountingClaims(DrainClaims):
    """Counts the commits; `fail` makes every claim raise, as a database outage would."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.commits = 0
        self.fail = False
        self.gate = threading.Event()  # holds the first claim until the rest have queued
        self.gate.set()

    def claim(self, batches, now):  # type: ignore[no-untyped-def]
        self.gate.wait(timeout=10)
        self.commits += 1
        if self.fail:
            raise ConnectionError("the database went away")
        return super().claim(batches, now)


@pytest.fixture
def intake(database_url):
    database = Database(database_url)
    claims = CountingClaims(database)
    drains = DrainIntake(database, claims)
    yield drains, claims
    drains.close()  # its claimer thread, before the engine it uses goes
    database.dispose()


def body(n: int, seed: int) -> bytes:
    return "".join(stream(n, seed=seed)).encode()


def counted(intake: DrainIntake) -> int:
    intake.settle()
    return sum(window.requests for window in intake.aggregator.drain())


def test_batches_share_commits_and_each_id_counts_once_in_any_process(intake):
    intake, claims = intake
    # Another dyno counted this batch already.
    assert claims.claim([("myapp", "taken")], NOW) == {("myapp", "taken")}
    claims.commits = 0
    claims.gate.clear()
    ids = [f"f-{i % 20}" for i in range(60)] + ["taken"]  # each id POSTed three times
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda frame: intake.receive(
                    "myapp", {**HEADERS, "Logplex-Frame-Id": frame}, body(10, seed=1)
                ),
                ids,
            )
        )
        claims.gate.set()
    assert counted(intake) == 20 * 10
    assert claims.commits < 20  # the POSTs queued behind the first claim shared a commit


def test_a_batch_whose_claim_fails_is_still_counted(intake, caplog):
    intake, claims = intake
    claims.fail = True
    with caplog.at_level(logging.WARNING):
        intake.receive("myapp", {**HEADERS, "Logplex-Frame-Id": "f-1"}, body(7, seed=2))
        assert counted(intake) == 7  # answered 204 already: Logplex will not resend it
    assert "drain batch claims failed" in caplog.text


def test_a_batch_without_an_id_counts_at_once_and_close_loses_nothing(intake):
    intake, _ = intake
    intake.receive("myapp", HEADERS, body(5, seed=3))
    assert sum(w.requests for w in intake.aggregator.drain()) == 5
    intake.receive("myapp", {**HEADERS, "Logplex-Frame-Id": "f-1"}, body(4, seed=4))
    intake.close()
    intake.receive("myapp", {**HEADERS, "Logplex-Frame-Id": "f-2"}, body(3, seed=5))
    assert counted(intake) == 4 + 3  # the late one is claimed on the flushing thread
