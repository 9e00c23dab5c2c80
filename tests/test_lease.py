"""bot.worker.lease: one holder at a time per database (and per schema on PostgreSQL)."""

from __future__ import annotations

import os
import secrets

import pytest
from sqlalchemy import create_engine, event, text

from bot.store.db import Database, normalize_url
from bot.worker.lease import Lease
from tests.conftest import _postgres_url


def test_one_holder_at_a_time_and_the_next_after_release(database_url):
    first, second = Database(database_url), Database(database_url)
    leader, waiting = Lease(first), Lease(second)
    try:
        assert leader.try_acquire() and leader.still_held()
        assert not waiting.try_acquire()
        leader.release()
        assert not leader.held and waiting.try_acquire()
    finally:
        leader.release(), waiting.release()
        first.dispose(), second.dispose()


@pytest.mark.postgres
def test_deployments_in_schemas_of_their_own_each_have_a_leader():
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("TEST_DATABASE_URL is not set")
    admin = create_engine(normalize_url(os.environ["TEST_DATABASE_URL"]))
    schemas = [f"t_{secrets.token_hex(6)}" for _ in range(2)]
    with admin.begin() as connection:
        for schema in schemas:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    databases = [Database(_postgres_url(schema)) for schema in schemas]
    leases = [Lease(database) for database in databases]
    try:
        assert all(lease.try_acquire() for lease in leases)
    finally:
        for lease, database in zip(leases, databases, strict=True):
            lease.release()
            database.dispose()
        with admin.begin() as connection:
            for schema in schemas:
                connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.mark.postgres
def test_a_leader_whose_session_dies_sees_it_and_can_lead_again():
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("TEST_DATABASE_URL is not set")
    database = Database(os.environ["TEST_DATABASE_URL"])
    admin = create_engine(normalize_url(os.environ["TEST_DATABASE_URL"]))
    lease = Lease(database)
    try:
        assert lease.try_acquire()
        pid = lease._connection.execute(text("SELECT pg_backend_pid()")).scalar()
        lease._connection.commit()
        # What a database restart does to the leader's session, and with it the lock.
        with admin.begin() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        assert not lease.still_held() and not lease.held
        assert lease.try_acquire() and lease.still_held()
    finally:
        lease.release()
        database.dispose()
        admin.dispose()


def test_an_unreachable_database_is_not_the_lease_this_time(caplog):
    # Nothing listens on port 1: the connect fails as it does while PostgreSQL restarts.
    database = Database("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")
    try:
        with caplog.at_level("WARNING", logger="bot.worker.lease"):
            assert Lease(database).try_acquire() is False
        [said] = caplog.records
        assert said.getMessage() == "lease: database unreachable"
        assert said.error == "OperationalError"  # the class, never the URL
    finally:
        database.dispose()


class _Lease:
    """A lease that is away, then held, then lost with its session, then held again."""

    def __init__(self, stopping) -> None:
        self.acquires = [False, True, True]
        self.checks = [True, False, True]
        self.held = False
        self.stopping = stopping

    def try_acquire(self) -> bool:
        self.held = self.acquires.pop(0)
        return self.held

    def still_held(self) -> bool:
        self.held = self.checks.pop(0)
        if not self.checks:
            self.stopping.set()  # a SIGTERM while leading the second time
        return self.held

    def release(self) -> None:
        self.held = False


class _Scheduler:
    def __init__(self, runs: list[str]) -> None:
        self.runs = runs

    def start(self) -> None:
        self.runs.append("start")

    def shutdown(self, wait: bool) -> None:
        self.runs.append("shutdown")


def test_the_worker_rides_out_a_lost_lease_in_one_process(config, monkeypatch):
    from bot.worker.main import Worker

    monkeypatch.setenv("DEPLOYBOT_LEASE_RETRY_SECONDS", "0.01")
    monkeypatch.setenv("DEPLOYBOT_LEASE_CHECK_SECONDS", "0.01")
    worker, runs = Worker(config), []
    worker.lease = _Lease(worker.stopping)
    monkeypatch.setattr(worker, "scheduler", lambda: _Scheduler(runs))
    # It had exited 1 at the first lost check, and crashed while the database was away.
    assert worker.run() == 0
    assert runs == ["start", "shutdown", "start", "shutdown"]
    assert worker.lease.acquires == [] and worker.lease.checks == []


@pytest.mark.postgres
def test_a_session_that_dies_as_the_lease_is_asked_for_is_not_the_lease_this_time(caplog):
    """A failover between the pool handing out a connection and the lock's query: the
    query fails. It had raised out of the worker's wait for the lease and ended the process,
    which the waiting worker promises not to do (Heroku's crash cool-off follows)."""
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("TEST_DATABASE_URL is not set")
    database = Database(os.environ["TEST_DATABASE_URL"])
    admin = create_engine(normalize_url(os.environ["TEST_DATABASE_URL"]))

    def dies(connection, *_):  # type: ignore[no-untyped-def]
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        connection.rollback()
        with admin.begin() as own:
            own.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})

    event.listen(database.engine, "engine_connect", dies)
    lease = Lease(database)
    try:
        with caplog.at_level("WARNING", logger="bot.worker.lease"):
            assert lease.try_acquire() is False
        assert [r.getMessage() for r in caplog.records] == ["lease: database unreachable"]
        assert not lease.held
        event.remove(database.engine, "engine_connect", dies)
        assert lease.try_acquire() and lease.still_held()
        # And at SIGTERM, with the database gone meanwhile: letting go needs no session (the
        # lock went with it); it had raised, ending the worker with a traceback.
        pid = lease._connection.execute(text("SELECT pg_backend_pid()")).scalar()
        lease._connection.commit()
        with admin.begin() as own:
            own.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        lease.release()
        assert not lease.held
    finally:
        lease.release()
        database.dispose()
        admin.dispose()
