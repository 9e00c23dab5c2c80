"""The actions path on its own: audit rows bracket every platform call."""

from __future__ import annotations

import pytest

from bot.actions.gate import Gate
from bot.actions.path import Actions
from bot.actions.results import Reply, Resolved
from bot.platforms.heroku import HerokuPlatform
from bot.registry import Registry
from bot.store.audit import Actor, AuditLog
from bot.store.confirmations import Confirmations
from bot.store.db import Database
from policies.commands import parse
from tests.conftest import ADMIN, HEROKU_KEY


class Crash(BaseException):
    """Stands for the process dying mid-call (SIGKILL, dyno restart)."""


@pytest.fixture
def actions(database_url, heroku):
    db = Database(database_url)
    platform = HerokuPlatform(HEROKU_KEY, heroku.url)
    registry = Registry.empty()
    yield Actions(
        lambda app: Resolved(registry.resolve(app), platform),
        AuditLog(db),
        Confirmations(db),
        Gate(admins=frozenset({ADMIN})),
    )
    db.dispose()


def test_a_crash_mid_call_leaves_an_unfinished_row_not_silence(actions, database_url):
    def crash(app, targets):
        raise Crash

    platform = actions._resolve("myapp").platform
    platform.scale = crash
    with pytest.raises(Crash):
        actions.run(Actor(ADMIN), parse("scale web=3 myapp"))
    [entry] = AuditLog(Database(database_url)).recent()
    assert entry.outcome == "pending" and entry.finished_at is None
    assert entry.requested == {"web": [3, None]}


def test_asking_for_the_current_formation_changes_nothing(actions, heroku):
    result = actions.run(Actor(ADMIN), parse("scale web=1 myapp"))
    assert isinstance(result, Reply) and "already runs" in result.text
    assert [r for r in heroku.requests if r.method == "PATCH"] == []
