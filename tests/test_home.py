"""App Home through the real web app: opened, it lists the apps the user may see with
their formation, autoscaler, incidents, changes and cost; its buttons run typed commands'
path (rules, confirmation, audit) and answer in the user's DM; it pages past 15 apps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest

from bot.registry import Registry
from bot.sandbox.slack_requests import button_click, sign
from bot.store.audit import Actor, AuditLog
from bot.store.autoscale_settings import AutoscaleStore, Decision, Pin
from bot.store.incidents import Alerts
from bot.web.app import close, create_app
from handlers.clicks import NOT_MINE
from handlers.home import (
    PAGE_ACTION,
    RESTART_ACTION,
    SCALE_DOWN_ACTION,
    SCALE_UP_ACTION,
    STATUS_ACTION,
)
from handlers.render import CONFIRM_ACTION
from policies.incidents import Event
from tests.conftest import ADMIN, OTHER_ADMIN, SIGNING_SECRET, USER
from tests.webclient import SlackDriver, button, settle

REGISTRY = """\
apps:
  myapp:
    platform: heroku
    channel: C0MYAPP
  other-app:
    platform: heroku
access:
  - deny: [status]
    users: [UUSER001]
    apps: [other-app]
"""


@pytest.fixture
def web(new_app, config, tmp_path, monkeypatch):
    path = tmp_path / "deploybot.yml"
    path.write_text(REGISTRY)
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    app = new_app(config)
    yield app
    app.extensions["deploybot"].db.dispose()  # its pool's connections, now


@pytest.fixture
def driver(web, slack):
    return SlackDriver(web.test_client(), slack)


@contextmanager
def protected(config, tmp_path, monkeypatch, entry: str) -> Iterator[Any]:
    """The web app with `entry` (the registry's line that opens an app's settings)
    followed by `guardrails: {protected: true}`."""
    path = tmp_path / "protected.yml"
    path.write_text(REGISTRY.replace(entry, f"{entry}    guardrails: {{protected: true}}\n"))
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    app = create_app(config)
    try:
        yield app
    finally:
        close(app)  # its jobs finish while the fakes still answer
        app.extensions["deploybot"].db.dispose()


def open_home(driver, user: str, n: int = 1) -> dict:
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T1",
            "api_app_id": "A1",
            "event": {"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home"},
            "event_id": f"Ev{n}",
            "event_time": 1,
        }
    )
    headers = {**sign(SIGNING_SECRET, body), "Content-Type": "application/json"}
    assert driver.post(body, headers=headers).status_code == 200
    calls = driver.slack.wait_for_calls("views.publish", n=n, timeout=10)
    return calls[-1].args["view"]


def click(driver, action_id: str, value: str | None, user: str, ts: str = "1.0") -> None:
    body = button_click(action_id, value or "", "https://unused.example/", user_id=user)
    # App Home clicks carry no response_url and no channel.
    payload = json.loads(parse_qs(body)["payload"][0])
    if value is None:
        del payload["actions"][0]["value"]
    payload.pop("response_url")
    payload.pop("channel")
    payload["container"] = {"type": "view", "view_id": "V1"}
    payload["actions"][0]["action_ts"] = ts
    response = driver.post(urlencode({"payload": json.dumps(payload)}))
    assert response.status_code == 200


def test_home_lists_the_apps_the_user_may_see(driver, slack):
    view = open_home(driver, ADMIN)
    text = json.dumps(view, ensure_ascii=False)
    assert "`myapp`" in text and "`other-app`" in text
    assert "web 1 × Standard-1X, worker 1 × Standard-1X" in text
    assert "$50/month" in text and "Autoscaling: off" in text
    assert "The worker has never ticked" in text  # the health header
    assert len(view["blocks"]) <= 100
    user_view = json.dumps(open_home(driver, USER, n=2), ensure_ascii=False)
    assert "`myapp`" in user_view and "`other-app`" not in user_view  # denied by the rule


def test_a_page_reads_its_apps_formations_at_once_and_keeps_each_cards_problem(driver, heroku):
    # Read one after another, a page of 15 apps waited on 15 Heroku round trips in turn.
    together = heroku.gather(2, timeout=5)
    heroku.fail_next(403, path="/apps/other-app/formation")
    view = open_home(driver, ADMIN)
    assert not together.broken, "the two formation reads were not in flight together"
    cards = [b["text"]["text"] for b in view["blocks"] if b["type"] == "section"]
    [mine] = [card for card in cards if card.startswith("*`myapp`*")]
    [other] = [card for card in cards if card.startswith("*`other-app`*")]
    assert "web 1 × Standard-1X, worker 1 × Standard-1X" in mine
    assert "web 2" not in other and "may not do that on `other-app`" in other


def test_home_scale_goes_through_the_actions_path_and_answers_in_a_dm(driver, slack, heroku, web):
    open_home(driver, ADMIN)
    click(driver, SCALE_UP_ACTION, "myapp", ADMIN)
    [post] = slack.wait_for_calls("chat.postMessage", timeout=10)
    assert post.args["channel"] == ADMIN
    assert "scaled `myapp`: web 1 → 2" in post.args["text"]
    assert heroku.formation("myapp")["web"][0] == 2
    [entry] = AuditLog(web.extensions["deploybot"].db).recent("myapp")
    assert entry.command == "scale web+1 myapp" and entry.user_id == ADMIN
    # The same click delivered again (Slack's retry) acts once.
    click(driver, SCALE_UP_ACTION, "myapp", ADMIN)
    assert heroku.formation("myapp")["web"][0] == 2
    # Debounced, the Home tab is published again with the change in it.
    calls = slack.wait_for_calls("views.publish", n=2, timeout=10)
    assert "scale web+1 myapp" in json.dumps(calls[-1].args["view"], ensure_ascii=False)


def test_home_scale_to_zero_asks_to_confirm(driver, slack, heroku):
    click(driver, SCALE_DOWN_ACTION, "myapp", ADMIN)
    [post] = slack.wait_for_calls("chat.postMessage", timeout=10)
    assert button(post.args, CONFIRM_ACTION)  # scaling web to 0 stops it: confirm first
    assert heroku.formation("myapp")["web"][0] == 1


def approved_in_its_channel(driver: SlackDriver, slack: Any) -> str:
    """The request asked in myapp's channel, approved there by another admin: the answer."""
    [post] = slack.wait_for_calls("chat.postMessage", timeout=10)
    assert post.args["channel"] == "C0MYAPP" and "needs a second person" in post.args["text"]
    approve = button(post.args, CONFIRM_ACTION)
    _, url = driver.click(CONFIRM_ACTION, approve["value"], OTHER_ADMIN)
    return driver.reply(url)["text"]


def test_a_home_change_needing_approval_is_asked_in_the_apps_channel(
    config, slack, heroku, tmp_path, monkeypatch
):
    # It had been posted in the asker's DM, saying "Anyone but @you who may approve can
    # approve" where nobody else could see it, let alone click Approve: it expired there.
    with protected(config, tmp_path, monkeypatch, "    channel: C0MYAPP\n") as app:
        driver = SlackDriver(app.test_client(), slack)
        click(driver, SCALE_DOWN_ACTION, "myapp", ADMIN)
        assert "scaled `myapp`: web 1 → 0" in approved_in_its_channel(driver, slack)
        assert heroku.formation("myapp")["web"][0] == 0


def test_a_change_typed_in_a_dm_needing_approval_is_asked_in_the_apps_channel(
    config, slack, heroku, tmp_path, monkeypatch
):
    # Typed in the user's DM with the bot, the approval prompt came back into that DM
    # (its response_url), where nobody who could approve it saw it, as App Home's had.
    with protected(config, tmp_path, monkeypatch, "    channel: C0MYAPP\n") as app:
        driver = SlackDriver(app.test_client(), slack)
        _, url = driver.command("kill myapp", ADMIN, channel="D0ADMINDM")
        assert "myapp" in approved_in_its_channel(driver, slack)
        told = driver.reply(url)["text"]
        assert "<#C0MYAPP>" in told and "approve" in told, told
        assert heroku.formation("myapp")["web"][0] == 0


@pytest.mark.parametrize("where", ["dm", "home"])
def test_an_approval_request_slack_refuses_in_the_apps_channel_is_said_to_the_asker(
    config, slack, heroku, tmp_path, monkeypatch, where
):
    # Slack's not_in_channel had ended the job with a traceback in the log, and the asker
    # heard nothing: the request waited, unseen, until it expired.
    with protected(config, tmp_path, monkeypatch, "    channel: C0MYAPP\n") as app:
        # A public channel refuses the bot's posts only without chat:write.public.
        slack.scopes.discard("chat:write.public")
        slack.leave_channel("C0MYAPP")
        driver = SlackDriver(app.test_client(), slack)
        if where == "dm":
            _, url = driver.command("kill myapp", ADMIN, channel="D0ADMINDM")
            told = driver.reply(url)["text"]
        else:
            click(driver, SCALE_DOWN_ACTION, "myapp", ADMIN)
            refused, post = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
            assert (refused.args["channel"], post.args["channel"]) == ("C0MYAPP", ADMIN)
            told = post.args["text"]
        assert told == (
            "I could not ask for approval in <#C0MYAPP>, as the bot is not in that channel: "
            "`/invite @deploybot` there. Then ask again."
        ), told
        assert heroku.formation("myapp")["web"][0] == 1


def test_an_approval_request_slack_rate_limits_for_minutes_says_when_to_ask_again(
    config, slack, heroku, tmp_path, monkeypatch
):
    # A 429 asking for two minutes was told as "Slack refused to post it there
    # (`ratelimited`)", which reads as a channel to fix, and said nothing of when to ask.
    with protected(config, tmp_path, monkeypatch, "    channel: C0MYAPP\n") as app:
        slack.fail_next("chat.postMessage", status=429, retry_after=120)
        driver = SlackDriver(app.test_client(), slack)
        _, url = driver.command("kill myapp", ADMIN, channel="D0ADMINDM")
        told = driver.reply(url)["text"]
        assert told == (
            "I could not ask for approval in <#C0MYAPP>, as Slack is rate-limiting the bot. "
            "Ask again in 2 min."
        ), told
        assert heroku.formation("myapp")["web"][0] == 1


def test_a_home_change_needing_approval_for_an_app_without_a_channel_is_refused_at_once(
    config, slack, heroku, tmp_path, monkeypatch
):
    # With no `channel:` it was asked in the asker's DM: "Anyone but @you who may approve
    # can approve", with an Approve button nobody else could see; it expired there.
    with protected(config, tmp_path, monkeypatch, "  other-app:\n    platform: heroku\n") as app:
        driver = SlackDriver(app.test_client(), slack)
        click(driver, SCALE_DOWN_ACTION, "other-app", ADMIN)  # web 2 → 1: no approval
        slack.wait_for_calls("chat.postMessage", timeout=10)
        click(driver, SCALE_DOWN_ACTION, "other-app", ADMIN, ts="2.0")  # 1 → 0: approval
        _, post = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
        assert post.args["channel"] == ADMIN
        assert post.args["text"].startswith(
            "`other-app` is protected: scaling `web` of `other-app` to 0 needs a second person's "
            "approval. From App Home it is asked in the app's channel, and `other-app` has none: "
            "type `/deploy scale web-1 other-app` in a channel where someone who may approve "
            "will see it, or add `channel:` to `other-app` in the registry (docs/registry.md)."
        ), post.args["text"]
        assert "blocks" not in post.args or not any(
            b.get("type") == "actions" for b in post.args["blocks"]
        )
        assert heroku.formation("other-app")["web"][0] == 1
        entry = AuditLog(app.extensions["deploybot"].db).recent("other-app")[0]
        assert entry.outcome == "refused" and entry.command == "scale web-1 other-app"


def test_a_user_the_rules_show_no_app_is_not_told_to_add_apps(
    new_app, config, slack, tmp_path, monkeypatch
):
    path = tmp_path / "hidden.yml"
    path.write_text(REGISTRY.replace("apps: [other-app]", "apps: [myapp, other-app]"))
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    app = new_app(config)
    try:
        text = json.dumps(open_home(SlackDriver(app.test_client(), slack), USER))
    finally:
        app.extensions["deploybot"].db.dispose()
    # It had said "You can see no apps yet. An admin adds them to the registry file".
    assert "An admin adds them" not in text
    assert "The access rules let you see no app I manage (2 in all;" in text


@pytest.mark.parametrize(
    ("registry", "by_name"),
    [(None, True), ("apps: {}\n", False)],
    ids=["no registry file", "a file of no apps"],
)
def test_an_empty_home_says_apps_work_by_name_only_where_they_do(
    new_app, config, slack, tmp_path, monkeypatch, registry, by_name
):
    if registry is None:
        monkeypatch.delenv("DEPLOYBOT_CONFIG", raising=False)
        monkeypatch.chdir(tmp_path)  # no deploybot.yml here either
    else:
        path = tmp_path / "empty.yml"
        path.write_text(registry)
        monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    app = new_app(config)
    try:
        driver = SlackDriver(app.test_client(), slack)
        text = json.dumps(open_home(driver, ADMIN), ensure_ascii=False)
        _, url = driver.command("status myapp", ADMIN)
        reachable = "not an app I manage" not in driver.reply(url)["text"]
    finally:
        app.extensions["deploybot"].db.dispose()
    assert "You can see no apps yet." in text
    # A registry file leaves unlisted apps out unless it allows them: the tab had said
    # they work by their own name, and `/deploy status myapp` then said they do not.
    assert reachable is by_name
    assert ("also works by its own name" in text) is by_name


def test_home_restart_is_refused_for_a_user_without_the_right(driver, slack, heroku):
    click(driver, RESTART_ACTION, "myapp", USER)
    [post] = slack.wait_for_calls("chat.postMessage", timeout=10)
    assert post.args["channel"] == USER and "You may not restart `myapp`" in post.args["text"]


@pytest.mark.parametrize(
    ("action", "value"),
    [
        (STATUS_ACTION, ""),
        (STATUS_ACTION, None),
        (SCALE_UP_ACTION, "myapp --force x"),  # would have been a word of the command
        (RESTART_ACTION, "-a myapp"),
        (PAGE_ACTION, "abc"),
        (PAGE_ACTION, "9" * 5000),  # int() raises past 4,300 digits
        (PAGE_ACTION, "\xb2"),
        (PAGE_ACTION, None),
    ],
    ids=["empty", "none", "option", "flag", "page word", "page digits", "page superscript",
         "no page"],
)  # fmt: skip
def test_a_home_button_value_not_made_by_us_is_told_so(
    driver, slack, heroku, caplog, action, value
):
    click(driver, action, value, ADMIN)
    # It had been the generic "Something went wrong", or no answer and a traceback.
    [post] = slack.wait_for_calls("chat.postMessage", timeout=10)
    assert post.args["channel"] == ADMIN and post.args["text"] == NOT_MINE
    assert heroku.formation("myapp")["web"][0] == 1
    assert not [r for r in caplog.records if r.exc_info]


def test_many_apps_are_paged_within_the_block_limit(driver, slack, web):
    services = web.extensions["deploybot"]
    many = "heroku:\n  allow_unlisted: false\napps:\n" + "".join(
        f"  app-{i:02d}:\n    platform: heroku\n    app: myapp\n" for i in range(40)
    )
    services.registry = Registry.parse(many)
    services.actions._targets = services.registry.targets
    view = open_home(driver, ADMIN)
    assert len(view["blocks"]) <= 100
    text = json.dumps(view, ensure_ascii=False)
    assert "`app-00`" in text and "`app-15`" not in text and "Page 1 of 3 (40 apps)" in text
    click(driver, PAGE_ACTION, "2", ADMIN)
    last = slack.wait_for_calls("views.publish", n=2, timeout=10)[-1].args["view"]
    assert "`app-30`" in json.dumps(last, ensure_ascii=False) and len(last["blocks"]) <= 100


def test_outside_words_on_a_card_are_escaped_once(driver, heroku, web):
    # Heroku's own message (escaped into the PlatformError) and a decision's reason (stored as
    # Slack text by the worker) are Slack text already: a second escape showed `&amp;lt;`.
    services = web.extensions["deploybot"]
    AutoscaleStore(services.db).record(
        Decision("myapp", datetime.now(UTC), 1, 2, True, "p95 queue 480 ms &gt; 300 ms")
    )
    heroku.fail_next(400, count=2, methods=["GET"], body={"id": "x", "message": "A & <b>"})
    text = json.dumps(open_home(driver, ADMIN), ensure_ascii=False)
    assert "Heroku answered 400: A &amp; &lt;b&gt;." in text
    assert "acted: p95 queue 480 ms &gt; 300 ms" in text
    assert "&amp;amp;" not in text and "&amp;lt;" not in text and "&amp;gt;" not in text


def card_with(driver, web, *incidents: tuple[str, str, str]) -> str:
    """myapp's card once these (kind, subject, detail) incidents opened, a second apart."""
    now = datetime.now(UTC)
    events = [
        Event("myapp", kind, subject, now + timedelta(seconds=i), detail)
        for i, (kind, subject, detail) in enumerate(incidents)
    ]
    Alerts(web.extensions["deploybot"].db).record(events, events[-1].at, lambda app: None)
    return open_home(driver, ADMIN)["blocks"][3]["text"]["text"]


def test_an_open_incident_on_a_card_reads_as_its_alert_does(driver, web):
    text = card_with(
        driver,
        web,
        ("crash", "web", "web.1 exited <!channel>"),
        ("router_error", "H12", "12 H12 in a minute"),
        ("release", "release", "v42 Deploy abc123"),
    )
    # The store's own words had been shown: "crash web: …", "router_error H12: …".
    assert ":red_circle: `web` dynos crashed: web.1 exited &lt;!channel&gt;" in text
    assert ":warning: router errors `H12`: 12 H12 in a minute" in text
    # Each with its alert's icon: a release's notice and a warning had a red circle too.
    assert ":information_source: released" in text and text.count(":red_circle:") == 1
    assert "crash web" not in text and "router_error" not in text


def test_an_incident_detail_of_several_lines_is_one_line_on_its_card(driver, web):
    detail = "web.1 exited\nAutoscaling: off\n\n  Traceback (most recent call last)"
    text = card_with(driver, web, ("crash", "web", detail))
    # Its own lines had stood between the card's, a forged "Autoscaling: off" among them.
    assert [line for line in text.split("\n") if line.startswith("Autoscaling:")] == [
        "Autoscaling: off"
    ]
    assert "web.1 exited Autoscaling: off Traceback (most recent call last)" in text


@pytest.mark.parametrize("user", [None, {"id": "U1"}, ""])
def test_a_home_opened_event_without_a_user_is_ignored_without_a_traceback(
    driver, slack, caplog, user
):
    event = {"type": "app_home_opened", "channel": "D1", "tab": "home"}
    if user is not None:
        event["user"] = user
    body = json.dumps({"type": "event_callback", "team_id": "T1", "event": event,
                       "event_id": "Ev9", "event_time": 1})  # fmt: skip
    headers = {**sign(SIGNING_SECRET, body), "Content-Type": "application/json"}
    assert driver.post(body, headers=headers).status_code == 200
    settle(0.5)
    # It had been a KeyError (no user) or a TypeError (an object) in the listener's job.
    assert not [r for r in caplog.records if r.exc_info]
    assert slack.calls_to("views.publish") == []


def test_the_header_names_no_drain_of_an_app_the_user_may_not_see(driver, web):
    from bot.store.drains import Drains

    db = web.extensions["deploybot"].db
    for app in ("myapp", "other-app"):
        Drains(db).get_or_create(app, "https://bot.example", ADMIN, datetime.now(UTC))
    # The header had named `other-app`'s drain above cards that leave it out.
    header = open_home(driver, USER)["blocks"][1]["elements"][0]["text"]
    assert "Drain `myapp`" in header and "other-app" not in header
    assert "Drain `other-app`" in json.dumps(open_home(driver, ADMIN, n=2))


def test_a_card_shows_the_worst_incidents_first_and_counts_the_rest(driver, web):
    router_errors = [("router_error", f"H1{k}", "x" * 500) for k in range(5)]
    card = card_with(driver, web, *router_errors, ("crash", "web", "web.1 exited"))
    # The three oldest had been shown, router errors all: the crash and the count were not.
    assert ":red_circle: `web` dynos crashed: web.1 exited" in card
    assert card.count(":red_circle:") + card.count(":warning:") == 3
    assert card.endswith("…and 3 more open: `/deploy alerts myapp` lists them all."), card
    # A long detail is cut with a mark, not mid-word in silence.
    assert ":warning: router errors `H14`: " + "x" * 199 + "…" in card


def test_a_card_says_the_autoscaler_made_its_changes(driver, web):
    # `<@autoscaler>` is no Slack user: the card showed it as written.
    autoscaler = Actor("autoscaler", source="autoscaler")
    AuditLog(web.extensions["deploybot"].db).record(
        autoscaler, "scale", "myapp", "scale web=3 myapp", "ok"
    )
    changes = open_home(driver, ADMIN)["blocks"][4]["elements"][0]["text"]
    assert "the autoscaler `scale web=3 myapp`" in changes and "<@autoscaler>" not in changes


def test_a_card_s_changes_are_dated_in_the_reader_s_time_zone(driver, web):
    # "12-05 17:03" was UTC, unlabeled, where the card's other times are each reader's own.
    audit = AuditLog(web.extensions["deploybot"].db)
    audit.record(Actor(ADMIN), "scale", "myapp", "scale web=3 myapp", "ok")
    [entry] = audit.recent("myapp", None)
    at = entry.started_at
    changes = open_home(driver, ADMIN)["blocks"][4]["elements"][0]["text"]
    assert f"<!date^{int(at.timestamp())}^{{time}}|{at:%H:%M} UTC> <@{ADMIN}>" in changes, changes


def test_a_card_s_last_decision_says_its_day_when_it_was_not_today(driver, web):
    # "Last decision 04:27 UTC" read as this morning for a decision days old.
    now = datetime.now(UTC)
    store = AutoscaleStore(web.extensions["deploybot"].db)
    old = (now - timedelta(days=3)).replace(microsecond=0)
    store.record(Decision("myapp", old, 2, 2, False, "steady"))
    card = open_home(driver, ADMIN)["blocks"][3]["text"]["text"]
    when = f"<!date^{int(old.timestamp())}^{{date_short_pretty}} {{time}}|{old:%Y-%m-%d %H:%M} UTC>"
    assert f"Last decision {when}, held: steady" in card, card
    store.record(Decision("myapp", now, 2, 2, False, "steady"))
    card = open_home(driver, ADMIN, n=2)["blocks"][3]["text"]["text"]
    assert f"Last decision <!date^{int(now.timestamp())}^{{time}}|{now:%H:%M} UTC>, held" in card


def test_a_card_s_pin_ends_in_the_reader_s_time_zone_as_autoscale_status_says(driver, web):
    # It said "until 2026-12-07 09:00 UTC" while `autoscale myapp status` gave Slack's date.
    until = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    AutoscaleStore(web.extensions["deploybot"].db).set_pin(Pin("myapp", 3, until, ADMIN))
    card = open_home(driver, ADMIN)["blocks"][3]["text"]["text"]
    when = f"<!date^{int(until.timestamp())}^{{date_short_pretty}} {{time}}|{until:%Y-%m-%d %H:%M} UTC>"
    assert f"Pinned at web=3 until {when}" in card, card


def test_the_chart_button_posts_in_the_apps_channel_and_tells_the_clicker_where(
    driver, slack, database_url
):
    from handlers.charts import CHART_ACTION
    from tests.test_charts import store_traffic

    store_traffic(database_url, "myapp", 30, datetime.now(UTC))
    chart = button({"blocks": open_home(driver, ADMIN)["blocks"]}, CHART_ACTION)
    click(driver, CHART_ACTION, chart["value"], ADMIN)
    [upload] = slack.wait_for_uploads(timeout=10)
    assert upload.channel == "C0MYAPP"
    # The chart went to a channel the Home tab does not show: the click had seemed lost.
    [dm] = slack.wait_for_calls("chat.postMessage", timeout=10)
    assert dm.args["channel"] == ADMIN
    assert dm.args["text"] == "I posted the chart of `myapp` (24 h) in <#C0MYAPP>."


@pytest.mark.parametrize("place", ["channel", "thread"])
def test_a_chart_value_for_a_channel_clicked_from_home_goes_to_the_apps_channel(
    driver, slack, database_url, place
):
    from handlers.charts import CHART_ACTION
    from tests.test_charts import store_traffic

    # A Home click has no channel: the chart had been uploaded to none, shared nowhere,
    # and the clicker was told nothing.
    store_traffic(database_url, "myapp", 30, datetime.now(UTC))
    click(driver, CHART_ACTION, f"myapp|24h|{place}", ADMIN)
    [upload] = slack.wait_for_uploads(timeout=10)
    assert upload.channel == "C0MYAPP"
    [dm] = slack.wait_for_calls("chat.postMessage", timeout=10)
    assert dm.args["channel"] == ADMIN
    assert dm.args["text"] == "I posted the chart of `myapp` (24 h) in <#C0MYAPP>."


def test_a_card_offers_only_the_changes_the_user_may_make(driver):
    # Every card had Restart and Scale buttons for everyone, each answered "You may not".
    def actions(view: dict) -> list[str]:
        card = view["blocks"][3:7]
        return [e["action_id"] for b in card if b["type"] == "actions" for e in b["elements"]]

    assert RESTART_ACTION in actions(open_home(driver, ADMIN))
    kept = actions(open_home(driver, USER, n=2))
    assert STATUS_ACTION in kept and "deploybot_chart" in kept
    assert not {RESTART_ACTION, SCALE_UP_ACTION, SCALE_DOWN_ACTION} & set(kept), kept


FLEET = 63  # four full pages of 15 cards, and a fifth of 3


@pytest.fixture
def fleet(new_app, config, tmp_path, monkeypatch, heroku):
    """The web app on a registry of FLEET Heroku apps (each reading myapp's formation), each
    with settings, a pin, decisions, an open incident, a drain, traffic and a change."""
    from bot.metrics.store import MetricsStore
    from bot.store.autoscale_settings import Pin, Settings
    from bot.store.drains import Drains
    from tests.test_detect import windows

    apps = [f"app-{i:02d}" for i in range(FLEET)]
    path = tmp_path / "fleet.yml"
    path.write_text(
        "apps:\n" + "".join(f"  {app}:\n    platform: heroku\n    app: myapp\n" for app in apps)
    )
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    web = new_app(config)
    db = web.extensions["deploybot"].db
    now = datetime.now(UTC)
    autoscale, alerts = AutoscaleStore(db), Alerts(db)
    for app in apps:
        autoscale.save(Settings(app, "on", 1, 4, "service_p95", 500.0, ADMIN, now))
        autoscale.set_pin(Pin(app, 2, now + timedelta(hours=1), ADMIN))
        autoscale.record_many(
            Decision(app, now - timedelta(seconds=15 * k), 2, 2, False, f"tick {k}")
            for k in (3, 2, 1, 0)  # oldest first, as ticks record them
        )
        alerts.record([Event(app, "crash", "web", now, "web.1 exited")], now, lambda _: None)
        Drains(db).get_or_create(app, "https://bot.example", ADMIN, now)
        MetricsStore(db).save(windows(app, 2, until=now))
        AuditLog(db).record(Actor(ADMIN), "scale", app, f"scale web=2 {app}", "ok")
    yield web
    web.extensions["deploybot"].db.dispose()


def test_a_home_page_costs_the_same_statements_for_3_cards_as_for_15(fleet, slack):
    from sqlalchemy import event

    driver = SlackDriver(fleet.test_client(), slack)
    statements: list[str] = []
    event.listen(
        fleet.extensions["deploybot"].db.engine,
        "before_cursor_execute",
        lambda conn, cursor, sql, *args: statements.append(sql),
    )

    def page_statements() -> int:
        # The Heroku client's shared throttle row is read and written on a timer per
        # account (bot/store/throttles.py), not per card: it is bounded, not counted.
        throttle = [sql for sql in statements if "api_throttles" in sql]
        assert len(throttle) <= 4, throttle
        counted = len(statements) - len(throttle)
        statements.clear()
        return counted

    full = json.dumps(open_home(driver, ADMIN), ensure_ascii=False)
    on_full = page_statements()
    assert "`app-14`" in full and "Page 1 of 5 (63 apps)" in full
    assert "Pinned at web=2" in full and "held: tick 0" in full and "`web` dynos crashed" in full
    assert "`scale web=2 app-14`" in full
    click(driver, PAGE_ACTION, "4", ADMIN)
    last = json.dumps(slack.wait_for_calls("views.publish", n=2, timeout=10)[-1].args["view"])
    assert "`app-62`" in last and "`app-59`" not in last
    # About five statements a card had made a page of 15 cost 80 of them, and 3 cards 20.
    # (The header's eleventh: the channels refusing alerts, `Heartbeats.undelivered`.)
    assert on_full == page_statements() <= 11


def test_a_card_offers_no_web_scale_button_its_formation_would_refuse(
    new_app, config, tmp_path, monkeypatch, slack, heroku
):
    # Each had been offered and each click answered with an error and the command's usage:
    # a worker-only app has no `web` to scale, and an app at web 0 cannot go to -1.
    heroku.add_app("jobs", formation={"worker": (2, "standard-1x")})
    heroku.add_app("idle", formation={"web": (0, "basic")})
    path = tmp_path / "dynos.yml"
    apps = ("idle", "jobs", "myapp")
    path.write_text("apps:\n" + "".join(f"  {app}:\n    platform: heroku\n" for app in apps))
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    driver = SlackDriver(new_app(config).test_client(), slack)
    heroku.fail_next(403, path="/apps/myapp/formation")  # unknown: both stay
    blocks = open_home(driver, ADMIN)["blocks"]
    offered: dict[str, set[str]] = {}
    for block in (b for b in blocks if b["type"] == "actions"):
        for element in block["elements"]:
            offered.setdefault(element["value"], set()).add(element["action_id"])
    assert not {SCALE_UP_ACTION, SCALE_DOWN_ACTION} & offered["jobs"]
    assert SCALE_UP_ACTION in offered["idle"] and SCALE_DOWN_ACTION not in offered["idle"]
    assert {SCALE_UP_ACTION, SCALE_DOWN_ACTION} <= offered["myapp"]
    assert RESTART_ACTION in offered["jobs"]
    assert "may not do that on `myapp`" in json.dumps(blocks), "myapp's formation was read"


def test_apps_left_out_because_slack_cannot_say_the_groups_are_said_to_be(
    new_app, config, tmp_path, monkeypatch, slack
):
    path = tmp_path / "groups.yml"
    path.write_text(REGISTRY.replace("users: [UUSER001]\n    apps: [other-app]", "groups: [S0OPS]"))
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    driver = SlackDriver(new_app(config).test_client(), slack)
    slack.fail_next("usergroups.users.list", count=10, status=500)
    texts = [b["text"]["text"] for b in open_home(driver, USER)["blocks"] if "text" in b]
    # It had said the access rules let the user see no app, and to ask an admin.
    assert not [text for text in texts if "The access rules let you see no app" in text]
    [said] = [text for text in texts if "I could not check the members" in text]
    assert "Slack user group S0OPS" in said and "2 apps" in said


def test_a_home_tab_and_a_dm_slack_rate_limits_for_a_moment_are_sent_again(driver, slack, heroku):
    # views.publish and the DM answered 429 "Retry-After: 1" were dropped: an empty Home
    # tab, and a change made with no word of it to the user who clicked.
    slack.fail_next("views.publish", status=429, retry_after=1)
    view = open_home(driver, ADMIN)
    assert "`myapp`" in json.dumps(view) and slack.faults_served == [("views.publish", 429)]
    slack.fail_next("chat.postMessage", status=429, retry_after=1)
    click(driver, SCALE_UP_ACTION, "myapp", ADMIN)
    [post] = slack.wait_for_calls("chat.postMessage", timeout=10)
    assert post.args["channel"] == ADMIN and "scaled `myapp`: web 1 → 2" in post.args["text"]


def test_a_closed_app_s_due_home_refreshes_are_dropped():
    import threading

    from handlers.home import Refresher

    published: list[str] = []
    fired = threading.Event()
    refresher = Refresher(lambda user: (published.append(user), fired.set()), delay=0.05)
    refresher.soon("U1")
    assert fired.wait(5) and published == ["U1"]
    # A refresh still due when the app closed had run after it: against a test's torn-down
    # database and Slack it logged errors, and it could publish into the next test's Slack.
    fired.clear()
    refresher.soon("U2")
    refresher.close()
    refresher.soon("U3")
    assert not fired.wait(0.5)  # six of its delays: a late timer would pass, never fail
    assert published == ["U1"]
