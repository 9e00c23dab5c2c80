"""The migrations form one line (every revision has one parent, and exactly one is the head),
and migrating gives the schema the models describe.

Branches merged in parallel each add "the next" migration; two files with the same parent
give Alembic two heads, and `deploybot migrate` then refuses to run. This catches it first.
"""

from __future__ import annotations

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from bot.store.db import _MIGRATIONS


def test_the_migrations_have_one_head_and_no_branch() -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    assert len(scripts.get_heads()) == 1, scripts.get_heads()
    revisions = list(scripts.walk_revisions())
    parents = [r.down_revision for r in revisions]
    assert len(parents) == len(set(parents)), "two migrations share a parent"
    ids = [r.revision for r in revisions]
    assert len(ids) == len(set(ids)), "two migrations share a revision id"


def test_the_reconcile_question_has_an_index_of_its_own(database_url) -> None:
    # Every minute the reconcile job asks for the rows still in doubt, over an audit log
    # that is never pruned: without this index each run read the whole log.
    from datetime import UTC, datetime

    from sqlalchemy import inspect

    from bot.store.audit import AuditLog
    from bot.store.db import Database

    database = Database(database_url)
    try:
        names = {index["name"] for index in inspect(database.engine).get_indexes("audit_log")}
        assert "ix_audit_log_unsettled" in names
        # The planner may use it for the job's own query, as sent: with its parameters
        # bound (on PostgreSQL in a generic plan too, which a prepared statement gets).
        query = AuditLog(database).unsettled_query(datetime.now(UTC), 50)
        with database.engine.connect() as connection:
            compiled = query.compile(dialect=connection.dialect)
            if database.is_sqlite:
                explain = "EXPLAIN QUERY PLAN "
            else:
                explain = "EXPLAIN "
                connection.exec_driver_sql("SET enable_seqscan = off")
                connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            params = compiled.construct_params()
            if compiled.positional:  # SQLite's `?`
                params = tuple(params[name] for name in compiled.positiontup or ())
            plan = connection.exec_driver_sql(explain + str(compiled), params).all()
            if not database.is_sqlite:
                connection.rollback()
        assert "ix_audit_log_unsettled" in " ".join(str(row) for row in plan), plan
    finally:
        database.dispose()


# Made on PostgreSQL only (see the model): SQLite keeps the ids as a JSON array, unindexed.
_POSTGRES_ONLY_INDEXES = {"ix_drain_claims_batch_ids"}


def test_the_migrated_schema_is_the_models_schema(database_url) -> None:
    # A column, index or type added to a model without a migration works in tests that
    # build tables from the models, then fails on Heroku Postgres, which only migrates;
    # this compares the two as Alembic's autogenerate would.
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from bot.store.db import Database
    from bot.store.models import Base

    database = Database(database_url)
    try:
        with database.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        database.dispose()
    if database.is_sqlite:
        differences = [
            d
            for d in differences
            if not (d[0] == "add_index" and d[1].name in _POSTGRES_ONLY_INDEXES)
        ]
    assert differences == []


def _stamp(database_url: str, revision: str) -> None:
    """Mark the migrated database as being at `revision`, as a later release would."""
    from sqlalchemy import text

    from bot.store.db import Database

    database = Database(database_url)
    try:
        with database.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        database.dispose()


def test_the_release_phase_of_a_rollback_leaves_a_newer_database_as_it_is(
    database_url, monkeypatch, capsys
) -> None:
    # `heroku rollback` runs the release phase again, with the older code, against a
    # database the newer release migrated: Alembic's "Can't locate revision" traceback
    # failed that release, and the bot could not be rolled back at all. Migrations are
    # additive, so the older code runs on the newer schema.
    from bot.__main__ import main

    _stamp(database_url, "9999")
    monkeypatch.setattr("bot.__main__.setup_logging", lambda: None)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["migrate"]) == 0
    said = capsys.readouterr().err
    assert "9999" in said and "newer" in said and "Traceback" not in said


@pytest.mark.parametrize("value", ["two", "'2'", ""])
def test_the_release_phase_refuses_a_setting_that_would_stop_the_dynos_and_migrates_nothing(
    tmp_path, monkeypatch, capsys, value
) -> None:
    # `heroku config:set WEB_CONCURRENCY=two` runs the release phase, which had passed:
    # the web dynos then restarted into gunicorn's ValueError traceback, every command
    # timing out. Failing the release phase keeps the running release.
    from bot.__main__ import main
    from bot.store.db import Database

    url = f"sqlite:///{tmp_path / 'release.sqlite3'}"
    monkeypatch.setattr("bot.__main__.setup_logging", lambda: None)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("WEB_CONCURRENCY", value)
    assert main(["migrate"]) == 1
    said = capsys.readouterr().err
    assert f"deploybot: WEB_CONCURRENCY must be a bare whole number like 2, not {value!r}" in said
    assert "this release is not deployed" in said and "Traceback" not in said
    database = Database(url)
    try:
        assert database.needs_migration()
    finally:
        database.dispose()
    monkeypatch.setenv("WEB_CONCURRENCY", "2")
    assert main(["migrate"]) == 0


def test_migrate_refuses_a_revision_no_release_made_in_a_sentence(
    database_url, monkeypatch, capsys
) -> None:
    # Another app's Alembic database (DATABASE_URL pointing at the wrong add-on).
    from bot.__main__ import main

    _stamp(database_url, "ae1027a6acf")
    monkeypatch.setattr("bot.__main__.setup_logging", lambda: None)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["migrate"]) == 2
    said = capsys.readouterr().err
    assert "ae1027a6acf" in said and "DATABASE_URL" in said


def test_the_older_code_reads_a_newer_database_instead_of_asking_for_a_migration(
    database_url, monkeypatch, capsys
) -> None:
    # After a rollback the older code runs on the newer, additive schema: `audit` had
    # said "no audit trail yet: run `python -m bot migrate`", and a SQLite web process
    # had migrated at start into Alembic's traceback.
    from bot.__main__ import main
    from bot.config import Config
    from bot.services import Services

    _stamp(database_url, "9999")
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["audit"]) == 0, capsys.readouterr().err
    Services(Config(database_url=database_url)).migrate_sqlite_if_behind()


def test_a_migration_waiting_for_a_lock_gives_way_instead_of_stalling_the_dynos(
    database_url, monkeypatch
) -> None:
    # A release that ALTERs a table waits for every transaction reading it (a scheduled
    # pg:backups capture reads each table for minutes), and while it waits every query the
    # running dynos send to that table queues behind it: the bot stalled until the backup
    # ended. It now waits a moment at a time, giving way in between, and tries again.
    import threading
    import time

    import pytest
    from alembic import command
    from sqlalchemy import text

    from bot.store import db as db_module
    from bot.store.db import Database, _alembic_config

    database = Database(database_url)
    if database.is_sqlite:
        database.dispose()
        pytest.skip("SQLite has no lock queue: one writer at a time")
    monkeypatch.setattr(db_module, "MIGRATION_LOCK_TIMEOUT_MS", 200, raising=False)
    monkeypatch.setattr(db_module, "MIGRATION_RETRY_SECONDS", 0.3, raising=False)
    config = _alembic_config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0020")  # the release before the one that alters it
    holder = database.engine.connect()
    reader = database.engine.connect()
    try:
        holder.execute(text("SELECT count(*) FROM webhook_subscriptions"))  # stays open
        migrating = threading.Thread(target=database.migrate)
        migrating.start()
        time.sleep(0.5)
        reader.exec_driver_sql("SET statement_timeout = 2000")
        started = time.monotonic()
        reader.execute(text("SELECT count(*) FROM webhook_subscriptions")).scalar()
        assert time.monotonic() - started < 1.0
        reader.rollback()
        holder.rollback()  # the backup ends
        migrating.join(timeout=30)
        assert not migrating.is_alive()
        assert not database.needs_migration()
    finally:
        holder.close()
        reader.close()
        database.dispose()


def test_a_release_blocked_on_every_try_changes_nothing_and_says_what_to_do(
    database_url, monkeypatch, capsys
) -> None:
    import pytest
    from alembic import command
    from sqlalchemy import text

    from bot.__main__ import main
    from bot.store import db as db_module
    from bot.store.db import Database, _alembic_config

    database = Database(database_url)
    if database.is_sqlite:
        database.dispose()
        pytest.skip("SQLite has no lock queue: one writer at a time")
    monkeypatch.setattr(db_module, "MIGRATION_LOCK_TIMEOUT_MS", 100)
    monkeypatch.setattr(db_module, "MIGRATION_RETRY_SECONDS", 0.1)
    monkeypatch.setattr(db_module, "MIGRATION_ATTEMPTS", 2)
    monkeypatch.setattr("bot.__main__.setup_logging", lambda: None)
    monkeypatch.setenv("DATABASE_URL", database_url)
    config = _alembic_config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0020")
    holder = database.engine.connect()
    try:
        holder.execute(text("SELECT count(*) FROM webhook_subscriptions"))
        assert main(["migrate"]) == 1
        assert "heroku releases:retry" in capsys.readouterr().err
        holder.rollback()
        assert database.schema_state()[:2] == ("behind", "0020")  # all or nothing
    finally:
        holder.close()
        database.dispose()


def test_incidents_the_older_code_wrote_in_the_release_window_leave_openings_true(
    database,
) -> None:
    # Migration 0020 copied each incident's opening once; the worker still running the
    # older code then opens and resolves incidents in `incidents` alone until it is
    # replaced (or for days, after a rollback). One it resolved had stayed "open" in
    # `incident_openings` for good: listed in every later digest, never forgotten. One it
    # opened had no opening at all once the newer code took over.
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from bot.store.incidents import Alerts
    from policies.incidents import Event

    alerts = Alerts(database)
    day = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    nowhere = lambda app: None  # noqa: E731
    alerts.record([Event("myapp", "crash", "web", day)], day, nowhere)
    alerts.record([Event("other-app", "crash", "web", day)], day, nowhere)  # resolved below
    alerts.record([Event("third-app", "crash", "web", day)], day, nowhere)
    with database.engine.begin() as connection:  # the older code, in the release window
        connection.execute(
            text("UPDATE incidents SET state = 'resolved' WHERE app IN ('myapp', 'third-app')")
        )
        connection.execute(text("DELETE FROM incident_openings WHERE app = 'other-app'"))
    later = day + timedelta(days=1)
    alerts.record([Event("myapp", "crash", "web", later)], later, nowhere)  # reopens
    alerts.record([], later + timedelta(minutes=11), nowhere)  # both resolve
    week = day + timedelta(days=7)
    assert alerts.openings("myapp", week, week + timedelta(days=1)) == []
    assert alerts.openings("third-app", week, week + timedelta(days=1)) == []
    assert [o.opened_at.day for o in alerts.openings("other-app", day, later)] == [1]
