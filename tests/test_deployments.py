"""Deployments on Heroku end to end: signed Slack requests into the real web app, the
Heroku client (heroku3) against the fake Heroku over HTTP, answers through response_url.
Releases, rollback (once, however many clicks), maintenance, config, deploy locks, freezes,
and the failed-release alert's Rollback button."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.sandbox.slack_requests import slash_command
from bot.store.audit import AuditLog
from bot.store.db import Database
from bot.web.app import create_app
from bot.worker.main import Worker
from handlers.alerts import ROLLBACK_ACTION
from handlers.render import CANCEL_ACTION, CONFIRM_ACTION
from tests.conftest import ADMIN, OTHER_ADMIN, USER
from tests.test_alerts_e2e import alert_messages, served, watch  # noqa: F401  (fixture)
from tests.webclient import SlackDriver, ack_text, button, settle

SECRET_VALUE = "postgres://u:hunter2@db/x"


@pytest.fixture
def web(config):
    app = create_app(config)
    yield app
    app.extensions["deploybot"].db.dispose()


@pytest.fixture
def driver(web, slack):
    return SlackDriver(web.test_client(), slack)


def rollbacks(heroku):
    return heroku.calls("POST", "/apps/myapp/releases")


def say(driver, text, user=ADMIN):
    response, url = driver.command(text, user)
    ack_text(response)
    return driver.reply(url)


def history(config):
    db = Database(config.database_url)
    try:
        return AuditLog(db).recent(None, None)
    finally:
        db.dispose()


def test_releases_lists_newest_first_with_the_current_one_marked_and_escaped(driver, heroku):
    heroku.add_release("myapp", "Deploy <!channel> & co")
    heroku.add_release("myapp", "Deploy broken", status="failed")
    reply = say(driver, "releases myapp 3")
    lines = reply["text"].splitlines()
    assert lines[1].startswith("• `v5` · Deploy broken") and "*failed*" in lines[1]
    assert "`v4` · Deploy &lt;!channel&gt; &amp; co" in lines[2] and "← current" in lines[2]
    assert lines[3].startswith("• `v3`") and len(lines) == 5
    [listing] = heroku.calls("GET", "/apps/myapp/releases")
    assert listing.headers["Range"].startswith("version ..; order=desc, max=3")
    assert heroku.violations == []


def test_rollback_confirms_from_and_to_then_makes_one_release_however_many_clicks(
    driver, heroku, config
):
    prompt = say(driver, "rollback myapp")
    assert "asks to roll `myapp` back: `v3`" in prompt["text"]
    assert "→ `v2` (" in prompt["text"]  # both descriptions shown
    confirm = button(prompt, CONFIRM_ACTION)
    assert confirm["text"]["text"] == "Roll back"
    settle()
    assert rollbacks(heroku) == []

    _, url = driver.click(CONFIRM_ACTION, confirm["value"], OTHER_ADMIN)
    assert f"Only <@{ADMIN}>" in driver.reply(url)["text"]
    with ThreadPoolExecutor(4) as pool:
        clicks = list(
            pool.map(lambda _: driver.click(CONFIRM_ACTION, confirm["value"], ADMIN), range(4))
        )
    replies = [driver.reply(url) for _, url in clicks]
    settle()
    [call] = rollbacks(heroku)
    assert set(call.json) == {"release"}
    # The fake names the new release after the one whose id was posted.
    assert "`v4` · Rollback to v2" in say(driver, "releases myapp 1")["text"]
    done = [r for r in replies if "rolled `myapp` back" in r["text"]]
    assert len(done) == 1 and "as the new release `v4`" in done[0]["text"]
    assert sum("already confirmed" in r["text"] for r in replies) == 3
    [entry] = [e for e in history(config) if e.verb == "rollback"]
    assert entry.outcome == "ok" and entry.command == "rollback myapp v2"
    assert entry.before == {"version": "v3"} and entry.after == {"version": "v4"}
    assert "`rollback myapp v2`" in say(driver, "history myapp")["text"]
    assert heroku.violations == []


def test_a_slash_command_delivered_twice_asks_once(driver, slack):
    url = slack.new_response_url()
    body = slash_command("rollback myapp", url, user_id=ADMIN)
    driver.post(body)
    driver.post(body)  # Slack's retry carries the same trigger_id
    settle(1.0)
    assert len(slack.responses_for(url)) == 1


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("rollback myapp v99", "`myapp` has no release v99 among its last 50"),
        ("rollback myapp v3", "v3 is already the current release of `myapp`"),
        ("rollback myapp 3", "v3 is already the current release of `myapp`"),
        ("rollback myapp v4", "v4 of `myapp` failed, so it cannot be rolled back to"),
    ],
)
def test_bad_rollbacks_get_a_sentence_and_send_nothing(driver, heroku, text, says):
    heroku.add_release("myapp", "Deploy broken", status="failed")
    assert says in say(driver, text)["text"]
    assert rollbacks(heroku) == []


def test_a_rollback_needs_permission(driver, heroku):
    assert say(driver, "rollback myapp", USER)["text"].startswith("You may not rollback `myapp`")
    assert rollbacks(heroku) == []


def test_a_deploy_lock_holds_back_everyone_but_its_holder(driver, heroku, config):
    locked = say(driver, 'lock myapp "chasing the checkout bug"', OTHER_ADMIN)
    assert "locked `myapp`: chasing the checkout bug" in locked["text"]
    refused = say(driver, "rollback myapp")
    assert f"`myapp` is locked by <@{OTHER_ADMIN}> (chasing the checkout bug)" in refused["text"]
    assert "already locked" in say(driver, "lock myapp mine now")["text"]
    assert "asks to roll `myapp` back" in say(driver, "rollback myapp", OTHER_ADMIN)["text"]
    assert say(driver, "unlock myapp", USER)["text"].startswith("You may not unlock `myapp`")
    assert f"was locked by <@{OTHER_ADMIN}>" in say(driver, "unlock myapp")["text"]
    assert "asks to roll `myapp` back" in say(driver, "rollback myapp")["text"]
    assert rollbacks(heroku) == []
    verbs = [(e.verb, e.outcome) for e in history(config)]
    assert verbs == [("unlock", "ok"), ("lock", "refused"), ("lock", "ok")]


def test_a_lock_taken_after_the_prompt_stops_the_confirm(driver, heroku):
    prompt = say(driver, "rollback myapp")
    say(driver, "lock myapp hold on", OTHER_ADMIN)
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert driver.reply(url)["text"].startswith("Nothing was changed: `myapp` is locked")
    assert rollbacks(heroku) == []


def test_a_freeze_refuses_a_rollback(config, slack, heroku, tmp_path, monkeypatch):
    path = tmp_path / "deploybot.yml"
    path.write_text(
        "apps:\n  myapp:\n    platform: heroku\n    guardrails:\n      freezes:\n"
        "        - {cron: '* * * * *', duration: 2h, reason: release freeze}\n"
    )
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    web = create_app(config)
    driver = SlackDriver(web.test_client(), slack)
    try:
        reply = say(driver, "rollback myapp")
        assert "is frozen until" in reply["text"] and "release freeze" in reply["text"]
        assert "is frozen" in say(driver, "maintenance myapp on")["text"]
        assert rollbacks(heroku) == [] and heroku.calls("PATCH", "/apps/myapp") == []
    finally:
        web.extensions["deploybot"].db.dispose()


def test_cancel_rolls_nothing_back(driver, heroku):
    prompt = say(driver, "rollback myapp v1")
    assert "→ `v1` (Initial release)" in prompt["text"]
    _, url = driver.click(CANCEL_ACTION, button(prompt, CANCEL_ACTION)["value"], ADMIN)
    assert "cancelled `rollback myapp v1`" in driver.reply(url)["text"]
    assert rollbacks(heroku) == []


def test_maintenance_turns_on_once_and_says_when_already_on(driver, heroku, config):
    assert "turned maintenance mode on for `myapp`" in say(driver, "maintenance myapp on")["text"]
    assert heroku.maintenance("myapp") is True
    assert "already in maintenance mode on" in say(driver, "maintenance myapp on")["text"]
    [patch] = heroku.calls("PATCH", "/apps/myapp")
    assert patch.json == {"maintenance": True}
    say(driver, "maintenance myapp off")
    assert heroku.maintenance("myapp") is False
    assert heroku.violations == []


def test_config_masks_values_except_for_those_allowed_config(driver, heroku):
    heroku.set_config_vars("myapp", {"DATABASE_URL": SECRET_VALUE, "LOG_LEVEL": "info"})
    masked = say(driver, "config myapp", USER)["text"]
    assert "`DATABASE_URL` ••••••" in masked and SECRET_VALUE not in masked
    shown = say(driver, "config myapp", ADMIN)["text"]
    assert f"`DATABASE_URL` `{SECRET_VALUE}`" in shown
    assert say(driver, "config set LOG_LEVEL=debug myapp", USER)["text"].startswith(
        "You may not config `myapp`"
    )


def test_config_set_confirms_and_never_writes_the_value_down(driver, heroku, slack, config, caplog):
    caplog.set_level(logging.DEBUG)
    response, url = driver.command(f"config set DATABASE_URL={SECRET_VALUE} myapp", ADMIN)
    assert SECRET_VALUE not in ack_text(response)
    prompt = driver.reply(url)
    assert "asks to set `DATABASE_URL` on `myapp` (values hidden)" in prompt["text"]
    assert SECRET_VALUE not in str(prompt)
    assert heroku.calls("PATCH", "/apps/myapp/config-vars") == []
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert "set `DATABASE_URL` on `myapp`" in driver.reply(url)["text"]
    assert heroku.config_vars("myapp") == {"DATABASE_URL": SECRET_VALUE}
    [entry] = history(config)
    assert SECRET_VALUE not in str(entry.as_json())
    assert entry.command == "config set DATABASE_URL=… myapp"
    assert SECRET_VALUE not in caplog.text
    db = Database(config.database_url)
    try:
        from sqlalchemy import text

        with db.session() as session:
            stored = [str(row) for row in session.execute(text("SELECT * FROM confirmations"))]
        assert stored and SECRET_VALUE not in " ".join(stored)
    finally:
        db.dispose()


def test_config_unset_and_bad_keys(driver, heroku):
    heroku.set_config_vars("myapp", {"LOG_LEVEL": "info"})
    assert "`NOPE` is not set on `myapp`" in say(driver, "config unset NOPE myapp")["text"]
    response, url = driver.command("config set 9LIVES=1 myapp", ADMIN)
    assert "is not a valid config var name" in ack_text(response)
    prompt = say(driver, "config unset LOG_LEVEL myapp")
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert "unset `LOG_LEVEL` on `myapp`" in driver.reply(url)["text"]
    [patch] = heroku.calls("PATCH", "/apps/myapp/config-vars")
    assert patch.json == {"LOG_LEVEL": None}
    assert heroku.config_vars("myapp") == {}
    assert heroku.violations == []


def test_a_failed_release_alert_carries_a_rollback_button(heroku, slack, served):  # noqa: F811
    app, config, _ = served
    driver = SlackDriver(app.test_client(), slack)
    watch(driver, heroku)
    heroku.add_release("myapp", "Deploy 0badc0d", status="failed")
    assert heroku.deliveries.wait()
    Worker(config).send_alerts()
    [alert] = alert_messages(slack)
    assert "release failed" in alert["text"]
    rollback = button(alert, ROLLBACK_ACTION)
    # The click asks first, like a typed rollback; a second delivery of it asks nothing more.
    where = {"channel_id": "CMYAPP", "message_ts": alert["ts"]}
    response, url = driver.click(ROLLBACK_ACTION, rollback["value"], ADMIN, **where)
    ack_text(response)
    prompt = driver.reply(url)
    assert "asks to roll `myapp` back: `v3`" in prompt["text"]
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert "rolled `myapp` back" in driver.reply(url)["text"]
    assert len(rollbacks(heroku)) == 1
    assert heroku.violations == []
