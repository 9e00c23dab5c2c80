"""The audit trail read back: `/deploy history` in Slack and `deploybot audit` for scripts."""

from __future__ import annotations

import json

import pytest

from bot.__main__ import main
from bot.store.audit import Actor, AuditLog
from bot.store.db import Database
from tests.conftest import ADMIN, USER
from tests.webclient import SlackDriver


@pytest.fixture
def driver(new_app, config, slack):
    return SlackDriver(new_app(config).test_client(), slack)


def test_history_lists_changes_newest_first_with_who_and_outcome(driver, heroku):
    for text in ("scale web=2 myapp", "restart other-app", "scale web=3:nope myapp"):
        _, url = driver.command(text, ADMIN)
        driver.reply(url)
    _, url = driver.command("history", USER)  # read-only: anyone may look
    reply = driver.reply(url)
    assert reply["response_type"] == "ephemeral"
    lines = reply["text"].splitlines()
    assert lines[0] == "*Recent changes to every app*, newest first"
    assert f"<@{ADMIN}> `restart other-app`" in lines[1] and lines[1].startswith("✓")
    assert f"<@{ADMIN}> `scale web=2 myapp`" in lines[2]
    # The refused size never reached the audit trail: nothing was sent to Heroku.
    assert len(lines) == 3

    _, url = driver.command("history myapp 1", USER)
    lines = driver.reply(url)["text"].splitlines()
    assert lines[0].startswith("*Recent changes to `myapp`*") and len(lines) == 2

    _, url = driver.command("history other-app refused", USER)
    assert driver.reply(url)["text"] == "No refused requests recorded for `other-app` yet."


def test_history_of_an_app_that_does_not_exist_says_so(driver, heroku):
    # It had answered as for an app with nothing done to it yet.
    for text in ("history nothing-here", "history nothing-here refused"):
        _, url = driver.command(text, USER)
        assert driver.reply(url)["text"] == (
            "Heroku has no app called `nothing-here`, or the bot's key cannot see it. "
            "Check the name in the Heroku dashboard."
        )
    # An app deleted since keeps its trail: the rows are read before Heroku is asked.
    _, url = driver.command("scale web=2 myapp", ADMIN)
    driver.reply(url)
    heroku._apps.pop("myapp")
    _, url = driver.command("history myapp", USER)
    assert f"<@{ADMIN}> `scale web=2 myapp`" in driver.reply(url)["text"]


def test_a_change_of_unknown_outcome_says_so(driver, heroku):
    heroku.fail_next(status=503, count=10)
    _, url = driver.command("restart myapp", ADMIN)
    driver.reply(url)
    _, url = driver.command("history myapp", ADMIN)
    [_, line] = driver.reply(url)["text"].splitlines()
    # A 5xx may have been applied anyway: the trail marks it unknown, not failed.
    assert line.startswith("?") and "`restart myapp`: Heroku's API failed (503)" in line


def test_audit_export_as_json(driver, config, monkeypatch, capsys):
    _, url = driver.command("scale web=2 myapp", ADMIN)
    driver.reply(url)
    monkeypatch.setenv("DATABASE_URL", config.database_url)
    assert main(["audit", "--app", "myapp", "--json"]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert entry["command"] == "scale web=2 myapp"
    assert entry["user_id"] == ADMIN and entry["outcome"] == "ok"
    assert entry["before"]["web"][0] == 1 and entry["after"]["web"][0] == 2
    assert entry["started_at"].endswith("+00:00")

    assert main(["audit", "--app", "other-app", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["audit", "--limit", "0"]) == 2


def test_a_mention_in_a_stored_reason_stays_one_and_nothing_else_becomes_markup(driver, config):
    db = Database(config.database_url)
    try:
        log, by = AuditLog(db), Actor(ADMIN, source="slack")
        log.record(by, "kill", "myapp", "kill myapp", "cancelled", f"Cancelled by <@{USER}>.")
        log.record(
            by, "scale", "myapp", "scale web=2 myapp", "error", "old <!channel> <http://x|y>"
        )
    finally:
        db.dispose()
    _, url = driver.command("history myapp", ADMIN)
    text = driver.reply(url)["text"]
    assert f"`kill myapp`: Cancelled by <@{USER}>." in text
    assert "old &lt;!channel&gt; &lt;http://x|y&gt;" in text
    # Named as every other outcome is, by the word `history APP failed` filters by: a
    # bare "✗" had stood beside "✗ refused" and "– cancelled".
    [failed] = [line for line in text.splitlines() if "`scale web=2 myapp`" in line]
    assert failed.startswith("✗ failed "), failed


def test_the_autoscalers_changes_are_said_to_be_its_not_a_broken_mention(driver, database_url):
    # Its rows carry the user "autoscaler": `<@autoscaler>` is no Slack user, and Slack
    # showed the raw text where history (and App Home) should say who scaled.
    autoscaler = Actor("autoscaler", source="autoscaler")
    db = Database(database_url)
    AuditLog(db).record(autoscaler, "scale", "myapp", "scale web=3 myapp", "ok")
    db.dispose()
    _, url = driver.command("history myapp", USER)
    text = driver.reply(url)["text"]
    assert "<@autoscaler>" not in text
    assert "the autoscaler `scale web=3 myapp`" in text and "(autoscaler)" not in text


def test_a_long_stored_reason_is_cut_with_an_ellipsis(driver, config):
    # A lock refusal is about 170 characters: cut at 150 it ended "when they are don", which
    # reads as the bot's own typo rather than a sentence left out.
    reason = "`myapp` is locked by someone, so only they may change its config. " * 3
    db = Database(config.database_url)
    try:
        AuditLog(db).record(
            Actor(USER, source="slack"),
            "config",
            "myapp",
            "config set K=… myapp",
            "refused",
            reason,
        )
    finally:
        db.dispose()
    _, url = driver.command("history myapp", ADMIN)
    line = driver.reply(url)["text"].splitlines()[1]
    shown = line.split("`config set K=… myapp`: ", 1)[1]
    assert shown.endswith("…") and len(shown) <= 150
    assert reason.startswith(shown[:-1])
