"""Database connection: `DATABASE_URL` as Heroku sets it, or a SQLite file by default.

Every process (each gunicorn worker, the worker dyno, the release phase) opens at most
`DEPLOYBOT_DB_POOL_SIZE` connections (default 3, no overflow), so the whole app's share of
the server is known in advance: web dynos * WEB_CONCURRENCY * pool + the worker's pool +
one for the release phase. `docs/operations.md` has the arithmetic for each plan.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from bot.config import ConfigError, count_setting

if TYPE_CHECKING:
    from alembic.config import Config

DEFAULT_SQLITE_URL = "sqlite:///deploybot.sqlite3"
POOL_SIZE_ENV = "DEPLOYBOT_DB_POOL_SIZE"
# 1 web dyno × 2 gunicorn workers × 3 + worker 3 + release 1 = 10 of Essential-0's 20:
# the other 10 cover a restart, when old and new dynos overlap, and a `heroku pg:psql`.
DEFAULT_POOL_SIZE = 3
POOL_TIMEOUT = 30  # seconds a thread waits for a free connection before it errors
log = logging.getLogger(__name__)
_MIGRATIONS = Path(__file__).parent / "migrations"
# How long a migration waits for each table lock before it gives way (then pauses and
# tries again): the running dynos' queries on that table wait behind it meanwhile.
MIGRATION_LOCK_TIMEOUT_MS = 2000
MIGRATION_RETRY_SECONDS = 5.0
MIGRATION_ATTEMPTS = 12
_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's lock_timeout


def foreign_schema(revision: str) -> str:
    """What to say of a database at a revision no release made: `migrate`, the worker and
    the web dyno refuse it alike."""
    return (
        f"the database at DATABASE_URL is at revision {revision}, which no deploybot release "
        "made: it is another app's database. Check DATABASE_URL."
    )


def schema_behind(meanwhile: str) -> str:
    """What the web and worker processes log of a schema no release phase migrated yet;
    `meanwhile` says what fails or waits until `migrate` runs."""
    return (
        f"database schema is behind this release: {meanwhile} until `python -m bot migrate` "
        "runs (the release phase; by hand, `heroku run python -m bot migrate`)"
    )


# After `heroku rollback`: both processes run on it.
SCHEMA_NEWER = (
    "database schema is newer than this release (a rollback?): running on it, "
    "as the migrations only add"
)


class MigrationBlocked(Exception):
    """The migrations gave way to another connection's lock on every try."""


def normalize_url(url: str | None) -> str:
    """Heroku sets `postgres://…`, which SQLAlchemy 2 refuses; use the psycopg 3 driver."""
    if not url:
        return DEFAULT_SQLITE_URL
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str | None, size: int | None = None) -> Engine:
    """`size`: the pool's connections on PostgreSQL (default `pool_size()`)."""
    url = normalize_url(url)
    # A failed statement's message would otherwise quote its values, and some are secrets
    # (a webhook secret, a drain token, a config value awaiting confirmation) that the
    # error's log line would carry.
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": 15, "check_same_thread": False},
            hide_parameters=True,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No overflow: the pool is the process's whole share of the server's connections;
    # a busy moment waits for a free one instead of opening a connection the plan lacks.
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=size or pool_size(),
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT,
        hide_parameters=True,
    )


def pool_size(env: Mapping[str, str] | None = None) -> int:
    """Connections one process may hold: `DEPLOYBOT_DB_POOL_SIZE`, read as `check-config`
    reads it. Lenient: a value it would name is logged and the default used, so that a
    process still starts."""
    try:
        return count_setting(POOL_SIZE_ENV, DEFAULT_POOL_SIZE, env)
    except ConfigError as error:
        log.warning("%s Using %d.", error, DEFAULT_POOL_SIZE)
        return DEFAULT_POOL_SIZE


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the web and worker processes read while one of them writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def _alembic_config() -> Config:
    # Alembic is imported only to migrate: a web worker on PostgreSQL never needs it, and
    # it costs each process about 0.3 s of start-up.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


# A transaction lock's key, named by `:name`, in PostgreSQL's single 64-bit key space: the
# schema's hash in the high 32 bits (tests share one server, a schema each), the name's in
# the low 32. The worker's lease is a session lock in the two-number space, kept apart.
NAMED_LOCK = (
    "pg_advisory_xact_lock((CAST(hashtext(coalesce(current_schema(), '')) AS bigint) << 32)"
    " | (CAST(hashtext(:name) AS bigint) & 4294967295))"
)
_HOLD = text(f"SELECT {NAMED_LOCK}")


def unreachable(error: BaseException) -> bool:
    """Whether `error` says the database could not be used just now (a restart, a network
    cut, its connection limit, this process's pool taken, SQLite's lock) rather than that a
    statement was wrong: what a person is told as "try again in a minute"."""
    return isinstance(error, OperationalError | InterfaceError | PoolTimeout)


class Database:
    """An engine and its session factory."""

    def __init__(self, url: str | None) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def session(self) -> Session:
        return self.sessions()

    def hold(self, session: Session, name: str) -> None:
        """Serialize `session`'s transaction with every other one that holds `name`, until
        it ends: a transaction-scoped advisory lock, in this schema's key space, on
        PostgreSQL. SQLite lets one transaction write at a time already (the sandbox)."""
        if not self.is_sqlite:
            session.execute(_HOLD, {"name": name})

    def insert_new(self, model: Any, **values: Any) -> bool:
        """Insert one `model` row unless one with its primary key is there; True if this
        call inserted it.

        ON CONFLICT DO NOTHING rather than catching the duplicate key: losing (a Slack
        retry, a second dyno making the same row) is then no error in the database's log
        and no aborted transaction. A second caller still waits for the first one's commit,
        and inserts only if that rolled back.
        """
        insert = sqlite.insert if self.is_sqlite else postgresql.insert
        key = list(model.__table__.primary_key.columns)
        statement = (
            insert(model)
            .values(**values)
            .on_conflict_do_nothing(index_elements=key)
            .returning(*key)  # a row back: this call inserted it
        )
        with self.session() as session, session.begin():
            return session.execute(statement).first() is not None

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def migrate(self) -> None:
        """Bring the schema to the newest revision (what the release phase runs).

        On PostgreSQL every pending revision runs in one transaction, each lock it asks for
        waited on for MIGRATION_LOCK_TIMEOUT_MS at most: a lock it waits for puts every
        query of the running dynos on that table in the queue behind it, and a pg:backups
        capture or a long `heroku pg:psql` transaction would hold them all for minutes. Given
        up, the whole transaction rolls back (nothing changed) and runs again after a pause,
        MIGRATION_ATTEMPTS times; then MigrationBlocked.
        """
        from alembic import command

        config = _alembic_config()
        for attempt in range(1, MIGRATION_ATTEMPTS + 1):
            try:
                with self.engine.begin() as connection:
                    if not self.is_sqlite:
                        connection.exec_driver_sql(
                            f"SET LOCAL lock_timeout = {int(MIGRATION_LOCK_TIMEOUT_MS)}"
                        )
                    config.attributes["connection"] = connection
                    command.upgrade(config, "head")
                return
            except OperationalError as error:
                if getattr(error.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                    raise
                log.warning(
                    "migration %d of %d gave way to a lock another connection holds; "
                    "nothing changed, trying again",
                    attempt,
                    MIGRATION_ATTEMPTS,
                )
            time.sleep(MIGRATION_RETRY_SECONDS)
        raise MigrationBlocked(
            f"another connection held a table the migrations change through {MIGRATION_ATTEMPTS}"
            " tries (a pg:backups capture, a long `heroku pg:psql` transaction): nothing was "
            "changed. Retry the release once it ends (`heroku releases:retry`)."
        )

    def schema_state(self) -> tuple[str, str, str]:
        """Where the schema stands against this code's migrations, its revision(s) and this
        code's newest:
        "current"; "behind" (missing or older: migrate); "newer" (a later release migrated
        it, and this one was rolled back to: the migrations are additive, so this code runs
        on it as it is); "foreign" (a revision no release made: another app's database)."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        scripts = ScriptDirectory.from_config(_alembic_config())
        heads = set(scripts.get_heads())
        known = {script.revision for script in scripts.walk_revisions()}
        with self.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
        named = ", ".join(sorted(current)) or "none"
        head = ", ".join(sorted(heads))
        if current == heads:
            return "current", named, head
        if current <= known:
            return "behind", named, head
        # Revision ids are numbered in order: "0022" comes after a head of "0021".
        newest = max(int(revision) for revision in heads)
        if all(r.isdigit() and r.isascii() and int(r) > newest for r in current - known):
            return "newer", named, head
        return "foreign", named, head

    def needs_migration(self) -> bool:
        """True when the schema is missing, older than the newest revision, or not this
        bot's; False when it is current or newer (a rollback: this code runs on it)."""
        return self.schema_state()[0] not in ("current", "newer")

    def dispose(self) -> None:
        self.engine.dispose()

    def size(self) -> int | None:
        """Connections the pool may hold; None on SQLite (no pool limit)."""
        return None if self.is_sqlite else self.engine.pool.size()  # type: ignore[attr-defined]

    def resize(self, size: int) -> None:
        """A new pool of `size` connections in place of the current one, whose connections
        are left to whichever process made them (call it right after a fork)."""
        self.engine.dispose(close=False)
        self.engine = make_engine(self.url, size)
        self.sessions.configure(bind=self.engine)


def aware(moment: datetime) -> datetime:
    """`moment` in UTC: SQLite hands back naive datetimes, and every time stored is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
