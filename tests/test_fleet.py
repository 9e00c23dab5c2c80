"""Fleet-wide answers at a thousand apps: `apps`, `cost` and long histories go out within
Slack's Block Kit limits (the fake Slack refuses what Slack refuses), cut with a note
rather than refused whole; `cost` keeps the Heroku API budget's reserve."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN
from tests.webclient import SlackDriver, ack_text


def _fleet(count: int) -> str:
    return "heroku:\n  allow_unlisted: false\napps:\n" + "".join(
        f"  app-{i:04d}:\n    platform: heroku\n    app: myapp\n" for i in range(count)
    )


@pytest.fixture
def fleet(new_app, config, slack, tmp_path, monkeypatch):
    def start(count: int, access: str = "") -> SlackDriver:
        path = tmp_path / "deploybot.yml"
        path.write_text(_fleet(count) + access)
        monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
        app = new_app(config)
        made.append(app)
        return SlackDriver(app.test_client(), slack)

    made: list = []
    yield start
    for app in made:
        app.extensions["deploybot"].db.dispose()


def _say(driver: SlackDriver, text: str) -> dict:
    response, url = driver.command(text, ADMIN)
    ack_text(response)
    return driver.reply(url)


def _sections(reply: dict) -> list[str]:
    return [block["text"]["text"] for block in reply["blocks"] if block["type"] == "section"]


def test_a_thousand_apps_are_listed_within_one_messages_limits(fleet, slack):
    # One section of 60,000 characters: Slack refused it and the user heard nothing.
    reply = _say(fleet(1000), "apps")
    sections = _sections(reply)
    assert all(len(text) <= 3000 for text in sections) and len(reply["blocks"]) <= 50
    assert "`app-0000`" in sections[0]
    assert sections[-1].startswith("…and ") and "more lines" in sections[-1]
    assert "`/deploy apps WORD` lists only the apps whose name holds WORD" in sections[-1]
    assert slack.violations == []


def test_a_word_picks_the_apps_wanted_from_a_thousand(fleet, slack):
    driver = fleet(1000)
    text = _say(driver, "apps 0042")["text"]
    assert "*Apps I manage with `0042` in their name* (1 of 1,000)" in text
    assert "`app-0042`" in text and "`app-0043`" not in text
    # It had said "You may scale, restart and kill them" to an admin who may also roll
    # back, ship, promote and change config.
    assert text.endswith("You may make changes: `/deploy whoami` says which, on which apps.")
    text = _say(driver, "apps APP-004")["text"]  # case folded, as app names are
    assert "(10 of 1,000)" in text and "`app-0049`" in text
    nothing = _say(driver, "apps nope")["text"]
    assert nothing.startswith("None of the 1,000 apps I manage has `nope` in its name.")
    refused = ack_text(driver.command("apps a<b", ADMIN)[0])
    assert "cannot be part of an app's name" in refused and "<b" not in refused
    assert "one word too many" in ack_text(driver.command("apps a b", ADMIN)[0])
    assert slack.violations == []


def test_the_cost_of_a_fleet_is_cut_with_a_note_not_refused(fleet, slack):
    reply = _say(fleet(300), "cost")
    sections = _sections(reply)
    assert all(len(text) <= 3000 for text in sections)
    assert "more lines" in sections[-1]
    assert slack.violations == []


def test_the_fake_slack_refuses_what_slack_refuses(slack):
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(token=slack.bot_token, base_url=slack.api_url)
    long_section = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    with pytest.raises(SlackApiError, match="invalid_blocks"):
        client.chat_postMessage(channel="C1", text="t", blocks=long_section)
    many = [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}] * 51
    with pytest.raises(SlackApiError, match="invalid_blocks"):
        client.chat_postMessage(channel="C1", text="t", blocks=many)
    assert len(slack.violations) == 2
    slack.violations.clear()  # the fixture's own check: these were asked for


def test_the_cost_of_a_fleet_keeps_the_api_reserve_and_says_what_it_left_out(fleet, slack, heroku):
    from bot.actions.dashboards import FORMATION_READS
    from bot.store.throttles import LOW_REMAINING

    heroku.rate_limit_remaining = LOW_REMAINING + 100
    driver = fleet(300)
    reply = _say(driver, "cost")
    # One formation read per app had taken the account to 0: the next change was refused.
    assert heroku.rate_limit_remaining >= LOW_REMAINING - FORMATION_READS  # one batch in flight
    head = _sections(reply)[0].split("\n")[0]
    assert "/month in all*" in head and "apps could not be priced and are left out" in head
    assert "to keep the Heroku API calls that changes and the autoscaler need" in head
    _, url = driver.command("scale web=2 app-0001", ADMIN)
    assert "scaled `app-0001`: web 1 → 2" in driver.reply(url)["text"]


def test_an_app_whose_key_is_not_set_is_one_unknown_line_not_a_failed_answer(
    new_app, config, slack, heroku, tmp_path, monkeypatch
):
    path = tmp_path / "deploybot.yml"
    path.write_text(
        "heroku:\n  allow_unlisted: false\napps:\n  alpha:\n    platform: heroku\n"
        "    app: myapp\n  beta:\n    platform: heroku\n    app: other-app\n"
        "    api_key_env: NOT_SET_KEY\n"
    )
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    monkeypatch.delenv("NOT_SET_KEY", raising=False)
    app = new_app(config)
    try:
        reply = _say(SlackDriver(app.test_client(), slack), "cost")
        assert "• `alpha`: $" in reply["text"] and "• `beta`: unknown (" in reply["text"]
    finally:
        app.extensions["deploybot"].db.dispose()


def test_a_fleets_week_of_dyno_hours_is_read_in_one_query(fleet, slack):
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import event

    from bot.store.autoscale_settings import AutoscaleStore, Decision

    driver = fleet(30)
    services = driver.client.application.extensions["deploybot"]
    now = datetime.now(UTC)
    AutoscaleStore(services.db).record_many(
        Decision(f"app-{i:04d}", now - timedelta(minutes=5 * k), 1 + i % 3, 2, False, "steady")
        for i in range(30)
        for k in range(13)  # an hour of 5-minute ticks
    )
    read: list[str] = []
    event.listen(
        services.db.engine,
        "before_cursor_execute",
        lambda conn, cursor, sql, *args: read.append(sql) if "autoscale_decisions" in sql else None,
    )
    text = _say(driver, "cost")["text"]
    # Each app's decisions had been read as ORM rows in a query of its own: two days of
    # 15-second ticks took 0.6 s an app, ten minutes for a thousand.
    assert len(read) == 1
    assert "• `app-0000`" in text and "last 7 days: 1.0 web dyno-hours" in text
    assert "last 7 days: 3.0 web dyno-hours" in text
    assert slack.violations == []


def test_whoami_names_a_few_of_a_rules_many_apps_and_counts_the_rest(fleet, slack):
    access = (
        "access:\n  - allow: [scale, restart]\n    users: [UUSER001]\n    apps: ['app-0[0-8]*']\n"
        "  - deny: [restart]\n    users: [UUSER001]\n    apps: ['app-00*']\n"
    )
    driver = fleet(1000, access)
    response, url = driver.command("whoami", "UUSER001")
    ack_text(response)
    lines = driver.reply(url)["text"].splitlines()
    [scale] = [line for line in lines if line.startswith("`scale`")]
    [restart] = [line for line in lines if line.startswith("`restart`")]
    # Each line had named every app its rule matched: 1,000 names (42,000 characters) cut
    # mid-name at a section's 3,000, with the rule that says so cut off.
    assert scale.startswith("`scale`: app-0000, app-0001,")
    assert " app-0009 and 890 more (rule at /" in scale
    assert scale.endswith("/deploybot.yml:3005).")
    assert "deploybot.yml:3005); denied on app-0000, app-0001," in restart
    assert " app-0009 and 90 more (rule at /" in restart
    assert restart.endswith("/deploybot.yml:3008).")
    assert all(len(line) < 600 for line in lines)  # a few names and two rule paths
    assert slack.violations == []


def test_a_fleets_settings_are_built_once_not_on_every_listing(fleet, slack, monkeypatch):
    from bot.registry import FreezeEntry

    access = (
        "  app-0000:\n    platform: heroku\n    app: myapp\n    guardrails:\n      freezes:\n"
        "        - {cron: '0 18 * * fri', duration: 2h, reason: 'Ünïcødé 🚀 weekend'}\n"
    )
    driver = fleet(200, access.replace("app-0000", "app-zzzz"))
    built = []
    policy = FreezeEntry.policy
    monkeypatch.setattr(FreezeEntry, "policy", lambda self: built.append(1) or policy(self))
    for _ in range(3):
        assert "`app-zzzz`" in _say(driver, "apps zzzz")["text"]
    # Each listing had built every app's guardrails, schedule and freezes again (a cron
    # parsed per freeze): 0.13 s a listing at a thousand apps with a freeze each.
    assert len(built) <= 1
    assert slack.violations == []
