"""bot.store.drain_claims: a Logplex batch id counts once, in any process, with one row per
claim group; overlapping claims made at the same moment by two connections or two processes
split the ids between them, none counted twice; retention forgets groups past the horizon."""

from __future__ import annotations

import multiprocessing
import os
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, select, text

from bot.store.db import Database, normalize_url
from bot.store.drain_claims import KEEP, MAX_IDS, DrainClaims
from bot.store.models import DrainClaim
from tests.conftest import _postgres_url

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def rows(database: Database) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).select_from(DrainClaim)) or 0)


def test_a_retried_batch_counts_once_and_a_group_is_one_row(database):
    claims = DrainClaims(database)
    group = [("myapp", "f-1"), ("myapp", "f-2"), ("other", "f-1"), ("myapp", "f-1")]
    assert claims.claim(group, NOW) == {("myapp", "f-1"), ("myapp", "f-2"), ("other", "f-1")}
    assert rows(database) == 1  # three batches of two apps: one row
    assert claims.claim([("myapp", "f-1")], NOW) == set()  # Logplex's retry
    assert claims.claim([("other", "f-1"), ("myapp", "f-2")], NOW) == set()
    assert rows(database) == 1  # a claim that wins nothing writes nothing


def test_a_group_partly_overlapping_past_groups_counts_only_its_new_ids(database):
    claims = DrainClaims(database)
    assert claims.claim([("myapp", f"f-{i}") for i in range(5)], NOW) == {
        ("myapp", f"f-{i}") for i in range(5)
    }
    assert claims.claim([("myapp", "f-7")], NOW) == {("myapp", "f-7")}
    won = claims.claim([("myapp", f"f-{i}") for i in range(3, 10)], NOW)
    assert won == {("myapp", "f-5"), ("myapp", "f-6"), ("myapp", "f-8"), ("myapp", "f-9")}
    assert rows(database) == 3


def test_a_group_past_one_rows_size_is_refused(database):
    with pytest.raises(ValueError):
        DrainClaims(database).claim([("myapp", f"f-{i}") for i in range(MAX_IDS + 1)], NOW)


def test_retention_forgets_groups_past_the_horizon_and_only_those(database):
    claims = DrainClaims(database)
    claims.claim([("myapp", "old")], NOW - KEEP - timedelta(minutes=1))
    claims.claim([("myapp", "recent")], NOW - KEEP + timedelta(minutes=1))
    assert claims.forget_older_than(NOW - KEEP) == 1
    assert rows(database) == 1
    assert claims.claim([("myapp", "old"), ("myapp", "recent")], NOW) == {("myapp", "old")}


def test_the_workers_retention_job_prunes_claims(config):
    from bot.worker.main import Worker

    worker = Worker(config)
    now = datetime.now(UTC)  # the job reads the clock; the ages below are relative to it
    worker.drain_claims.claim([("myapp", "old")], now - KEEP - timedelta(minutes=5))
    worker.drain_claims.claim([("myapp", "recent")], now - KEEP + timedelta(minutes=5))
    assert worker.forget_request_keys() == 1
    assert rows(worker.db) == 1
    worker.db.dispose()


class Paused:
    """Holds one connection's claim after its INSERT ran and before its commit: the moment
    a second claim would wrongly see none of its ids taken, were nothing in the way."""

    def __init__(self, database: Database) -> None:
        self.inserted = threading.Event()
        self.go_on = threading.Event()
        event.listen(database.engine, "after_cursor_execute", self._after)

    def _after(self, conn, cursor, statement, *args: Any) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO drain_claims"):
            self.inserted.set()
            assert self.go_on.wait(timeout=30)


def backend_pids(database: Database) -> list[int]:
    """The PostgreSQL backend of each statement `database` runs, in order."""
    pids: list[int] = []

    def seen(conn, cursor, *args: Any) -> None:  # type: ignore[no-untyped-def]
        pids.append(cursor.connection.info.backend_pid)

    event.listen(database.engine, "before_cursor_execute", seen)
    return pids


def waiting_for_a_lock(database: Database, pid: int) -> bool:
    """True while backend `pid` waits for a lock (PostgreSQL)."""
    with database.engine.connect() as connection:
        query = text("SELECT count(*) FROM pg_locks WHERE pid = :pid AND NOT granted")
        return bool(connection.scalar(query, {"pid": pid}))


def test_two_connections_claiming_overlapping_ids_at_once_share_them_out(database_url):
    first, second, watcher = (Database(database_url) for _ in range(3))
    try:
        paused = Paused(first)
        pids = [] if watcher.is_sqlite else backend_pids(second)
        got: dict[str, set[tuple[str, str]]] = {}
        a = threading.Thread(
            target=lambda: got.update(
                a=DrainClaims(first).claim([("myapp", f"f-{i}") for i in range(4)], NOW)
            )
        )
        a.start()
        assert paused.inserted.wait(timeout=30)  # the first claim's row, not committed
        b = threading.Thread(
            target=lambda: got.update(
                b=DrainClaims(second).claim([("myapp", f"f-{i}") for i in range(2, 6)], NOW)
            )
        )
        b.start()
        if watcher.is_sqlite:
            b.join(timeout=0.5)  # SQLite: B waits on the writer lock (busy_timeout)
        else:
            # B must be waiting on the claim lock before A may commit: poll until it is.
            for _ in range(600):
                if not b.is_alive() or (pids and waiting_for_a_lock(watcher, pids[-1])):
                    break
                time.sleep(0.05)
            assert b.is_alive(), "the second claim did not wait for the first"
        paused.go_on.set()
        a.join(timeout=30)
        b.join(timeout=30)
        assert got["a"] == {("myapp", f"f-{i}") for i in range(4)}
        assert got["b"] == {("myapp", "f-4"), ("myapp", "f-5")}  # f-2, f-3 were A's
    finally:
        for database in (first, second, watcher):
            database.dispose()


def _claim_in_a_process(url: str, groups: list[list[str]], start: Any, out: Any) -> None:
    database = Database(url)
    try:
        claims = DrainClaims(database)
        database.ping()  # connected before the start, so both begin claiming together
        start.wait(timeout=60)
        won: list[str] = []
        for group in groups:
            won += [frame for _, frame in claims.claim([("myapp", f) for f in group], NOW)]
        out.put(won)
    finally:
        database.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A migrated schema of its own on TEST_DATABASE_URL's server (PostgreSQL only)."""
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("TEST_DATABASE_URL is not set")
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(normalize_url(os.environ["TEST_DATABASE_URL"]))
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        database = Database(_postgres_url(schema))
        database.migrate()
        database.dispose()
        yield _postgres_url(schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


@pytest.mark.postgres
def test_two_processes_claiming_the_same_ids_count_each_once(postgres_url):
    ids = [f"f-{i}" for i in range(3000)]
    # The same ids in overlapping groups, as two dynos would get a batch and its retry in
    # different company; both move through them at the same pace, so every claim of one
    # overlaps the other's latest.
    groups_a = [ids[i : i + 20] for i in range(0, len(ids), 10)]
    groups_b = [ids[max(i - 5, 0) : i + 15] for i in range(0, len(ids), 10)]
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(2), context.Queue()
    processes = [
        context.Process(target=_claim_in_a_process, args=(postgres_url, groups, start, out))
        for groups in (groups_a, groups_b)
    ]
    for process in processes:
        process.start()
    won = [out.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    assert all(process.exitcode == 0 for process in processes)
    # Every id once, none twice. Which process wins which ids is the scheduler's business:
    # on a loaded machine one may run through all its groups before the other starts, so
    # that both win some is not asserted (the two-connection test above pins the waiting).
    assert sorted(won[0] + won[1]) == sorted(ids)
