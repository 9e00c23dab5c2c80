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
from policies.commands import help_text, parse
from tests.conftest import ADMIN, HEROKU_KEY, USER


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


GRID_PROTECTED = """\
access:
  - allow: [kill, approve]
    users: [UUSER001, UUSER002]
apps:
  shop:
    platform: heroku
    guardrails:
      protected: true
"""


def test_an_approval_of_a_grid_colleague_from_another_workspace_goes_ahead(database_url, heroku):
    # The bot lives in T0HOME of the Enterprise Grid org E0GRID; the asker's workspace is
    # another of that org's, which their command names with the org. The approval judges
    # the asker's right again, and had found them "a member of another organisation".
    heroku.add_app("shop", formation={"web": (1, "standard-1x"), "worker": (1, "standard-1x")})
    db = Database(database_url)
    registry = Registry.parse(GRID_PROTECTED, "deploybot.yml")
    platform = HerokuPlatform(HEROKU_KEY, heroku.url)
    gate = Gate(registry.rules, workspace=lambda: ("T0HOME", "E0GRID"))
    actions = Actions(
        lambda app: Resolved(registry.resolve(app), platform), AuditLog(db), Confirmations(db), gate
    )
    try:
        asker = Actor("UUSER001", "T0OTHERWS", "C0SHOP", enterprise_id="E0GRID")
        prompt = actions.run(asker, parse("kill shop worker"))
        assert prompt.approval, prompt
        approver = Actor("UUSER002", "E0GRID", "C0SHOP")  # a click names the org
        result = actions.confirm(approver, prompt.id)
        assert "another Slack organisation" not in getattr(result, "text", ""), result
        assert heroku.formation("shop")["worker"][0] == 0
    finally:
        db.dispose()


def test_help_from_the_background_path_starts_with_the_read_only_note_as_the_ack_does(actions):
    # The ack's `/deploy help` said "You may not change any app in this channel: …" first;
    # the same help answered here (App Home, a mention) had left that line out.
    note = actions._gate.read_only_note(USER, "C0CONSOLE")
    assert note is not None
    result = actions.run(Actor(USER, channel_id="C0CONSOLE"), parse("help scale"))
    assert isinstance(result, Reply)
    assert result.text == f"{note}\n{help_text('scale')}", result.text
    admin = actions.run(Actor(ADMIN, channel_id="C0CONSOLE"), parse("help scale"))
    assert isinstance(admin, Reply) and admin.text == help_text("scale")


def test_a_confirmation_cut_off_before_anything_was_recorded_says_so(actions, heroku):
    # A process killed between the click's decision and the change's audit row left the
    # prompt "already confirmed by" its clicker for good, though nothing had been done or
    # recorded: the next click was told so, with no word that it never happened.
    from datetime import timedelta

    start = actions._now()
    prompt = actions.run(Actor(ADMIN), parse("kill myapp"))
    platform = actions._resolve("myapp").platform
    read = platform.formation

    def killed(app):
        raise Crash

    platform.formation = killed
    with pytest.raises(Crash):
        actions.confirm(Actor(ADMIN), prompt.id)
    platform.formation = read
    soon = actions.confirm(Actor(ADMIN), prompt.id)
    assert soon.text == f"`kill myapp` was already confirmed by <@{ADMIN}>.", soon
    actions._now = lambda: start + timedelta(minutes=6)
    later = actions.confirm(Actor(ADMIN), prompt.id)
    assert later.text.startswith(
        f"`kill myapp` was confirmed by <@{ADMIN}> at "
    ) and later.text.endswith(
        ", but nothing was recorded after it: the bot may have restarted mid-way. "
        "`/deploy status myapp` shows what runs; send the command again if it is still needed."
    ), later
    assert heroku.formation("myapp")["web"][0] == 1  # nothing was done by the click


def test_a_confirmation_carried_out_stays_already_confirmed(actions, heroku):
    from datetime import timedelta

    start = actions._now()
    prompt = actions.run(Actor(ADMIN), parse("kill myapp"))
    actions.confirm(Actor(ADMIN), prompt.id)
    assert heroku.formation("myapp")["web"][0] == 0
    actions._now = lambda: start + timedelta(minutes=6)
    again = actions.confirm(Actor(ADMIN), prompt.id)
    assert again.text == f"`kill myapp` was already confirmed by <@{ADMIN}>.", again
