"""Alerts end to end: `/deploy watch` subscribes through the fake Heroku, a crashed dyno
arrives as a signed webhook over HTTP at the served web app, the worker posts one alert in
the app's channel, its Restart button restarts through the actions path, a crash loop
stays one message, and quiet resolves it in place."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import requests

from bot.store.incidents import LISTED_AT_MOST, Alerts
from bot.web.app import close, create_app
from bot.worker.main import Worker
from handlers.alerts import ACK_ACTION, RESTART_ACTION, SILENCE_ACTION
from policies.heroku_webhooks import sign
from policies.incidents import Event
from tests.conftest import ADMIN, OTHER_ADMIN, USER
from tests.test_drain import add_drain, post, router_line
from tests.webclient import SlackDriver, ack_text, button, served_app, settle, wait_for

REGISTRY = """\
apps:
  myapp:
    platform: heroku
    channel: CMYAPP
"""


@pytest.fixture
def served(config, tmp_path, monkeypatch):
    """The web app on a real port (Heroku must reach it), knowing its own URL."""
    with served_app(config, REGISTRY, tmp_path, monkeypatch) as served:
        yield served


@pytest.fixture
def driver(served, slack):
    return SlackDriver(served[0].test_client(), slack)


def watch(driver, heroku):
    response, url = driver.command("watch myapp", ADMIN)
    ack_text(response)
    assert "I am watching `myapp`" in driver.reply(url)["text"]
    [hook] = heroku.webhooks("myapp")
    return hook


def alert_messages(slack):
    return [m for m in slack.messages("CMYAPP") if "thread_ts" not in m]


def test_watch_subscribes_once_and_a_second_watch_rotates_the_secret(driver, heroku, served):
    first = watch(driver, heroku)
    assert first["url"] == f"{served[2]}/webhooks/heroku"
    assert first["level"] == "sync"
    assert set(first["include"]) == {"dyno", "api:release", "api:formation"}
    second = watch(driver, heroku)
    assert second["id"] == first["id"] and second["secret"] != first["secret"]
    assert heroku.violations == []


def test_a_watch_heroku_refused_keeps_the_secret_heroku_signs_with(driver, heroku, served, slack):
    # The new secret had replaced the stored one before Heroku refused it: the reply said
    # nothing was done, and every later delivery was refused (401), silently.
    watch(driver, heroku)
    heroku.fail_next(403, methods=["GET"])  # the second watch's list of webhooks
    response, url = driver.command("watch myapp", ADMIN)
    ack_text(response)
    assert "may not do that" in driver.reply(url)["text"]
    heroku.crash("myapp", "web.1")  # delivered, signed with the secret Heroku kept
    assert heroku.deliveries.wait()
    assert [d.statuses for d in heroku.deliveries.deliveries] == [[200]]
    worker = Worker(served[1])
    try:
        assert worker.send_alerts() == 1
    finally:
        worker.db.dispose()
    [alert] = alert_messages(slack)
    assert "crashed" in alert["text"]


def test_a_watch_whose_answer_failed_still_takes_what_heroku_signs_with(driver, heroku, served):
    """A second `watch` that Heroku answered with a 503 may or may not have changed the
    secret there. The bot had kept only the new one: Heroku went on signing with the old,
    and every delivery was refused (401) until someone watched again, with no word to
    anyone. Both are taken until a watch that Heroku answers."""
    first = watch(driver, heroku)
    heroku.fail_next(503, methods=["PATCH"])
    response, url = driver.command("watch myapp", ADMIN)
    ack_text(response)
    assert "503" in driver.reply(url)["text"]
    assert heroku.webhooks("myapp")[0]["secret"] == first["secret"]  # not applied there
    heroku.crash("myapp", "web.1")
    assert heroku.deliveries.wait()
    assert [d.statuses for d in heroku.deliveries.deliveries] == [[200]]


def test_a_watch_heroku_took_refuses_the_secret_it_replaced(driver, heroku, served):
    """Rotating a leaked secret: once Heroku took the new one, the old one is refused."""
    first = watch(driver, heroku)
    watch(driver, heroku)
    document = {"id": "1b9c1a4c-0b4e-4f7e-9d55-8c2f8ad0c0d1", "resource": "dyno"}
    document["created_at"] = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
    document["data"] = {"app": {"name": "myapp"}, "name": "web.1", "state": "crashed"}
    body = json.dumps(document).encode()
    answer = (
        served[0]
        .test_client()
        .post(
            "/webhooks/heroku",
            data=body,
            headers={"Heroku-Webhook-Hmac-SHA256": sign(first["secret"], body)},
        )
    )
    assert answer.status_code == 401


def test_watch_needs_permission(driver, heroku):
    response, url = driver.command("watch myapp", USER)
    ack_text(response)
    assert driver.reply(url)["text"].startswith("You may not watch `myapp`")
    assert heroku.webhooks("myapp") == []


def test_a_crash_becomes_one_alert_whose_restart_button_works_and_which_resolves(
    driver, heroku, slack, served
):
    _, config, _ = served
    watch(driver, heroku)
    worker = Worker(config)
    heroku.crash("myapp", "web.1")
    assert heroku.deliveries.wait()
    assert [d.statuses for d in heroku.deliveries.deliveries] == [[200]]
    assert worker.send_alerts() == 1
    [alert] = alert_messages(slack)
    assert "myapp" in alert["text"] and "crashed" in alert["text"]
    restart = button(alert, RESTART_ACTION)
    button(alert, SILENCE_ACTION), button(alert, ACK_ACTION)

    # A crash loop: fifty more crashes are the same incident, one message updated in place.
    for _ in range(50):
        heroku.crash("myapp", "web.1")
    assert heroku.deliveries.wait()
    worker.send_alerts()
    [looping] = alert_messages(slack)
    assert looping["ts"] == alert["ts"] and "51 times" in looping["text"]

    response, url = driver.click(
        RESTART_ACTION, restart["value"], ADMIN, channel_id="CMYAPP", message_ts=alert["ts"]
    )
    ack_text(response)
    assert "restart" in driver.reply(url)["text"].lower()
    assert len(heroku.calls("DELETE", "/apps/myapp/formations/web")) == 1
    assert heroku.dynos("myapp")[0]["state"] == "up"

    # Ten quiet minutes later the worker resolves it: the same message, no buttons left.
    _resolves_in_place(worker, slack, alert)
    replies = [m for m in slack.messages("CMYAPP") if m.get("thread_ts") == alert["ts"]]
    assert any("Resolved" in m["text"] for m in replies)
    assert slack.violations == [] and heroku.violations == []


def _resolves_in_place(worker, slack, alert):
    """Ten quiet minutes after `alert`, the worker resolves it: the same message, no buttons."""
    later = datetime.now(UTC) + timedelta(minutes=11)
    assert worker.watch(later) == 1
    worker.send_alerts(later)
    [resolved] = alert_messages(slack)
    assert resolved["ts"] == alert["ts"] and "Resolved" in resolved["text"]
    assert all(block["type"] != "actions" for block in resolved.get("blocks", []))


SHARED_CHANNEL = """\
access:
  - allow: ["*"]
    channels: [CMYAPP]
"""


def test_a_partner_organisation_member_cannot_press_an_alerts_restart(
    config, tmp_path, monkeypatch, heroku, slack
):
    # CMYAPP is a Slack Connect channel: a partner's member sees the alert and its buttons,
    # and the rule is about anyone there. Slack names their own team in `user.team_id`.
    with served_app(config, SHARED_CHANNEL + REGISTRY, tmp_path, monkeypatch) as served:
        driver = SlackDriver(served[0].test_client(), slack)
        value, where = _crash_alert(driver, heroku, slack, served[1])
        _, url = driver.click(RESTART_ACTION, value, "UPARTNER1", user_team_id="T0PARTNER", **where)
        assert driver.reply(url)["text"] == (
            "You are a member of another Slack organisation: only members of this workspace "
            "may change apps."
        )
        assert heroku.calls("DELETE", "/apps/myapp/formations/web") == []
        # The button is still there for this workspace's people.
        _, url = driver.click(RESTART_ACTION, value, USER, **where)
        assert "restart" in driver.reply(url)["text"].lower()
        assert len(heroku.calls("DELETE", "/apps/myapp/formations/web")) == 1


def _posted_crash(driver, heroku, slack, config):
    """A watched app's crash, posted by the worker: (the worker, its alert, where it is)."""
    watch(driver, heroku)
    worker = Worker(config)
    heroku.crash("myapp", "web.1")
    assert heroku.deliveries.wait()
    worker.send_alerts()
    [alert] = alert_messages(slack)
    return worker, alert, {"channel_id": "CMYAPP", "message_ts": alert["ts"]}


def _crash_alert(driver, heroku, slack, config):
    _, alert, where = _posted_crash(driver, heroku, slack, config)
    return button(alert, RESTART_ACTION)["value"], where


def test_a_remedy_click_that_did_nothing_leaves_the_button_to_the_next_click(
    driver, heroku, slack, served
):
    value, where = _crash_alert(driver, heroku, slack, served[1])
    heroku.fail_next(403, methods=["DELETE"], body={"id": "forbidden", "message": "no access"})
    _, url = driver.click(RESTART_ACTION, value, ADMIN, **where)
    assert "may not do that" in driver.reply(url)["text"]
    # Nothing was restarted, so the next click acts (it had been answered with silence).
    _, url = driver.click(RESTART_ACTION, value, OTHER_ADMIN, **where)
    assert "restart" in driver.reply(url)["text"].lower()
    assert len(heroku.calls("DELETE", "/apps/myapp/formations/web")) == 2
    # Done once for this state of the incident: a third click is told so, not ignored.
    _, url = driver.click(RESTART_ACTION, value, ADMIN, **where)
    assert driver.reply(url)["text"] == (
        "This alert's Restart button was already used, so I did nothing this time. To do "
        "it again, send `/deploy restart myapp web`."
    )
    assert len(heroku.calls("DELETE", "/apps/myapp/formations/web")) == 2


@pytest.mark.parametrize("forged", ["crash:myapp:web", "crash:myapp:web|01", "crash:myapp:web|x"])
def test_a_restart_value_without_the_count_we_write_is_refused_not_a_second_restart(
    driver, heroku, slack, served, forged
):
    value, where = _crash_alert(driver, heroku, slack, served[1])
    _, url = driver.click(RESTART_ACTION, value, ADMIN, **where)
    assert "restart" in driver.reply(url)["text"].lower()
    # Without the count (or with it spelled otherwise) its claim differed from the real
    # button's, and the same state of the incident was restarted twice.
    _, url = driver.click(RESTART_ACTION, forged, ADMIN, **where)
    assert driver.reply(url)["text"].startswith("That button's value is not one I made")
    assert len(heroku.calls("DELETE", "/apps/myapp/formations/web")) == 1


@pytest.mark.parametrize(
    "value", ["crash:myapp --force now:web|1", "crash:myapp:web --force x|1", "crash::web|1"]
)
def test_a_remedy_value_that_is_no_name_of_ours_is_refused_in_a_sentence(
    driver, heroku, slack, served, value
):
    # Its parts become command words: a forged one had reached the parser, and the user
    # got "Something went wrong inside deploybot".
    _, url = driver.click(RESTART_ACTION, value, ADMIN, channel_id="CMYAPP", message_ts="1.2")
    assert driver.reply(url)["text"].startswith("That button's value is not one I made")
    assert heroku.calls("DELETE", "/apps/myapp/formations/web") == []


@pytest.mark.parametrize("value", ["crash:<!channel>:web|1", "crash:*b*`x`:web|1"])
def test_a_silence_value_naming_no_app_of_ours_is_refused_not_echoed(driver, served, value):
    # Its app went into the refusal as typed: "You may not watch `<!channel>`", and a
    # backtick in it broke the code span.
    _, url = driver.click(SILENCE_ACTION, value, USER, channel_id="CMYAPP", message_ts="1.2")
    assert driver.reply(url)["text"].startswith("That button's value is not one I made")


@pytest.mark.parametrize(
    ("process_type", "management"), [("scheduler", "run:detached"), ("run", "run:detached")]
)
def test_a_failed_one_off_dyno_is_a_notice_with_its_exit_status_not_a_crash(
    driver, heroku, slack, served, process_type, management
):
    _, config, _ = served
    watch(driver, heroku)
    worker = Worker(config)
    heroku.run_one_off("myapp", "python manage.py clearsessions", process_type, 0, management)
    heroku.run_one_off("myapp", "python manage.py cleanup", process_type, 137, management)
    assert heroku.deliveries.wait()
    assert worker.send_alerts() == 1  # the run that exited 0 is no news
    [notice] = alert_messages(slack)
    text = notice["text"]
    assert f"one-off `{process_type}` dyno failed" in text
    assert "“python manage.py cleanup” exited with status 137" in text
    assert "crash" not in text and ":red_circle:" not in text
    # No Restart button: Heroku refuses `restart myapp scheduler`, and nothing is down.
    assert all(block["type"] != "actions" for block in notice.get("blocks", []))
    assert Alerts(served[0].extensions["deploybot"].db).open_text(None, datetime.now(UTC))


def test_a_crash_shows_its_exit_status_when_heroku_sends_it(driver, heroku, slack, served):
    _, config, _ = served
    hook = watch(driver, heroku)
    now = datetime.now(UTC).isoformat()
    document = {
        "id": "7c1a4f52-5d8e-4d3b-9a53-3f0b6a2d9e10",
        "action": "update",
        "created_at": now,
        "published_at": now,
        "updated_at": now,
        "resource": "dyno",
        "data": {
            "app": {"name": "myapp"},
            "name": "web.2",
            "type": "web",
            "state": "crashed",
            "exit_status": 1,
            "management": None,
        },
    }
    body = json.dumps(document).encode()
    answer = requests.post(
        hook["url"],
        data=body,
        headers={
            "Heroku-Webhook-Hmac-SHA256": sign(hook["secret"], body),
            "Heroku-Webhook-Id": "d1",
        },
        timeout=10,
    )
    assert answer.status_code < 300
    assert Worker(config).send_alerts() == 1
    [alert] = alert_messages(slack)
    assert "web.2 crashed (exit status 1)" in alert["text"]
    button(alert, RESTART_ACTION)


def test_silence_and_acknowledge_answer_in_the_thread(driver, heroku, slack, served):
    worker, alert, where = _posted_crash(driver, heroku, slack, served[1])
    value = button(alert, ACK_ACTION)["value"]
    ack_text(driver.click(ACK_ACTION, value, USER, **where)[0])
    ack_text(driver.click(SILENCE_ACTION, value, ADMIN, **where)[0])
    slack.wait_for_calls("chat.postMessage", n=3)
    thread = [m["text"] for m in slack.messages("CMYAPP") if m.get("thread_ts") == alert["ts"]]
    assert any("looking into it" in text for text in thread)
    assert any("Silenced until" in text for text in thread)
    # Silenced: more crashes are counted, and nobody is told.
    heroku.crash("myapp", "web.1")
    assert heroku.deliveries.wait()
    before = len(slack.calls_to("chat.update"))
    worker.send_alerts()
    assert len(slack.calls_to("chat.update")) == before
    [incident] = Alerts(worker.db).incidents("myapp")
    assert incident.count == 2 and incident.acknowledged_by == USER
    # Anyone may list what is open, with who is on it.
    response, url = driver.command("alerts myapp", USER)
    ack_text(response)
    listed = driver.reply(url)["text"]
    assert listed.startswith("*Open alerts for `myapp`* (1):\n• :red_circle: *myapp* `web`")
    assert "2 times since" in listed and f"acknowledged by <@{USER}>" in listed
    assert "silenced until" in listed
    # A name the registry does not list is said to be none, not "No open alerts".
    _, url = driver.command("alerts other-app", USER)
    assert driver.reply(url)["text"].startswith("`other-app` is not an app I manage.")


def test_an_acknowledge_note_slack_rate_limits_for_a_moment_is_posted_again(
    driver, heroku, slack, served
):
    # Answered 429 "Retry-After: 1", the thread's "is looking into it" was logged as not
    # posted: the click was stored, and the channel never saw who took the alert.
    _, alert, where = _posted_crash(driver, heroku, slack, served[1])
    posted = len(slack.calls_to("chat.postMessage"))
    slack.fail_next("chat.postMessage", status=429, retry_after=1)
    ack_text(driver.click(ACK_ACTION, button(alert, ACK_ACTION)["value"], USER, **where)[0])
    note = slack.wait_for_calls("chat.postMessage", n=posted + 1, timeout=10)[-1].args
    assert note["thread_ts"] == alert["ts"] and "looking into it" in note["text"]
    assert slack.faults_served == [("chat.postMessage", 429)]


def test_silence_answers_when_slack_cannot_say_who_is_in_a_group(
    config, heroku, slack, tmp_path, monkeypatch
):
    registry = REGISTRY + "access:\n  - allow: [watch]\n    groups: [S0OPS]\n"
    slack.set_usergroup("S0OPS", ["UOTHER99"])
    with served_app(config, registry, tmp_path, monkeypatch) as (web, config, _):
        watch(SlackDriver(web.test_client(), slack), heroku)
        worker = Worker(config)
        heroku.crash("myapp", "web.1")
        assert heroku.deliveries.wait()
        worker.send_alerts()
        [alert] = alert_messages(slack)
        # A second web dyno: the one that ran `watch` keeps the group's members for minutes.
        other = create_app(config)
        try:
            slack.fail_next("usergroups.users.list", count=5, status=500)
            where = {"channel_id": "CMYAPP", "message_ts": alert["ts"]}
            value = button(alert, SILENCE_ACTION)["value"]
            response, url = SlackDriver(other.test_client(), slack).click(
                SILENCE_ACTION, value, USER, **where
            )
            ack_text(response)
            # It had said nothing at all: the lookup's error escaped the click's job.
            [answer] = slack.wait_for_responses(url, timeout=10)
            assert answer["text"].startswith(
                "I could not check the members of Slack user group S0OPS"
            )
        finally:
            close(other)
            other.extensions["deploybot"].db.dispose()
        [incident] = Alerts(worker.db).incidents("myapp")
        assert incident.silenced_until is None


def _thread(slack, alert):
    return [m["text"] for m in slack.messages("CMYAPP") if m.get("thread_ts") == alert["ts"]]


def test_acknowledge_and_silence_answer_every_click_and_note_each_once(
    driver, heroku, slack, served
):
    _, alert, where = _posted_crash(driver, heroku, slack, served[1])
    value = button(alert, ACK_ACTION)["value"]
    # An alert the store has no record of (an old message, a forged value) had been met
    # with silence: the click seemed lost.
    for action in (ACK_ACTION, SILENCE_ACTION):
        _, url = driver.click(action, "crash:gone-app:web|1", ADMIN, **where)
        assert driver.reply(url)["text"] == (
            "I have no record of that alert, so I did nothing. `/deploy alerts` lists the "
            "open ones."
        )
    # A second click by the same person (a double click) had posted a second "is looking
    # into it" in the thread, also when both clicks' jobs ran at once.
    urls = [driver.click(ACK_ACTION, value, USER, **where)[1] for _ in range(4)]
    wait_for(lambda: sum(len(slack.responses_for(url)) for url in urls) == 3)
    settle()
    answers = [r.payload["text"] for url in urls for r in slack.responses_for(url)]
    assert answers == ["You have already acknowledged this alert."] * 3
    assert _thread(slack, alert) == [f"<@{USER}> is looking into it."]
    _, url = driver.click(ACK_ACTION, value, USER, **where)
    assert driver.reply(url)["text"] == "You have already acknowledged this alert."


def _resolved_crash(driver, heroku, slack, config):
    """A posted crash alert that ten quiet minutes later resolved, as `_posted_crash`."""
    worker, alert, where = _posted_crash(driver, heroku, slack, config)
    later = datetime.now(UTC) + timedelta(minutes=11)
    assert worker.watch(later) == 1
    worker.send_alerts(later)
    return worker, alert, where


def test_a_crash_back_soon_after_resolving_reopens_its_own_message_and_its_buttons_work(
    driver, heroku, slack, served
):
    # A crash loop that stopped for ten minutes and started again had posted a second alert
    # under the first, and a third the next time: a channel of look-alikes, each with
    # buttons, when it was one trouble coming and going.
    worker, alert, where = _resolved_crash(driver, heroku, slack, served[1])
    again = datetime.now(UTC) + timedelta(minutes=25)
    worker.alerts.record([Event("myapp", "crash", "web", again, "web.2 crashed")], again, {
        "myapp": "CMYAPP"}.get)  # fmt: skip
    worker.send_alerts(again)
    [message] = alert_messages(slack)
    assert message["ts"] == alert["ts"]
    assert message["text"].startswith(":red_circle: *myapp* `web` dynos crashed at ")
    assert _thread(slack, alert)[-1].startswith("Back at ")
    assert "this alert is open again" in _thread(slack, alert)[-1]
    _, url = driver.click(RESTART_ACTION, button(message, RESTART_ACTION)["value"], ADMIN, **where)
    assert "restart" in driver.reply(url)["text"].lower()
    assert len(heroku.calls("DELETE", "/apps/myapp/formations/web")) == 1
    assert slack.violations == []


def test_buttons_of_a_resolved_alert_do_nothing_and_say_why(driver, heroku, slack, served):
    # A window left open shows the buttons the resolved message no longer has: Restart had
    # restarted the recovered app, and Acknowledge said someone was looking into it.
    _, alert, where = _resolved_crash(driver, heroku, slack, served[1])
    value = button(alert, RESTART_ACTION)["value"]
    notes = _thread(slack, alert)
    _, url = driver.click(RESTART_ACTION, value, ADMIN, **where)
    assert driver.reply(url)["text"] == (
        "This alert has resolved, so I did nothing. If `myapp` still needs it, send "
        "`/deploy restart myapp web`."
    )
    _, url = driver.click(ACK_ACTION, value, USER, **where)
    assert driver.reply(url)["text"] == "This alert has resolved: there is nothing to acknowledge."
    assert heroku.calls("DELETE", "/apps/myapp/formations/web") == []
    assert _thread(slack, alert) == notes


def test_silencing_a_resolved_alert_says_it_holds_if_the_alert_comes_back(
    driver, heroku, slack, served
):
    worker, alert, where = _resolved_crash(driver, heroku, slack, served[1])
    value = button(alert, SILENCE_ACTION)["value"]
    notes = _thread(slack, alert)
    ack_text(driver.click(SILENCE_ACTION, value, ADMIN, **where)[0])
    wait_for(lambda: len(_thread(slack, alert)) > len(notes))
    # Under "Resolved", a bare "Silenced until" read as a click on the wrong alert.
    [note] = _thread(slack, alert)[len(notes) :]
    assert note.startswith("Silenced until ") and note.endswith(
        f"by <@{ADMIN}>. This alert has resolved: the silence holds if it comes back before then."
    )
    [incident] = Alerts(worker.db).incidents("myapp")
    assert incident.silenced_until is not None


def test_forged_and_replayed_webhooks_are_refused(driver, heroku, served):
    _, config, url = served
    watch(driver, heroku)
    heroku.crash("myapp", "web.1")
    assert heroku.deliveries.wait()
    [delivery] = heroku.deliveries.deliveries
    endpoint = f"{url}/webhooks/heroku"
    forged = requests.post(
        endpoint,
        data=delivery.body,
        headers={**delivery.headers, "Heroku-Webhook-Hmac-SHA256": sign("guess", delivery.body)},
        timeout=10,
    )
    unsigned_headers = {
        k: v for k, v in delivery.headers.items() if k != "Heroku-Webhook-Hmac-SHA256"
    }
    unsigned = requests.post(endpoint, data=delivery.body, headers=unsigned_headers, timeout=10)
    replayed = requests.post(endpoint, data=delivery.body, headers=delivery.headers, timeout=10)
    assert (forged.status_code, unsigned.status_code) == (401, 401)
    assert replayed.status_code == 200 and replayed.json().get("duplicate") is True
    [incident] = Alerts(Worker(config).db).incidents("myapp")
    assert incident.count == 1


def test_a_formation_change_by_hand_and_a_release_are_observed(driver, heroku, slack, served):
    _, config, _ = served
    watch(driver, heroku)
    hook = heroku.webhooks("myapp")[0]
    body = json.dumps(
        {
            "id": "11111111-2222-3333-4444-555555555555",
            "action": "update",
            "resource": "release",
            "created_at": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}",  # fresh, or it is refused
            "actor": {"email": "dev@example.com"},
            "data": {
                "app": {"name": "myapp"},
                "version": 42,
                "status": "succeeded",
                "description": "Deploy abc1234",
            },
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "Heroku-Webhook-Id": "release-delivery-1",
        "Heroku-Webhook-Hmac-SHA256": sign(hook["secret"], body),
    }
    assert requests.post(f"{served[2]}/webhooks/heroku", data=body, headers=headers).ok
    # A hand-made scale in the "dashboard": the fake tells subscribers like Heroku does.
    requests.patch(
        f"{heroku.url}/apps/myapp/formation/web",
        json={"quantity": 3},
        headers={
            "Accept": "application/vnd.heroku+json; version=3",
            "Authorization": f"Bearer {config.heroku_api_key}",
        },
        timeout=10,
    ).raise_for_status()
    assert heroku.deliveries.wait()
    services = Worker(config).services()
    seen = {(o.kind, o.subject): o.value for o in services.observations.since(None, "myapp")}
    assert seen == {("release", "current"): 42, ("formation", "web"): 3}
    assert services.observations.last_release_at("myapp") is not None
    Worker(config).send_alerts()
    [notice] = alert_messages(slack)
    assert "released" in notice["text"] and "v42" in notice["text"]
    assert all(block["type"] != "actions" for block in notice.get("blocks", []))


def test_watch_without_a_public_url_says_what_to_set(config, tmp_path, monkeypatch, slack, heroku):
    path = tmp_path / "deploybot.yml"
    path.write_text(REGISTRY)
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    web = create_app(config)
    driver = SlackDriver(web.test_client(), slack)
    response, url = driver.command("watch myapp", ADMIN)
    ack_text(response)
    assert (
        "set DEPLOYBOT_URL to the bot's Web URL (`heroku apps:info`)" in driver.reply(url)["text"]
    )
    close(web)
    assert heroku.webhooks("myapp") == []


def test_a_crash_alert_survives_a_slack_outage_and_arrives_once(driver, heroku, slack, served):
    _, config, _ = served
    watch(driver, heroku)
    worker = Worker(config)
    slack.fail_next("chat.postMessage", count=2, status=500)
    slack.fail_next("chat.postMessage", count=1, status=429, retry_after=1)
    heroku.crash("myapp", "web.1")
    assert heroku.deliveries.wait()
    now = datetime.now(UTC)
    sent = [worker.send_alerts(now + timedelta(seconds=10 * tick)) for tick in range(8)]
    assert sum(sent) == 1
    [alert] = alert_messages(slack)
    assert "crashed" in alert["text"]
    assert [status for _, status in slack.faults_served] == [500, 500, 429]


def test_a_burst_of_router_timeouts_in_the_drain_becomes_an_alert(driver, heroku, slack, served):
    """The detectors in the worker's watch tick: H12s drained over HTTP, one alert."""
    app, config, _ = served
    token = add_drain(driver, heroku)[1]
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    frames = [
        router_line(minute + timedelta(seconds=1 + i), "web.1", 30000, 503, "H12")
        for i in range(12)
    ] + [router_line(minute + timedelta(seconds=20 + i), "web.1", 40, 200) for i in range(30)]
    assert post(driver.client, token, frames).status_code == 204
    app.extensions["deploybot.metrics"][1].flush()
    worker = Worker(config)
    judged = minute + timedelta(seconds=90)  # that minute is over and its stragglers are in
    assert worker.watch(judged) >= 1
    worker.send_alerts(judged)
    texts = [m["text"] for m in alert_messages(slack)]
    assert any("12 H12 (request timeout)" in text for text in texts), texts
    # The next tick sees the same minute again: still one message, not two.
    worker.watch(judged + timedelta(seconds=30))
    worker.send_alerts(judged + timedelta(seconds=30))
    assert len([t for t in (m["text"] for m in alert_messages(slack)) if "H12" in t]) == 1


def test_clients_closing_their_requests_h27_is_no_alert(driver, heroku, slack, served):
    """H27 (client request interrupted) is the client going away: noise, however many."""
    app, config, _ = served
    token = add_drain(driver, heroku)[1]
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    frames = [
        router_line(minute + timedelta(seconds=1 + i % 50), "web.1", 0, 499, "H27")
        for i in range(200)
    ] + [router_line(minute + timedelta(seconds=20 + i), "web.1", 40, 200) for i in range(30)]
    assert post(driver.client, token, frames).status_code == 204
    app.extensions["deploybot.metrics"][1].flush()
    worker = Worker(config)
    judged = minute + timedelta(seconds=90)
    worker.watch(judged)
    worker.send_alerts(judged)
    assert alert_messages(slack) == []


def test_the_alerts_list_stays_one_readable_message(config):
    alerts = Alerts(Worker(config).db)
    now = datetime.now(UTC)
    events = [
        Event(f"app-{i:02d}", "crash", "web", now - timedelta(seconds=i), "web.1 crashed")
        for i in range(LISTED_AT_MOST + 3)
    ]
    alerts.record(events, now, lambda app: "CMYAPP")
    text = alerts.open_text(None, now)
    lines = text.splitlines()
    assert lines[0] == f"*Open alerts* ({LISTED_AT_MOST + 3}):"
    assert "*app-00*" in lines[1]  # newest first
    assert len(lines) == LISTED_AT_MOST + 2
    assert lines[-1] == "…and 3 older: name an app to see its own."
    assert alerts.open_text("nothing-here", now) == "No open alerts for `nothing-here`."


def test_a_storm_over_a_fleet_is_one_summary_slack_accepts(config, slack):
    # A Heroku outage crashing 150 apps that share one channel: the summary named them all
    # in one section past Slack's 3,000 characters, which Slack refused, so nobody was told.
    worker = Worker(config)
    now = datetime.now(UTC)
    events = [Event(f"shop-{i:03d}-{'x' * 30}", "crash", "web", now) for i in range(150)]
    worker.alerts.record(events, now, lambda app: "CFLEET")
    worker.send_alerts(now)
    posts = slack.messages("CFLEET")
    assert slack.violations == []
    [summary] = [m for m in posts if "more alerts in this channel" in m["text"]]
    assert summary["text"].startswith(":rotating_light: 145 more alerts in this channel just now:")
    assert "`/deploy alerts` lists them all." in summary["text"]


def _silence(driver, slack, alert, where):
    """Click Silence 1 h on `alert` and wait for its note in the thread."""
    notes = len(_thread(slack, alert))
    value = button(alert, SILENCE_ACTION)["value"]
    ack_text(driver.click(SILENCE_ACTION, value, ADMIN, **where)[0])
    wait_for(lambda: len(_thread(slack, alert)) > notes)


def test_an_alert_that_resolves_while_silenced_reads_resolved_without_buttons(
    driver, heroku, slack, served
):
    # The silence had dropped the resolution's edit too: the message said "crashed", with
    # its buttons, long after the app recovered and the hour was over.
    worker, alert, where = _posted_crash(driver, heroku, slack, served[1])
    _silence(driver, slack, alert, where)
    _resolves_in_place(worker, slack, alert)
    # Silenced: nothing is said in the thread but the silence itself.
    [note] = _thread(slack, alert)
    assert note.startswith("Silenced until ")


def test_an_alert_reopened_while_silenced_gets_a_new_message_once_the_silence_ends(
    driver, heroku, slack, served
):
    # Reopened under the silence it had no message; its first event after the hour edited
    # the old message, resolved and far up the channel, back to "crashed": nobody saw it.
    worker, alert, where = _resolved_crash(driver, heroku, slack, served[1])
    _silence(driver, slack, alert, where)
    heroku.crash("myapp", "web.1")  # reopens it, silenced
    assert heroku.deliveries.wait()
    worker.send_alerts()
    assert len(alert_messages(slack)) == 1
    after = datetime.now(UTC) + timedelta(minutes=61)
    worker.alerts.record([Event("myapp", "crash", "web", after, "web.1 crashed")], after, {
        "myapp": "CMYAPP"}.get)  # fmt: skip
    worker.send_alerts(after)
    old, new = alert_messages(slack)
    assert old["ts"] == alert["ts"] and "Resolved" in old["text"]
    assert "*myapp* `web` dynos crashed 2 times since" in new["text"]
    button(new, RESTART_ACTION)


def test_a_crash_loop_outlasting_its_silence_is_said_again_in_the_channel(
    driver, heroku, slack, served
):
    # When the hour ended its message was only edited (an edit notifies nobody): whoever
    # silenced it never heard that the app went on crashing.
    worker, alert, where = _posted_crash(driver, heroku, slack, served[1])
    _silence(driver, slack, alert, where)
    channel_of = {"myapp": "CMYAPP"}.get
    for minutes in (30, 61):
        at = datetime.now(UTC) + timedelta(minutes=minutes)
        worker.alerts.record([Event("myapp", "crash", "web", at, "web.1 crashed")], at, channel_of)
        worker.send_alerts(at)
    [told] = [m for m in slack.messages("CMYAPP") if m.get("subtype") == "thread_broadcast"]
    assert told["thread_ts"] == alert["ts"]
    assert "*myapp* `web` dynos crashed 3 times since" in told["text"]
    assert "The silence ended at" in told["text"] and "still happening" in told["text"]
    [message] = alert_messages(slack)  # its own message edited, no second one
    assert "3 times since" in message["text"]


@pytest.mark.parametrize(
    ("error", "advice"),
    [
        ("not_in_channel", "the bot is not in that channel: `/invite @deploybot` there."),
        ("is_archived", "that channel is archived: unarchive it, or give the app another"),
        ("channel_not_found", "Slack finds no such channel: it was deleted, or it is private"),
    ],
)
def test_alerts_a_channel_refuses_are_named_by_about_until_one_gets_through(
    driver, heroku, slack, served, error, advice
):
    # The bot removed from the app's channel: each alert was marked failed and logged, and
    # `/deploy about` said "0 message(s) waiting", as if all were well.
    _, config, _ = served
    watch(driver, heroku)
    worker = Worker(config)
    # A public channel refuses the bot's posts (not_in_channel) only without chat:write.public.
    slack.scopes.discard("chat:write.public")
    slack.leave_channel("CMYAPP", error)
    heroku.crash("myapp", "web.1")
    heroku.crash("myapp", "worker.1")
    assert heroku.deliveries.wait()
    worker.send_alerts()
    assert alert_messages(slack) == []
    _, url = driver.command("about", USER)
    text = driver.reply(url)["text"]
    assert ":warning: Alerts to <#CMYAPP> not delivered (2 since " in text
    assert f"Slack said `{error}`: {advice}" in text
    # Back in the channel: the next alert gets through, and about says nothing more of it.
    slack.leave_channel("CMYAPP", None)
    heroku.crash("myapp", "web.1")
    assert heroku.deliveries.wait()
    worker.send_alerts()
    assert "web.1 crashed" in alert_messages(slack)[0]["text"]
    _, url = driver.command("about", USER)
    assert "not delivered" not in driver.reply(url)["text"]


def test_a_double_click_on_silence_notes_it_once(driver, heroku, slack, served):
    # Each click had posted its own "Silenced until …" in the thread, also when both
    # clicks' jobs ran at once.
    _, alert, where = _posted_crash(driver, heroku, slack, served[1])
    value = button(alert, SILENCE_ACTION)["value"]
    urls = [driver.click(SILENCE_ACTION, value, ADMIN, **where)[1] for _ in range(3)]
    wait_for(lambda: sum(len(slack.responses_for(url)) for url in urls) == 2)
    settle()
    [note] = _thread(slack, alert)
    assert note.startswith("Silenced until ") and note.endswith(f"by <@{ADMIN}>.")
    until = note.removeprefix("Silenced until ").split(" by ")[0]
    # "until 18:27 UTC" was in no reader's own time zone.
    assert re.fullmatch(r"<!date\^\d+\^(\{date_short_pretty\} )?\{time\}\|[-\d: ]+ UTC>", until)
    answers = [r.payload["text"] for url in urls for r in slack.responses_for(url)]
    assert answers == [f"This alert is already silenced until {until}."] * 2


def test_silences_done_and_refused_are_in_the_apps_history(driver, heroku, slack, served):
    # A silence hides a crash loop from the channel for an hour: it was in no history, and
    # nor was a refused click, which docs/registry.md says the history holds.
    _, alert, where = _posted_crash(driver, heroku, slack, served[1])
    value = button(alert, SILENCE_ACTION)["value"]
    response, url = driver.click(SILENCE_ACTION, value, USER, **where)
    ack_text(response)
    slack.wait_for_responses(url, timeout=10)  # the refusal, said after its row is written
    ack_text(driver.click(SILENCE_ACTION, value, ADMIN, **where)[0])
    slack.wait_for_calls("chat.postMessage", n=2)
    response, url = driver.command("history myapp", ADMIN)
    ack_text(response)
    lines = driver.reply(url)["text"].splitlines()
    silences = [line for line in lines if "silence" in line]
    assert len(silences) == 2, lines
    assert silences[0].startswith("✓") and f"<@{ADMIN}>" in silences[0], silences
    assert "`silence myapp crash web for 1h`" in silences[0], silences
    assert silences[1].startswith("✗ refused") and f"<@{USER}>" in silences[1], silences
