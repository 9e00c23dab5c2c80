"""Shared fixtures: databases (SQLite always, PostgreSQL when TEST_DATABASE_URL is set),
the fake Heroku and Slack servers, and a signed-request helper for the web app."""

from __future__ import annotations

import os
import secrets
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Engine, create_engine, event, text

from bot.config import Config
from bot.sandbox.fakes.heroku import FakeHeroku
from bot.sandbox.fakes.slack import FakeSlack
from bot.store.db import Database, normalize_url

if TYPE_CHECKING:
    from flask import Flask

    from tests.webclient import SlackDriver

ADMIN = "UADMIN01"
OTHER_ADMIN = "UADMIN02"
USER = "UUSER001"
SIGNING_SECRET = "test-signing-secret"
HEROKU_KEY = "test-key"


def _postgres_url(schema: str) -> str:
    base = os.environ["TEST_DATABASE_URL"]
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(autouse=True)
def dispose_engines() -> Iterator[None]:
    """Close every connection each test's engines opened (Services, web apps, workers,
    leases all make their own): left pooled, they pile up across the suite and CI's server
    runs out of connections. A disposed engine still works; it just connects afresh."""
    engines: weakref.WeakSet[Engine] = weakref.WeakSet()

    def seen(connection, *_):  # type: ignore[no-untyped-def]
        engines.add(connection.engine)

    event.listen(Engine, "engine_connect", seen)
    try:
        yield
    finally:
        event.remove(Engine, "engine_connect", seen)
        for engine in list(engines):
            engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A migrated, empty database of each kind; PostgreSQL gets a schema of its own."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'deploybot.sqlite3'}"
        Database(url).migrate()
        yield url
        return
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("TEST_DATABASE_URL is not set")
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(normalize_url(os.environ["TEST_DATABASE_URL"]))
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = _postgres_url(schema)
    database = Database(url)
    database.migrate()
    database.dispose()
    try:
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A `Database` on `database_url`, disposed after the test."""
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture(autouse=True)
def _dispose_every_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Dispose every engine a test made (web apps, workers, stores) when it ends: a web app's
    flusher thread keeps its engine alive, and the pooled connections with it, which ran a
    shared PostgreSQL out of connections ("too many clients") over a full run."""
    made: list[Database] = []
    original = Database.__init__

    def tracked(self: Database, url: str | None) -> None:
        original(self, url)
        made.append(self)

    monkeypatch.setattr(Database, "__init__", tracked)
    yield
    for database in made:
        database.dispose()


@pytest.fixture
def heroku() -> Iterator[FakeHeroku]:
    fake = FakeHeroku(api_keys=(HEROKU_KEY,))
    fake.add_app("myapp", formation={"web": (1, "standard-1x"), "worker": (1, "standard-1x")})
    fake.add_app("other-app", formation={"web": (2, "standard-2x")})
    with fake:
        yield fake


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def new_app(
    database_url: str, heroku: FakeHeroku, slack: FakeSlack
) -> Iterator[Callable[[Config], Flask]]:
    """`create_app`, each app closed when the test ends, before the database and the fakes
    go (hence their fixtures here): its jobs, drain claims and flushes left running had
    called the fakes and the database of tests that had ended (one posted to a stopped
    fake Slack in a later test)."""
    from bot.web.app import close, create_app

    made: list[Flask] = []

    def new(config: Config) -> Flask:
        made.append(create_app(config))
        return made[-1]

    yield new
    for app in made:
        close(app)


@pytest.fixture
def web(new_app: Callable[[Config], Flask], config: Config) -> Flask:
    """The real web app (Flask, bolt, drains, webhooks) over the fakes; files may override."""
    return new_app(config)


@pytest.fixture
def driver(web: Flask, slack: FakeSlack) -> SlackDriver:
    from tests.webclient import SlackDriver  # it imports this module's constants

    return SlackDriver(web.test_client(), slack)


@pytest.fixture
def config(database_url: str, heroku: FakeHeroku, slack: FakeSlack) -> Config:
    return Config(
        database_url=database_url,
        slack_bot_token=slack.bot_token,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        heroku_api_key=HEROKU_KEY,
        heroku_api_url=heroku.url,
        admins=frozenset({ADMIN, OTHER_ADMIN}),
    )


_postgres_outcomes: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "postgres" in report.keywords and report.when in ("setup", "call"):
        _postgres_outcomes.append(report.outcome)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # CI runs with DEPLOYBOT_REQUIRE_POSTGRES=1: a skipped PostgreSQL test is a failure there.
    if os.environ.get("DEPLOYBOT_REQUIRE_POSTGRES") != "1":
        return
    if "skipped" in _postgres_outcomes or not _postgres_outcomes:
        print("\nPostgreSQL tests were skipped or absent, and CI requires them.")
        session.exitstatus = 1
