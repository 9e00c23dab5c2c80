"""bot.worker.lease: one holder at a time per database (and per schema on PostgreSQL)."""

from __future__ import annotations

import os
import secrets

import pytest
from sqlalchemy import create_engine, text

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
